"""The `reintegrate` command: a thin layer that turns options into library calls and known errors into
one-sentence messages and SPEC 1's exit codes (0 all accepted, 1 rows rejected, 2 unreadable input or usage)."""

from __future__ import annotations

import sys
from datetime import date
from pathlib import Path

import click

from pipeline.config import load_config
from pipeline.errors import InputError, ReintegrateError

EXIT_UNREADABLE = 2


def _fail(message: str) -> None:
    click.echo(f"Error: {message}", err=True)
    sys.exit(EXIT_UNREADABLE)


def _as_of(ctx, param, value) -> date:
    if value is None:
        return date.today()
    try:
        return date.fromisoformat(value)
    except ValueError:
        raise click.BadParameter(f"'{value}' is not a date written YYYY-MM-DD, e.g. 2026-11-30") from None


as_of_option = click.option("--as-of", callback=_as_of, metavar="YYYY-MM-DD",
                            help="The date the rules are judged on (default: today).")
config_option = click.option("--config", "config_path", type=click.Path(dir_okay=False), default=None,
                             help="Settings file (default: reintegrate.toml in this folder, if any).")
outbox_option = click.option("--outbox", type=click.Path(file_okay=False), default=None,
                             help="Folder for run folders (default: outbox, or the config's outbox).")


def _config(config_path, outbox=None):
    try:
        config = load_config(config_path)
    except ReintegrateError as exc:
        _fail(str(exc))
    if outbox:
        from dataclasses import replace

        config = replace(config, outbox=Path(outbox))
    return config


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="reintegrate")
def main():
    """Turn a spreadsheet of pupil referrals into validated reintegration plans, meeting letters and a
    review tracker, following Havering's Reintegration Policy 2023/24.

    \b
    Start with:   reintegrate template referrals.xlsx
    Then:         reintegrate validate referrals.xlsx
    And:          reintegrate run referrals.xlsx
    """


def _report(result, out) -> None:
    import json

    data = json.loads((result.run_dir / "summary.json").read_text(encoding="utf-8"))
    click.echo(f"{result.input.name}: {result.rows} rows, {result.accepted} accepted, {result.rejected} rejected, "
               f"{result.warnings} warnings -> {result.run_dir}", err=out)
    for issue in data["file_issues"]:
        click.echo(f"  {issue['severity']}: {issue['message']}", err=out)
    for referral in data["referrals"]:
        for issue in referral["issues"]:
            if issue["severity"] == "error":
                click.echo(f"  row {referral['row']} ({referral['referral_id'] or 'no ID'}): {issue['message']}", err=out)


def _process(spreadsheets, *, as_of, config_path, outbox, documents, workers=None, send=False) -> int:
    from pipeline.run import process_file

    config = _config(config_path, outbox)
    worst = 0
    for spreadsheet in spreadsheets:
        try:
            progress = None
            if documents and sys.stderr.isatty():
                progress = _ProgressBar()
            try:
                result = process_file(spreadsheet, config=config, as_of=as_of, documents=documents,
                                      workers=workers, progress=progress)
            finally:
                if progress:
                    progress.close()
        except InputError as exc:
            click.echo(f"Error: {exc}", err=True)
            worst = max(worst, EXIT_UNREADABLE)
            continue
        except ReintegrateError as exc:
            _fail(str(exc))
        _report(result, out=False)
        worst = max(worst, result.exit_code)
        if send and result.accepted:
            try:
                worst = max(worst, send_after_run(result.run_dir, config))
            except ReintegrateError as exc:
                click.echo(f"Error: {exc}", err=True)
                worst = max(worst, EXIT_UNREADABLE)
    return worst


class _ProgressBar:
    """A progress bar on a terminal only; created lazily once the total is known."""

    def __init__(self):
        self.bar = click.progressbar(length=0, label="Writing plans and letters", file=sys.stderr)
        self.started = False

    def __call__(self, done: int) -> None:
        if not self.started:
            self.bar.__enter__()
            self.started = True
        self.bar.length = max(self.bar.length or 0, self.bar.pos + done)
        self.bar.update(done)

    def close(self):
        if self.started:
            self.bar.__exit__(None, None, None)


spreadsheets_argument = click.argument("spreadsheets", nargs=-1, required=True,
                                       type=click.Path(dir_okay=False, path_type=Path))


@main.command()
@spreadsheets_argument
@outbox_option
@as_of_option
@click.option("--send", is_flag=True, help="Email the documents after the run (see `reintegrate send`).")
@config_option
@click.option("--workers", type=click.IntRange(1, 64), default=None,
              help="Processes rendering documents in parallel (default: chosen from the batch size and CPUs).")
def run(spreadsheets, outbox, as_of, send, config_path, workers):
    """Check every referral row and write plans, letters, the review tracker and reports for the accepted
    rows into a new run folder in the outbox.

    \b
    Example:
      reintegrate run examples/referrals-spring-2027.xlsx --as-of 2026-11-30
    """
    code = _process(spreadsheets, as_of=as_of, config_path=config_path, outbox=outbox, documents=True, workers=workers,
                    send=send)
    sys.exit(code)


@main.command()
@spreadsheets_argument
@outbox_option
@as_of_option
@config_option
def validate(spreadsheets, outbox, as_of, config_path):
    """Check every referral row against the schema and the policy; write only the validation report and
    summary.json (no documents).

    \b
    Example:
      reintegrate validate examples/referrals-spring-2027.xlsx --as-of 2026-11-30
    """
    sys.exit(_process(spreadsheets, as_of=as_of, config_path=config_path, outbox=outbox, documents=False))


@main.command()
@click.argument("path", required=False, default="referrals-template.xlsx", type=click.Path(dir_okay=False, path_type=Path))
@click.option("--force", is_flag=True, help="Replace the file if it exists.")
def template(path, force):
    """Write a blank referral workbook with the exact headings, drop-down lists, date formats and an
    Instructions sheet.

    \b
    Example:
      reintegrate template referrals-spring-2027.xlsx
    """
    from pipeline.template_workbook import write_template

    if path.exists() and not force:
        _fail(f"{path} already exists; choose another name or add --force to replace it")
    write_template(path)
    click.echo(f"Wrote {path}")


def send_after_run(run_dir, config, *, dry_run: bool = False, resend: bool = False) -> int:
    """Email (or draft) a run folder's documents, print the report, return 0 or 1."""
    from pipeline.mail import send_with_config

    live = config.email.get("transport") == "smtp" and not dry_run  # show retries and waits as they happen
    report = send_with_config(run_dir, config, dry_run=dry_run, resend=resend,
                              log=(lambda line: click.echo(line, err=True)) if live else None)
    for line in report.lines():
        click.echo(line)
    return report.exit_code


@main.command()
@click.argument("run_dir", type=click.Path(exists=True, file_okay=False, path_type=Path))
@click.option("--dry-run", is_flag=True, help="Show what would be sent to whom; send, write and record nothing.")
@click.option("--resend", is_flag=True, help="Send again referrals already sent with the same plan and letter.")
@config_option
def send(run_dir, dry_run, resend, config_path):
    """Email a run's plans and letters to the receiving schools.

    One message per referral, to the receiving school contact with the inclusions officer in copy, the
    newest plan and the letter attached. With transport = "files" (the default) the messages are written
    as Outlook drafts in RUN_DIR/mail/. Only addresses in allowed_domains are ever used. Exits 1 when any
    message was blocked or failed; what failed is sent by the next `send`.

    \b
    Example:
      reintegrate send outbox/20261129T101500123456Z-ab12 --dry-run
    """
    config = _config(config_path)
    try:
        code = send_after_run(run_dir, config, dry_run=dry_run, resend=resend)
    except ReintegrateError as exc:
        _fail(str(exc))
    sys.exit(code)


@main.command("check-templates")
@click.argument("folder", required=False, type=click.Path(exists=True, file_okay=False, path_type=Path))
def check_templates_command(folder):
    """List every placeholder a Word template uses that the data does not provide, and any template syntax
    error, naming the template. Run it after editing a template in Word. Exits 1 when there are problems.

    \b
    Example:
      reintegrate check-templates templates
    """
    from pipeline.render import check_templates, default_templates_dir

    folder = folder or (Path("templates") if (Path("templates") / "reintegration-plan.docx").is_file() else None)
    problems = check_templates(folder)
    where = folder or default_templates_dir()
    if problems:
        for problem in problems:
            click.echo(problem)
        click.echo(f"{len(problems)} problem(s) in {where}", err=True)
        sys.exit(1)
    click.echo(f"The templates in {where} are fine: every placeholder can be filled.")


@main.command()
@click.argument("tracker", type=click.Path(dir_okay=False, path_type=Path))
@outbox_option
@as_of_option
@config_option
def reviews(tracker, outbox, as_of, config_path):
    """Read a filled-in review tracker back: report overdue, missed and cancelled reviews and pupils whose
    settling-in period ended with too few reviews held, and write a new version of each plan with recorded
    reviews (plans/<name>.reviewed-YYYY-MM-DD.docx, the as-of date; the original is never changed) and
    review-state.json in the run folder. The run folder is the tracker's own folder, else --outbox/<run id>.
    Exits 1 when a review is overdue or a tracker row is rejected.

    \b
    Example:
      reintegrate reviews outbox/20261129T101500123456Z-ab12/review-tracker.xlsx --as-of 2027-03-01
    """
    from pipeline.reviews import review_tracker

    config = _config(config_path, outbox)
    progress = _ProgressBar() if sys.stderr.isatty() else None
    if progress:
        progress.bar.label = "Writing reviewed plans"
    try:
        report = review_tracker(tracker, outbox=config.outbox, as_of=as_of, config=config, progress=progress)
    except ReintegrateError as exc:
        _fail(str(exc))
    finally:
        if progress:
            progress.close()
    for line in report.lines():
        click.echo(line)
    sys.exit(report.exit_code)


def _day_or_none(ctx, param, value):
    return None if value is None else _as_of(ctx, param, value)


@main.command()
@click.option("--inbox", type=click.Path(file_okay=False, path_type=Path), default=None,
              help="Folder officers save referral spreadsheets into (default: inbox, or the config's inbox).")
@outbox_option
@click.option("--once", is_flag=True, help="Process what is in the inbox now and exit with the worst exit code of "
              "the files taken (for cron or Windows Task Scheduler).")
@click.option("--poll", is_flag=True, help="Look at the folder every few seconds instead of waiting for file system "
              "events: use it on network shares (SMB/NFS), where events from other computers do not arrive.")
@click.option("--settle", type=click.FloatRange(0, 3600), default=5.0, show_default=True, metavar="SECONDS",
              help="How long a file must stay unchanged before it is taken.")
@click.option("--rescan", type=click.FloatRange(0.1, 86400), default=30.0, show_default=True, metavar="SECONDS",
              help="Full rescan interval, whatever the events say.")
@click.option("--as-of", callback=_day_or_none, metavar="YYYY-MM-DD",
              help="The date the rules are judged on (default: the day each file is processed).")
@config_option
def watch(inbox, outbox, once, poll, settle, rescan, as_of, config_path):
    """Process every referral spreadsheet saved into the inbox: each is taken once it has stopped changing,
    run like `reintegrate run`, then moved to inbox/processed/<run-id>/ (or inbox/failed/ with a
    <name>.error.txt when it cannot be read; an identical copy of a file already processed goes to
    inbox/processed/duplicates/). Office lock files (~$...), hidden and temporary files are ignored.
    Watches with file system events (watchdog), plus a full rescan every --rescan seconds; add --poll on
    a network share. See docs/watch.md for running it as a service.

    \b
    Examples:
      reintegrate watch --inbox /srv/inclusions/inbox --outbox /srv/inclusions/outbox
      reintegrate watch --inbox /mnt/fileserver/inclusions/inbox --poll
      reintegrate watch --once --as-of 2026-11-30
    """
    from dataclasses import replace

    from pipeline.inbox import watch as watch_inbox

    config = _config(config_path, outbox)
    if inbox:
        config = replace(config, inbox=inbox)
    try:
        code = watch_inbox(config, once=once, poll=poll, settle=settle, rescan=rescan, as_of=as_of,
                           handle_signals=True)
    except ReintegrateError as exc:
        _fail(str(exc))
    sys.exit(code)
