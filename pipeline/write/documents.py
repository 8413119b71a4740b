"""Rendering and writing each accepted pupil's plan and letter (SPEC 4), in parallel worker processes
when the batch is big enough to pay for starting them.

Templates are compiled once per process (once per run when there is one process), never once per row.
"""

from __future__ import annotations

import hashlib
import os
from concurrent.futures import ProcessPoolExecutor, ThreadPoolExecutor
from datetime import date
from pathlib import Path
from typing import NamedTuple

from pipeline.core import files
from pipeline.write.context import build_context
from pipeline.write.render import INVITATION, PLAN, REQUEST, TEMPLATE_NAMES, default_templates_dir, load_templates

class Written(NamedTuple):
    """One pupil's documents as written: paths relative to the run folder, and the SHA-256 of each file's
    bytes, which tells `send` whether the officer has since edited it in Word."""

    plan: str
    letter: str
    plan_sha256: str
    letter_sha256: str


PER_WORKER_MIN = 200  # below this many pupils a second process costs more than it saves


# bytes for each part of a document's name: with "_" twice, "-99" for a clash, ".reviewed-2027-03-01" (reviews) and
# ".docx" or ".pdf", it stays under a file system's 255 bytes whatever script the names are in
NAME_PART_BYTES = (60, 70, 70)


def document_name(referral) -> str:
    """`<Referral ID>_<Surname>_<Forename>.docx`, sortable by Referral ID, never too long for the file system."""
    parts = (referral.referral_id, referral.legal_surname, referral.legal_forename)
    return "_".join(files.safe_name_part(p, 40, limit_bytes=b) for p, b in zip(parts, NAME_PART_BYTES)) + ".docx"


def plan_names(referrals) -> list[str]:
    """File names for each referral, made unique within the run (different IDs can clean to the same name)."""
    seen: set[str] = set()
    names = []
    for referral in referrals:
        name = document_name(referral)
        stem, n = name[:-5], 2
        while name.casefold() in seen:
            name, n = f"{stem}-{n}.docx", n + 1
        seen.add(name.casefold())
        names.append(name)
    return names


_TEMPLATES = None  # per process: compiled on first use


def _template_files_key(templates_dir) -> tuple:
    """Which template files a run would compile, and their versions: a template edited while `watch` runs
    (or a relative folder after a chdir) is a different key, so it is compiled again."""
    folders = [Path(templates_dir).resolve()] if templates_dir else []
    folders.append(default_templates_dir().resolve())
    key = []
    for folder in folders:
        for name in TEMPLATE_NAMES:
            try:
                stat = (folder / name).stat()
            except OSError:
                continue
            key.append((str(folder / name), stat.st_mtime_ns, stat.st_size))
    return tuple(key)


def _templates(templates_dir):
    global _TEMPLATES
    key = _template_files_key(templates_dir)
    if _TEMPLATES is None or _TEMPLATES[0] != key:
        _TEMPLATES = (key, load_templates(templates_dir))
    return _TEMPLATES[1]


def _render_batch(job) -> list[tuple[str, str]]:
    """Render and write one batch; the (plan, letter) SHA-256 of each pupil, in order."""
    templates_dir, run_dir, run_id, generated_on, items = job
    templates = _templates(templates_dir)
    plans, letters = f"{run_dir}/plans", f"{run_dir}/letters"
    plan = templates[PLAN]
    digests = []
    for referral, reviews, name in items:
        context = build_context(referral, reviews, run_id=run_id, generated_on=generated_on)
        plan_bytes = plan.render(context)
        files.write_bytes(f"{plans}/{name}", plan_bytes)
        letter_bytes = templates[INVITATION if referral.from_ap else REQUEST].render(context)
        files.write_bytes(f"{letters}/{name}", letter_bytes)
        digests.append((hashlib.sha256(plan_bytes).hexdigest(), hashlib.sha256(letter_bytes).hexdigest()))
    return digests


MAX_DEFAULT_WORKERS = 8  # past this, processes mostly wait for the file system (one folder for every plan)


def available_cpus() -> int:
    """The CPUs this process may run on (a container or `taskset` can allow fewer than the machine has)."""
    try:
        return len(os.sched_getaffinity(0)) or 1
    except (AttributeError, OSError):
        return os.cpu_count() or 1


def choose_workers(count: int, requested: int | None) -> int:
    """`requested` (`--workers N`, or the config's `workers`) when given; else one process per available CPU,
    at most `MAX_DEFAULT_WORKERS`, and only as many as have `PER_WORKER_MIN` documents each (this process
    writes the tracker and reports meanwhile, see `write_documents`)."""
    if requested:
        return max(1, requested)
    return max(1, min(available_cpus(), MAX_DEFAULT_WORKERS, count // PER_WORKER_MIN))


def write_documents(run_dir: Path, accepted: list, *, run_id: str, generated_on: date,
                    templates_dir: Path | None = None, workers: int | None = None, progress=None,
                    alongside=None) -> list[Written]:
    """Write plans/ and letters/ for `accepted` [(referral, reviews)]; return what was written for each, in order.

    `alongside`, a function of no arguments, is other work of the run (the tracker and the validation report)
    that this process does while the worker processes render, instead of waiting for them; any exception it
    raises is raised here, after the documents are written."""
    templates_dir = Path(templates_dir) if templates_dir else default_templates_dir()
    names = plan_names([referral for referral, _ in accepted])
    files.make_dir(run_dir / "plans")
    files.make_dir(run_dir / "letters")
    items = [(referral, reviews, name) for (referral, reviews), name in zip(accepted, names)]
    workers = choose_workers(len(items), workers)
    chunk = 50
    jobs = [(templates_dir, str(run_dir), run_id, generated_on, items[i:i + chunk]) for i in range(0, len(items), chunk)]
    # compile before the first row (a broken template fails fast), and before the workers start, which
    # then inherit the compiled templates where processes are forked
    _templates(templates_dir)
    digests: list[tuple[str, str]] = []
    if workers == 1 or len(jobs) <= 1:
        for job in jobs:
            done = _render_batch(job)
            digests += done
            if progress:
                progress(len(done))
        if alongside is not None:
            alongside()
    else:
        with ProcessPoolExecutor(max_workers=workers) as pool:
            # every job is submitted (and so every worker started) before the thread below exists
            futures = [pool.submit(_render_batch, job) for job in jobs]
            with ThreadPoolExecutor(max_workers=1) as side:
                other = side.submit(alongside) if alongside is not None else None
                try:
                    for future in futures:
                        done = future.result()
                        digests += done
                        if progress:
                            progress(len(done))
                except BaseException:
                    for future in futures:
                        future.cancel()
                    raise
                if other is not None:
                    other.result()
    return [Written(f"plans/{name}", f"letters/{name}", plan_sha, letter_sha)
            for name, (plan_sha, letter_sha) in zip(names, digests)]
