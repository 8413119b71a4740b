"""Notes beside inputs in the shared inbox: `failed/<name>.error.txt` holds the sentence the CLI prints for the
file, `processed/duplicates/<name>.duplicate.txt` names the run that already processed the same file."""

from __future__ import annotations

import os
from pathlib import Path

from pipeline.core import files

NOTE_MODE = 0o666  # less the umask: the folder's usual permissions, so the officer who dropped the file can read it


def write_note(path: Path, text: str) -> None:
    """A note beside an input in the shared inbox: written whole (files.write_bytes), with the folder's usual
    permissions, ending in a newline, with the line endings of a text file on this system."""
    if not text.endswith("\n"):
        text += "\n"
    files.write_bytes(path, text.replace("\n", os.linesep).encode("utf-8"), mode=NOTE_MODE)
