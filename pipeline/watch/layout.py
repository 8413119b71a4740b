"""Where things are in a watched inbox, and how long the watcher waits: the folder and file names every part of
the watcher shares (docs/watch.md draws the layout).

    inbox/referrals.xlsx                      waiting
    inbox/.processing/<claim>/referrals.xlsx  claimed by one watcher, beside its `.lock` and `.state.json`
    inbox/.processing/.sha/<sha256>.lock      one lock per input hash, so identical files never run at once
    inbox/processed/<run-id>/referrals.xlsx   done
    inbox/processed/duplicates/copy.xlsx      identical to an input already processed (+ .duplicate.txt)
    inbox/failed/broken.xlsx                  unreadable (+ .error.txt)
"""

from __future__ import annotations

from pathlib import Path

from pipeline.read.sniff import SPREADSHEET_SUFFIXES

SUFFIXES = SPREADSHEET_SUFFIXES  # what `run` reads
PROCESSING, PROCESSED, FAILED, DUPLICATES = ".processing", "processed", "failed", "duplicates"
SHA_LOCKS = ".sha"  # inside .processing: one lock per input hash, so identical files are never run twice at once
LOCK, STATE = ".lock", ".state.json"
ERROR_NOTE, DUPLICATE_NOTE = ".error.txt", ".duplicate.txt"

DEFAULT_SETTLE = 5.0  # seconds a file's size and time must stay the same before it is taken
DEFAULT_RESCAN = 30.0  # seconds between full rescans (and recovery of dead watchers' claims) when no event arrives
DEFAULT_GRACE = 60.0  # seconds a workbook that looks half-copied (no zip end record) is waited for


def make_folder(path: Path) -> Path:
    """A folder of the shared inbox, made with the share's usual permissions (the officers use these folders)."""
    path.mkdir(parents=True, exist_ok=True)
    return path
