"""The `reintegrate` command: a thin layer that turns options into library calls and known errors into
one-sentence messages and the exit codes of docs/design.md (0 all accepted, 1 rows rejected, 2 unreadable input or usage).

What goes where:

* stderr: ``Error: <one sentence>`` for anything that stops a file or the command (scripts and logs read it);
  and the progress bars, only when stderr is a terminal and not with ``--quiet``.
* stdout: the results (rows with errors, by row, Referral ID and cell; never a pupil's name, date of birth or
  UPN), a "what to do next" line, the end-of-run summary table (`pipeline.cli.summary`) and a final line.
* ``--quiet``: only errors and the final line. ``--verbose``: every warning too.

Every command's ``--help`` ends with examples that run as they are in a folder made by ``reintegrate init``
(tests/test_cli.py runs them).
"""

from __future__ import annotations

import os
import sys
from dataclasses import dataclass, replace
from datetime import date
from pathlib import Path

import click

from pipeline.core import files
from pipeline.core.config import load_config
from pipeline.core.errors import (ConfigError, ExitCode, InputError, MissingPassword, ReintegrateError,
                                  TemplateError)
from pipeline.core.printable import printable, quoted

LIBREOFFICE_URL = "https://www.libreoffice.org/download/"


# ----------------------------------------------------------------------------------------------- output

@dataclass(frozen=True)
class Output:
    """What to print, by --quiet and --verbose."""

    quiet: bool = False
    verbose: bool = False

    # every line made printable: file names, Referral IDs and cell values reach the terminal escaped
    def info(self, text: str = "") -> None:  # results and explanations: not with --quiet
        if not self.quiet:
            click.echo(printable(text))

    def detail(self, text: str) -> None:  # warnings, one by one: only with --verbose
        if self.verbose:
            click.echo(printable(text))

    def problem(self, text: str) -> None:  # what must be fixed: always
        click.echo(printable(text))

    def error(self, text: str) -> None:  # stops a file or the command: always, on stderr
        click.echo(f"Error: {printable(text)}", err=True)

    def next_step(self, text: str) -> None:  # what to do next: not with --quiet
        if not self.quiet:
            click.echo(printable(text))

    @property
    def progress(self) -> bool:
        return not self.quiet and _terminal()


def _terminal() -> bool:
    """Progress bars only on a terminal: never in CI logs, a pipe or a file."""
    try:
        return sys.stderr.isatty()
    except (AttributeError, ValueError):
        return False


def _output(quiet: bool, verbose: bool) -> Output:
    if quiet and verbose:
        raise click.UsageError("choose --quiet or --verbose, not both")
    return Output(quiet=quiet, verbose=verbose)


def verbosity(command):
    command = click.option("-v", "--verbose", is_flag=True, help="Also list every warning.")(command)
    return click.option("-q", "--quiet", is_flag=True, help="Print only errors and the final line.")(command)


def _fail(out: Output, message: str, hint: str | None = None) -> None:
    out.error(message)
    if hint:
        out.next_step(hint)
    sys.exit(ExitCode.UNREADABLE)


def _update_register(config, as_of, out: Output) -> None:
    """The term register follows every command that changed the ledger (docs/term-register.md)."""
    from pipeline.register import update_register

    path, problem = update_register(config, as_of)
    if problem:
        out.problem(f"Warning: {problem}")
    elif path is not None:
        out.info(f"Term register, every referral of the term: {_shown(path)}")


def _shown(path: Path) -> str:
    """A path as the officer would type it: relative to the working folder when inside it, forward slashes."""
    path = Path(path)
    try:
        path = path.resolve().relative_to(Path.cwd().resolve())
    except (ValueError, OSError):
        pass
    return path.as_posix()


def _config_hint(config_path, exc: Exception | None = None) -> str:
    if isinstance(exc, MissingPassword):  # the password is never in the file: it lives in the environment
        return ("Set the REINTEGRATE_SMTP_PASSWORD environment variable to the mail account's password (on "
                "Windows: System > About > Advanced system settings > Environment Variables; docs/email.md), open "
                "a new terminal, and run the command again.")
    where = config_path or "reintegrate.toml"
    return (f"Correct it in {quoted(where)} (open it in Notepad: each setting is explained in its comments, "
            "and in the guide: `reintegrate docs getting-started`), then run the command again.")


def _template_hint(config) -> str:
    folder = config.templates() if config is not None else None
    command = "reintegrate check-templates" + (f" {quoted(_shown(folder))}" if folder else "")
    return (f"Run `{command}` to list every problem in the templates, correct them in Word "
            "(docs/templates.md), and run again.")


def _pdf_hint(pdf_flag) -> str:
    leave_out = "leave out --pdf" if pdf_flag else "set pdf = false in reintegrate.toml"
    return f"Install LibreOffice ({LIBREOFFICE_URL}) and run again, or {leave_out}: the Word documents need nothing."


# ----------------------------------------------------------------------------------------------- options

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


def _config(config_path, outbox=None, out: Output = Output()):
    try:
        config = load_config(config_path)
    except ReintegrateError as exc:
        _fail(out, str(exc), _config_hint(config_path))
    if outbox:
        config = replace(config, outbox=Path(outbox))
    return config


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="reintegrate")
def main():
    """Turn a spreadsheet of pupil referrals into checked reintegration plans, meeting letters and a review
    tracker, following Havering's Reintegration Policy 2023/24.

    \b
    Start with a working folder (then read its HOW-TO.txt):
      reintegrate init Inclusions
    In that folder, try the example of made-up referrals:
      reintegrate run examples/referrals-spring-2027.xlsx --as-of 2026-11-30
    Then make a blank workbook, fill it in Excel, check it and make the plans:
      reintegrate template referrals.xlsx
      reintegrate validate referrals.xlsx
      reintegrate run referrals.xlsx

    Add --help after a command for its options and examples. Every command takes --quiet (only errors
    and the final line) and --verbose (every warning too). The guide: `reintegrate docs`.
    """


# ---------------------------------------------------------------------------------------------- progress

class _ProgressBar:
    """A progress bar on a terminal only; created lazily once the total is known."""

    def __init__(self, label: str = "Writing plans and letters", length: int = 0):
        self.bar = click.progressbar(length=length, label=label, file=sys.stderr)
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


# ------------------------------------------------------------------------------------------ run, validate

MAX_PRINTED = 200  # problems (and, with --verbose, warnings) printed per file; the report has them all

def _report(run, result, spreadsheet, out: Output, *, documents: bool) -> None:
    """One file's results: the header line, what is wrong by row and cell, and what to do next."""
    from pipeline.cli.summary import counts_text

    data = run.data
    name = data["input"]
    prefix = f"{name}: " if out.quiet else "  "  # with --quiet each line stands alone
    out.info(f"{name}: {counts_text(result.rows, result.accepted, result.rejected, result.warnings, run.file_warnings)}"
             f" -> {result.run_dir}")
    for issue in data["file_issues"]:
        line = f"{prefix}{issue['severity']}: {issue['message']}"
        out.problem(line) if issue["severity"] == "error" else out.info(line)
    warnings = errors = 0
    for referral in data["referrals"]:
        who = f"row {referral['row']} ({referral['referral_id'] or 'no ID'})"
        for issue in referral["issues"]:
            if issue["severity"] == "error":
                errors += 1
                if errors <= MAX_PRINTED:
                    out.problem(f"{prefix}{who}: {issue['message']}")
            else:
                warnings += 1
                if warnings <= MAX_PRINTED:
                    out.detail(f"{prefix}{who}: warning: {issue['message']}")
    if errors > MAX_PRINTED:  # a terminal is no place for thousands: the report lists every one
        out.problem(f"{prefix}... and {errors - MAX_PRINTED:,} more problems, each listed in "
                    f"{_shown(result.run_dir)}/validation-report.xlsx")
    if warnings and not out.verbose:
        out.info(f"  and {warnings} warning{'s' if warnings != 1 else ''} on rows (a warning alone rejects nothing): "
                 "add --verbose to list them")
    for failure in result.pdf_failed:
        out.problem(f"{prefix}no PDF copy of {failure}")
    folder = _shown(result.run_dir)
    if result.rejected:
        out.next_step(f"Open {quoted(spreadsheet)}, fix the cells listed (they are highlighted in "
                      f"{folder}/validation-report.xlsx), and run again.")
    elif result.pdf_failed:
        out.next_step("The Word documents are complete. For the missing PDF copies, run again with --pdf, or open "
                      "each document in Word and save it as PDF beside it.")
    elif not result.rows:
        out.next_step(f"Open {quoted(spreadsheet)} in Excel, fill one row per pupil below the headings (the "
                      "Instructions sheet explains each column), save it, and run again.")
    elif documents and result.accepted:
        out.next_step(f"Next: check the plans in {folder}/plans/, then see who gets what with: "
                      f"reintegrate send {quoted(folder)} --dry-run")
    elif not documents and result.accepted:
        out.next_step(f"Next: make the plans and letters with: reintegrate run {quoted(spreadsheet)}")


def _process(spreadsheets, *, as_of, config_path, outbox, documents, out: Output, workers=None, send=False,
             pdf=None) -> int:
    from contextlib import nullcontext

    from pipeline.deliver.pdf import LibreOfficeNotFound, find_soffice

    config = _config(config_path, outbox, out)
    want_pdf = documents and (config.pdf if pdf is None else pdf)
    if want_pdf and find_soffice() is None:
        _fail(out, str(LibreOfficeNotFound()), _pdf_hint(pdf))
    if send:
        from pipeline.deliver.send import SendSession  # only when sending: the mail stack costs a start-up
    with SendSession() if send else nullcontext() as session:
        return _process_files(spreadsheets, config=config, as_of=as_of, config_path=config_path,
                              documents=documents, out=out, workers=workers, send=send, want_pdf=want_pdf,
                              pdf=pdf, session=session)


def _process_files(spreadsheets, *, config, as_of, config_path, documents, out: Output, workers, send, want_pdf,
                   pdf, session) -> int:
    from pipeline.deliver.pdf import LibreOfficeNotFound
    from pipeline.run import process_file
    from pipeline.cli.summary import RunSummary, final_line, summary_table

    worst = ExitCode.OK
    runs, unreadable = [], []
    for spreadsheet in spreadsheets:
        bars = []
        if documents and out.progress:
            bars = [_ProgressBar("Writing plans and letters"), _ProgressBar("Making PDF copies")]
        try:
            result = process_file(spreadsheet, config=config, as_of=as_of, documents=documents, workers=workers,
                                  progress=bars[0] if bars else None, pdf=want_pdf,
                                  pdf_progress=bars[1] if bars else None)
        except InputError as exc:
            out.error(str(exc))
            unreadable.append(Path(spreadsheet).name)
            worst = max(worst, ExitCode.UNREADABLE)
            continue
        except TemplateError as exc:
            _fail(out, str(exc), _template_hint(config))
        except LibreOfficeNotFound as exc:
            _fail(out, str(exc), _pdf_hint(pdf))
        except ConfigError as exc:
            _fail(out, str(exc), _config_hint(config_path, exc))
        except ReintegrateError as exc:
            _fail(out, str(exc))
        except OSError as exc:  # the outbox cannot be written: one sentence, not a traceback
            where = exc.filename or config.outbox
            full = exc.errno in files.OUT_OF_SPACE
            _fail(out, f"cannot write the run folder ({where}): {exc.strerror or exc}; nothing was half-written",
                  "Free some space on that drive (or choose another outbox with --outbox) and run again."
                  if full else "Choose an outbox folder you can write to (--outbox, or outbox in reintegrate.toml).")
        finally:
            for bar in bars:
                bar.close()
        run = RunSummary(result.summary, result.run_dir, result.pdfs, tuple(result.pdf_failed))  # as computed
        runs.append(run)
        _report(run, result, spreadsheet, out, documents=documents)
        worst = max(worst, result.exit_code)
        if send and result.accepted:
            try:
                worst = max(worst, send_after_run(result.run_dir, config, out=out, session=session))
            except ReintegrateError as exc:
                out.error(str(exc))
                worst = max(worst, ExitCode.UNREADABLE)
    if runs:  # nothing at all when no file could be read: the error lines said it all
        if not out.quiet:
            for line in summary_table(runs, documents=documents, unreadable=unreadable,
                                      as_of=as_of.strftime("%d/%m/%Y")):
                click.echo(printable(line))
        _update_register(config, as_of, out)
        click.echo(printable(final_line(runs, documents=documents, unreadable=len(unreadable))))
    return worst


spreadsheets_argument = click.argument("spreadsheets", nargs=-1, required=True,
                                       type=click.Path(dir_okay=False, path_type=Path))


@main.command()
@spreadsheets_argument
@outbox_option
@as_of_option
@click.option("--pdf/--no-pdf", "pdf", default=None,
              help="Also save a PDF copy beside each plan and letter, through LibreOffice (default: the config's "
                   "pdf setting, else no).")
@click.option("--send", is_flag=True, help="Email the documents after the run (see `reintegrate send`).")
@config_option
@click.option("--workers", type=click.IntRange(1, 64), default=None,
              help="Processes rendering documents in parallel (default: chosen from the batch size and CPUs).")
@verbosity
def run(spreadsheets, outbox, as_of, pdf, send, config_path, workers, quiet, verbose):
    """Check every referral row and write plans, letters, the review tracker and reports for the accepted
    rows into a new run folder in the outbox. Rows with mistakes are listed by row, Referral ID and cell,
    and highlighted in the run folder's validation-report.xlsx. Exits 1 when a row is rejected.

    \b
    Examples:
      reintegrate run examples/referrals-spring-2027.xlsx --as-of 2026-11-30
      reintegrate run examples/referrals-spring-2027.xlsx --as-of 2026-11-30 --pdf --quiet
    """
    out = _output(quiet, verbose)
    sys.exit(_process(spreadsheets, as_of=as_of, config_path=config_path, outbox=outbox, documents=True,
                      out=out, workers=workers, send=send, pdf=pdf))


@main.command()
@spreadsheets_argument
@outbox_option
@as_of_option
@config_option
@verbosity
def validate(spreadsheets, outbox, as_of, config_path, quiet, verbose):
    """Check every referral row against the schema and the policy; write only the validation report and
    summary.json (no documents). Exits 1 when a row is rejected.

    \b
    Examples:
      reintegrate validate examples/referrals-spring-2027.xlsx --as-of 2026-11-30
      reintegrate validate examples/referrals-spring-2027.xlsx --as-of 2026-11-30 --verbose
    """
    out = _output(quiet, verbose)
    sys.exit(_process(spreadsheets, as_of=as_of, config_path=config_path, outbox=outbox, documents=False, out=out))


# ------------------------------------------------------------------------------------------ init, template

@main.command()
@click.argument("folder", required=False, default=".", type=click.Path(file_okay=False, path_type=Path))
@verbosity
def init(folder, quiet, verbose):
    """Make a ready working folder: inbox/, outbox/, your own copy of the Word and email templates to
    customise (templates/), the example workbook (examples/), a commented reintegrate.toml and a one-page
    HOW-TO.txt. A file that is already there is never overwritten, so running it again on a folder in use
    only adds what is missing. FOLDER defaults to the current folder.

    \b
    Examples:
      reintegrate init Inclusions
      reintegrate init
    """
    from pipeline.cli.workspace import InitError, init_workspace

    out = _output(quiet, verbose)
    try:
        made = init_workspace(folder)
    except InitError as exc:
        _fail(out, str(exc))
    where = _shown(made.folder)
    folders = {"inbox", "outbox"}
    for path in made.created:
        out.info(f"  created  {path.as_posix()}{'/' if path.as_posix() in folders else ''}")
    for path in made.kept:
        out.info(f"  kept     {path.as_posix()}{'/' if path.as_posix() in folders else ''} (already there, not changed)")
    go = "" if where == "." else f"cd {quoted(where)}, then "
    out.next_step(f"Next: {go}read HOW-TO.txt, or try: "
                  "reintegrate run examples/referrals-spring-2027.xlsx --as-of 2026-11-30")
    click.echo(f"Working folder ready: {where} ({len(made.created)} created, {len(made.kept)} kept as they were).")


@main.command()
@click.argument("path", required=False, default="referrals-template.xlsx", type=click.Path(dir_okay=False, path_type=Path))
@click.option("--force", is_flag=True, help="Replace the file if it exists.")
@verbosity
def template(path, force, quiet, verbose):
    """Write a blank referral workbook with the exact headings, drop-down lists, date formats and an
    Instructions sheet. PATH defaults to referrals-template.xlsx.

    \b
    Example:
      reintegrate template referrals.xlsx
    """
    from pipeline.write.template_workbook import write_template

    out = _output(quiet, verbose)
    if path.exists() and not force:
        _fail(out, f"{path} already exists; choose another name or add --force to replace it")
    write_template(path)
    out.next_step(f"Next: open {quoted(path)} in Excel, fill one row per pupil from row 2 (the Instructions sheet "
                  f"explains each column), save it, then check it with: reintegrate validate {quoted(path)}")
    click.echo(f"Wrote {path}")


# ------------------------------------------------------------------------------------------------- send

def send_after_run(run_dir, config, *, dry_run: bool = False, resend: bool = False, out: Output = Output(),
                   session=None, register: bool = False) -> int:
    """Email (or draft) a run folder's documents, print the report, return 0 or 1. `session` shares one
    connection and one retry deadline across the run folders of one command. `register`: bring the term
    register beside the ledger the send wrote to up to date before the last line."""
    from pipeline.deliver.send import send_with_config

    live = config.email.get("transport") == "smtp" and not dry_run and not out.quiet  # retries as they happen
    report = send_with_config(run_dir, config, dry_run=dry_run, resend=resend, session=session,
                              log=(lambda line: click.echo(printable(line), err=True)) if live else None)
    for what, result in report.entries():
        if what in report.PROBLEMS:
            out.problem(report.line(what, result))
        else:
            out.info(report.line(what, result))
    folder = quoted(_shown(Path(run_dir)))
    if report.blocked:
        out.next_step("Check the addresses listed in the referral spreadsheet (or add the domain to allowed_domains "
                      f"in reintegrate.toml), then run `reintegrate send {folder}` again: nothing already sent is "
                      "sent twice.")
    elif report.failed:
        out.next_step(f"Run `reintegrate send {folder}` again later: only what was not sent is sent.")
    if report.uncertain:
        out.next_step("Ask the schools listed MAY HAVE BEEN SENT whether the email arrived; a later send leaves "
                      f"those alone, and `reintegrate send {folder} --resend` sends everything in the run again.")
    if report.drafted:
        out.next_step(f"Next: open each draft in {_shown(Path(run_dir))}/mail/ in Outlook, check it and press Send.")
    elif dry_run and report.planned:
        out.next_step(f"Next: the same without --dry-run does it: reintegrate send {folder}")
    if register and not dry_run:  # the run folder's own outbox
        _update_register(replace(config, outbox=Path(run_dir).parent), None, out)
    click.echo(printable(report.summary()))
    return report.exit_code


@main.command()
@click.argument("run_dir", type=click.Path(exists=True, file_okay=False, path_type=Path))
@click.option("--dry-run", is_flag=True, help="Show what would be sent to whom; send, write and record nothing.")
@click.option("--resend", is_flag=True, help="Send again referrals already sent with the same plan and letter.")
@config_option
@verbosity
def send(run_dir, dry_run, resend, config_path, quiet, verbose):
    """Email a run's plans and letters to the receiving schools.

    One message per referral, to the receiving school contact with the inclusions officer in copy, the
    newest plan and the letter attached (and their PDF copies with attach_pdf = true). With transport =
    "files" (the default) the messages are written as Outlook drafts in RUN_DIR/mail/. Only addresses in
    allowed_domains are ever used, and each school gets each referral once across the term: what was sent
    from an earlier run folder is not sent again. Exits 1 when any message was blocked or failed; what
    failed is sent by the next `send`. RUN_DIR may be the outbox itself: its newest run folder is used.
    See docs/email.md.

    \b
    Examples:
      reintegrate send outbox --dry-run
      reintegrate send outbox
    """
    out = _output(quiet, verbose)
    config = _config(config_path, out=out)
    run_dir = _run_folder(run_dir, out)
    try:
        code = send_after_run(run_dir, config, dry_run=dry_run, resend=resend, out=out, register=True)
    except ConfigError as exc:
        _fail(out, str(exc), _config_hint(config_path, exc))
    except TemplateError as exc:
        _fail(out, str(exc), "Correct the email template (templates/email/plan-email.txt) and run again.")
    except ReintegrateError as exc:
        hint = None if (run_dir / "manifest.json").exists() else (
            "Use the folder that `reintegrate run` named (it has a plans/ folder): a folder made by `validate` "
            "holds only its report.")
        _fail(out, str(exc), hint)
    sys.exit(code)


def _older_trackers_in_use(outbox: Path, chosen: Path, out: Output) -> None:
    """Each run folder has its own tracker, and a run made again after a fix starts a fresh one: say so when an
    earlier run's tracker already holds recorded reviews, so none is forgotten."""
    import json

    if chosen == outbox:
        return
    for run in sorted(p for p in outbox.iterdir() if p.is_dir() and p.name < chosen.name):
        try:
            totals = json.loads((run / "review-state.json").read_text(encoding="utf-8"))["totals"]
        except (OSError, ValueError, KeyError, TypeError):
            continue
        if totals.get("held", 0) + totals.get("missed", 0) + totals.get("cancelled", 0):
            out.info(f"Note: the earlier run {run.name} has reviews recorded in its own tracker. Each run folder has "
                     "its own review-tracker.xlsx: keep recording in the one whose plans the schools have, with "
                     f"`reintegrate reviews {quoted(_shown(run / 'review-tracker.xlsx'))}`.")


def _run_folder(folder: Path, out: Output) -> Path:
    """A run folder as given, or for an outbox (a folder of run folders) its newest run folder with
    documents: run ids sort by time."""
    if (folder / "manifest.json").is_file() or (folder / "summary.json").is_file():
        return folder
    try:
        runs = sorted(p for p in folder.iterdir() if (p / "manifest.json").is_file())
    except OSError:
        return folder
    if not runs:
        return folder  # the command then says it is not a run folder
    out.info(f"Using the newest run folder with documents: {_shown(runs[-1])}")
    return runs[-1]


# -------------------------------------------------------------------------------------- check-templates

@main.command("check-templates")
@click.argument("folder", required=False, type=click.Path(exists=True, file_okay=False, path_type=Path))
@verbosity
def check_templates_command(folder, quiet, verbose):
    """List every placeholder a Word template (or the email template, email/plan-email.txt) uses that the data
    does not provide, and any template syntax error, naming the template. Run it after editing a template. FOLDER defaults to ./templates
    when it holds the templates, else the shipped ones. Exits 1 when there are problems.

    \b
    Examples:
      reintegrate check-templates
      reintegrate check-templates templates
    """
    from pipeline.deliver.template import check_email_template
    from pipeline.write.render import check_templates, default_templates_dir

    out = _output(quiet, verbose)
    folder = folder or (Path("templates") if (Path("templates") / "reintegration-plan.docx").is_file() else None)
    problems = check_templates(folder) + check_email_template(folder)
    where = folder or default_templates_dir()
    if problems:
        for problem in problems:
            out.problem(problem)
        out.next_step("Open the template named in Word, correct or remove each placeholder listed (docs/templates.md "
                      "lists every placeholder there is), save it, and run check-templates again.")
        click.echo(f"{len(problems)} problem(s) in {where}", err=True)
        sys.exit(ExitCode.ACT)
    click.echo(f"The templates in {where} are fine: every placeholder can be filled.")


# ------------------------------------------------------------------------------------------------- docs

@main.command("docs")
@click.argument("page", required=False)
def docs_command(page):
    """Show where the guide for officers is, and list its pages; with PAGE, show that page.

    The guide ships with reintegrate, so it is there wherever the tool is installed. Its pages are
    Markdown: plain text that Notepad opens.

    \b
    Examples:
      reintegrate docs
      reintegrate docs getting-started
    """
    from pipeline.core.resources import guide_dir

    folder = guide_dir()
    if folder is None:
        raise click.ClickException("the guide is not in this installation; reinstall reintegrate with pip.")
    pages = sorted(folder.glob("*.md"))
    if page:
        wanted = page.removesuffix(".md").strip().casefold()
        found = [p for p in pages if p.stem.casefold() == wanted]
        if not found:
            raise click.UsageError(f"there is no page '{page}'; the pages are: "
                                   + ", ".join(p.stem for p in pages if p.stem != "README"))
        click.echo(found[0].read_text(encoding="utf-8"))
        click.echo(f"(This page is {found[0]}.)")
        return
    click.echo(f"The guide for officers is in {folder}")
    click.echo("Start with getting-started.md. The pages (show one with `reintegrate docs NAME`):")
    for path in pages:
        if path.stem == "README":
            continue
        title = next((line.lstrip("# ").strip() for line in path.read_text(encoding="utf-8").splitlines()
                      if line.startswith("# ")), "")
        click.echo(f"  {path.stem:<20} {title}")


# ---------------------------------------------------------------------------------------------- reviews

@main.command()
@click.argument("tracker", type=click.Path(path_type=Path))
@outbox_option
@as_of_option
@config_option
@verbosity
def reviews(tracker, outbox, as_of, config_path, quiet, verbose):
    """Read a filled-in review tracker back: report overdue, missed and cancelled reviews and pupils whose
    settling-in period ended with too few reviews held, and write a new version of each plan with recorded
    reviews (plans/<name>.reviewed-YYYY-MM-DD.docx, the as-of date; the original is never changed) and
    review-state.json in the run folder. The run folder is the tracker's own folder, else --outbox/<run id>.
    Exits 1 when a review is overdue or a tracker row is rejected. See docs/reviews.md.

    TRACKER may also be a run folder, or the outbox itself (its newest run folder): its review-tracker.xlsx
    is used.

    \b
    Examples:
      reintegrate reviews outbox --as-of 2027-03-01
      reintegrate reviews outbox
    """
    from pipeline.reviews import review_tracker

    out = _output(quiet, verbose)
    config = _config(config_path, outbox, out)
    if tracker.is_dir():
        folder = tracker
        tracker = _run_folder(folder, out) / "review-tracker.xlsx"
        _older_trackers_in_use(folder, tracker.parent, out)
    progress = _ProgressBar("Writing reviewed plans") if out.progress else None
    try:
        report = review_tracker(tracker, outbox=config.outbox, as_of=as_of, config=config, progress=progress)
    except TemplateError as exc:
        _fail(out, str(exc), _template_hint(config))
    except ReintegrateError as exc:
        hint = None if tracker.exists() else (
            "Use the review-tracker.xlsx in a folder that `reintegrate run` made (a folder made by `validate` has "
            "none); type its first letters and press Tab to complete the name.")
        _fail(out, str(exc), hint)
    finally:
        if progress:
            progress.close()
    entries = report.entries()
    for kind, line in entries[1:]:
        (out.problem if kind == "problem" else out.info)(line)
    if report.exit_code:
        out.next_step(f"Hold or rearrange the overdue reviews and record them in {quoted(tracker)} (Status Held, "
                      "with the outcome), correct any row listed as an error, save it, and run reviews again.")
    _update_register(replace(config, outbox=report.run_dir.parent), as_of, out)
    click.echo(entries[0][1])
    sys.exit(report.exit_code)


# ------------------------------------------------------------------------------------------------ watch

def _day_or_none(ctx, param, value):
    return None if value is None else _as_of(ctx, param, value)


_QUIET_WATCH = (" watching ", ": waiting: ", ": still being written, left for the next pass")


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
@verbosity
def watch(inbox, outbox, once, poll, settle, rescan, as_of, config_path, quiet, verbose):
    """Process every referral spreadsheet saved into the inbox: each is taken once it has stopped changing,
    run like `reintegrate run` (with PDF copies when the config says pdf = true), then moved to
    inbox/processed/<run-id>/ (or inbox/failed/ with a <name>.error.txt when it cannot be read; an identical
    copy of a file already processed goes to inbox/processed/duplicates/). Office lock files (~$...), hidden
    and temporary files are ignored. Watches with file system events (watchdog), plus a full rescan every
    --rescan seconds; add --poll when the inbox is on a network drive. One line per file; with --quiet, no
    start-up or waiting lines. Stop it with Ctrl+C. See docs/watch.md for running it as a service.

    \b
    Examples:
      reintegrate watch --once --as-of 2026-11-30
      reintegrate watch
      reintegrate watch --poll --inbox inbox --outbox outbox
    """
    from pipeline.watch import watch as watch_inbox

    out = _output(quiet, verbose)
    config = _config(config_path, outbox, out)
    if inbox:
        config = replace(config, inbox=inbox)
    if config.pdf:
        from pipeline.deliver.pdf import LibreOfficeNotFound, find_soffice

        if find_soffice() is None:
            _fail(out, str(LibreOfficeNotFound()), _pdf_hint(False))
    kwargs = {}
    if out.quiet:
        kwargs["log"] = lambda line: None if any(s in line for s in _QUIET_WATCH) else click.echo(line)
    try:
        code = watch_inbox(config, once=once, poll=poll, settle=settle, rescan=rescan, as_of=as_of,
                           handle_signals=True, **kwargs)
    except ReintegrateError as exc:
        _fail(out, str(exc))
    sys.exit(code)


@main.command()
@outbox_option
@click.option("--as-of", callback=_as_of, metavar="YYYY-MM-DD",
              help="The day to judge overdue and due reviews on (default: today).")
@config_option
@verbosity
def status(outbox, as_of, config_path, quiet, verbose):
    """Where the term stands, on one screen: the referrals, plans sent and not, reviews held, missed and
    overdue, then what needs doing: reviews overdue or due in the next 7 days, plans not sent, rows waiting
    for a fix. Read from the ledger, as outbox/term-register.xlsx is (this also writes that file afresh).
    Referral IDs only: the register names the pupils. Exits 1 when a review is overdue. See
    docs/term-register.md.

    \b
    Examples:
      reintegrate status
      reintegrate status --as-of 2027-01-11
    """
    from pipeline.cli.status import counts, to_do
    from pipeline.register import read_term, update_register

    out = _output(quiet, verbose)
    config = _config(config_path, outbox, out)
    try:
        view = read_term(config, as_of)
    except ReintegrateError as exc:
        _fail(out, str(exc))
    if view is None:
        _fail(out, f"there is no ledger in {_shown(config.outbox)} yet, so no referral is known",
              "Run `reintegrate run` on the term's referral spreadsheet first (or give --outbox the folder it used).")
    *_, problem = update_register(config, as_of, view)
    for line in counts(view):
        out.info(line)
    for kind, line in to_do(view, _shown(config.outbox)):
        (out.problem if kind == "problem" else out.info)(line)
    if problem:
        out.problem(f"Warning: {problem}")
    click.echo(printable(f"Done: {len(view.referrals)} referrals, {len(view.overdue)} with a review overdue. "
                         f"Term register: {_shown(config.outbox / 'term-register.xlsx')}"))
    sys.exit(ExitCode.ACT if view.overdue else ExitCode.OK)


def run_cli() -> None:
    """The console script: `main`, with a last resort so that even a bug never shows the officer a
    traceback. The details go to an owner-only file for whoever supports the tool."""
    try:
        main()
    except Exception as exc:  # noqa: BLE001 - anything Click did not handle is a bug in reintegrate
        import tempfile
        import traceback

        fd, path = tempfile.mkstemp(prefix="reintegrate-error-", suffix=".txt")
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(traceback.format_exc())
        click.echo(f"Error: reintegrate stopped because of an internal error ({type(exc).__name__}). Files already "
                   f"written are complete; the details for support are in {path}.", err=True)
        sys.exit(ExitCode.UNREADABLE)
