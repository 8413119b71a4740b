"""Processing one claimed file: the same run as `reintegrate run`, journalled, one input hash at a time, and
moved on to processed/<run-id>/, failed/ or processed/duplicates/ by what happened."""

from __future__ import annotations

from datetime import date
from pathlib import Path

from pipeline.core import files
from pipeline.core.config import Config
from pipeline.core.errors import InputError, ReintegrateError
from pipeline.core.ledger import Ledger
from pipeline.core.files import file_sha256
from pipeline.run import process_file
from pipeline.watch.claims import Claim, regular_file
from pipeline.watch.finish import discard_run_dir, fail, finish_noted, finish_processed, return_to_inbox
from pipeline.watch.journal import committed, sha_lock, write_state
from pipeline.watch.outcomes import Outcome


class WatchStopped(ReintegrateError):
    """The setup, not the file, is wrong (config, templates, term dates): the file went back into the inbox and
    the watcher stops rather than fail every file in turn."""


def process_claimed(c: Claim, config: Config, *, as_of: date | None = None, documents: bool = True) -> Outcome:
    """Run one claimed file and move it on: processed/<run-id>/, failed/ or processed/duplicates/.

    Journal: the run id is chosen and written to the claim's `.state.json` before `process_file` creates the
    run folder, and the ledger row `process_file` writes last is the commit point; so after a crash `recover`
    knows which run folder belongs to the file and whether it is complete.
    """
    name = c.input.name
    if not regular_file(c.input):  # swapped for a link or a pipe after it was looked at: never read
        return fail(c, None, f"{name}: this is not a regular file (a link or a pipe took its place in the inbox), "
                             "so it was not read; save the spreadsheet into the inbox again")
    try:
        sha256 = file_sha256(c.input)
    except OSError as exc:
        return fail(c, None, f"{name}: the file could not be read ({exc.strerror or exc})")
    kind = "run" if documents else "validate"
    with sha_lock(c.inbox, sha256):
        info = _earlier_run(c, config, sha256, kind)
        if info:
            return _note_duplicate(c, sha256, info)
        state = _start_run(c, config, sha256, kind)
        try:
            result = process_file(c.input, config=config, as_of=as_of or date.today(), documents=documents,
                                  run_id=state["run_id"])
        except BaseException as exc:
            outcome = _after_failed_run(c, state, exc)
            if outcome is None:
                raise  # interrupted (Ctrl-C): the file is back in the inbox, as if never taken
            return outcome
    return finish_processed(c, {"run_id": result.run_id, "rows": result.rows, "accepted": result.accepted,
                                "rejected": result.rejected, "run_dir": str(result.run_dir)})


def _earlier_run(c: Claim, config: Config, sha256: str, kind: str) -> dict | None:
    """The ledger's record of an earlier run of the same kind on an identical input, if there was one."""
    try:
        with Ledger(config.ledger_path) as ledger:
            earlier = ledger.run_for_input(sha256, kind)
            return ledger.run_info(earlier) if earlier else None
    except BaseException:  # the ledger cannot be read: nothing started, so the file waits for another try
        return_to_inbox(c)
        raise


def _note_duplicate(c: Claim, sha256: str, info: dict) -> Outcome:
    """An identical input was processed already: this one goes to processed/duplicates/ with a note naming
    that run."""
    name = c.input.name
    note = (f"{name} is identical (SHA-256 {sha256[:16]}...) to {info['input_name']}, already processed by run "
            f"{info['run_id']} on {info['started_at']} (documents in {info['run_dir']}); it was not processed again.")
    state = {"step": "duplicate", "name": name, "sha256": sha256, "earlier": info["run_id"], "note": note,
             "dest": None}
    write_state(c, state)
    return finish_noted(c, state)


def _start_run(c: Claim, config: Config, sha256: str, kind: str) -> dict:
    """Choose the run id and journal it, with where its run folder and ledger will be, before the run starts."""
    run_id = files.new_run_id()
    state = {"step": "run", "name": c.input.name, "sha256": sha256, "run_id": run_id, "kind": kind,
             "run_dir": str((Path(config.outbox) / run_id).absolute()),
             "ledger": str(Path(config.ledger_path).absolute())}
    write_state(c, state)
    return state


def _after_failed_run(c: Claim, state: dict, exc: BaseException) -> Outcome | None:
    """Called while `exc`, raised by the run, is being handled: a run past its commit point stands; otherwise its
    run folder goes, and the file fails (a bad input, an unexpected error), goes back into the inbox to be tried
    again (the disk, not the file), or goes back and stops the watcher (the setup is wrong: WatchStopped). None
    when `exc` must go on (an interruption; the file is back in the inbox)."""
    if (done := committed(state)) is not None:  # failed after its commit point: the run stands
        return finish_processed(c, done)
    discard_run_dir(Path(state["run_dir"]))
    name, sha256 = state["name"], state["sha256"]
    if isinstance(exc, InputError):
        return fail(c, sha256, str(exc))
    if isinstance(exc, ReintegrateError):
        return_to_inbox(c)
        raise WatchStopped(f"{exc} ({name} is back in the inbox)") from None
    error = files.os_error(exc)
    if error is not None and isinstance(exc, Exception) and error.errno in files.ENVIRONMENT_ERRNOS:
        # the disk, not the file: try it again later
        return return_to_inbox(c, summary=f"the run could not be written ({error.strerror or error}); "
                                          "left in the inbox to be tried again")
    if isinstance(exc, Exception):
        return fail(c, sha256, f"{name}: could not be processed because of an unexpected error "
                               f"({type(exc).__name__}: {exc}); please report it",
                    summary=f"unexpected error ({type(exc).__name__}); its note has the details")
    return_to_inbox(c)  # interrupted (Ctrl-C): as if never taken
    return None
