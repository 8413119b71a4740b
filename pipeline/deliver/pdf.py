"""PDF copies of Word documents through LibreOffice, headless (`reintegrate run --pdf`, or `pdf = true`).

Used as a library::

    from pipeline.deliver.pdf import convert_to_pdf, find_soffice

    if find_soffice():
        for done in convert_to_pdf(["plans/HAV-0001_Smith_Amy.docx"], None, workers=2):  # None: beside each file
            print(done.source, "->", done.pdf or done.error)

How it works: the documents are split into small batches and `workers` threads each run one LibreOffice
process at a time (``soffice --headless --convert-to pdf --outdir ...``), each with a user profile of its own
(``-env:UserInstallation=file:///tmp/reintegrate-pdf-.../worker-N``): LibreOffice processes that share a profile
wait for each other or fail, and an officer's own open LibreOffice is never touched. The profiles and the
conversion output live in one temporary folder that is removed on every way out (success, an error, Ctrl+C).
A batch that runs past its time limit is killed with its child processes; each document it did not convert is
tried once more on its own (with a fresh profile after a kill), and a document that still fails is reported
(`Converted.error`), never a hang; after two time-outs LibreOffice is judged stuck and the documents left are
reported without being tried.
Each PDF is written atomically and readable by its owner only, like every output (`pipeline.core.files`).

Messages name no file: file names carry the pupil's name, so callers report a failure by Referral ID.
"""

from __future__ import annotations

import math
import os
import queue
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
from concurrent.futures import FIRST_COMPLETED, ThreadPoolExecutor, wait
from dataclasses import dataclass
from pathlib import Path

from pipeline.core import files
from pipeline.core.errors import ReintegrateError

__all__ = ["Converted", "LibreOfficeNotFound", "PdfError", "convert_to_pdf", "default_workers", "find_soffice",
           "require_soffice", "pdf_path"]

# Where LibreOffice installs itself when it is not on the PATH (Windows does not add it; nor does the macOS app).
KNOWN_LOCATIONS = (
    r"C:\Program Files\LibreOffice\program\soffice.exe",
    r"C:\Program Files (x86)\LibreOffice\program\soffice.exe",
    "/Applications/LibreOffice.app/Contents/MacOS/soffice",
    "/usr/lib/libreoffice/program/soffice",
    "/opt/libreoffice/program/soffice",
)
STARTUP_SECONDS = 60.0  # a batch's time limit: this, plus PER_DOCUMENT_SECONDS for each document in it
PER_DOCUMENT_SECONDS = 10.0
MAX_BATCH = 25  # documents per LibreOffice process: fewer start-ups, yet progress and time limits stay fine-grained
MAX_DEFAULT_WORKERS = 4  # each LibreOffice takes ~200 MB


class PdfError(ReintegrateError):
    """PDF copies were asked for and cannot be made at all."""


class LibreOfficeNotFound(PdfError):
    def __init__(self):
        super().__init__("PDF copies need LibreOffice, but its soffice program was not found on the PATH or in "
                         "LibreOffice's usual install folders")


@dataclass(frozen=True)
class Converted:
    """One document: its PDF, or why there is none (`error`, a sentence naming no file)."""

    source: Path
    pdf: Path | None
    error: str | None = None


def find_soffice(path: str | None = None) -> str | None:
    """The LibreOffice program: `soffice` (or `libreoffice`) on the PATH, else a usual install folder; None when
    LibreOffice is not installed. `path` replaces the PATH (for tests)."""
    for name in ("soffice", "libreoffice"):
        found = shutil.which(name, path=path)
        if found:
            return found
    for candidate in KNOWN_LOCATIONS:
        if os.path.isfile(candidate) and os.access(candidate, os.X_OK):
            return candidate
    return None


def require_soffice() -> str:
    """`find_soffice`, or `LibreOfficeNotFound` (a `ReintegrateError`) with a message saying so."""
    soffice = find_soffice()
    if soffice is None:
        raise LibreOfficeNotFound()
    return soffice


def default_workers(count: int) -> int:
    return max(1, min(os.cpu_count() or 1, MAX_DEFAULT_WORKERS, count))


def pdf_path(source: str | Path, out_dir: str | Path | None = None) -> Path:
    """Where the PDF of `source` goes: beside it, or in `out_dir`, named `<stem>.pdf`."""
    source = Path(source)
    return (Path(out_dir) if out_dir is not None else source.parent) / (source.stem + ".pdf")


def _batches(paths: list[Path], size: int) -> list[list[int]]:
    """Indexes of `paths` in batches of at most `size`, no two with the same stem in a batch (LibreOffice
    names each output <stem>.pdf in one output folder)."""
    seen: dict[str, int] = {}
    occurrence = []
    for path in paths:  # a plan and its letter share a name: first occurrences first, then second ones...
        stem = path.stem.casefold()
        occurrence.append(seen.get(stem, 0))
        seen[stem] = occurrence[-1] + 1
    batches: list[list[int]] = []
    current: list[int] = []
    stems: set[str] = set()
    for i in sorted(range(len(paths)), key=lambda i: (occurrence[i], i)):
        stem = paths[i].stem.casefold()
        if len(current) >= size or stem in stems:
            batches.append(current)
            current, stems = [], set()
        current.append(i)
        stems.add(stem)
    if current:
        batches.append(current)
    return batches


class _Converter:
    """The running conversion: the temporary folder, the free profiles and the live LibreOffice processes."""

    def __init__(self, soffice: str, root: Path, workers: int, startup: float, per_document: float):
        self.soffice = soffice
        self.root = root
        self.startup = startup
        self.per_document = per_document
        self.profiles: queue.Queue[Path] = queue.Queue()
        for n in range(workers):
            self.profiles.put(root / f"worker-{n + 1}")
        self.live: set[subprocess.Popen] = set()
        self.lock = threading.Lock()
        self.stopping = False
        self.runs = 0
        self.timeouts = 0

    def _start(self, cmd: list[str]) -> subprocess.Popen | None:
        kwargs: dict = {"stdin": subprocess.DEVNULL, "stdout": subprocess.DEVNULL, "stderr": subprocess.DEVNULL}
        if sys.platform == "win32":
            kwargs["creationflags"] = subprocess.CREATE_NEW_PROCESS_GROUP
        else:
            kwargs["start_new_session"] = True  # its own process group: a kill reaches soffice.bin too
        with self.lock:
            if self.stopping:
                return None
            proc = subprocess.Popen(cmd, **kwargs)
            self.live.add(proc)
            return proc

    @staticmethod
    def _kill(proc: subprocess.Popen) -> None:
        try:
            if sys.platform == "win32":
                proc.kill()
            else:
                os.killpg(proc.pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError, OSError):
            pass

    def stop(self) -> None:
        with self.lock:
            self.stopping = True
            procs = list(self.live)
        for proc in procs:
            self._kill(proc)

    def run(self, sources: list[Path]) -> tuple[dict[int, bytes], str | None]:
        """Convert `sources` in one LibreOffice process; return {index: pdf bytes} and, if it went wrong, why."""
        if self.timeouts >= 2:
            return {}, "not tried: LibreOffice stopped responding (it ran past its time limit twice)"
        profile = self.profiles.get()
        try:
            with self.lock:
                self.runs += 1
                run = self.runs
                outdir = self.root / f"out-{run}"
            outdir.mkdir()
            cmd = [self.soffice, f"-env:UserInstallation={profile.as_uri()}", "--headless", "--invisible",
                   "--nologo", "--norestore", "--nodefault", "--nolockcheck", "--convert-to", "pdf",
                   "--outdir", str(outdir), *(str(s) for s in sources)]
            limit = self.startup + self.per_document * len(sources)
            proc = self._start(cmd)
            if proc is None:
                return {}, "stopped"
            problem = None
            try:
                code = proc.wait(timeout=limit)
                if code != 0:
                    problem = f"LibreOffice stopped with exit code {code}"
            except subprocess.TimeoutExpired:
                self._kill(proc)
                proc.wait()
                problem = f"LibreOffice took longer than {limit:g} seconds"
                with self.lock:
                    self.timeouts += 1
                profile = profile.with_name(f"{profile.name.split('.')[0]}.{run}")  # the killed one may be locked
            finally:
                if sys.platform != "win32":
                    self._kill(proc)  # helpers it left behind in its process group
                with self.lock:
                    self.live.discard(proc)
            produced = {}
            for i, source in enumerate(sources):
                out = outdir / (source.stem + ".pdf")
                try:
                    data = out.read_bytes()
                except OSError:
                    continue
                if data.startswith(b"%PDF"):
                    produced[i] = data
            shutil.rmtree(outdir, ignore_errors=True)
            return produced, problem
        finally:
            self.profiles.put(profile)


def _distinct_targets(sources: list[Path], out_dir: str | Path | None) -> list[Path]:
    """The PDF each source becomes; ValueError when two would be the same file (one would replace the other)."""
    targets = [pdf_path(s, out_dir) for s in sources]
    seen: set[str] = set()
    for target in targets:
        key = os.path.normcase(str(target.resolve()))
        if key in seen:
            raise ValueError(f"two documents would both be saved as {target.name}")
        seen.add(key)
    return targets


def convert_to_pdf(paths, out_dir: str | Path | None = None, workers: int | None = None, *,
                   soffice: str | None = None, progress=None, startup_seconds: float = STARTUP_SECONDS,
                   per_document_seconds: float = PER_DOCUMENT_SECONDS, batch_size: int | None = None) -> list[Converted]:
    """Make a PDF of each document (.docx, .xlsx: whatever LibreOffice opens) in `paths`, in parallel.

    Each PDF is `<stem>.pdf` in `out_dir`, or beside its document when `out_dir` is None; an existing PDF is
    replaced. Returns one `Converted` per path, in order. `progress(n)` is called (in the caller's thread) as
    each batch of n documents finishes. Raises `LibreOfficeNotFound` when LibreOffice is not installed and
    ValueError when two documents would give the same PDF; a document that cannot be converted is not an
    exception but a `Converted` with `error` set.
    """
    sources = [Path(p) for p in paths]
    if not sources:
        return []
    targets = _distinct_targets(sources, out_dir)
    soffice = soffice or require_soffice()
    workers = max(1, min(workers, len(sources))) if workers else default_workers(len(sources))
    size = batch_size or max(1, min(MAX_BATCH, math.ceil(len(sources) / workers)))
    results: list[Converted | None] = [None] * len(sources)

    def keep(index: int, data: bytes) -> None:
        files.write_bytes(targets[index], data)
        results[index] = Converted(sources[index], targets[index])

    with tempfile.TemporaryDirectory(prefix="reintegrate-pdf-") as tmp:
        converter = _Converter(soffice, Path(tmp), workers, startup_seconds, per_document_seconds)

        def job(indexes: list[int], retry: bool):
            produced, problem = converter.run([sources[i] for i in indexes])
            return indexes, retry, produced, problem

        pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="soffice")
        try:
            pending = {pool.submit(job, batch, False) for batch in _batches(sources, size)}
            while pending:
                finished, pending = wait(pending, return_when=FIRST_COMPLETED)
                for future in finished:
                    indexes, retry, produced, problem = future.result()
                    for n, index in enumerate(indexes):
                        if n in produced:
                            keep(index, produced[n])
                    missing = [index for n, index in enumerate(indexes) if n not in produced]
                    if missing and not retry:  # once more, each on its own: one bad document spoils no other
                        pending |= {pool.submit(job, [index], True) for index in missing}
                    else:
                        for index in missing:
                            results[index] = Converted(sources[index], None,
                                                       problem or "LibreOffice did not produce a PDF")
                    done = len(indexes) if retry else len(produced)  # each document counted once, when settled
                    if progress and done:
                        progress(done)
        except BaseException:
            converter.stop()
            raise
        finally:
            pool.shutdown(wait=True, cancel_futures=True)
            converter.stop()
    return [r if r is not None else Converted(sources[i], None, "not converted") for i, r in enumerate(results)]
