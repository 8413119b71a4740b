"""Claiming a file: taking it out of the inbox into a claim folder of our own (0700, with a held `.lock`), so
that of several watchers exactly one has it, and letting the folder go once its input has moved on."""

from __future__ import annotations

import os
import secrets
import stat
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from pipeline.watch.layout import LOCK, PROCESSING, STATE, make_folder
from pipeline.watch.locks import lock_file, unlink_quietly, unlock


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
    return make_folder(inbox / PROCESSING) / f"{stamp}-{os.getpid()}-{secrets.token_hex(4)}"  # made 0700 by claim()


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
    fd = lock_file(folder / LOCK, wait=False)
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
    unlink_quietly(c.dir / STATE)
    for leftover in c.dir.glob(".tmp-*"):
        unlink_quietly(leftover)
    unlock(c.fd, c.dir / LOCK)
    try:
        os.rmdir(c.dir)
    except OSError:
        pass


def input_in(folder: Path) -> Path | None:
    """The input in a claim folder (the one name not starting with a dot), if it is still there."""
    try:
        names = sorted(n for n in os.listdir(folder) if not n.startswith("."))
    except OSError:
        return None
    return folder / names[0] if names else None
