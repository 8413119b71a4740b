"""Rendering many documents: the compiled templates each process keeps, how many worker processes a batch
gets, and the one function that runs a stage's render function over a list of jobs (in worker processes
when the list is big enough to pay for starting them) and reports progress.

`run`'s plans and letters (`pipeline.write.documents`) and `reviews`' reviewed plans (`pipeline.reviews`) both
render this way::

    from pipeline.write.batch import compiled_templates, render_in_batches

    def _render_batch(job):                      # module level, so a worker process can be given it
        templates_dir, run_dir, items = job
        plan = compiled_templates(templates_dir)[PLAN]
        return [write(plan, run_dir, item) for item in items]   # one result per item

    results = render_in_batches(_render_batch, items, templates_dir, shared=(run_dir,), workers=None)

Templates are compiled once per process (once per run when there is one process), never once per row.
"""

from __future__ import annotations

import os
from concurrent.futures import ProcessPoolExecutor, ThreadPoolExecutor
from pathlib import Path

from pipeline.write.render import TEMPLATE_NAMES, default_templates_dir, load_templates

__all__ = [
    "BATCH_SIZE", "MAX_DEFAULT_WORKERS", "PER_WORKER_MIN", "available_cpus", "choose_workers",
    "compiled_templates", "render_in_batches",
]

PER_WORKER_MIN = 200  # below this many documents a second process costs more than it saves
MAX_DEFAULT_WORKERS = 8  # past this, processes mostly wait for the file system (one folder for every plan)
BATCH_SIZE = 50  # items sent to a worker at a time: few enough round trips, small enough to share out evenly


_COMPILED = None  # per process: (which template files, their compiled templates), compiled on first use


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


def compiled_templates(templates_dir) -> dict:
    """`load_templates(templates_dir)`, compiled once per process for as long as the template files are
    unchanged."""
    global _COMPILED
    key = _template_files_key(templates_dir)
    if _COMPILED is None or _COMPILED[0] != key:
        _COMPILED = (key, load_templates(templates_dir))
    return _COMPILED[1]


def available_cpus() -> int:
    """The CPUs this process may run on (a container or `taskset` can allow fewer than the machine has)."""
    try:
        return len(os.sched_getaffinity(0)) or 1
    except (AttributeError, OSError):
        return os.cpu_count() or 1


def choose_workers(count: int, requested: int | None) -> int:
    """`requested` (`--workers N`, or the config's `workers`) when given; else one process per available CPU,
    at most `MAX_DEFAULT_WORKERS`, and only as many as have `PER_WORKER_MIN` documents each (this process
    writes the tracker and reports meanwhile, see `pipeline.write.documents.write_documents`)."""
    if requested:
        return max(1, requested)
    return max(1, min(available_cpus(), MAX_DEFAULT_WORKERS, count // PER_WORKER_MIN))


def render_in_batches(render_batch, items: list, templates_dir, *, shared: tuple = (), workers: int | None = None,
                      progress=None, alongside=None) -> list:
    """Every item's result, in order: `render_batch((templates_dir, *shared, batch))` is called for each batch of
    `BATCH_SIZE` items and returns one result per item of its batch. With more than one worker (`choose_workers`)
    the batches are rendered in worker processes, so `render_batch` must be a module-level function.

    `progress(n)`, when given, is called with each batch's size as it is done. `alongside`, a function of no
    arguments, is other work that this process does while the worker processes render, instead of waiting
    for them; any exception it raises is raised here, after the batches are done."""
    workers = choose_workers(len(items), workers)
    jobs = [(templates_dir, *shared, items[i:i + BATCH_SIZE]) for i in range(0, len(items), BATCH_SIZE)]
    # compile before the first item (a broken template fails fast), and before the workers start, which
    # then inherit the compiled templates where processes are forked
    compiled_templates(templates_dir)
    if workers == 1 or len(jobs) <= 1:
        return _render_here(render_batch, jobs, progress, alongside)
    return _render_in_workers(render_batch, jobs, workers, progress, alongside)


def _render_here(render_batch, jobs: list, progress, alongside) -> list:
    results: list = []
    for job in jobs:
        done = render_batch(job)
        results += done
        if progress:
            progress(len(done))
    if alongside is not None:
        alongside()
    return results


def _render_in_workers(render_batch, jobs: list, workers: int, progress, alongside) -> list:
    results: list = []
    with ProcessPoolExecutor(max_workers=workers) as pool:
        # every job is submitted (and so every worker started) before the thread below exists
        futures = [pool.submit(render_batch, job) for job in jobs]
        with ThreadPoolExecutor(max_workers=1) as side:
            other = side.submit(alongside) if alongside is not None else None
            try:
                for future in futures:
                    done = future.result()
                    results += done
                    if progress:
                        progress(len(done))
            except BaseException:
                for future in futures:
                    future.cancel()
                raise
            if other is not None:
                other.result()
    return results
