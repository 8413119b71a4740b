"""The watcher: `reintegrate watch` as a loop. Recovery at start, then passes over the inbox (woken by file
system events, and in any case every `rescan` seconds), each taking the files that have stopped changing;
`watch` sets it up, with SIGTERM and Ctrl+C stopping it after the file in hand."""

from __future__ import annotations

import signal
import threading
import time
from datetime import date, datetime
from pathlib import Path
from typing import Callable

import click

from pipeline.core.config import Config
from pipeline.core.errors import ConfigError
from pipeline.core.printable import printable
from pipeline.core.errors import ExitCode
from pipeline.register import update_register
from pipeline.watch.arrivals import Seen, candidates, observe, waiting_reason
from pipeline.watch.claims import claim
from pipeline.watch.layout import DEFAULT_GRACE, DEFAULT_RESCAN, DEFAULT_SETTLE, PROCESSING, make_folder
from pipeline.watch.outcomes import Outcome
from pipeline.watch.processing import process_claimed
from pipeline.watch.recovery import recover


def _echo(line: str) -> None:
    click.echo(line)


class Watcher:
    """`reintegrate watch`: recovery at start, then passes over the inbox, woken by watchdog's events (or its
    polling observer) and in any case every `rescan` seconds, so nothing is missed on shares where events
    do not arrive."""

    def __init__(self, config: Config, *, settle: float = DEFAULT_SETTLE, rescan: float = DEFAULT_RESCAN,
                 grace: float = DEFAULT_GRACE, as_of: date | None = None, documents: bool = True,
                 log: Callable[[str], None] = _echo):
        self.config = config
        self.inbox = Path(config.inbox)
        self.settle, self.rescan, self.grace = settle, rescan, grace
        self.as_of, self.documents = as_of, documents
        self.log = lambda line: log(printable(line))  # a file name may hold a newline or a terminal escape
        self.seen: dict[Path, Seen] = {}
        self.told: dict[Path, tuple] = {}  # what we last said about a waiting file, so it is said once
        self.outcomes: list[Outcome] = []
        self.stopping = threading.Event()
        self.wake = threading.Event()
        self.own: set[Path] = set()

    def stop(self) -> None:
        self.stopping.set()
        self.wake.set()

    def check_inbox(self) -> None:
        if not self.inbox.is_dir():
            raise ConfigError(f"the inbox folder {self.inbox} does not exist (or the share is not connected); "
                              f"create it or pass --inbox")
        make_folder(self.inbox / PROCESSING)

    def report(self, outcome: Outcome) -> None:
        self.outcomes.append(outcome)
        self.log(outcome.line())
        if outcome.status == "processed":  # a run recorded in the ledger: the term register shows it
            _, problem = update_register(self.config, self.as_of)
            if problem:
                self.log(f"{datetime.now():%Y-%m-%d %H:%M:%S} {problem}")

    def recover(self) -> None:
        for outcome in recover(self.inbox, quiet=self.settle, skip=self.own):
            self.report(outcome)

    def scan(self) -> list[Path]:
        """Look at the inbox once; the files that can be taken now."""
        now = time.monotonic()
        seen = {}
        ready = []
        for path in candidates(self.inbox):
            s = observe(path, self.seen.get(path), now)
            if s is None:
                continue
            seen[path] = s
            reason = waiting_reason(path, s, now=now, settle=self.settle, grace=self.grace)
            if reason is None:
                ready.append(path)
            elif reason != "still being written" and self.told.get(path) != (reason, s.size, s.mtime_ns):
                self.told[path] = (reason, s.size, s.mtime_ns)
                self.log(f"{datetime.now():%Y-%m-%d %H:%M:%S} {path.name}: waiting: {reason}")
        self.seen = seen
        self.told = {path: said for path, said in self.told.items() if path in seen}
        return ready

    def take(self, path: Path) -> Outcome | None:
        c = claim(path, self.inbox)
        if c is None:
            return None
        self.own.add(c.dir)
        try:
            outcome = process_claimed(c, self.config, as_of=self.as_of, documents=self.documents)
        finally:
            self.own.discard(c.dir)
        self.seen.pop(path, None)
        self.told.pop(path, None)
        self.report(outcome)
        return outcome

    def once(self) -> int:
        """Every file unchanged for `settle` seconds is processed; one still being written is left for the next
        pass. Returns the worst exit code of the files taken."""
        self.check_inbox()
        self.recover()
        if self.scan() or self.seen:
            time.sleep(self.settle)
            for path in self.scan():
                if self.stopping.is_set():
                    break
                self.take(path)
            for path, s in self.seen.items():
                if path.exists() and self.told.get(path) is None:
                    self.log(f"{datetime.now():%Y-%m-%d %H:%M:%S} {path.name}: still being written, left for the next pass")
        return self.exit_code()

    def exit_code(self) -> int:
        return max((o.exit_code for o in self.outcomes if o.exit_code is not None), default=ExitCode.OK)

    def forever(self, *, poll: bool = False) -> int:
        self.check_inbox()
        observer = self._observer(poll)
        try:
            next_recovery = 0.0
            last_scan = 0.0
            while not self.stopping.is_set():
                now = time.monotonic()
                try:
                    if now >= next_recovery:
                        self.recover()
                        next_recovery = now + self.rescan
                    self.wake.clear()
                    last_scan = time.monotonic()
                    for path in self.scan():
                        if self.stopping.is_set():
                            break
                        self.take(path)
                except OSError as exc:  # the share went away for a moment: try again on the next pass
                    self.log(f"{datetime.now():%Y-%m-%d %H:%M:%S} inbox not reachable ({exc.strerror or exc}); retrying")
                    self.seen = {}
                pending = bool(self.seen)
                self.wake.wait(max(0.05, self.settle / 2) if pending else self.rescan)
                # events arrive in bursts while a file is copied: look at most a few times a second
                pause = 0.25 - (time.monotonic() - last_scan)
                if pause > 0 and not self.stopping.is_set():
                    self.stopping.wait(pause)
        finally:
            if observer is not None:
                observer.stop()
                observer.join(timeout=5)
        return ExitCode.OK

    def _observer(self, poll: bool):
        from watchdog.events import FileSystemEventHandler
        from watchdog.observers import Observer
        from watchdog.observers.polling import PollingObserver

        wake = self.wake

        class Wake(FileSystemEventHandler):
            def on_any_event(self, event):
                wake.set()

        kinds = [("polling", lambda: PollingObserver(timeout=max(1.0, min(self.settle, 10.0))))]
        if not poll:
            kinds.insert(0, ("file system events", Observer))
        for label, make in kinds:
            observer = make()
            try:
                observer.schedule(Wake(), str(self.inbox), recursive=False)
                observer.start()
            except Exception as exc:  # e.g. inotify's watch limit: fall back to polling
                self.log(f"{datetime.now():%Y-%m-%d %H:%M:%S} {label} unavailable ({exc}); falling back")
                continue
            self.log(f"{datetime.now():%Y-%m-%d %H:%M:%S} watching {self.inbox} ({label}, full rescan every "
                     f"{self.rescan:g}s), runs in {self.config.outbox}")
            return observer
        return None


def _interrupt(watcher: "Watcher") -> None:
    """Ctrl+C stops the watcher like SIGTERM (exit 0, the file in hand finished); a second Ctrl+C stops at once
    (what was claimed is put back by the next start's recovery)."""
    if watcher.stopping.is_set():
        raise KeyboardInterrupt
    watcher.stop()


def watch(config: Config, *, once: bool = False, poll: bool = False, settle: float = DEFAULT_SETTLE,
          rescan: float = DEFAULT_RESCAN, grace: float = DEFAULT_GRACE, as_of: date | None = None,
          documents: bool = True, log: Callable[[str], None] = _echo, handle_signals: bool = False) -> int:
    """`reintegrate watch`. With `once`, process what is there and return the worst exit code of the files
    taken; otherwise run until stopped (SIGTERM: the file in hand is finished first). `as_of` None means the
    day each file is processed. Raises ConfigError (no inbox) and WatchStopped (the setup is wrong)."""
    watcher = Watcher(config, settle=settle, rescan=rescan, grace=grace, as_of=as_of, documents=documents, log=log)
    if handle_signals and threading.current_thread() is threading.main_thread() and hasattr(signal, "SIGTERM"):
        signal.signal(signal.SIGTERM, lambda *_: watcher.stop())
        if not once:
            signal.signal(signal.SIGINT, lambda *_: _interrupt(watcher))
    return watcher.once() if once else watcher.forever(poll=poll)
