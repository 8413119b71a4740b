"""The watcher and the file system under attack and faults, and personal data kept out of messages: a file
swapped for a link or a pipe between the check and the claim, names at the file system's length limit,
names in other scripts, control characters and bidi overrides, a planted ledger link, a 0777 outbox, a full
disk."""

from __future__ import annotations

import os
import shutil
import stat
import subprocess
import sys
import threading
from pathlib import Path

import pytest
from click.testing import CliRunner

from pipeline import watch as watcher
from pipeline.watch import claims
from pipeline.cli.main import main
from pipeline.core.config import Config
from pipeline.core.errors import ConfigError
from pipeline.core.ledger import Ledger
from pipeline.core.printable import printable
from tests.test_inbox import referrals, sha


def run_once(inbox: Path, outbox: Path, lines: list | None = None) -> int:
    return watcher.watch(Config(inbox=inbox, outbox=outbox), once=True, settle=0.05,
                         log=(lines.append if lines is not None else (lambda line: None)))


@pytest.fixture
def boxes(tmp_path):
    inbox, outbox = tmp_path / "inbox", tmp_path / "outbox"
    inbox.mkdir()
    return inbox, outbox


# --------------------------------------------------------------------------------------- check, then claim

@pytest.mark.parametrize("swap", ["symlink", "fifo"])
def test_a_file_swapped_between_the_check_and_the_claim_is_never_read(boxes, tmp_path, monkeypatch, swap):
    inbox, outbox = boxes
    secret = referrals(tmp_path / "outside.xlsx", n=2, seed=5)  # a file the watcher must never read
    before = sha(secret)
    dropped = referrals(inbox / "week50.xlsx", n=2, seed=6)
    good = referrals(inbox / "week51.xlsx", n=2, seed=7)

    def swap_it(path: Path) -> None:
        if path.name != dropped.name:
            return
        path.unlink()
        if swap == "symlink":
            path.symlink_to(secret)
        else:
            os.mkfifo(path)

    monkeypatch.setattr(claims, "_before_claim", swap_it)
    lines: list[str] = []
    done = threading.Event()
    result = {}

    def go():
        result["code"] = run_once(inbox, outbox, lines)
        done.set()

    thread = threading.Thread(target=go, daemon=True)
    thread.start()
    assert done.wait(60), "the watcher hung on what was swapped in"
    assert sha(secret) == before and not (tmp_path / "outside.xlsx.error.txt").exists()
    failed = list((inbox / "failed").iterdir())
    assert any(p.name == "week50.xlsx" for p in failed)
    note = (inbox / "failed" / "week50.xlsx.error.txt").read_text()
    assert "not a regular file" in note
    assert any("week51.xlsx: run " in line for line in lines)  # the good file was taken all the same
    runs = [p for p in outbox.iterdir() if p.is_dir()]
    assert len(runs) == 1  # only week51 made a run: the outside file never did
    assert good.name in {p.name for p in (inbox / "processed").rglob("*.xlsx")}


def test_claim_folders_are_the_owners_alone(boxes):
    inbox, _ = boxes
    path = referrals(inbox / "a.xlsx")
    c = watcher.claim(path, inbox)
    try:
        assert stat.S_IMODE(os.stat(c.dir).st_mode) == 0o700
    finally:
        os.rename(c.input, path)
        watcher.release(c)


# --------------------------------------------------------------------------------------- names

def test_names_at_the_file_systems_limit_never_stop_the_watcher(boxes):
    inbox, outbox = boxes
    long_good = referrals(inbox / ("a" * 250 + ".xlsx"), n=1, seed=8)  # 255 bytes
    long_bad = inbox / ("b" * 249 + ".xlsx")  # 254 bytes, and not a workbook: it needs an .error.txt note
    long_bad.write_text("not a workbook")
    good = referrals(inbox / "good.xlsx", n=1, seed=9)
    lines: list[str] = []
    code = run_once(inbox, outbox, lines)
    assert code == 2  # the worst: the unreadable one
    processed = {p.name for p in (inbox / "processed").rglob("*.xlsx")}
    assert long_good.name in processed and good.name in processed
    notes = list((inbox / "failed").glob("*.error.txt"))
    assert len(notes) == 1 and all(len(p.name.encode()) <= 255 for p in (inbox / "failed").iterdir())
    assert [p.name for p in (inbox / ".processing").iterdir()] == [".sha"]  # nothing left claimed
    assert run_once(inbox, outbox) == 0  # and the next pass has nothing to recover and nothing to crash on


def test_pupils_named_in_another_script_still_get_their_documents(tmp_path, workbook, valid_row):
    names = {"Legal forename": "名" * 40, "Legal surname": "姓" * 40}
    path = workbook([valid_row(1, **names), valid_row(2, **names), valid_row(3)])
    result = CliRunner().invoke(main, ["run", str(path), "--outbox", str(tmp_path / "out"), "--as-of", "2026-11-30"])
    assert result.exit_code == 0, result.output
    (run_dir,) = [p for p in (tmp_path / "out").iterdir() if p.is_dir()]
    plans = sorted(p.name for p in (run_dir / "plans").iterdir())
    assert len(plans) == 3 and all(len(n.encode()) <= 200 for n in plans)
    assert plans[0].startswith("HAV-00001_") and plans[1].startswith("HAV-00002_")  # sortable by Referral ID
    assert len(set(plans)) == 3


# --------------------------------------------------------------------------------------- what reaches a terminal

def test_control_and_bidi_characters_are_escaped_never_acted_on():
    assert printable("HAV-1\x1b]0;owned\x07") == "HAV-1\\x1b]0;owned\\x07"
    assert printable("week\n2026-11-30 09:00:00 fake.xlsx: run x") == "week\\x0a2026-11-30 09:00:00 fake.xlsx: run x"
    assert printable("invoice\u202excod.exe") == "invoice\\u202excod.exe"
    assert printable("Siobhán O'Brien – 名") == "Siobhán O'Brien – 名"


def test_a_referral_id_with_terminal_escapes_and_a_file_name_with_a_newline(boxes, tmp_path, valid_row, workbook):
    inbox, outbox = boxes
    rows = [valid_row(1, **{"Referral ID": "HAV\x1b]0;owned\x07-1\r"}), valid_row(2, **{"UPN": "A801200005001"})]
    shutil.copy(workbook(rows), inbox / "week\nforged.xlsx")
    lines: list[str] = []
    run_once(inbox, outbox, lines)
    log = "\n".join(lines)
    assert "week\\x0aforged.xlsx" in log and "\x1b" not in log and "\r" not in log
    result = CliRunner().invoke(main, ["validate", str(workbook(rows)), "--outbox", str(tmp_path / "o"),
                                       "--as-of", "2026-11-30", "--verbose"])
    assert "\x1b" not in result.output and "\x07" not in result.output and "\\x1b" in result.output


@pytest.mark.parametrize("heading, typed", [("SEN status", "Yes - subject to care order (Havering 2025)"),
                                            ("Looked after child", "Yes - subject to care order"),
                                            ("Date of birth", "31/02/2013"), ("UPN", "A801200005001")])
def test_messages_name_the_cell_never_the_personal_value(tmp_path, valid_row, workbook, heading, typed):
    result = CliRunner().invoke(main, ["validate", str(workbook([valid_row(1, **{heading: typed})])),
                                       "--outbox", str(tmp_path / "o"), "--as-of", "2026-11-30"])
    assert result.exit_code == 1 and heading in result.output
    assert typed not in result.output and "care order" not in result.output
    if heading == "UPN":
        assert "'X'" not in result.output and "'A'" not in result.output and "801200005001" not in result.output


# --------------------------------------------------------------------------------------- the ledger and outbox

def test_a_planted_ledger_link_is_refused(tmp_path):
    outbox = tmp_path / "outbox"
    outbox.mkdir()
    target = tmp_path / "elsewhere.sqlite3"
    (outbox / "ledger.sqlite3").symlink_to(target)
    with pytest.raises(ConfigError, match="is a symbolic link"):
        Ledger(outbox / "ledger.sqlite3")
    assert not target.exists()


def test_a_world_writable_outbox_is_made_owner_only(tmp_path, valid_row, workbook):
    outbox = tmp_path / "outbox"
    outbox.mkdir()
    os.chmod(outbox, 0o777)
    result = CliRunner().invoke(main, ["validate", str(workbook([valid_row(1)])), "--outbox", str(outbox),
                                       "--as-of", "2026-11-30"])
    assert result.exit_code == 0, result.output
    assert stat.S_IMODE(os.stat(outbox).st_mode) == 0o700


# --------------------------------------------------------------------------------------- a full disk

@pytest.fixture
def small_disk(tmp_path):
    """A 600 KB file system (tmpfs), where a run of a few pupils runs out of space."""
    mount = tmp_path / "small"
    mount.mkdir()
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=600k", "tmpfs", str(mount)], capture_output=True)
    if done.returncode != 0:
        pytest.skip("cannot mount a small file system here (needs root)")
    try:
        yield mount
    finally:
        subprocess.run(["umount", "-l", str(mount)], capture_output=True)


def test_a_full_disk_is_one_sentence_for_run_and_a_retry_for_watch(small_disk, tmp_path, valid_row, workbook):
    path = workbook([valid_row(n) for n in range(1, 40)])
    outbox = small_disk / "outbox"
    proc = subprocess.run([sys.executable, "-m", "pipeline", "run", str(path), "--outbox", str(outbox),
                           "--as-of", "2026-11-30", "--workers", "1"], capture_output=True, text=True, timeout=300)
    assert proc.returncode == 2 and "Traceback" not in proc.stderr + proc.stdout, proc.stderr
    assert "No space left on device" in proc.stderr and "nothing was half-written" in proc.stderr
    assert "Free some space" in proc.stdout
    assert not [p for p in outbox.iterdir() if p.is_dir()]  # no half-written run folder
    inbox = tmp_path / "inbox"
    inbox.mkdir()
    shutil.copy(path, inbox / "term.xlsx")
    lines: list[str] = []
    run_once(inbox, outbox, lines)
    assert (inbox / "term.xlsx").exists() and not (inbox / "failed").exists()  # left to be tried again
    assert any("left in the inbox to be tried again" in line for line in lines)
