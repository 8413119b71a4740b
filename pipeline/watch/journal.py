"""A claim's journal (`.state.json` in its claim folder): how far the file got, written before each step, so
that after a crash recovery knows which run folder belongs to the file and whether the run reached its commit
point (the ledger row `process_file` writes last). Also the lock that keeps identical inputs one at a time."""

from __future__ import annotations

import json
from contextlib import contextmanager
from pathlib import Path

from pipeline.core import files
from pipeline.core.ledger import Ledger
from pipeline.watch.claims import Claim
from pipeline.watch.layout import PROCESSING, SHA_LOCKS, STATE, make_folder
from pipeline.watch.locks import lock_file, unlock


def read_state(c: Claim) -> dict:
    """The claim's journal; empty when none was written yet (or it was cut short)."""
    try:
        return json.loads((c.dir / STATE).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}


def write_state(c: Claim, state: dict) -> None:
    files.write_json(c.dir / STATE, state)


def committed(state: dict) -> dict | None:
    """The ledger row of the claim's run, if the run got as far as its commit point."""
    ledger_path = Path(state.get("ledger", ""))
    if not state.get("run_id") or not ledger_path.is_file():
        return None
    with Ledger(ledger_path) as ledger:
        return ledger.run_info(state["run_id"])


@contextmanager
def sha_lock(inbox: Path, sha256: str):
    """Identical inputs are handled one at a time, so the second sees the first's run as 'already processed'."""
    path = make_folder(inbox / PROCESSING / SHA_LOCKS) / f"{sha256}.lock"
    fd = lock_file(path, wait=True)
    try:
        yield
    finally:
        if fd is not None:
            unlock(fd, path)
