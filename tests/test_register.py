"""The term register and `reintegrate status`, walked through a term as an officer would: two runs with a fix
between, a send through a real SMTP server, reviews held and missed, dates past the settling-in period.
Every check opens outbox/term-register.xlsx with openpyxl, or reads what `status` printed."""

from __future__ import annotations

import os
import shutil
import stat
from datetime import date
from pathlib import Path

import openpyxl
import pytest
from aiosmtpd.controller import Controller
from click.testing import CliRunner

from pipeline.cli.main import main
from pipeline.core.config import Config
from pipeline.core.ledger import Ledger, now_iso
from pipeline.register import read_term, rebuild_register
from pipeline.register.view import BLOCKED, DRAFT_ONLY, MAY_HAVE_BEEN_SENT, NOT_SENT, SENT, UPDATE_NOT_SENT
from pipeline.register.workbook import HEADINGS, WAITING_HEADINGS
from tests.test_mail import Recorder, free_port
from tests.test_reviews import fill, open_tracker

ROOT = Path(__file__).resolve().parent.parent
EXAMPLE = ROOT / "examples" / "referrals-spring-2027.xlsx"
RUN_DAY = "2026-11-30"


def cli(*args):
    return CliRunner().invoke(main, [str(a) for a in args], catch_exceptions=False)


def register(outbox: Path):
    """The register as Excel shows it: {Referral ID: {heading: value}}, the waiting rows, and the workbook."""
    wb = openpyxl.load_workbook(outbox / "term-register.xlsx")
    ws = wb["Register"]
    headings = [c.value for c in ws[1]]
    rows = {r[0]: dict(zip(headings, r)) for r in ws.iter_rows(min_row=2, values_only=True) if r[0]}
    waiting = [dict(zip(WAITING_HEADINGS, r)) for r in wb["Waiting for a fix"].iter_rows(min_row=2, values_only=True)
               if r[0]]
    return rows, waiting, wb


def fix_row(path: Path, referral_id: str, heading: str, value) -> None:
    """Change one cell the way an officer does in Excel: open, type, save under the same name."""
    wb = openpyxl.load_workbook(path)
    ws = wb.active
    heading_row = next(r for r in range(1, 12) if ws.cell(r, 1).value == "Referral ID")
    column = next(c for c in range(1, ws.max_column + 1) if ws.cell(heading_row, c).value == heading)
    row = next(r for r in range(heading_row + 1, ws.max_row + 1) if ws.cell(r, 1).value == referral_id)
    ws.cell(row, column).value = value
    wb.save(path)


@pytest.fixture
def term(tmp_path, monkeypatch):
    """A working folder with a reintegrate.toml that emails through a real SMTP server on 127.0.0.1."""
    handler = Recorder()
    controller = Controller(handler, hostname="127.0.0.1", port=free_port())
    controller.start()
    monkeypatch.chdir(tmp_path)
    (tmp_path / "reintegrate.toml").write_text(
        "[email]\ntransport = \"smtp\"\nhost = \"127.0.0.1\"\n"
        f"port = {controller.port}\nsecurity = \"none\"\nsender = \"inclusions@havering.gov.uk\"\n"
        "allowed_domains = [\"havering.gov.uk\", \"sch.uk\"]\ntimeout = 5\nretry_delay = 0.05\n", encoding="utf-8")
    shutil.copy(EXAMPLE, tmp_path / EXAMPLE.name)
    yield tmp_path, handler
    controller.stop()


def test_a_term_walked_through_the_register_and_status(term):
    folder, server = term
    outbox = folder / "outbox"
    workbook = folder / EXAMPLE.name

    # 1. the first run: 15 accepted, 9 rejected rows waiting for a fix, nothing sent yet
    first = cli("run", workbook, "--as-of", RUN_DAY)
    assert first.exit_code == 1
    assert "Term register, every referral of the term: outbox/term-register.xlsx" in first.stdout
    rows, waiting, _ = register(outbox)
    assert len(rows) == 15 and len(waiting) == 9
    assert {r["Plan sent"] for r in rows.values()} == {NOT_SENT}
    assert ("referrals-spring-2027.xlsx", 9, "HAV-00005", "3.1") in {
        (w["Input file"], w["Row"], w["Referral ID"], w["Rejected by rules"]) for w in waiting}
    first_run = rows["HAV-00009"]["Run folder"]

    # 2. the officer fixes row 9 and runs the same file again: its referral joins, its row no longer waits
    fix_row(workbook, "HAV-00005", "Returning via FAP", "Yes")
    assert cli("run", workbook, "--as-of", RUN_DAY).exit_code == 1
    rows, waiting, _ = register(outbox)
    assert len(rows) == 16 and len(waiting) == 8 and "HAV-00005" in rows
    assert "HAV-00005" not in {w["Referral ID"] for w in waiting}
    second_run = rows["HAV-00005"]["Run folder"]
    assert second_run != first_run and {r["Run folder"] for r in rows.values()} == {second_run}

    # 3. send: every school gets its plan once, and the register says so, with the address's domain
    sent = cli("send", "outbox")
    assert sent.exit_code == 1  # the example's HAV-00002 has a school address outside allowed_domains
    assert len(server.messages) == 15
    rows, _, _ = register(outbox)
    assert rows.pop("HAV-00002")["Plan sent"] == BLOCKED
    assert {r["Plan sent"] for r in rows.values()} == {SENT}
    amy = rows["HAV-00009"]
    assert amy["Sent on"].date() == date.today() and amy["Version sent"] == "original"
    school = next(m for m in server.messages if "HAV-00009" in m["message"]["Subject"])["rcpt_tos"][0]
    assert amy["Sent to"] == school.rsplit("@", 1)[1]

    # 4. reviews: HAV-00009's first review held, HAV-00012's missed, the rest not recorded
    tracker = outbox / second_run / "review-tracker.xlsx"
    wb, ws = open_tracker(tracker)
    fill(ws, "HAV-00009", 1, status="Held", outcome="Settling in well")
    fill(ws, "HAV-00012", 1, status="Missed")
    wb.save(tracker)
    reviewed = cli("reviews", tracker, "--as-of", "2027-01-05")
    assert reviewed.exit_code == 1  # reviews are overdue
    rows, _, _ = register(outbox)
    held, missed = rows["HAV-00009"], rows["HAV-00012"]
    assert (held["Reviews held"], held["Reviews missed"], held["Reviews overdue"]) == (1, 0, 0)
    assert (missed["Reviews held"], missed["Reviews missed"], missed["Reviews overdue"]) == (0, 1, 1)
    assert held["Next review"].date() == date(2027, 1, 15)
    # the reviewed plans are new versions the schools have not had yet
    assert held["Latest plan"] == "reviewed 2027-01-05" and held["Plan sent"] == UPDATE_NOT_SENT
    assert rows["HAV-00001"]["Plan sent"] == SENT and rows["HAV-00001"]["Latest plan"] == "original"

    # 5. status, weeks later: past some settling-in periods, reviews overdue, exit 1
    status = cli("status", "--as-of", "2027-03-01")
    assert status.exit_code == 1
    lines = status.stdout.splitlines()
    assert lines[0].startswith("Term register as of Monday 01/03/2027: 16 referrals, ")
    assert "8 rows waiting for a fix" in lines[0]
    still_settling = int(lines[0].split(", ")[1].split()[0])
    assert still_settling < 16
    assert lines[1] == "  Plans: 13 sent, 0 may have been sent, 0 drafted but not sent, 1 blocked, 2 not yet sent"
    assert lines[2].startswith("  Reviews: 1 held, 1 missed, ")
    assert "  Overdue reviews (hold or rearrange them, then record them in the tracker):" in lines
    assert f"    2 not yet sent: reintegrate send outbox/{second_run}" in lines
    assert f"    1 blocked (address not allowed): correct it, then reintegrate send outbox/{second_run}" in lines
    assert "    referrals-spring-2027.xlsx row 12 (HAV-00008): 3.8" in lines
    assert lines[-1].startswith("Done: 16 referrals, ")
    assert all(len(line) <= 110 for line in lines)

    # 6. the register on that day: what Excel highlights, and how it prints
    rows, waiting, wb = register(outbox)
    ws = wb["Register"]
    assert [c.value for c in ws[1]] == list(HEADINGS)
    assert ws.freeze_panes == "A2" and ws.auto_filter.ref == f"A1:{openpyxl.utils.get_column_letter(len(HEADINGS))}17"
    assert ws.page_setup.orientation == "landscape" and int(ws.page_setup.paperSize) == 9
    rules = {str(cf.sqref): [r.formula[0] for r in cf.rules] for cf in ws.conditional_formatting}
    overdue_col = openpyxl.utils.get_column_letter(HEADINGS.index("Reviews overdue") + 1)
    sent_col = openpyxl.utils.get_column_letter(HEADINGS.index("Plan sent") + 1)
    assert rules[f"A2:Q17"] == [f"${overdue_col}2>0"]
    assert rules[f"{sent_col}2:{sent_col}17"] == [
        f'OR(${sent_col}2="{NOT_SENT}",${sent_col}2="{UPDATE_NOT_SENT}",${sent_col}2="{DRAFT_ONLY}",'
        f'${sent_col}2="{BLOCKED}")']
    priority = {str(cf.sqref): cf.rules[0].priority for cf in ws.conditional_formatting}
    assert priority[f"{sent_col}2:{sent_col}17"] < priority["A2:Q17"]  # amber shows in a red row too
    red = {rid for rid, r in rows.items() if r["Reviews overdue"] > 0}
    assert "HAV-00012" in red and "HAV-00009" in red  # by March its later reviews have passed unrecorded
    assert rows["HAV-00009"]["Settling-in ends"] is not None
    assert rows["HAV-00009"]["3.9 protection ends"].date() > rows["HAV-00009"]["Planned return"].date()


def test_the_register_is_owner_only_names_no_upn_and_is_rebuilt_from_the_ledger(term):
    folder, _ = term
    outbox = folder / "outbox"
    assert cli("run", folder / EXAMPLE.name, "--as-of", RUN_DAY).exit_code == 1
    path = outbox / "term-register.xlsx"
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    import json

    run_dir = next(p for p in outbox.iterdir() if (p / "manifest.json").exists())
    upns = {e["referral"]["upn"] for e in json.loads((run_dir / "manifest.json").read_text())["referrals"]}
    cells = {str(v) for ws in openpyxl.load_workbook(path).worksheets for row in ws.iter_rows(values_only=True)
             for v in row if v is not None}
    assert upns and not any(upn in cell for upn in upns for cell in cells)
    before, _, _ = register(outbox)
    path.unlink()  # a view: losing it loses nothing
    assert cli("status", "--as-of", RUN_DAY).exit_code == 0  # nothing is overdue on the run's own day
    after, _, _ = register(outbox)
    assert after == before


def test_what_a_send_left_uncertain_or_only_drafted_and_a_fix_under_another_name(tmp_path, monkeypatch):
    """The ledger's other states, as the register words them, and a rejected row fixed in a renamed file."""
    monkeypatch.chdir(tmp_path)
    shutil.copy(EXAMPLE, tmp_path / "autumn.xlsx")
    config = Config(outbox=tmp_path / "outbox")
    assert cli("run", "autumn.xlsx", "--as-of", RUN_DAY).exit_code == 1
    view = read_term(config, date(2026, 11, 30))
    run_id = view.referrals[0].run_id
    with Ledger(config.ledger_path) as ledger:
        for rid, status in (("HAV-00001", "uncertain"), ("HAV-00002", "drafted"), ("HAV-00006", "failed")):
            substance = ledger.db.execute("SELECT substance FROM referrals WHERE run_id = ? AND referral_id = ?",
                                          (run_id, rid)).fetchone()[0]
            ledger.record_send(run_id=run_id, referral_id=rid, content_sha256="x", transport="smtp",
                               recipients=["head@school.sch.uk"], status=status, plan="plans/x.docx",
                               substance=substance)
    shutil.copy(tmp_path / "autumn.xlsx", tmp_path / "autumn-fixed.xlsx")
    fix_row(tmp_path / "autumn-fixed.xlsx", "HAV-00005", "Returning via FAP", "Yes")
    assert cli("run", "autumn-fixed.xlsx", "--as-of", RUN_DAY).exit_code == 1
    view = read_term(config, date(2026, 11, 30))
    by_id = {r.referral_id: r for r in view.referrals}
    # the second run says the same for these pupils (same substance): what went from the first run still counts
    assert by_id["HAV-00001"].plan_sent == MAY_HAVE_BEEN_SENT and by_id["HAV-00001"].sent.domain == "school.sch.uk"
    assert by_id["HAV-00002"].plan_sent == DRAFT_ONLY
    assert by_id["HAV-00006"].plan_sent == NOT_SENT  # a failed send is not a send
    assert by_id["HAV-00001"].run_id != run_id  # the row shows the latest accepted version
    waiting = {(w.input_name, w.referral_id) for w in view.waiting}
    assert ("autumn.xlsx", "HAV-00005") not in waiting  # accepted since, from the renamed file
    assert ("autumn.xlsx", "HAV-00008") not in waiting and ("autumn-fixed.xlsx", "HAV-00008") in waiting


def test_the_watcher_keeps_the_register(tmp_path):
    from pipeline.watch import watch

    inbox, outbox = tmp_path / "inbox", tmp_path / "outbox"
    inbox.mkdir()
    shutil.copy(EXAMPLE, inbox / EXAMPLE.name)
    code = watch(Config(inbox=inbox, outbox=outbox), once=True, settle=0.0, grace=0.0, as_of=date(2026, 11, 30),
                 log=lambda line: None)
    assert code == 1
    rows, waiting, _ = register(outbox)
    assert len(rows) == 15 and len(waiting) == 9


def test_status_before_any_run_is_one_sentence(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    result = CliRunner().invoke(main, ["status"])
    assert result.exit_code == 2
    assert result.stderr.startswith("Error: there is no ledger in outbox yet, so no referral is known")


def test_a_register_that_cannot_be_written_is_a_warning_and_the_run_stands(term):
    folder, _ = term
    (folder / "outbox").mkdir()
    (folder / "outbox" / "term-register.xlsx").mkdir()  # something in its place that cannot be replaced
    result = cli("run", folder / EXAMPLE.name, "--as-of", RUN_DAY)
    assert result.exit_code == 1  # rows rejected, as without the problem
    assert "Warning: the term register (outbox/term-register.xlsx) could not be updated" in result.stdout
    assert any((p / "manifest.json").exists() for p in (folder / "outbox").iterdir())


def test_rebuild_writes_the_same_register_from_the_same_ledger(term):
    folder, _ = term
    assert cli("run", folder / EXAMPLE.name, "--as-of", RUN_DAY).exit_code == 1
    config = Config(outbox=folder / "outbox")
    first = register(folder / "outbox")[:2]
    assert rebuild_register(config, date(2026, 11, 30)) == folder / "outbox" / "term-register.xlsx"
    assert register(folder / "outbox")[:2] == first


def test_a_rerun_after_reviews_keeps_what_was_recorded_and_status_works_from_any_folder(term, tmp_path_factory,
                                                                                        monkeypatch):
    folder, _ = term
    outbox = folder / "outbox"
    workbook = folder / EXAMPLE.name
    assert cli("run", workbook, "--as-of", RUN_DAY).exit_code == 1
    (first_run,) = [p for p in outbox.iterdir() if p.is_dir()]
    wb, ws = open_tracker(first_run / "review-tracker.xlsx")
    fill(ws, "HAV-00009", 1, status="Held")
    fill(ws, "HAV-00012", 1, status="Missed")
    wb.save(first_run / "review-tracker.xlsx")
    assert cli("reviews", first_run / "review-tracker.xlsx", "--as-of", "2027-01-05").exit_code == 1
    # a fix to another row and a new run: its tracker is blank, but what the first one recorded still holds
    fix_row(workbook, "HAV-00019", "Buddy", "Jordan Lee")
    assert cli("run", workbook, "--as-of", RUN_DAY).exit_code == 1
    assert cli("reviews", "outbox", "--as-of", "2027-01-06").exit_code == 1  # the new run's blank tracker
    rows, _, _ = register(outbox)
    assert (rows["HAV-00009"]["Reviews held"], rows["HAV-00012"]["Reviews missed"]) == (1, 1)
    assert rows["HAV-00019"]["Run folder"] != first_run.name
    # a scheduled task starts elsewhere: the same answers, the same register
    elsewhere = tmp_path_factory.mktemp("elsewhere")
    monkeypatch.chdir(elsewhere)
    status = cli("status", "--outbox", outbox, "--as-of", "2027-01-06")
    assert status.stdout.splitlines()[2].startswith("  Reviews: 1 held, 1 missed, ")
    assert register(outbox)[0] == rows


def test_after_an_update_went_a_rerun_that_changes_nothing_shows_sent_as_send_judges_it(term):
    """The register and `send` agree: a re-run's plan, as `run` wrote it, says what the school already has."""
    folder, server = term
    outbox = folder / "outbox"
    assert cli("run", folder / EXAMPLE.name, "--as-of", RUN_DAY).exit_code == 1
    cli("send", "outbox")
    (run_dir,) = [p for p in outbox.iterdir() if p.is_dir()]
    wb, ws = open_tracker(run_dir / "review-tracker.xlsx")
    fill(ws, "HAV-00009", 1, status="Held")
    wb.save(run_dir / "review-tracker.xlsx")
    cli("reviews", run_dir / "review-tracker.xlsx", "--as-of", "2027-01-05")
    assert register(outbox)[0]["HAV-00009"]["Plan sent"] == UPDATE_NOT_SENT
    cli("send", "outbox")
    assert register(outbox)[0]["HAV-00009"]["Plan sent"] == SENT
    assert cli("run", folder / EXAMPLE.name, "--as-of", RUN_DAY).exit_code == 1  # the same workbook again
    rows = register(outbox)[0]
    assert rows["HAV-00009"]["Plan sent"] == SENT and rows["HAV-00009"]["Latest plan"] == "original"
    dry = cli("send", "outbox", "--dry-run")
    assert "HAV-00009: skipped" in dry.stdout and "already sent" in dry.stdout.split("HAV-00009: skipped")[1][:200]
