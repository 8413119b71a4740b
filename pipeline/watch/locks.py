"""Exclusive file locks (flock on POSIX, msvcrt on Windows) that the OS drops when their process dies, however
it dies: a claim folder's `.lock` and the per-hash locks are these."""

from __future__ import annotations

import os
import time
from pathlib import Path


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


def lock_file(path: Path, *, wait: bool) -> int | None:
    """An exclusive lock on `path` (created if need be), held until `unlock`; the OS drops it when the process
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


def unlock(fd: int, path: Path) -> None:
    """Remove the lock file and let go (POSIX: remove while still holding it, so a waiter notices)."""
    if os.name != "nt":
        unlink_quietly(path)
        os.close(fd)
    else:
        os.close(fd)
        unlink_quietly(path)


def unlink_quietly(path: Path) -> None:
    """Remove `path` if it can be removed; gone already is fine."""
    try:
        os.unlink(path)
    except OSError:
        pass
