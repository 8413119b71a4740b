"""Recovery: resolving the claims of watchers that died (their lock is free), the same way every time, so a
kill at any moment loses nothing (docs/watch.md writes the rule out)."""

from __future__ import annotations

from pathlib import Path

from pipeline.watch.claims import Claim, input_in, release
from pipeline.watch.finish import discard_run_dir, finish_noted, finish_processed, return_to_inbox
from pipeline.watch.journal import committed, read_state
from pipeline.watch.layout import DEFAULT_SETTLE, LOCK, PROCESSING, SHA_LOCKS
from pipeline.watch.locks import lock_file, unlock
from pipeline.watch.outcomes import Outcome


def recover(inbox: str | Path, *, quiet: float = DEFAULT_SETTLE, skip: set[Path] = frozenset()) -> list[Outcome]:
    """Resolve the claims of watchers that died (their lock is free), the same way every time:

    - journal says a run was started and the ledger has its row: finish it (input to processed/<run-id>/);
    - a run was started but has no ledger row: delete its run folder, put the input back in the inbox;
    - the journal decided failed or duplicate: finish that move and write its note;
    - no journal yet: put the input back in the inbox.
    Claims of live watchers (lock held) are left alone, so a watcher may run this while others work.
    """
    inbox = Path(inbox)
    outcomes = []
    try:
        folders = sorted(p for p in (inbox / PROCESSING).iterdir() if p.is_dir() and not p.name.startswith("."))
    except OSError:
        return outcomes
    for lock in (inbox / PROCESSING / SHA_LOCKS).glob("*.lock"):  # left by killed watchers: tidy up
        if (fd := lock_file(lock, wait=False)) is not None:
            unlock(fd, lock)
    for folder in folders:
        if folder in skip:
            continue
        fd = lock_file(folder / LOCK, wait=False)
        if fd is None:
            continue  # a live watcher's claim, or already gone
        c = Claim(inbox, folder, input_in(folder), fd)
        outcome = _resolve(c, quiet=quiet)
        if outcome is not None:
            outcomes.append(outcome)
    return outcomes


def _resolve(c: Claim, *, quiet: float) -> Outcome | None:
    state = read_state(c)
    step = state.get("step")
    if step == "run":
        done = committed(state)
        if done is not None:
            if c.input is not None:
                return finish_processed(c, done, recovered=True)
        else:
            discard_run_dir(Path(state["run_dir"]), quiet=quiet)
            if c.input is not None:
                return return_to_inbox(c, recovered=True,
                                       summary=f"interrupted run {state['run_id']} was incomplete and was removed")
    elif step in ("failed", "duplicate") and (c.input is not None or state.get("dest")):
        return finish_noted(c, state, recovered=True)
    elif c.input is not None:
        return return_to_inbox(c, recovered=True, summary="taken but not started")
    release(c)
    return None
