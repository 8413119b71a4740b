"""The inbox watcher (`reintegrate watch`, docs/watch.md): every spreadsheet saved into the inbox is processed
once, by one watcher, and a kill at any moment loses nothing.

    inbox/referrals.xlsx                      waiting (taken once it has stopped changing)
    inbox/.processing/<claim>/referrals.xlsx  claimed by one watcher (os.rename: only one rename succeeds)
    inbox/processed/<run-id>/referrals.xlsx   done; the run folder is outbox/<run-id>/
    inbox/processed/duplicates/copy.xlsx      identical to an input already processed (+ copy.xlsx.duplicate.txt)
    inbox/failed/broken.xlsx                  unreadable (+ broken.xlsx.error.txt, the sentence the CLI prints)

A claim folder holds the input, a `.lock` file locked (flock / msvcrt) by the watcher working on it, and a
`.state.json` journal saying how far it got. The ledger row written at the end of `process_file` is the
commit point of a run. `recover` resolves every claim whose watcher is dead (its lock is free): a committed
run is finished (the input moves to processed/), anything else is rolled back (a partial run folder is
deleted and the input goes back into the inbox); docs/watch.md writes the rule out.

The modules, in the order a file meets them:

    layout      the inbox's folder and file names, and the default timings
    arrivals    which files are spreadsheets waiting, and when one has stopped changing
    locks       exclusive locks the OS drops when their process dies
    moves       moves that never replace a file, and free names
    claims      taking a file into a claim folder of our own, and letting the folder go
    journal     the claim's .state.json, the ledger's commit point, one input hash at a time
    processing  running a claimed file (WatchStopped: the setup, not the file, is wrong)
    outcomes    what happened to a file: its exit code and log line
    notes       the .error.txt / .duplicate.txt beside an input
    finish      moving the input on (processed/, failed/, duplicates/, back to the inbox)
    recovery    resolving the claims of watchers that died
    watcher     the Watcher loop and `watch`, the whole of `reintegrate watch`

`watch` is the whole of `reintegrate watch`:

    from pipeline.core.config import Config
    from pipeline.watch import watch
    code = watch(Config(inbox=Path("inbox"), outbox=Path("outbox")), once=True)
"""

from pipeline.watch.arrivals import Seen, candidates, is_stable, observe, waiting_reason
from pipeline.watch.claims import Claim, claim, release
from pipeline.watch.outcomes import Outcome
from pipeline.watch.processing import WatchStopped, process_claimed
from pipeline.watch.recovery import recover
from pipeline.watch.watcher import Watcher, watch

__all__ = ["Claim", "Outcome", "Seen", "WatchStopped", "Watcher", "candidates", "claim", "is_stable", "observe",
           "process_claimed", "recover", "release", "waiting_reason", "watch"]
