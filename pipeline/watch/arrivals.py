"""Which files in the inbox are spreadsheets an officer dropped, and when one has stopped changing and can be
taken: not still being copied, not open in Excel, not half-copied."""

from __future__ import annotations

import os
import stat
import time
from dataclasses import dataclass
from pathlib import Path

from pipeline.watch.layout import DEFAULT_GRACE, DEFAULT_SETTLE, SUFFIXES


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
