"""Moving a file within one file system without ever replacing another (renameat2 on Linux, rename on Windows,
else hard link then unlink), and choosing a free name for it in a shared folder."""

from __future__ import annotations

import ctypes
import errno
import os
import sys
from pathlib import Path

from pipeline.core import files

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


def same_file(a: Path, b: Path) -> bool:
    """Both names are one file (an interrupted hard-link move leaves a file under two names)."""
    try:
        return os.path.samefile(a, b)
    except OSError:
        return False


def free_name(folder: Path, name: str, note_suffix: str = "") -> str:
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
