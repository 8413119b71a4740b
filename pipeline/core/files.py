"""Writing outputs safely: atomic (temp file then rename), owner-only, with safe file names.

Every file the tool writes goes through here, so a crash never leaves a half-written plan or report and no
output is readable by other users of a shared machine.
"""

from __future__ import annotations

import errno
import hashlib
import json
import os
import re
import secrets
import stat
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


NAME_BYTES = 255  # a file name's length on every file system we meet is counted in bytes (UTF-8 on Linux)


def fit_bytes(text: str, limit: int) -> str:
    """`text` cut, at a character boundary, to at most `limit` bytes of UTF-8."""
    data = text.encode("utf-8")
    return text if len(data) <= limit else data[:limit].decode("utf-8", "ignore")


def fit_name(name: str, extra: str = "", limit: int = NAME_BYTES) -> str:
    """A file name that fits the file system with `extra` (a note's ".error.txt", a " (2)") added: the stem is
    shortened, the suffix kept."""
    stem, dot, suffix = name.rpartition(".") if "." in name[1:] else (name, "", "")
    suffix = dot + suffix
    room = limit - len((suffix + extra).encode("utf-8"))
    return fit_bytes(stem, max(room, 1)) + suffix


def safe_name_part(text: str, limit: int = 60, limit_bytes: int | None = None) -> str:
    """A piece of a file name: unicode letters kept readable, anything a file system could misread replaced;
    at most `limit` characters and `limit_bytes` bytes (a name in another script takes 3 bytes a letter)."""
    text = unicodedata.normalize("NFC", str(text)).strip()
    # invisible format characters (a right-to-left override can disguise ".docx" as "xcod.exe"), line and
    # paragraph separators
    text = "".join(ch for ch in text if unicodedata.category(ch) not in ("Cf", "Cc", "Zl", "Zp", "Cs", "Co", "Cn"))
    text = _FORBIDDEN.sub("-", text)
    text = re.sub(r"\s+", "-", text)
    text = re.sub(r"-{2,}", "-", text).strip(" .-")
    text = text[:limit]
    if limit_bytes is not None:
        text = fit_bytes(text, limit_bytes)
    text = text.rstrip(" .-")
    if not text or set(text) <= {"."}:
        return "unnamed"
    if text.split(".")[0].upper() in _RESERVED:
        text = "_" + text
    return text


def os_error(exc: BaseException) -> OSError | None:
    """The OSError behind `exc` (a full disk, a read-only share), if any: libraries wrap it (XlsxWriter's
    FileCreateError holds it as its argument), so its cause, context and arguments are looked through too."""
    seen = set()
    while exc is not None and id(exc) not in seen:
        seen.add(id(exc))
        if isinstance(exc, OSError):
            return exc
        inner = next((a for a in getattr(exc, "args", ()) if isinstance(a, BaseException)), None)
        exc = inner or exc.__cause__ or exc.__context__
    return None


OUT_OF_SPACE = {errno.ENOSPC, getattr(errno, "EDQUOT", errno.ENOSPC)}
ENVIRONMENT_ERRNOS = OUT_OF_SPACE | {errno.EROFS, errno.EIO}  # the disk or share, not the input: try again later


def tighten_outbox(path: Path) -> bool:
    """An outbox anyone may write to (0777) lets anyone plant or swap files among pupils' documents: it is made
    owner-only. True when it was changed."""
    try:
        st = os.lstat(path)
    except OSError:
        return False
    if not stat.S_ISDIR(st.st_mode) or not st.st_mode & 0o002:
        return False
    os.chmod(path, DIR_MODE)
    return True


def make_dir(path: Path) -> Path:
    path.mkdir(parents=True, exist_ok=True, mode=DIR_MODE)
    return path


@contextmanager
def atomic_path(path: str | Path):
    """Yield a temporary path beside `path`, for a library that writes by file name (XlsxWriter, openpyxl);
    on success it is made owner-only and renamed into place."""
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


_CREATE = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_BINARY", 0) | getattr(os, "O_CLOEXEC", 0)


def write_bytes(path: str | Path, data: bytes, *, mode: int = FILE_MODE, replace: bool = True) -> bool:
    """The one atomic writer: `data` goes to a new temporary name beside `path` (created with `mode`, so
    owner-only from the first byte unless asked otherwise; the umask still applies), then takes `path`'s name
    in one step, so no reader ever sees half a file. `replace=False` never overwrites: False when `path`
    already exists (even one made a moment ago). A run writes thousands of documents through here, so it
    costs one open, the writes and a rename."""
    path = os.fspath(path)
    folder, name = os.path.split(path)
    tmp = os.path.join(folder, f".tmp-{secrets.token_hex(4)}")  # short: never longer than the final name
    try:
        fd = os.open(tmp, _CREATE, mode)
    except FileNotFoundError:
        make_dir(Path(folder or "."))
        fd = os.open(tmp, _CREATE, mode)
    try:
        try:
            view = memoryview(data)
            while view:
                view = view[os.write(fd, view):]
        finally:
            os.close(fd)
        if replace:
            os.replace(tmp, path)
            return True
        return _link_new(tmp, path, data, mode)
    finally:
        if os.path.lexists(tmp):
            os.unlink(tmp)


def _link_new(tmp: str, path: str, data: bytes, mode: int) -> bool:
    try:
        os.link(tmp, path)  # fails if the name is taken, even by a file made a moment ago
    except FileExistsError:
        return False
    except OSError:  # a file system without hard links: create exclusively instead
        try:
            fd = os.open(path, _CREATE, mode)
        except FileExistsError:
            return False
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
    return True


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


def file_sha256(path: Path) -> str:
    """The SHA-256 of a file's bytes, read a megabyte at a time."""
    digest = hashlib.sha256()
    with Path(path).open("rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()
