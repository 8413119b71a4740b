"""The CLI as an officer meets it: every --help example runs as written in a folder made by `reintegrate init`;
what is printed with --quiet, by default and with --verbose; the end-of-run summary; errors that say what to do
next; the progress bar on a terminal only; and a whole session in a real process.
"""

from __future__ import annotations

import os
import re
import shlex
import shutil
import signal
import subprocess
import sys
import time
from datetime import date
from pathlib import Path

import openpyxl
import pytest
from click.testing import CliRunner

from pipeline.deliver import pdf as pdf_module
from pipeline.cli.main import main
from pipeline.core.config import load_config
from pipeline.write.examples import write_rows
from pipeline.run import process_file
from pipeline.check.rules import RULES
from pipeline.cli.workspace import init_workspace
from tests.test_pdf import FAKE

ROOT = Path(__file__).resolve().parent.parent
EXAMPLE = ROOT / "examples" / "referrals-spring-2027.xlsx"
AS_OF = "2026-11-30"
RUN_ID = "20261129T101500123456Z-ab12"  # the run folder the send and reviews examples name
HAS_LIBREOFFICE = pdf_module.find_soffice() is not None


def cli(*args, **kwargs):
    return CliRunner().invoke(main, [str(a) for a in args], **kwargs)


def reintegrate_command() -> list[str]:
    """The console script installed beside this Python, as an officer types it; else `python -m pipeline`."""
    script = Path(sys.executable).with_name("reintegrate")
    return [str(script)] if script.is_file() else [sys.executable, "-m", "pipeline"]


def run_folders(outbox: Path) -> list[Path]:
    return sorted(p for p in outbox.iterdir() if p.is_dir()) if outbox.exists() else []


# --------------------------------------------------------------------------------- the --help examples

def examples_of(command) -> list[str]:
    text = command.help or ""
    return [line.strip() for line in text.splitlines() if line.strip().startswith("reintegrate ")]


COMMANDS = {"reintegrate": main, **{name: main.commands[name] for name in sorted(main.commands)}}


@pytest.fixture(scope="module")
def working_folder(tmp_path_factory) -> Path:
    """A folder made by `reintegrate init`, with a run of the example under the id the examples name."""
    folder = tmp_path_factory.mktemp("officer") / "Inclusions"
    init_workspace(folder)
    old = Path.cwd()
    os.chdir(folder)
    try:
        process_file(folder / "examples" / "referrals-spring-2027.xlsx", config=load_config("reintegrate.toml"),
                     as_of=date(2026, 11, 30), run_id=RUN_ID)
    finally:
        os.chdir(old)
    return folder


def test_every_command_has_help_with_a_real_example():
    for name, command in COMMANDS.items():
        assert examples_of(command), f"{name} --help has no example"
        for flag in ("--help", "-h"):
            args = [flag] if name == "reintegrate" else [name, flag]
            result = cli(*args)
            assert result.exit_code == 0 and "example" in result.output.lower() and "reintegrate " in result.output


def _run_forever_then_stop(args: list[str], cwd: Path) -> int:
    """A long-running example (the watcher): start it for real, wait for it to say it is watching, stop it."""
    proc = subprocess.Popen(reintegrate_command() + args, cwd=cwd, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True)
    try:
        line = proc.stdout.readline()
        assert " watching " in line, line + proc.stderr.read()
        time.sleep(1)  # into its wait: a SIGTERM during its first scan waits for the next (pipeline/watch/watcher.py)
        proc.send_signal(signal.SIGTERM)
        return proc.wait(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


@pytest.mark.parametrize("name", list(COMMANDS))
def test_the_help_examples_run_as_written(name, working_folder, tmp_path, monkeypatch):
    folder = tmp_path / "Inclusions"
    shutil.copytree(working_folder, folder)
    monkeypatch.chdir(folder)
    for example in examples_of(COMMANDS[name]):
        args = shlex.split(example)[1:]
        if args[0] == "watch" and "--once" not in args:
            if os.name == "nt":
                continue
            assert _run_forever_then_stop(args, folder) == 0, example
            continue
        result = cli(*args)
        assert "Traceback" not in result.output and isinstance(result.exception, (SystemExit, type(None))), (
            example, result.output)
        if "--pdf" in args and not HAS_LIBREOFFICE:
            assert result.exit_code == 2 and "PDF copies need LibreOffice" in result.stderr, example
        else:
            assert result.exit_code in (0, 1), (example, result.output)
            assert "Error" not in result.stderr, (example, result.stderr)
        if args[0] == "init" and args[1:]:
            monkeypatch.chdir(folder / args[1])  # then the next examples run in the new folder, as its help says


# ------------------------------------------------------------------------------ what a run prints

def personal_data(workbook: Path) -> set[str]:
    """Names, dates of birth and UPNs in a workbook: none may reach the terminal."""
    ws = openpyxl.load_workbook(workbook)["Referrals"]
    rows = list(ws.iter_rows(values_only=True))
    at = next(i for i, row in enumerate(rows) if row and "Referral ID" in row)
    heads = rows[at]
    values = set()
    for row in rows[at + 1:]:
        for heading in ("UPN", "Legal forename", "Legal surname", "Preferred name", "Date of birth",
                        "Parent/carer name"):
            value = row[heads.index(heading)]
            if hasattr(value, "strftime"):
                values |= {value.strftime("%d/%m/%Y"), value.strftime("%Y-%m-%d")}
            elif value and len(str(value)) > 3:
                values.add(str(value))
    return values


@pytest.fixture(scope="module")
def example_run(tmp_path_factory):
    folder = tmp_path_factory.mktemp("example")
    old = Path.cwd()
    os.chdir(folder)
    try:
        result = CliRunner().invoke(main, ["run", str(EXAMPLE), "--as-of", AS_OF])
    finally:
        os.chdir(old)
    return folder, result


def table_of(stdout: str) -> list[str]:
    lines = stdout.splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith("-- Summary"))
    return lines[start:]


def test_the_summary_fits_one_screen_and_counts_rejections_by_rule(example_run):
    folder, result = example_run
    assert result.exit_code == 1
    table = table_of(result.stdout)
    assert len(table) <= 24  # the table and the final line: one screen
    assert max(map(len, table[:-1])) <= 80  # the final line names the run folder, whatever its length
    assert table[1].split() == ["file", "rows", "accepted", "rejected", "warnings"]
    assert table[2].split() == ["referrals-spring-2027.xlsx", "24", "15", "9", "2"]
    at = table.index("Rejected rows, by rule (a row can break more than one)")
    by_rule = {}
    for line in table[at + 1:]:
        if not line.strip():
            break
        rule, n = line.split()[:2]
        by_rule[rule] = int(n)
    assert by_rule == {"duplicate": 2, "schema": 2, "3.1": 1, "3.4": 1, "3.8": 1, "3.9": 1, "ME": 1}
    assert "  FAP20        1  DfE FAP guidance: return within 20 school days of the decision" in table
    (run_dir,) = run_folders(folder / "outbox")
    assert f"Where the files are: outbox/{run_dir.name}/" in table
    assert any(line.split()[:2] == ["plans/,", "letters/"] and "15 plans and 15 meeting letters (Word)" in line
               for line in table)
    assert table[-1] == f"Done: 24 rows, 15 accepted, 9 rejected, 2 warnings on rows and 2 about the file. Files: outbox/{run_dir.name}/"


def test_the_terminal_shows_ids_cells_and_messages_never_personal_data(example_run):
    _, result = example_run
    printed = result.stdout + result.stderr
    assert "row 7 (HAV-00003): the UPN's check letter does not match its digits" in printed and "(cell B7, UPN)" in printed
    leaked = [value for value in personal_data(EXAMPLE) if value.lower() in printed.lower()]
    assert leaked == []


def test_rejected_rows_say_what_to_do_next(example_run):
    folder, result = example_run
    (run_dir,) = run_folders(folder / "outbox")
    lines = result.stdout.splitlines()
    hint = (f"Open {EXAMPLE}, fix the cells listed (they are highlighted in outbox/{run_dir.name}/"
            "validation-report.xlsx), and run again.")
    assert hint in lines
    assert lines.index(hint) > max(i for i, line in enumerate(lines) if line.startswith("  row "))


def test_every_rule_id_an_issue_can_carry_is_in_the_registry_with_a_title():
    """The registry is the one list of rules: every rule id the checks and the schema can put on an Issue has
    an entry, a title for the summary and a clause."""
    import pipeline.check.rules as rules

    source = Path(rules.__file__).read_text(encoding="utf-8")
    used = set(re.findall(r"(?:row\.issue|Issue)\((?:ERROR|WARNING), \"([^\"]+)\"", source))
    used |= {rule for rule, _ in rules.SCHEMA_FIELD_RULES.values()}
    assert used and used <= set(rules.RULE_BY_ID), used - set(rules.RULE_BY_ID)
    assert {"2.2", "3.1", "3.4", "3.8", "3.9", "ME", "FAP20", "schema", "duplicate", "calendar", "email"} == set(rules.RULE_BY_ID)
    for rule in rules.RULES:
        assert rule.title and rule.clause and rule.severity in ("error", "warning", "error / warning")
    assert rules.ROW_RULES[:4] == (rules.rule_2_2, rules.rule_3_1, rules.rule_3_4, rules.rule_school_day)


def test_quiet_prints_only_errors_and_the_final_line(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    result = cli("validate", EXAMPLE, "--as-of", AS_OF, "--quiet")
    assert result.exit_code == 1 and result.stderr == ""
    *errors, last = result.stdout.splitlines()
    assert len(errors) == 9 and all(line.startswith("referrals-spring-2027.xlsx: row ") for line in errors)
    assert last.startswith("Done: 24 rows, 15 accepted, 9 rejected, 2 warnings on rows and 2 about the file. Files: outbox/")
    good = write_rows(tmp_path / "good.xlsx", [])
    result = cli("run", good, "-q", "--as-of", AS_OF)
    assert result.exit_code == 0 and len(result.stdout.splitlines()) == 1  # only the final line


def test_default_counts_warnings_and_verbose_lists_them(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    default = cli("validate", EXAMPLE, "--as-of", AS_OF)
    assert "  and 2 warnings on rows (a warning alone rejects nothing): add --verbose to list them" in default.stdout
    assert ": warning: FAP guidance" not in default.stdout
    verbose = cli("validate", EXAMPLE, "--as-of", AS_OF, "--verbose")
    assert re.search(r"^  row 27 \(HAV-00023\): warning: FAP guidance: .*\(cell Z27, Planned return date\)$",
                     verbose.stdout, re.M)
    assert "add --verbose" not in verbose.stdout
    both = cli("validate", EXAMPLE, "-q", "-v")
    assert both.exit_code == 2 and "choose --quiet or --verbose, not both" in both.output


def test_several_files_one_table(tmp_path, monkeypatch, valid_row):
    monkeypatch.chdir(tmp_path)
    good = write_rows(tmp_path / "good.xlsx", [valid_row(seed=1)])
    junk = tmp_path / "notes.xlsx"
    junk.write_text("not a workbook")
    result = cli("validate", good, junk, EXAMPLE, "--as-of", AS_OF)
    assert result.exit_code == 2 and result.stderr.startswith("Error: notes.xlsx: ")
    table = table_of(result.stdout)
    assert any(line.startswith("  notes.xlsx") and "could not be read" in line for line in table)
    assert [line.split() for line in table if line.startswith("  all ")] == [["all", "25", "16", "9", "2"]]
    assert "Where the files are: one run folder for each file" in table
    assert "Next: make the plans and letters with: reintegrate run " + str(good) in result.stdout
    assert table[-1] == "Done: 25 rows, 16 accepted, 9 rejected, 2 warnings on rows and 3 about the file; 1 file could not be read. " \
                        "Files: 2 run folders in outbox/"


# ------------------------------------------------------------------------------ errors: what to do next

def test_a_wrong_setting_says_where_to_correct_it(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "reintegrate.toml").write_text('outbx = "outbox"\n')
    result = cli("validate", EXAMPLE, "--as-of", AS_OF)
    assert result.exit_code == 2
    assert result.stderr == "Error: reintegrate.toml: unknown setting(s) outbx; see reintegrate.example.toml\n"
    assert result.stdout.startswith("Correct it in reintegrate.toml (open it in Notepad")


def test_a_broken_template_points_to_check_templates(tmp_path, monkeypatch, valid_row):
    import docx

    monkeypatch.chdir(tmp_path)
    init_workspace(tmp_path)
    plan = tmp_path / "templates" / "reintegration-plan.docx"
    document = docx.Document(plan)
    document.add_paragraph("Nickname: {{ pupil.nickname }}")
    document.save(plan)
    path = write_rows(tmp_path / "referrals.xlsx", [valid_row(seed=1)])
    result = cli("run", path, "--as-of", AS_OF)
    assert result.exit_code == 2 and result.stderr.startswith("Error: reintegration-plan.docx: ")
    assert "Run `reintegrate check-templates templates` to list every problem" in result.stdout
    checked = cli("check-templates")
    assert checked.exit_code == 1 and "pupil.nickname" in checked.stdout
    assert "Open the template named in Word, correct or remove each placeholder listed" in checked.stdout


def test_pdf_without_libreoffice_is_a_clear_message_and_nothing_is_written(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(pdf_module, "find_soffice", lambda path=None: None)
    result = cli("run", EXAMPLE, "--as-of", AS_OF, "--pdf")
    assert result.exit_code == 2
    assert result.stderr == ("Error: PDF copies need LibreOffice, but its soffice program was not found on the PATH "
                             "or in LibreOffice's usual install folders\n")
    assert "Install LibreOffice (https://www.libreoffice.org/download/) and run again, or leave out --pdf" in \
        result.stdout
    assert not (tmp_path / "outbox").exists()
    (tmp_path / "reintegrate.toml").write_text("pdf = true\n")
    result = cli("run", EXAMPLE, "--as-of", AS_OF)
    assert result.exit_code == 2 and "set pdf = false in reintegrate.toml" in result.stdout
    assert cli("validate", EXAMPLE, "--as-of", AS_OF).exit_code == 1  # validate writes no documents: no PDF needed
    watched = cli("watch", "--once")
    assert watched.exit_code == 2 and "PDF copies need LibreOffice" in watched.stderr


@pytest.fixture
def fake_soffice(tmp_path, monkeypatch):
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    script = bin_dir / "soffice"
    script.write_text(FAKE.format(python=sys.executable))
    script.chmod(0o755)
    monkeypatch.setenv("PATH", f"{bin_dir}{os.pathsep}{os.environ['PATH']}")
    monkeypatch.setenv("FAKE_LOG", str(tmp_path / "fake.log"))
    monkeypatch.setenv("FAKE_DELAY", "0")
    return script


def test_pdf_copies_are_counted_and_failures_named_by_referral_id(tmp_path, monkeypatch, valid_row, fake_soffice):
    monkeypatch.chdir(tmp_path)
    rows = [valid_row(seed=1), valid_row(seed=2)]
    path = write_rows(tmp_path / "referrals.xlsx", rows)
    result = cli("run", path, "--as-of", AS_OF, "--pdf")
    assert result.exit_code == 0, result.output
    assert "(Word and PDF)" in result.stdout and result.stdout.splitlines()[-1].startswith(
        "Done: 2 rows, 2 accepted, 0 rejected, 0 warnings on rows and 1 about the file, 4 PDF copies.")
    rows[1]["Referral ID"] = "HAV-bad"  # the stand-in cannot convert a file with "bad" in its name
    monkeypatch.setenv("FAKE_MODE", "bad")
    result = cli("run", write_rows(tmp_path / "again.xlsx", rows), "--as-of", AS_OF, "--pdf")
    assert result.exit_code == 1  # something to act on, every other output written
    assert "  no PDF copy of the plan of HAV-bad: LibreOffice did not produce a PDF" in result.stdout
    assert "The Word documents are complete. For the missing PDF copies, run again with --pdf" in result.stdout
    assert "Word; 2 PDF copies" in result.stdout


def test_send_says_what_to_do_next(tmp_path, monkeypatch, valid_row):
    monkeypatch.chdir(tmp_path)
    init_workspace(tmp_path)
    first, row = valid_row(seed=1), valid_row(seed=2)
    first["Receiving school email"] = "senco@brookfield.sch.uk"
    row["Receiving school email"] = "head@school.example.com"  # not an allowed domain
    path = write_rows(tmp_path / "referrals.xlsx", [first, row])
    assert cli("run", path, "--as-of", AS_OF).exit_code == 0
    (run_dir,) = run_folders(tmp_path / "outbox")
    run = f"outbox/{run_dir.name}"
    dry = cli("send", run, "--dry-run")
    assert dry.exit_code == 1 and "HAV-00002: BLOCKED: not sent: recipient outside allowed_domains" in dry.stdout
    assert "Check the addresses listed in the referral spreadsheet" in dry.stdout
    quiet = cli("send", run, "--dry-run", "--quiet")
    assert quiet.stdout.splitlines()[-1].startswith("Dry run: ") and "would draft" not in quiet.stdout
    toml = (tmp_path / "reintegrate.toml").read_text()
    (tmp_path / "reintegrate.toml").write_text(toml.replace('"sch.uk"]', '"sch.uk", "example.com"]'))
    sent = cli("send", run)
    assert sent.exit_code == 0 and f"Next: open each draft in {run}/mail/ in Outlook, check it and press Send." \
        in sent.stdout


# ------------------------------------------------------------------------------ a terminal, and a real process

@pytest.mark.skipif(os.name == "nt", reason="a pseudo-terminal needs POSIX")
def test_the_progress_bar_shows_on_a_terminal_only(tmp_path):
    import pty

    command = reintegrate_command() + ["run", str(EXAMPLE), "--as-of", AS_OF]
    leader, follower = pty.openpty()
    proc = subprocess.Popen(command, cwd=tmp_path, stdout=subprocess.DEVNULL, stderr=follower)
    os.close(follower)
    chunks = []
    while True:
        try:
            data = os.read(leader, 4096)
        except OSError:  # the process closed the terminal
            break
        if not data:
            break
        chunks.append(data)
    os.close(leader)
    assert proc.wait(timeout=60) == 1
    shown = b"".join(chunks).decode(errors="replace")
    assert "Writing plans and letters" in shown and "100%" in shown
    piped = subprocess.run(command + ["--outbox", "piped"], cwd=tmp_path, capture_output=True, text=True, timeout=60)
    assert piped.returncode == 1 and "Writing plans and letters" not in piped.stderr + piped.stdout


def test_a_whole_session_in_a_real_process(tmp_path):
    """What getting-started walks through: init, the example, a blank workbook, validate, run, send."""
    command = reintegrate_command()

    def run(*args, cwd):
        proc = subprocess.run(command + list(args), cwd=cwd, capture_output=True, text=True, timeout=120)
        assert "Traceback" not in proc.stderr, proc.stderr
        return proc

    made = run("init", "Inclusions", cwd=tmp_path)
    assert made.returncode == 0 and "Working folder ready: Inclusions" in made.stdout
    folder = tmp_path / "Inclusions"
    tried = run("run", "examples/referrals-spring-2027.xlsx", "--as-of", AS_OF, cwd=folder)
    assert tried.returncode == 1 and "-- Summary" in tried.stdout and tried.stderr == ""
    assert run("template", "referrals.xlsx", cwd=folder).returncode == 0
    blank = run("validate", "referrals.xlsx", cwd=folder)
    assert blank.returncode == 0 and "0 rows, 0 accepted, 0 rejected" in blank.stdout
    again = run("template", "referrals.xlsx", cwd=folder)
    assert again.returncode == 2 and "already exists; choose another name or add --force" in again.stderr
    (run_dir,) = [p for p in run_folders(folder / "outbox") if (p / "plans").is_dir()]
    sent = run("send", f"outbox/{run_dir.name}", "--dry-run", cwd=folder)
    assert sent.returncode in (0, 1) and sent.stdout.splitlines()[-1].startswith("Dry run: ")
    version = run("--version", cwd=folder)
    assert version.returncode == 0 and "version" in version.stdout


def test_a_validate_folder_given_to_send_or_reviews_says_which_folder_to_use(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert cli("validate", EXAMPLE, "--as-of", AS_OF).exit_code == 1
    (folder,) = run_folders(tmp_path / "outbox")
    sent = cli("send", folder, "--dry-run")
    assert sent.exit_code == 2 and sent.stderr.startswith("Error: manifest.json: the run folder has no manifest.json")
    assert "Use the folder that `reintegrate run` named (it has a plans/ folder)" in sent.stdout
    reviewed = cli("reviews", folder / "review-tracker.xlsx")
    assert reviewed.exit_code == 2 and reviewed.stderr == (
        f"Error: review-tracker.xlsx: there is no such file in the folder {folder}\n")
    assert "Use the review-tracker.xlsx in a folder that `reintegrate run` made" in reviewed.stdout
