"""Notes beside inputs in the shared inbox: `failed/<name>.error.txt` holds the sentence the CLI prints for the
file, `processed/duplicates/<name>.duplicate.txt` names the run that already processed the same file."""

from __future__ import annotations

import os
import secrets
from pathlib import Path


def write_note(path: Path, text: str) -> None:
    """A note beside an input in the shared inbox: written whole (temp then rename), with the folder's usual
    permissions so the officer who dropped the file can read it."""
    tmp = path.with_name(f".tmp-{secrets.token_hex(4)}")  # never longer than the note's own name
    with open(tmp, "x", encoding="utf-8") as fh:
        fh.write(text if text.endswith("\n") else text + "\n")
    os.replace(tmp, path)
