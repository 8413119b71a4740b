"""Moving a claimed input on to where its outcome says, and letting its claim go: processed/<run-id>/, failed/
or processed/duplicates/ (with its note beside it), or back into the inbox; and removing the run folder of a
run that never reached its commit point. Each move is recorded in the journal first, so a move interrupted by
a crash is finished under the same name."""

from __future__ import annotations

import os
import secrets
import shutil
import time
from pathlib import Path

from pipeline.watch.claims import Claim, release
from pipeline.watch.journal import read_state, write_state
from pipeline.watch.layout import DUPLICATE_NOTE, DUPLICATES, ERROR_NOTE, FAILED, PROCESSED, make_folder
from pipeline.watch.locks import unlink_quietly
from pipeline.watch.moves import free_name, move_exclusive, same_file
from pipeline.watch.notes import write_note
from pipeline.watch.outcomes import Outcome


def _place(c: Claim, folder: Path, state: dict, note_suffix: str = "") -> Path:
    """Move the claimed input into `folder` under a free name, recording the name in the journal first, so an
    interrupted move is finished under the same name."""
    make_folder(folder)
    while c.input is not None and c.input.exists():
        dest = state.get("dest")
        if not dest or (os.path.lexists(folder / dest) and not same_file(c.input, folder / dest)):
            state["dest"] = dest = free_name(folder, c.input.name, note_suffix)
            write_state(c, state)
        if move_exclusive(c.input, folder / dest):
            break
        state["dest"] = None
    return folder / state["dest"]


def finish_processed(c: Claim, info: dict, *, recovered: bool = False) -> Outcome:
    """The run stands (its ledger row `info` is written): the input goes to processed/<run-id>/."""
    run_id = info["run_id"]
    state = {**read_state(c), "dest": c.input.name}
    dest = _place(c, c.inbox / PROCESSED / run_id, state)
    release(c)
    return Outcome(c.input.name, "processed", dest, run_id, info["rows"],
                   info["accepted"], info["rejected"], recovered=recovered, run_dir=info.get("run_dir"))


def finish_noted(c: Claim, state: dict, *, recovered: bool = False) -> Outcome:
    """failed/ or processed/duplicates/, with its note beside it (written after the move, and again on
    recovery if the move was the last thing done)."""
    failed = state["step"] == "failed"
    folder = c.inbox / FAILED if failed else c.inbox / PROCESSED / DUPLICATES
    suffix = ERROR_NOTE if failed else DUPLICATE_NOTE
    name = c.input.name if c.input else state.get("name", "?")
    dest = _place(c, folder, state, suffix) if c.input else folder / state["dest"]
    note = dest.with_name(dest.name + suffix)
    if dest.exists() and not note.exists():
        write_note(note, state["note"])
    release(c)
    if failed:
        return Outcome(name, "failed", dest, reason=state["note"], summary=state.get("summary"), recovered=recovered)
    return Outcome(name, "duplicate", dest, state.get("earlier"), reason=state["note"], recovered=recovered)


def fail(c: Claim, sha256: str | None, note: str, summary: str | None = None) -> Outcome:
    """The file cannot be processed: to failed/, with `note` (the sentence the officer reads) beside it."""
    state = {"step": "failed", "name": c.input.name, "sha256": sha256, "note": note, "summary": summary, "dest": None}
    write_state(c, state)
    return finish_noted(c, state)


def return_to_inbox(c: Claim, *, recovered: bool = False, summary: str | None = None) -> Outcome:
    """Put the input back into the inbox (under a free name), as if it had never been taken."""
    name = c.input.name
    state = {**read_state(c), "dest": None}
    dest = c.inbox / name
    if same_file(c.input, dest):  # an interrupted hard-link move left it under both names
        unlink_quietly(c.input)
    while c.input.exists():
        dest = c.inbox / free_name(c.inbox, name)
        if move_exclusive(c.input, dest):
            break
    release(c)
    return Outcome(name, "returned", dest, state.get("run_id"), summary=summary, recovered=recovered)


def discard_run_dir(run_dir: Path, *, quiet: float = 0.0, limit: float = 60.0) -> None:
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
