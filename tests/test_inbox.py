"""The inbox watcher (docs/watch.md) on real folders: files dropped (one copied slowly in chunks), the watcher run in a
subprocess, killed with SIGKILL at each step and at random moments and restarted, two watchers on one inbox;
then where every input ended up, and that each produced exactly one complete run."""

from __future__ import annotations

import csv
import hashlib
import json
import os
import random
import re
import signal
import sqlite3
import subprocess
import sys
import textwrap
import threading
import time
from collections import Counter
from datetime import date
from pathlib import Path

import pytest

from pipeline.core import files
from pipeline import watch as watcher
from pipeline.watch import journal, processing
from pipeline.core.config import Config
from pipeline.core.errors import TemplateError
from pipeline.write.examples import generate_rows, write_rows
from pipeline.run import process_file

AS_OF = "2026-11-30"
SETTLE = "0.3"
pytestmark = pytest.mark.skipif(os.name == "nt", reason="the subprocess tests use SIGKILL")


# --- builders and checks -------------------------------------------------------------------------------------------

def sha(path: Path) -> str:
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def referrals(path: Path, n: int = 3, seed: int = 1, **changes) -> Path:
    """A real referral workbook; `changes` maps a row index to {heading: value} overrides."""
    rows = generate_rows(n, seed=seed)
    for i, row in enumerate(rows):
        row["Referral ID"] = f"HAV-{seed:03d}{i:02d}"
        row.update(changes.get(f"row{i}", {}))
    return write_rows(path, rows)


def pupil_names(seeds_and_sizes) -> set[str]:
    names = set()
    for seed, n in seeds_and_sizes:
        for row in generate_rows(n, seed=seed):
            names |= {row["Legal forename"], row["Legal surname"], row["Parent/carer name"]}
    return names


def start(tmp_path, *args, script=None, env=None, stderr=None) -> subprocess.Popen:
    """The watcher as an officer's service runs it (`python -m pipeline watch` is `reintegrate watch`)."""
    cmd = [sys.executable, *([str(script)] if script else ["-m", "pipeline", "watch"]),
           "--inbox", str(tmp_path / "inbox"), "--outbox", str(tmp_path / "outbox"),
           "--settle", SETTLE, "--rescan", "1", "--as-of", AS_OF, *args]
    return subprocess.Popen(cmd, cwd=tmp_path, stdout=subprocess.PIPE if stderr is None else stderr,
                            stderr=subprocess.PIPE if stderr is None else subprocess.STDOUT, text=True,
                            env={**os.environ, **(env or {})})


def once(tmp_path, *args) -> subprocess.CompletedProcess:
    p = start(tmp_path, "--once", *args)
    out, err = p.communicate(timeout=60)
    return subprocess.CompletedProcess(p.args, p.returncode, out, err)


def wait_for(predicate, timeout=20.0, step=0.05):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(step)
    raise AssertionError("timed out waiting")


def kill(p: subprocess.Popen) -> None:
    p.send_signal(signal.SIGKILL)
    p.wait(timeout=10)


def ledger_runs(outbox: Path) -> dict[str, str]:
    """run id -> input sha256, as the ledger records them."""
    db = sqlite3.connect(outbox / "ledger.sqlite3")
    try:
        return dict(db.execute("SELECT run_id, sha256 FROM runs"))
    finally:
        db.close()


def claims(inbox: Path) -> list[Path]:
    processing = inbox / ".processing"
    return sorted(p for p in processing.iterdir() if not p.name.startswith(".")) if processing.exists() else []


def waiting(inbox: Path) -> list[str]:
    return sorted(p.name for p in inbox.iterdir() if p.is_file())


def assert_settled(tmp_path: Path, dropped: dict[str, str], unreadable: set[str] = frozenset()) -> dict[str, list[Path]]:
    """Every dropped input (name -> sha256) is in exactly one place, and each distinct readable input has exactly
    one complete run: a run folder with all its outputs, one ledger row, the input beside its run id."""
    inbox, outbox = tmp_path / "inbox", tmp_path / "outbox"
    assert claims(inbox) == [], "a claim was left in .processing"
    assert not list(inbox.glob(".processing/.sha/*")), "a lock of a killed watcher was left behind"
    assert not set(waiting(inbox)) & set(dropped), "an input is still waiting"
    places: dict[str, list[Path]] = {}
    for folder in (inbox / "processed", inbox / "failed"):
        for path in folder.rglob("*") if folder.exists() else []:
            if path.is_file() and not path.name.endswith(".txt"):
                places.setdefault(sha(path), []).append(path)
    assert Counter({s: len(p) for s, p in places.items()}) == Counter(dropped.values()), "inputs lost or doubled"

    runs = ledger_runs(outbox) if (outbox / "ledger.sqlite3").exists() else {}
    readable = {s for n, s in dropped.items() if n not in unreadable}
    assert Counter(runs.values()) == Counter(readable), "each distinct input must have exactly one run"
    run_dirs = sorted(p.name for p in outbox.iterdir() if p.is_dir()) if outbox.exists() else []
    assert run_dirs == sorted(runs), f"run folders {run_dirs} do not match the ledger {sorted(runs)}"
    for run_id, digest in runs.items():
        run_dir = outbox / run_id
        summary = json.loads((run_dir / "summary.json").read_text())
        assert summary["run_id"] == run_id and summary["sha256"] == digest
        assert (run_dir / "validation-report.xlsx").is_file()
        if summary["accepted"]:
            assert (run_dir / "manifest.json").is_file() and (run_dir / "review-tracker.xlsx").is_file()
            assert len(list((run_dir / "plans").iterdir())) == summary["accepted"]
            assert len(list((run_dir / "letters").iterdir())) == summary["accepted"]
        kept = [p for p in (inbox / "processed" / run_id).iterdir()]
        assert [sha(p) for p in kept] == [digest], "the processed input sits beside its own run id"
    for path in (inbox / "processed" / "duplicates").glob("*.duplicate.txt"):
        named = re.search(r"run (\S+) on", path.read_text()).group(1)
        assert named in runs and (inbox / "processed" / "duplicates" / path.name[:-len(".duplicate.txt")]).is_file()
    return places


# --- which files, and when ------------------------------------------------------------------------------------------

def test_candidates_are_spreadsheets_only(tmp_path):
    for name in ["a.xlsx", "b.XLSM", "c.csv", "~$a.xlsx", ".hidden.xlsx", "~WRL0001.tmp", "d.xlsx.tmp",
                 "e.xlsx.part", "notes.txt", "old.xls", ".~lock.c.csv#"]:
        (tmp_path / name).write_text("x")
    (tmp_path / "folder.xlsx").mkdir()
    (tmp_path / "link.xlsx").symlink_to(tmp_path / "a.xlsx")
    assert sorted(p.name for p in watcher.candidates(tmp_path)) == ["a.xlsx", "b.XLSM", "c.csv", "old.xls"]


def test_stable_only_when_unchanged_for_the_settle_interval(tmp_path):
    path = tmp_path / "a.csv"
    path.write_text("Referral ID\n")
    seen = watcher.observe(path, None, now=100.0)
    assert not watcher.is_stable(path, seen, now=100.5, settle=1.0)
    assert watcher.observe(path, seen, now=100.5) is seen  # unchanged: still counting from 100.0
    assert watcher.is_stable(path, seen, now=101.0, settle=1.0)
    with path.open("a") as fh:
        fh.write("more\n")
    grown = watcher.observe(path, seen, now=101.0)
    assert grown.since == 101.0 and not watcher.is_stable(path, grown, now=101.5, settle=1.0)


def test_waits_while_open_in_excel(tmp_path):
    path = referrals(tmp_path / "referrals-autumn.xlsx")
    seen = watcher.observe(path, None, now=0.0)
    for lock in ["~$referrals-autumn.xlsx", "~$ferrals-autumn.xlsx"]:  # Excel's and Word's way of naming it
        (tmp_path / lock).write_text("owner")
        assert watcher.waiting_reason(path, seen, now=10.0, settle=1.0).startswith("open in Excel")
        (tmp_path / lock).unlink()
    assert watcher.is_stable(path, seen, now=10.0, settle=1.0)


def test_half_copied_workbook_waits_for_the_grace_period(tmp_path):
    whole = referrals(tmp_path / "whole.xlsx").read_bytes()
    half = tmp_path / "half.xlsx"
    half.write_bytes(whole[: len(whole) // 2])  # a copy stalled half-way: no zip end record yet
    os.utime(half, (time.time(), time.time()))
    seen = watcher.observe(half, None, now=0.0)
    assert watcher.waiting_reason(half, seen, now=5.0, settle=1.0, grace=60.0).startswith("looks half-copied")
    assert watcher.is_stable(half, seen, now=61.0, settle=1.0, grace=60.0)  # then taken (and reported unreadable)
    text = tmp_path / "text.xlsx"
    text.write_text("not a workbook at all")  # not a zip: no point waiting, it will be reported
    assert watcher.is_stable(text, watcher.observe(text, None, now=0.0), now=1.0, settle=1.0, grace=60.0)


# --- claims and recovery in-process ---------------------------------------------------------------------------------

def test_a_file_is_claimed_once_however_many_race_for_it(tmp_path):
    inbox = tmp_path / "inbox"
    inbox.mkdir()
    for i in range(40):
        (inbox / f"f{i:02d}.csv").write_text(f"{i}\n")
    won: list[str] = []
    barrier = threading.Barrier(4)

    def race():
        barrier.wait()
        for path in sorted(inbox.glob("*.csv")):
            c = watcher.claim(path, inbox)
            if c is not None:
                won.append(c.input.name)
                c.input.rename(inbox / "done" / c.input.name)
                watcher.release(c)

    (inbox / "done").mkdir()
    threads = [threading.Thread(target=race) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(won) == [f"f{i:02d}.csv" for i in range(40)]
    assert sorted(p.name for p in (inbox / "done").iterdir()) == sorted(won)


def test_recovery_leaves_a_live_claim_alone_and_returns_an_abandoned_one(tmp_path):
    inbox = tmp_path / "inbox"
    inbox.mkdir()
    path = referrals(inbox / "a.xlsx")
    c = watcher.claim(path, inbox)
    assert not path.exists() and c.input.exists()
    assert watcher.recover(inbox, quiet=0) == []  # its lock is held: a live watcher is working on it
    assert c.input.exists()
    os.close(c.fd)  # the watcher dies: the OS lets go of its lock
    [outcome] = watcher.recover(inbox, quiet=0)
    assert outcome.status == "returned" and path.exists() and claims(inbox) == []


def test_recovery_of_each_journal_state(tmp_path):
    """Claims as a killed watcher leaves them, built by hand: resolved the same way every time."""
    inbox, outbox = tmp_path / "inbox", tmp_path / "outbox"
    inbox.mkdir()
    config = Config(inbox=inbox, outbox=outbox)
    as_of = date.fromisoformat(AS_OF)

    # committed: the ledger has the run, the input is still in its claim
    a = watcher.claim(referrals(inbox / "a.xlsx", seed=1), inbox)
    run_id = files.new_run_id()
    journal.write_state(a, {"step": "run", "run_id": run_id, "run_dir": str((outbox / run_id).absolute()),
                             "ledger": str(config.ledger_path.absolute())})
    process_file(a.input, config=config, as_of=as_of, run_id=run_id)
    os.close(a.fd)
    # started, not committed: a partial run folder and no ledger row
    b = watcher.claim(referrals(inbox / "b.xlsx", seed=2), inbox)
    partial = files.new_run_id()
    (outbox / partial / "plans").mkdir(parents=True)
    (outbox / partial / "plans" / "HAV-1_X_Y.docx").write_bytes(b"half")
    journal.write_state(b, {"step": "run", "run_id": partial, "run_dir": str((outbox / partial).absolute()),
                             "ledger": str(config.ledger_path.absolute())})
    os.close(b.fd)
    # failed: the input already moved to failed/, its note not yet written
    (inbox / "c.xlsx").write_text("junk")
    c = watcher.claim(inbox / "c.xlsx", inbox)
    (inbox / "failed").mkdir()
    journal.write_state(c, {"step": "failed", "note": "c.xlsx: not a workbook", "dest": "c.xlsx"})
    c.input.rename(inbox / "failed" / "c.xlsx")
    os.close(c.fd)

    outcomes = {o.name: o for o in watcher.recover(inbox, quiet=0)}
    assert outcomes["a.xlsx"].status == "processed" and outcomes["a.xlsx"].run_id == run_id
    assert (inbox / "processed" / run_id / "a.xlsx").is_file()
    assert outcomes["b.xlsx"].status == "returned" and (inbox / "b.xlsx").is_file()
    assert not (outbox / partial).exists() and not list(outbox.glob(".discarded-*"))
    assert (inbox / "failed" / "c.xlsx.error.txt").read_text() == "c.xlsx: not a workbook\n"
    assert claims(inbox) == []
    assert watcher.recover(inbox, quiet=0) == []  # and again: nothing left to do


def test_unexpected_error_fails_the_file_and_removes_its_partial_run(tmp_path, monkeypatch):
    inbox, outbox = tmp_path / "inbox", tmp_path / "outbox"
    inbox.mkdir()
    path = referrals(inbox / "a.xlsx")

    def broken(path, *, config, run_id, **kwargs):
        (Path(config.outbox) / run_id / "plans").mkdir(parents=True)
        raise RuntimeError("renderer bug")

    monkeypatch.setattr(processing, "process_file", broken)
    outcome = watcher.process_claimed(watcher.claim(path, inbox), Config(inbox=inbox, outbox=outbox))
    assert outcome.status == "failed" and outcome.exit_code == 2
    assert "RuntimeError: renderer bug" in (inbox / "failed" / "a.xlsx.error.txt").read_text()
    assert "renderer bug" not in outcome.line()
    assert [p.name for p in outbox.iterdir()] == ["ledger.sqlite3"]


def test_a_broken_setup_stops_the_watcher_and_keeps_the_file_waiting(tmp_path, monkeypatch):
    inbox, outbox = tmp_path / "inbox", tmp_path / "outbox"
    inbox.mkdir()
    path = referrals(inbox / "a.xlsx")

    def broken(*args, **kwargs):
        raise TemplateError("reintegration-plan.docx: unknown placeholder {{ pupil.nmae }}")

    monkeypatch.setattr(processing, "process_file", broken)
    with pytest.raises(watcher.WatchStopped, match="a.xlsx is back in the inbox"):
        watcher.watch(Config(inbox=inbox, outbox=outbox), once=True, settle=0.05, log=lambda line: None)
    assert path.is_file() and claims(inbox) == []


def test_missing_inbox_is_a_plain_error(tmp_path):
    p = subprocess.run([sys.executable, "-m", "pipeline", "watch", "--once", "--inbox", str(tmp_path / "nowhere")],
                       cwd=tmp_path, capture_output=True, text=True, timeout=30)
    assert p.returncode == 2 and p.stderr.startswith("Error: the inbox folder") and "Traceback" not in p.stderr


# --- the watcher in a subprocess --------------------------------------------------------------------------------------

def test_once_moves_every_file_to_its_place(tmp_path):
    inbox = tmp_path / "inbox"
    inbox.mkdir()
    good = referrals(inbox / "week48.xlsx", n=3, seed=1)
    rejected = referrals(inbox / "week49.xlsx", n=2, seed=2, row0={"Returning via FAP": "No"})
    copy = inbox / "week48 copy.xlsx"
    copy.write_bytes(good.read_bytes())
    os.utime(copy, (time.time() + 5, time.time() + 5))  # saved after the original: the original runs first
    (inbox / "broken.xlsx").write_text("this is not a workbook")
    for ignored in ["~$week50.xlsx", ".week50.xlsx", "week50.xlsx.tmp"]:
        (inbox / ignored).write_text("owner")
    dropped = {p.name: sha(p) for p in [good, rejected, copy, inbox / "broken.xlsx"]}

    growing = inbox / "still-copying.csv"
    stop = threading.Event()

    def keep_writing():  # a copy that never stops during this pass
        with growing.open("a") as fh:
            while not stop.is_set():
                fh.write("x" * 100 + "\n")
                fh.flush()
                time.sleep(0.05)

    writer = threading.Thread(target=keep_writing)
    writer.start()
    try:
        result = once(tmp_path)
    finally:
        stop.set()
        writer.join()

    assert result.returncode == 2, result.stderr  # the worst: an unreadable file
    places = assert_settled(tmp_path, dropped, unreadable={"broken.xlsx"})
    good_sha = dropped["week48.xlsx"]
    assert places[good_sha][0].parent.parent.name == "processed"
    [dup] = [p for p in places[good_sha] if p.parent.name == "duplicates"]
    assert dup.name == "week48 copy.xlsx"
    note = (inbox / "processed" / "duplicates" / "week48 copy.xlsx.duplicate.txt").read_text()
    [first_run] = [p.parent.name for p in places[good_sha] if p.parent.name != "duplicates"]
    assert f"run {first_run}" in note and "week48.xlsx" in note
    assert waiting(inbox) == sorted([".week50.xlsx", "still-copying.csv", "week50.xlsx.tmp", "~$week50.xlsx"])
    assert "still-copying.csv: still being written, left for the next pass" in result.stdout

    # the error note holds the very sentence the CLI prints for the same file
    cli = subprocess.run([sys.executable, "-m", "pipeline", "validate", str(inbox / "failed" / "broken.xlsx"),
                          "--outbox", str(tmp_path / "cli-out")], capture_output=True, text=True, timeout=30)
    assert cli.returncode == 2
    assert "Error: " + (inbox / "failed" / "broken.xlsx.error.txt").read_text() == cli.stderr

    # one plain line per file: time, file, run id, counts; no pupil's name anywhere in the log
    lines = result.stdout.splitlines()
    [line] = [l for l in lines if " week49.xlsx: " in l]
    assert re.fullmatch(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d week49\.xlsx: run \S+: 2 rows, 1 accepted, 1 rejected -> .*",
                        line)
    # processed, but the officer has rows to fix: the line says so, and where they are listed
    run_id = re.search(r": run (\S+):", line)[1]
    assert f"; 1 row REJECTED: fix the cells listed in {tmp_path / 'outbox' / run_id / 'validation-report.xlsx'}" in line
    log = result.stdout + result.stderr
    assert not [name for name in pupil_names([(1, 3), (2, 2)]) if re.search(rf"\b{re.escape(name)}\b", log)]

    # a second pass: nothing is processed again (the officer deleted the abandoned copy)
    growing.unlink()
    second = once(tmp_path)
    assert second.returncode == 0
    assert len(ledger_runs(tmp_path / "outbox")) == 2


def test_slow_copies_are_taken_only_when_complete(tmp_path):
    inbox = tmp_path / "inbox"
    inbox.mkdir()
    source = referrals(tmp_path / "source.xlsx", n=12, seed=3)
    rows = generate_rows(2, seed=4)
    csv_source = tmp_path / "source.csv"
    with csv_source.open("w", newline="", encoding="utf-8") as fh:
        out = csv.DictWriter(fh, fieldnames=list(rows[0]))
        out.writeheader()
        for row in rows:
            out.writerow({k: v.isoformat() if isinstance(v, date) else v for k, v in row.items()})

    p = start(tmp_path, "--settle", "1.0")
    try:
        def copy_slowly(src: Path, dest: Path, chunks=6):
            data = src.read_bytes()
            size = len(data) // chunks + 1
            with dest.open("wb") as fh:
                for i in range(0, len(data), size):
                    fh.write(data[i:i + size])
                    fh.flush()
                    time.sleep(0.4)  # less than the settle interval

        copiers = [threading.Thread(target=copy_slowly, args=(source, inbox / "slow.xlsx")),
                   threading.Thread(target=copy_slowly, args=(csv_source, inbox / "slow.csv"))]
        for t in copiers:
            t.start()
        for t in copiers:
            t.join()
        assert (inbox / "slow.xlsx").exists() and (inbox / "slow.csv").exists(), "taken while still being copied"
        wait_for(lambda: not (inbox / "slow.xlsx").exists() and not (inbox / "slow.csv").exists() and not claims(inbox))
    finally:
        p.send_signal(signal.SIGTERM)
        out, err = p.communicate(timeout=20)
    assert p.returncode == 0, err
    assert_settled(tmp_path, {"slow.xlsx": sha(source), "slow.csv": sha(csv_source)})
    assert not (inbox / "failed").exists() or not list((inbox / "failed").iterdir())
    assert "watching" in out and "(file system events" in out


CRASH_SCRIPT = """
import os, sys, time
import pipeline.run as run
import pipeline.watch.finish as finish, pipeline.watch.processing as processing, pipeline.watch.watcher as watcher
from pipeline.core.ledger import Ledger

point = os.environ["CRASH_AT"]

def pause():
    sys.stderr.write("PAUSED " + point + "\\n")
    sys.stderr.flush()
    time.sleep(600)

def before(owner, name):
    original = getattr(owner, name)
    def wrapper(*args, **kwargs):
        pause()
        return original(*args, **kwargs)
    setattr(owner, name, wrapper)

def after(owner, name):
    original = getattr(owner, name)
    def wrapper(*args, **kwargs):
        result = original(*args, **kwargs)
        pause()
        return result
    setattr(owner, name, wrapper)

{
    "claimed": lambda: before(watcher, "process_claimed"),
    "run-started": lambda: before(processing, "process_file"),
    "documents-written": lambda: before(run, "write_summary"),
    "committed": lambda: after(Ledger, "record_run"),
    "moved": lambda: after(finish, "move_exclusive"),
    "failed-moved": lambda: before(finish, "write_note"),
}[point]()
from pipeline.cli.main import main
main(["watch", *sys.argv[1:]])
"""


@pytest.mark.parametrize("point", ["claimed", "run-started", "documents-written", "committed", "moved",
                                   "failed-moved"])
def test_sigkill_at_each_step_then_restart(tmp_path, point):
    inbox, outbox = tmp_path / "inbox", tmp_path / "outbox"
    inbox.mkdir()
    script = tmp_path / "crashing_watch.py"
    script.write_text(textwrap.dedent(CRASH_SCRIPT))
    unreadable = point == "failed-moved"
    if unreadable:
        (inbox / "a.xlsx").write_text("not a workbook")
    else:
        referrals(inbox / "a.xlsx", n=3, seed=5)
    dropped = {"a.xlsx": sha(inbox / "a.xlsx")}
    log = (tmp_path / "crash.log").open("w")
    p = start(tmp_path, "--once", script=script, env={"CRASH_AT": point}, stderr=log)
    try:
        wait_for(lambda: f"PAUSED {point}" in (tmp_path / "crash.log").read_text(), timeout=30)
    finally:
        kill(p)
        log.close()

    # what the kill left behind
    runs = ledger_runs(outbox) if (outbox / "ledger.sqlite3").exists() else {}
    if point in ("claimed", "run-started", "documents-written"):
        assert waiting(inbox) == [] and len(claims(inbox)) == 1 and runs == {}
    if point == "documents-written":
        [partial] = [d for d in outbox.iterdir() if d.is_dir()]
        assert list((partial / "plans").iterdir()) and not (partial / "summary.json").exists()
    if point == "committed":
        assert len(runs) == 1 and len(claims(inbox)) == 1
    if point == "moved":
        assert (inbox / "processed" / list(runs)[0] / "a.xlsx").is_file() and len(claims(inbox)) == 1
    if point == "failed-moved":
        assert (inbox / "failed" / "a.xlsx").exists() and not (inbox / "failed" / "a.xlsx.error.txt").exists()

    result = once(tmp_path)  # the restart
    places = assert_settled(tmp_path, dropped, unreadable={"a.xlsx"} if unreadable else set())
    if unreadable:
        assert result.returncode == 2
        assert (inbox / "failed" / "a.xlsx.error.txt").read_text().startswith("a.xlsx: ")
    else:
        assert result.returncode == 0, result.stdout + result.stderr
        [kept] = places[dropped["a.xlsx"]]
        if point in ("committed", "moved"):
            assert kept.parent.name == list(runs)[0], "the committed run is finished, not run again"


@pytest.mark.timing
def test_sigkill_at_random_moments_loses_nothing(tmp_path):
    inbox = tmp_path / "inbox"
    inbox.mkdir()
    dropped = {}
    for i in range(6):  # big enough that each file takes a while, so a kill lands mid-file on any machine
        path = referrals(inbox / f"batch{i}.xlsx", n=40, seed=10 + i)
        dropped[path.name] = sha(path)
    rng = random.Random(2026)
    interrupted = 0
    for _ in range(12):
        p = start(tmp_path, stderr=subprocess.DEVNULL)
        time.sleep(rng.uniform(0.8, 2.0))
        kill(p)
        interrupted += bool(claims(inbox))
        if not set(waiting(inbox)) & set(dropped) and not claims(inbox):
            break
    assert interrupted, "no kill landed while a file was in hand"
    result = once(tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr
    assert_settled(tmp_path, dropped)


def test_two_watchers_never_process_the_same_file(tmp_path):
    inbox = tmp_path / "inbox"
    inbox.mkdir()
    dropped = {}
    for i in range(8):
        path = referrals(inbox / f"school{i}.xlsx", n=2, seed=20 + i)
        dropped[path.name] = sha(path)
    for i in (0, 1):  # the same workbook saved twice under another name
        twin = inbox / f"school{i} (resaved).xlsx"
        twin.write_bytes((inbox / f"school{i}.xlsx").read_bytes())
        dropped[twin.name] = sha(twin)
    for path in inbox.iterdir():  # all saved at once: twins sort beside their originals, so identical
        os.utime(path, (1_800_000_000, 1_800_000_000))  # files are in the two watchers' hands together
    watchers = [start(tmp_path), start(tmp_path, "--poll")]
    try:
        wait_for(lambda: not set(waiting(inbox)) & set(dropped) and not claims(inbox), timeout=40)
    finally:
        for p in watchers:
            p.send_signal(signal.SIGTERM)
        outputs = [p.communicate(timeout=30) for p in watchers]
    assert [p.returncode for p in watchers] == [0, 0], outputs
    places = assert_settled(tmp_path, dropped)
    assert sum(1 for paths in places.values() for p in paths if p.parent.name == "duplicates") == 2
    # "waiting: ..." lines are not reports of a file's outcome (the filter must see the whole line)
    logged = Counter(m.group(1) for out, _ in outputs for m in re.finditer(r"^\S+ \S+ (.+?\.xlsx): (.*)$", out, re.M)
                     if not m.group(2).startswith("waiting: "))
    assert logged == Counter(dropped.keys()), ("each file is reported once, by one watcher", outputs)
    assert all(re.search(r"\.xlsx: run ", out) for out, _ in outputs), "both watchers took files"
    assert all("watching" in out for out, _ in outputs) and "(polling" in outputs[1][0]


def test_ctrl_c_stops_the_watcher_cleanly_with_exit_0(tmp_path):
    (tmp_path / "inbox").mkdir()
    p = start(tmp_path)
    try:
        time.sleep(2.5)  # started and into its wait
        p.send_signal(signal.SIGINT)
        out, err = p.communicate(timeout=20)
    finally:
        if p.poll() is None:
            kill(p)
    assert p.returncode == 0, err
    assert "Aborted" not in out + err and "Traceback" not in out + err
