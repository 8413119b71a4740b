"""The inbox watcher (SPEC 5): every spreadsheet saved into the inbox is processed once, by one watcher, and
a kill at any moment loses nothing.

    inbox/referrals.xlsx                      waiting (taken once it has stopped changing)
    inbox/.processing/<claim>/referrals.xlsx  claimed by one watcher (os.rename: only one rename succeeds)
    inbox/processed/<run-id>/referrals.xlsx   done; the run folder is outbox/<run-id>/
    inbox/processed/duplicates/copy.xlsx      identical to an input already processed (+ copy.xlsx.duplicate.txt)
    inbox/failed/broken.xlsx                  unreadable (+ broken.xlsx.error.txt, the sentence the CLI prints)

A claim folder holds the input, a `.lock` file locked (flock / msvcrt) by the watcher working on it, and a
`.state.json` journal saying how far it got. The ledger row written at the end of `process_file` is the
commit point of a run. `recover` resolves every claim whose watcher is dead (its lock is free): a committed
run is finished (the input moves to processed/), anything else is rolled back (a partial run folder is
deleted and the input goes back into the inbox); docs/watch.md writes the rule out.

The functions are the library; `watch` is the whole of `reintegrate watch`:

    from pipeline.core.config import Config
    from pipeline.watch.inbox import watch
    code = watch(Config(inbox=Path("inbox"), outbox=Path("outbox")), once=True)
"""

from __future__ import annotations

import ctypes
import errno
import json
import os
import secrets
import shutil
import signal
import stat
import sys
import threading
import time
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import date, datetime
from pathlib import Path
from typing import Callable

import click

from pipeline.core import files
from pipeline.core.config import Config
from pipeline.core.errors import ConfigError, InputError, ReintegrateError
from pipeline.read.sniff import SPREADSHEET_SUFFIXES
from pipeline.core.printable import printable
from pipeline.core.ledger import Ledger
from pipeline.run import EXIT_OK, EXIT_REJECTED, EXIT_UNREADABLE, file_sha256, process_file

SUFFIXES = SPREADSHEET_SUFFIXES  # what `run` reads
PROCESSING, PROCESSED, FAILED, DUPLICATES = ".processing", "processed", "failed", "duplicates"
SHA_LOCKS = ".sha"  # inside .processing: one lock per input hash, so identical files are never run twice at once
LOCK, STATE = ".lock", ".state.json"
ERROR_NOTE, DUPLICATE_NOTE = ".error.txt", ".duplicate.txt"

DEFAULT_SETTLE = 5.0  # seconds a file's size and time must stay the same before it is taken
DEFAULT_RESCAN = 30.0  # seconds between full rescans (and recovery of dead watchers' claims) when no event arrives
DEFAULT_GRACE = 60.0  # seconds a workbook that looks half-copied (no zip end record) is waited for


class WatchStopped(ReintegrateError):
    """The setup, not the file, is wrong (config, templates, term dates): the file went back into the inbox and
    the watcher stops rather than fail every file in turn."""


# --- which files, and when --------------------------------------------------------------------------------------

def is_candidate(path: Path) -> bool:
    """A spreadsheet an officer dropped: not an Office lock file (`~$...`), hidden, temporary or a folder."""
    name = path.name
    if name.startswith((".", "~")) or path.suffix.lower() not in SUFFIXES:
        return False
    try:
        st = os.lstat(path)
    except OSError:
        return False
    if not stat.S_ISREG(st.st_mode):
        return False
    attributes = getattr(st, "st_file_attributes", 0)  # Windows: hidden and temporary files
    return not attributes & (getattr(stat, "FILE_ATTRIBUTE_HIDDEN", 2) | getattr(stat, "FILE_ATTRIBUTE_TEMPORARY", 0x100))


def candidates(inbox: str | Path) -> list[Path]:
    """The spreadsheets waiting in the inbox (top level only), oldest first."""
    found = []
    with os.scandir(inbox) as entries:
        for entry in entries:
            path = Path(entry.path)
            if is_candidate(path):
                try:
                    found.append((entry.stat(follow_symlinks=False).st_mtime_ns, path.name, path))
                except OSError:
                    continue
    return [path for _, _, path in sorted(found)]


def open_in_excel(path: Path) -> bool:
    """Excel keeps an owner file `~$name` (Word-style `~$` + name less two characters for long names) beside a
    workbook while it is open."""
    for tail in {path.name, path.name[2:]}:
        try:  # "~$" + a 255-byte name is too long to exist: that is "not open", not an error
            if tail and os.path.lexists(path.parent / f"~${tail}"):
                return True
        except (OSError, ValueError):
            continue
    return False


@dataclass(frozen=True)
class Seen:
    """What a file looked like, and since when (time.monotonic) it has looked like that."""
    size: int
    mtime_ns: int
    since: float


def observe(path: Path, previous: Seen | None, now: float) -> Seen | None:
    """The file's size and modification time now; `since` carries over while they do not change."""
    try:
        st = os.stat(path)
    except OSError:
        return None
    if previous and (previous.size, previous.mtime_ns) == (st.st_size, st.st_mtime_ns):
        return previous
    return Seen(st.st_size, st.st_mtime_ns, now)


def waiting_reason(path: Path, seen: Seen, *, now: float, settle: float = DEFAULT_SETTLE,
                   grace: float = DEFAULT_GRACE) -> str | None:
    """None when the file can be taken; otherwise why it is left for now."""
    if now - seen.since < settle:
        return "still being written"
    if open_in_excel(path):
        return "open in Excel (close it to have it processed)"
    try:
        complete = _looks_complete(path, seen.size)
    except OSError:
        return "cannot be opened yet"
    if not complete:
        age = max(now - seen.since, time.time() - seen.mtime_ns / 1e9)
        if age < grace:
            return "looks half-copied (waiting for the rest)"
    return None


def is_stable(path: Path, seen: Seen, *, now: float, settle: float = DEFAULT_SETTLE, grace: float = DEFAULT_GRACE) -> bool:
    """Unchanged (size and time) for `settle` seconds, openable, not open in Excel and not half-copied."""
    return waiting_reason(path, seen, now=now, settle=settle, grace=grace) is None


def _looks_complete(path: Path, size: int) -> bool:
    """Opens the file (which fails while another program holds it on Windows) and checks that a workbook has its
    zip end record: a copy stalled half-way has not. A file that is not a zip at all is complete (and will be
    reported as unreadable)."""
    with open(path, "rb") as fh:
        if size == 0:
            return False
        if path.suffix.lower() not in {".xlsx", ".xlsm"} or fh.read(4) != b"PK\x03\x04":
            return True
        fh.seek(max(0, size - 65_557))  # the end record (22 bytes) plus the longest zip comment
        return b"PK\x05\x06" in fh.read()


# --- locks and moves that never replace a file ---------------------------------------------------------------------

def _try_lock(fd: int) -> bool:
    if os.name == "nt":
        import msvcrt

        try:
            msvcrt.locking(fd, msvcrt.LK_NBLCK, 1)
            return True
        except OSError:
            return False
    import fcntl

    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        return True
    except OSError:
        return False


def _lock_file(path: Path, *, wait: bool) -> int | None:
    """An exclusive lock on `path` (created if need be), held until `_unlock`; the OS drops it when the process
    dies, however it dies. None when another process holds it (and not `wait`) or the folder is gone."""
    while True:
        try:
            fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
        except (FileNotFoundError, NotADirectoryError):
            return None
        if _try_lock(fd):
            try:
                current = os.path.samestat(os.fstat(fd), os.stat(path))
            except OSError:
                current = False
            if current:
                return fd
            # we locked a lock file its last holder had already removed: start again with the new one
        os.close(fd)
        if not wait:
            return None
        time.sleep(0.1)


def _unlock(fd: int, path: Path) -> None:
    """Remove the lock file and let go (POSIX: remove while still holding it, so a waiter notices)."""
    if os.name != "nt":
        _unlink(path)
        os.close(fd)
    else:
        os.close(fd)
        _unlink(path)


def _unlink(path: Path) -> None:
    try:
        os.unlink(path)
    except OSError:
        pass


_RENAMEAT2 = None
if sys.platform.startswith("linux"):
    try:
        _libc = ctypes.CDLL(None, use_errno=True)
        _RENAMEAT2 = _libc.renameat2
        _RENAMEAT2.argtypes = [ctypes.c_int, ctypes.c_char_p, ctypes.c_int, ctypes.c_char_p, ctypes.c_uint]
        _RENAMEAT2.restype = ctypes.c_int
    except (OSError, AttributeError):
        _RENAMEAT2 = None


def move_exclusive(src: Path, dest: Path) -> bool:
    """Move `src` to `dest` (same file system) unless `dest` exists; True when moved. Never replaces a file:
    renameat2(RENAME_NOREPLACE) on Linux, rename on Windows (which refuses to replace), else hard link then
    unlink (an interrupted earlier attempt that left both names is finished)."""
    if os.name == "nt":
        try:
            os.rename(src, dest)
            return True
        except FileExistsError:
            return False
    if _RENAMEAT2 is not None:
        if _RENAMEAT2(-100, os.fsencode(src), -100, os.fsencode(dest), 1) == 0:  # AT_FDCWD, RENAME_NOREPLACE
            return True
        err = ctypes.get_errno()
        if err == errno.EEXIST:
            return _finish_link(src, dest)
        if err not in (errno.EINVAL, errno.ENOSYS, errno.EOPNOTSUPP, errno.ENOTSUP):
            raise OSError(err, os.strerror(err), str(src))
    try:
        os.link(src, dest)
    except FileExistsError:
        return _finish_link(src, dest)
    except OSError:  # no hard links here (some network shares): check, then rename
        if os.path.lexists(dest):
            return False
        os.rename(src, dest)
        return True
    os.unlink(src)
    return True


def _finish_link(src: Path, dest: Path) -> bool:
    try:
        if os.path.samefile(src, dest):
            os.unlink(src)
            return True
    except OSError:
        pass
    return False


def _free_name(folder: Path, name: str, note_suffix: str = "") -> str:
    """`name`, or `name (2).xlsx`, ...: the first that is not taken (nor its note), shortened so that it and its
    note fit the file system (a 255-byte name in the inbox still gets its ".error.txt" beside it)."""
    name = files.fit_name(name, note_suffix + " (99)")
    stem, suffix = Path(name).stem, Path(name).suffix
    n = 1
    while True:
        candidate = name if n == 1 else f"{stem} ({n}){suffix}"
        if not os.path.lexists(folder / candidate) and not (note_suffix and os.path.lexists(folder / (candidate + note_suffix))):
            return candidate
        n += 1


def _write_note(path: Path, text: str) -> None:
    """A note beside an input in the shared inbox: written whole (temp then rename), with the folder's usual
    permissions so the officer who dropped the file can read it."""
    tmp = path.with_name(f".tmp-{secrets.token_hex(4)}")  # never longer than the note's own name
    with open(tmp, "x", encoding="utf-8") as fh:
        fh.write(text if text.endswith("\n") else text + "\n")
    os.replace(tmp, path)


def _mkdir(path: Path) -> Path:
    path.mkdir(parents=True, exist_ok=True)
    return path


# --- claims --------------------------------------------------------------------------------------------------------

@dataclass
class Claim:
    """A file this process has taken: `dir` is its claim folder, `input` the file in it, `fd` the held lock."""
    inbox: Path
    dir: Path
    input: Path | None
    fd: int

    @property
    def name(self) -> str:
        return self.input.name if self.input else self.dir.name


def _new_claim_dir(inbox: Path) -> Path:
    stamp = datetime.now().strftime("%Y%m%dT%H%M%S")
    return _mkdir(inbox / PROCESSING) / f"{stamp}-{os.getpid()}-{secrets.token_hex(4)}"  # made 0700 by claim()


def claim(path: str | Path, inbox: str | Path | None = None) -> Claim | None:
    """Take `path` out of the inbox into a claim folder of our own, atomically. None when another watcher took it
    first, it vanished, or it cannot be moved yet (Windows: still open in another program)."""
    path = Path(path)
    inbox = Path(inbox) if inbox is not None else path.parent
    folder = _new_claim_dir(inbox)
    try:
        folder.mkdir(mode=0o700)  # the owner's alone: nothing claimed can be swapped once it is in here
    except OSError:
        return None
    fd = _lock_file(folder / LOCK, wait=False)
    if fd is None:  # a recovering watcher took the empty folder for an abandoned one; it will remove it
        return None
    target = folder / path.name
    if _before_claim is not None:
        _before_claim(path)  # tests: swap the file for a link or a pipe between the check and the claim
    try:
        os.rename(path, target)  # the claim: of two watchers, exactly one rename succeeds
    except OSError:
        result = Claim(inbox, folder, None, fd)
        release(result)
        return None
    return Claim(inbox, folder, target, fd)


_before_claim = None  # a hook for tests only


def regular_file(path: Path) -> bool:
    """What was claimed is a regular file, opened without following a link and without waiting on a pipe,
    and judged by the descriptor it opened (a check on a name could be raced). The claim folder is the
    owner's alone, so the file cannot be swapped after this."""
    flags = os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_BINARY", 0)
    try:
        fd = os.open(path, flags)
    except OSError:  # a symbolic link (ELOOP), gone, or unreadable
        return False
    try:
        return stat.S_ISREG(os.fstat(fd).st_mode)
    finally:
        os.close(fd)


def release(c: Claim) -> None:
    """Remove a claim folder whose input has gone on (never deletes an input: rmdir fails on a non-empty folder)."""
    _unlink(c.dir / STATE)
    for leftover in c.dir.glob(".tmp-*"):
        _unlink(leftover)
    _unlock(c.fd, c.dir / LOCK)
    try:
        os.rmdir(c.dir)
    except OSError:
        pass


def _input_in(folder: Path) -> Path | None:
    try:
        names = sorted(n for n in os.listdir(folder) if not n.startswith("."))
    except OSError:
        return None
    return folder / names[0] if names else None


def _read_state(c: Claim) -> dict:
    try:
        return json.loads((c.dir / STATE).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}


def _write_state(c: Claim, state: dict) -> None:
    files.write_json(c.dir / STATE, state)


@contextmanager
def _sha_lock(inbox: Path, sha256: str):
    """Identical inputs are handled one at a time, so the second sees the first's run as 'already processed'."""
    path = _mkdir(inbox / PROCESSING / SHA_LOCKS) / f"{sha256}.lock"
    fd = _lock_file(path, wait=True)
    try:
        yield
    finally:
        if fd is not None:
            _unlock(fd, path)


# --- outcomes ------------------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Outcome:
    """What happened to one input. `status`: processed, failed, duplicate, or returned (put back in the inbox)."""
    name: str
    status: str
    dest: Path | None = None
    run_id: str | None = None
    rows: int = 0
    accepted: int = 0
    rejected: int = 0
    reason: str | None = None  # failed: the note's sentence; duplicate: the earlier run
    summary: str | None = None  # for the log: never the file's content
    recovered: bool = False
    run_dir: str | None = None  # processed: the run folder, whose validation report lists the rejected rows

    @property
    def exit_code(self) -> int | None:
        """SPEC 1's code for this file; None for a file put back in the inbox (it was not taken)."""
        return {"processed": EXIT_REJECTED if self.rejected else EXIT_OK, "failed": EXIT_UNREADABLE,
                "duplicate": EXIT_OK}.get(self.status)

    def line(self) -> str:
        """The log line: time, file, run id, counts; no pupil's name (a file's content never gets here)."""
        at = datetime.now().strftime("%Y-%m-%d %H:%M:%S")
        dest = self.dest.name if self.dest else ""
        if self.status == "processed":
            text = (f"run {self.run_id}: {self.rows} rows, {self.accepted} accepted, {self.rejected} rejected"
                    f" -> processed/{self.run_id}/")
            if self.rejected:  # processed, but not done with: say where the rows to fix are listed
                report = f"{self.run_dir}/validation-report.xlsx" if self.run_dir else "its validation-report.xlsx"
                text += (f"; {self.rejected} row{'s' if self.rejected != 1 else ''} REJECTED: fix the cells listed in "
                         f"{report} and save the workbook into the inbox again")
        elif self.status == "failed":
            text = f"failed -> failed/{dest}: {self.summary or self.reason}"
        elif self.status == "duplicate":
            text = f"duplicate of run {self.run_id}, not processed again -> processed/{DUPLICATES}/{dest}"
        else:
            text = f"{self.summary or 'interrupted'}; back in the inbox as {dest}"
        return f"{at} {self.name}: {text}{' (recovered after an interruption)' if self.recovered else ''}"


def _committed(state: dict) -> dict | None:
    """The ledger row of the claim's run, if the run got as far as its commit point."""
    ledger_path = Path(state.get("ledger", ""))
    if not state.get("run_id") or not ledger_path.is_file():
        return None
    with Ledger(ledger_path) as ledger:
        return ledger.run_info(state["run_id"])


def _place(c: Claim, folder: Path, state: dict, note_suffix: str = "") -> Path:
    """Move the claimed input into `folder` under a free name, recording the name in the journal first, so an
    interrupted move is finished under the same name."""
    _mkdir(folder)
    while c.input is not None and c.input.exists():
        dest = state.get("dest")
        if not dest or (os.path.lexists(folder / dest) and not _same(c.input, folder / dest)):
            state["dest"] = dest = _free_name(folder, c.input.name, note_suffix)
            _write_state(c, state)
        if move_exclusive(c.input, folder / dest):
            break
        state["dest"] = None
    return folder / state["dest"]


def _same(a: Path, b: Path) -> bool:
    try:
        return os.path.samefile(a, b)
    except OSError:
        return False


def _finish_processed(c: Claim, info: dict, *, recovered: bool = False) -> Outcome:
    run_id = info["run_id"]
    state = {**_read_state(c), "dest": c.input.name}
    dest = _place(c, c.inbox / PROCESSED / run_id, state)
    release(c)
    return Outcome(c.input.name, "processed", dest, run_id, info["rows"],
                   info["accepted"], info["rejected"], recovered=recovered, run_dir=info.get("run_dir"))


def _finish_noted(c: Claim, state: dict, *, recovered: bool = False) -> Outcome:
    """failed/ or processed/duplicates/, with its note beside it (written after the move, and again on
    recovery if the move was the last thing done)."""
    failed = state["step"] == "failed"
    folder = c.inbox / FAILED if failed else c.inbox / PROCESSED / DUPLICATES
    suffix = ERROR_NOTE if failed else DUPLICATE_NOTE
    name = c.input.name if c.input else state.get("name", "?")
    dest = _place(c, folder, state, suffix) if c.input else folder / state["dest"]
    note = dest.with_name(dest.name + suffix)
    if dest.exists() and not note.exists():
        _write_note(note, state["note"])
    release(c)
    if failed:
        return Outcome(name, "failed", dest, reason=state["note"], summary=state.get("summary"), recovered=recovered)
    return Outcome(name, "duplicate", dest, state.get("earlier"), reason=state["note"], recovered=recovered)


def _fail(c: Claim, sha256: str | None, note: str, summary: str | None = None) -> Outcome:
    state = {"step": "failed", "name": c.input.name, "sha256": sha256, "note": note, "summary": summary, "dest": None}
    _write_state(c, state)
    return _finish_noted(c, state)


def _return_to_inbox(c: Claim, *, recovered: bool = False, summary: str | None = None) -> Outcome:
    name = c.input.name
    state = {**_read_state(c), "dest": None}
    dest = c.inbox / name
    if _same(c.input, dest):  # an interrupted hard-link move left it under both names
        _unlink(c.input)
    while c.input.exists():
        dest = c.inbox / _free_name(c.inbox, name)
        if move_exclusive(c.input, dest):
            break
    release(c)
    return Outcome(name, "returned", dest, state.get("run_id"), summary=summary, recovered=recovered)


def _discard_run_dir(run_dir: Path, *, quiet: float = 0.0, limit: float = 60.0) -> None:
    """Remove an incomplete run folder (one with no ledger row). It is first left until nothing in it has
    changed for `quiet` seconds (worker processes of a killed watcher may still be finishing a batch), then
    renamed aside, so a straggler cannot write into it, and deleted."""
    if not run_dir.is_dir():
        return
    deadline = time.time() + limit
    while quiet > 0 and time.time() < deadline:
        if time.time() - _newest_change(run_dir) >= quiet:
            break
        time.sleep(min(quiet, 0.5))
    aside = run_dir.with_name(f".discarded-{run_dir.name}-{secrets.token_hex(2)}")
    try:
        os.rename(run_dir, aside)
    except OSError:
        aside = run_dir
    shutil.rmtree(aside, ignore_errors=True)


def _newest_change(folder: Path) -> float:
    newest = 0.0
    for root, dirs, names in os.walk(folder):
        for name in [".", *names]:
            try:
                newest = max(newest, os.lstat(os.path.join(root, name)).st_mtime)
            except OSError:
                continue
    return newest


# --- processing ------------------------------------------------------------------------------------------------------

def process_claimed(c: Claim, config: Config, *, as_of: date | None = None, documents: bool = True) -> Outcome:
    """Run one claimed file and move it on: processed/<run-id>/, failed/ or processed/duplicates/.

    Journal: the run id is chosen and written to the claim's `.state.json` before `process_file` creates the
    run folder, and the ledger row `process_file` writes last is the commit point; so after a crash `recover`
    knows which run folder belongs to the file and whether it is complete.
    """
    name = c.input.name
    if not regular_file(c.input):  # swapped for a link or a pipe after it was looked at: never read
        return _fail(c, None, f"{name}: this is not a regular file (a link or a pipe took its place in the inbox), "
                              "so it was not read; save the spreadsheet into the inbox again")
    try:
        sha256 = file_sha256(c.input)
    except OSError as exc:
        return _fail(c, None, f"{name}: the file could not be read ({exc.strerror or exc})")
    kind = "run" if documents else "validate"
    with _sha_lock(c.inbox, sha256):
        try:
            with Ledger(config.ledger_path) as ledger:
                earlier = ledger.run_for_input(sha256, kind)
                info = ledger.run_info(earlier) if earlier else None
        except BaseException:  # the ledger cannot be read: nothing started, so the file waits for another try
            _return_to_inbox(c)
            raise
        if info:
            note = (f"{name} is identical (SHA-256 {sha256[:16]}...) to {info['input_name']}, already processed by run "
                    f"{info['run_id']} on {info['started_at']} (documents in {info['run_dir']}); it was not processed again.")
            state = {"step": "duplicate", "name": name, "sha256": sha256, "earlier": info["run_id"], "note": note,
                     "dest": None}
            _write_state(c, state)
            return _finish_noted(c, state)
        run_id = files.new_run_id()
        state = {"step": "run", "name": name, "sha256": sha256, "run_id": run_id, "kind": kind,
                 "run_dir": str((Path(config.outbox) / run_id).absolute()),
                 "ledger": str(Path(config.ledger_path).absolute())}
        _write_state(c, state)
        try:
            result = process_file(c.input, config=config, as_of=as_of or date.today(), documents=documents,
                                  run_id=run_id)
        except BaseException as exc:
            if (done := _committed(state)) is not None:  # failed after its commit point: the run stands
                return _finish_processed(c, done)
            _discard_run_dir(Path(state["run_dir"]))
            if isinstance(exc, InputError):
                return _fail(c, sha256, str(exc))
            if isinstance(exc, ReintegrateError):
                _return_to_inbox(c)
                raise WatchStopped(f"{exc} ({name} is back in the inbox)") from None
            error = files.os_error(exc)
            if error is not None and isinstance(exc, Exception) and error.errno in files.ENVIRONMENT_ERRNOS:
                # the disk, not the file: try it again later
                return _return_to_inbox(c, summary=f"the run could not be written ({error.strerror or error}); "
                                                   "left in the inbox to be tried again")
            if isinstance(exc, Exception):
                return _fail(c, sha256, f"{name}: could not be processed because of an unexpected error "
                                        f"({type(exc).__name__}: {exc}); please report it",
                             summary=f"unexpected error ({type(exc).__name__}); its note has the details")
            _return_to_inbox(c)  # interrupted (Ctrl-C): as if never taken
            raise
    return _finish_processed(c, {"run_id": result.run_id, "rows": result.rows, "accepted": result.accepted,
                                 "rejected": result.rejected, "run_dir": str(result.run_dir)})


def recover(inbox: str | Path, *, quiet: float = DEFAULT_SETTLE, skip: set[Path] = frozenset()) -> list[Outcome]:
    """Resolve the claims of watchers that died (their lock is free), the same way every time:

    - journal says a run was started and the ledger has its row: finish it (input to processed/<run-id>/);
    - a run was started but has no ledger row: delete its run folder, put the input back in the inbox;
    - the journal decided failed or duplicate: finish that move and write its note;
    - no journal yet: put the input back in the inbox.
    Claims of live watchers (lock held) are left alone, so a watcher may run this while others work.
    """
    inbox = Path(inbox)
    outcomes = []
    try:
        folders = sorted(p for p in (inbox / PROCESSING).iterdir() if p.is_dir() and not p.name.startswith("."))
    except OSError:
        return outcomes
    for lock in (inbox / PROCESSING / SHA_LOCKS).glob("*.lock"):  # left by killed watchers: tidy up
        if (fd := _lock_file(lock, wait=False)) is not None:
            _unlock(fd, lock)
    for folder in folders:
        if folder in skip:
            continue
        fd = _lock_file(folder / LOCK, wait=False)
        if fd is None:
            continue  # a live watcher's claim, or already gone
        c = Claim(inbox, folder, _input_in(folder), fd)
        outcome = _resolve(c, quiet=quiet)
        if outcome is not None:
            outcomes.append(outcome)
    return outcomes


def _resolve(c: Claim, *, quiet: float) -> Outcome | None:
    state = _read_state(c)
    step = state.get("step")
    if step == "run":
        done = _committed(state)
        if done is not None:
            if c.input is not None:
                return _finish_processed(c, done, recovered=True)
        else:
            _discard_run_dir(Path(state["run_dir"]), quiet=quiet)
            if c.input is not None:
                return _return_to_inbox(c, recovered=True,
                                        summary=f"interrupted run {state['run_id']} was incomplete and was removed")
    elif step in ("failed", "duplicate") and (c.input is not None or state.get("dest")):
        return _finish_noted(c, state, recovered=True)
    elif c.input is not None:
        return _return_to_inbox(c, recovered=True, summary="taken but not started")
    release(c)
    return None


# --- the watcher ----------------------------------------------------------------------------------------------------

def _echo(line: str) -> None:
    click.echo(line)


class Watcher:
    """`reintegrate watch`: recovery at start, then passes over the inbox, woken by watchdog's events (or its
    polling observer) and in any case every `rescan` seconds, so nothing is missed on shares where events
    do not arrive."""

    def __init__(self, config: Config, *, settle: float = DEFAULT_SETTLE, rescan: float = DEFAULT_RESCAN,
                 grace: float = DEFAULT_GRACE, as_of: date | None = None, documents: bool = True,
                 log: Callable[[str], None] = _echo):
        self.config = config
        self.inbox = Path(config.inbox)
        self.settle, self.rescan, self.grace = settle, rescan, grace
        self.as_of, self.documents = as_of, documents
        self.log = lambda line: log(printable(line))  # a file name may hold a newline or a terminal escape
        self.seen: dict[Path, Seen] = {}
        self.told: dict[Path, tuple] = {}  # what we last said about a waiting file, so it is said once
        self.outcomes: list[Outcome] = []
        self.stopping = threading.Event()
        self.wake = threading.Event()
        self.own: set[Path] = set()

    def stop(self) -> None:
        self.stopping.set()
        self.wake.set()

    def check_inbox(self) -> None:
        if not self.inbox.is_dir():
            raise ConfigError(f"the inbox folder {self.inbox} does not exist (or the share is not connected); "
                              f"create it or pass --inbox")
        _mkdir(self.inbox / PROCESSING)

    def report(self, outcome: Outcome) -> None:
        self.outcomes.append(outcome)
        self.log(outcome.line())

    def recover(self) -> None:
        for outcome in recover(self.inbox, quiet=self.settle, skip=self.own):
            self.report(outcome)

    def scan(self) -> list[Path]:
        """Look at the inbox once; the files that can be taken now."""
        now = time.monotonic()
        seen = {}
        ready = []
        for path in candidates(self.inbox):
            s = observe(path, self.seen.get(path), now)
            if s is None:
                continue
            seen[path] = s
            reason = waiting_reason(path, s, now=now, settle=self.settle, grace=self.grace)
            if reason is None:
                ready.append(path)
            elif reason != "still being written" and self.told.get(path) != (reason, s.size, s.mtime_ns):
                self.told[path] = (reason, s.size, s.mtime_ns)
                self.log(f"{datetime.now():%Y-%m-%d %H:%M:%S} {path.name}: waiting: {reason}")
        self.seen = seen
        self.told = {path: said for path, said in self.told.items() if path in seen}
        return ready

    def take(self, path: Path) -> Outcome | None:
        c = claim(path, self.inbox)
        if c is None:
            return None
        self.own.add(c.dir)
        try:
            outcome = process_claimed(c, self.config, as_of=self.as_of, documents=self.documents)
        finally:
            self.own.discard(c.dir)
        self.seen.pop(path, None)
        self.told.pop(path, None)
        self.report(outcome)
        return outcome

    def once(self) -> int:
        """Every file unchanged for `settle` seconds is processed; one still being written is left for the next
        pass. Returns the worst exit code of the files taken."""
        self.check_inbox()
        self.recover()
        if self.scan() or self.seen:
            time.sleep(self.settle)
            for path in self.scan():
                if self.stopping.is_set():
                    break
                self.take(path)
            for path, s in self.seen.items():
                if path.exists() and self.told.get(path) is None:
                    self.log(f"{datetime.now():%Y-%m-%d %H:%M:%S} {path.name}: still being written, left for the next pass")
        return self.exit_code()

    def exit_code(self) -> int:
        return max((o.exit_code for o in self.outcomes if o.exit_code is not None), default=EXIT_OK)

    def forever(self, *, poll: bool = False) -> int:
        self.check_inbox()
        observer = self._observer(poll)
        try:
            next_recovery = 0.0
            last_scan = 0.0
            while not self.stopping.is_set():
                now = time.monotonic()
                try:
                    if now >= next_recovery:
                        self.recover()
                        next_recovery = now + self.rescan
                    self.wake.clear()
                    last_scan = time.monotonic()
                    for path in self.scan():
                        if self.stopping.is_set():
                            break
                        self.take(path)
                except OSError as exc:  # the share went away for a moment: try again on the next pass
                    self.log(f"{datetime.now():%Y-%m-%d %H:%M:%S} inbox not reachable ({exc.strerror or exc}); retrying")
                    self.seen = {}
                pending = bool(self.seen)
                self.wake.wait(max(0.05, self.settle / 2) if pending else self.rescan)
                # events arrive in bursts while a file is copied: look at most a few times a second
                pause = 0.25 - (time.monotonic() - last_scan)
                if pause > 0 and not self.stopping.is_set():
                    self.stopping.wait(pause)
        finally:
            if observer is not None:
                observer.stop()
                observer.join(timeout=5)
        return EXIT_OK

    def _observer(self, poll: bool):
        from watchdog.events import FileSystemEventHandler
        from watchdog.observers import Observer
        from watchdog.observers.polling import PollingObserver

        wake = self.wake

        class Wake(FileSystemEventHandler):
            def on_any_event(self, event):
                wake.set()

        kinds = [("polling", lambda: PollingObserver(timeout=max(1.0, min(self.settle, 10.0))))]
        if not poll:
            kinds.insert(0, ("file system events", Observer))
        for label, make in kinds:
            observer = make()
            try:
                observer.schedule(Wake(), str(self.inbox), recursive=False)
                observer.start()
            except Exception as exc:  # e.g. inotify's watch limit: fall back to polling
                self.log(f"{datetime.now():%Y-%m-%d %H:%M:%S} {label} unavailable ({exc}); falling back")
                continue
            self.log(f"{datetime.now():%Y-%m-%d %H:%M:%S} watching {self.inbox} ({label}, full rescan every "
                     f"{self.rescan:g}s), runs in {self.config.outbox}")
            return observer
        return None


def _interrupt(watcher: "Watcher") -> None:
    """Ctrl+C stops the watcher like SIGTERM (exit 0, the file in hand finished); a second Ctrl+C stops at once
    (what was claimed is put back by the next start's recovery)."""
    if watcher.stopping.is_set():
        raise KeyboardInterrupt
    watcher.stop()


def watch(config: Config, *, once: bool = False, poll: bool = False, settle: float = DEFAULT_SETTLE,
          rescan: float = DEFAULT_RESCAN, grace: float = DEFAULT_GRACE, as_of: date | None = None,
          documents: bool = True, log: Callable[[str], None] = _echo, handle_signals: bool = False) -> int:
    """`reintegrate watch`. With `once`, process what is there and return the worst exit code of the files
    taken; otherwise run until stopped (SIGTERM: the file in hand is finished first). `as_of` None means the
    day each file is processed. Raises ConfigError (no inbox) and WatchStopped (the setup is wrong)."""
    watcher = Watcher(config, settle=settle, rescan=rescan, grace=grace, as_of=as_of, documents=documents, log=log)
    if handle_signals and threading.current_thread() is threading.main_thread() and hasattr(signal, "SIGTERM"):
        signal.signal(signal.SIGTERM, lambda *_: watcher.stop())
        if not once:
            signal.signal(signal.SIGINT, lambda *_: _interrupt(watcher))
    return watcher.once() if once else watcher.forever(poll=poll)


# `python -m pipeline.watch.inbox` is `reintegrate watch`: one command, defined once, in pipeline.cli.main
if __name__ == "__main__":
    from pipeline.cli.main import main

    main(["watch", *sys.argv[1:]])
