"""Writing outputs safely: atomic (temp file then rename), owner-only, with safe file names.

Every file the tool writes goes through here, so a crash never leaves a half-written plan or report and no
output is readable by other users of a shared machine.
"""

from __future__ import annotations

import json
import os
import re
import secrets
import tempfile
import unicodedata
from contextlib import contextmanager
from datetime import datetime, timezone
from pathlib import Path

FILE_MODE = 0o600
DIR_MODE = 0o700

# characters Windows forbids in file names, path separators and control characters
_FORBIDDEN = re.compile(r'[<>:"/\\|?*\x00-\x1f\x7f]')
_RESERVED = {"CON", "PRN", "AUX", "NUL", *(f"COM{i}" for i in range(1, 10)), *(f"LPT{i}" for i in range(1, 10))}


def safe_name_part(text: str, limit: int = 60) -> str:
    """A piece of a file name: unicode letters kept readable, anything a file system could misread replaced."""
    text = unicodedata.normalize("NFC", str(text)).strip()
    # invisible format characters (a right-to-left override can disguise ".docx" as "xcod.exe"), line and
    # paragraph separators
    text = "".join(ch for ch in text if unicodedata.category(ch) not in ("Cf", "Cc", "Zl", "Zp", "Cs", "Co", "Cn"))
    text = _FORBIDDEN.sub("-", text)
    text = re.sub(r"\s+", "-", text)
    text = re.sub(r"-{2,}", "-", text).strip(" .-")
    text = text[:limit].rstrip(" .-")
    if not text or set(text) <= {"."}:
        return "unnamed"
    if text.split(".")[0].upper() in _RESERVED:
        text = "_" + text
    return text


def make_dir(path: Path) -> Path:
    path.mkdir(parents=True, exist_ok=True, mode=DIR_MODE)
    return path


@contextmanager
def atomic_path(path: str | Path):
    """Yield a temporary path beside `path`; on success it is made owner-only and renamed into place."""
    path = Path(path)
    make_dir(path.parent)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".tmp-", suffix=path.suffix)
    os.close(fd)
    try:
        yield Path(tmp)
        os.chmod(tmp, FILE_MODE)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def write_bytes(path: str | Path, data: bytes) -> None:
    with atomic_path(path) as tmp:
        tmp.write_bytes(data)


def write_text(path: str | Path, text: str) -> None:
    write_bytes(path, text.encode("utf-8"))


def write_json(path: str | Path, data) -> None:
    write_text(path, json.dumps(data, indent=2, ensure_ascii=False, default=str) + "\n")


def new_run_id() -> str:
    """Sorts by time (UTC, microseconds) and never collides (random suffix; the folder is created exclusively)."""
    return datetime.now(timezone.utc).strftime("%Y%m%dT%H%M%S%fZ") + "-" + secrets.token_hex(2)


def create_run_dir(outbox: str | Path) -> tuple[str, Path]:
    outbox = make_dir(Path(outbox))
    while True:
        run_id = new_run_id()
        run_dir = outbox / run_id
        try:
            run_dir.mkdir(mode=DIR_MODE)
            return run_id, run_dir
        except FileExistsError:
            continue
