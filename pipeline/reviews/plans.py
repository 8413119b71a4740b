"""Writing a reviewed version of each plan (`plans/<stem>.reviewed-YYYY-MM-DD.docx`): the officer's latest
version with its review record table filled in from the tracker, or made afresh from the template when the
table is gone; and its PDF copy when the config asks for one.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from datetime import date
from pathlib import Path, PurePosixPath

from pipeline.core import files
from pipeline.reviews.judge import PupilReviews, id_key
from pipeline.reviews.run_folder import Entry, Run
from pipeline.write.batch import compiled_templates, render_in_batches
from pipeline.write.context import build_context, long_date
from pipeline.write.plan_record import newest_plan, reviewed_plan_name
from pipeline.write.render import PLAN
from schemas.tracker import SCHEDULED

__all__ = ["pdf_copies", "plan_jobs", "record_sha256", "write_plans"]


def _record(pupil: PupilReviews, as_of: date) -> list[dict]:
    """The plan's review record rows (`build_context`'s ``review_record``)."""
    rows = []
    for r in pupil.reviews:
        status = r.status
        if status == SCHEDULED:
            status = SCHEDULED if r.date >= as_of else "Not recorded"
        rows.append({"number": str(r.number) if r.number is not None else "Extra", "date": r.date,
                     "status": status, "outcome": r.outcome or "", "next_steps": r.next_steps or ""})
    return rows


def _plan_context(entry: Entry, pupil: PupilReviews, run: Run, as_of: date) -> dict:
    # The plan was prepared on the run's date (its clause 3.4 checklist says so); this version on `as_of`.
    prepared = run.as_of or as_of
    context = build_context(entry.referral, list(entry.scheduled), run_id=run.run_id, generated_on=prepared,
                            review_record=_record(pupil, as_of))
    context["generated_on"] = long_date(as_of)
    return context


def record_sha256(pupil: PupilReviews) -> str:
    """What the plan's review record says, apart from the as-of date (a scheduled review that has passed
    reads "Not recorded" later, which is not news): equal digests, nothing new to write or send."""
    rows = [{k: (v.isoformat() if isinstance(v, date) else v) for k, v in row.items()}
            for row in _record(pupil, date.min)]
    return hashlib.sha256(json.dumps(rows, sort_keys=True).encode()).hexdigest()


@dataclass(frozen=True)
class _PlanJob:
    source: Path  # the officer's latest version: the plan as saved in Word, or the last reviewed version
    dest: Path
    context: dict  # build_context's, for the review record rows and for a plan made afresh


def _write_one(job: _PlanJob, templates_dir) -> tuple[str, list[str]]:
    """("kept", notes) when the latest version's review record table was filled in place; ("afresh", notes)
    when the table was gone and the plan was made again from the template."""
    from pipeline.write.plan_record import fill_review_record

    filled = fill_review_record(job.source, job.dest, job.context["review_record"])
    if filled is None:
        files.write_bytes(job.dest, compiled_templates(templates_dir)[PLAN].render(job.context))
        return "afresh", [f"its review record table is no longer in {job.source.name.split('_')[0]}'s latest plan, "
                          "so this version was made afresh from the template: edits made in Word are not in it"]
    notes = []
    if filled.missing:
        notes.append("the review record table has no " + ", ".join(k.replace("_", " ").title() for k in filled.missing)
                     + " column, so that is not in the plan")
    if filled.replaced_typed_rows:
        notes.append(f"{filled.replaced_typed_rows} row(s) typed into the review record table in Word were replaced "
                     "by the tracker's (record reviews in the tracker)")
    return "kept", notes


def _render_batch(job) -> list[tuple[str, list[str]]]:
    templates_dir, items = job
    return [_write_one(item, templates_dir) for item in items]


def plan_jobs(run: Run, pupils: list[PupilReviews], as_of: date,
              before: dict[str, dict]) -> tuple[list[_PlanJob], list[PupilReviews]]:
    """A job for each pupil with recorded reviews whose plan's review record has changed since the last
    `reviews` of the run (`before`, per Referral ID key): (the jobs, their pupils). Each such pupil gets its
    `record_sha256` and the name of its reviewed plan; a pupil whose record is unchanged keeps the last name,
    as version "unchanged"."""
    jobs, writing = [], []
    for entry, pupil in zip(run.entries, pupils):
        if not pupil.recorded:
            continue
        pupil.record_sha256 = record_sha256(pupil)
        latest = newest_plan(run.run_dir / entry.plan)
        last = before.get(id_key(entry.referral_id), {})
        if (last.get("record_sha256") == pupil.record_sha256 and last.get("reviewed_plan")
                and latest.name == PurePosixPath(last["reviewed_plan"]).name):
            pupil.reviewed_plan, pupil.version = last["reviewed_plan"], "unchanged"
            continue
        pupil.reviewed_plan = reviewed_plan_name(entry.plan, as_of)
        jobs.append(_PlanJob(latest, run.run_dir / pupil.reviewed_plan, _plan_context(entry, pupil, run, as_of)))
        writing.append(pupil)
    return jobs, writing


def write_plans(jobs: list[_PlanJob], templates_dir, workers: int | None, progress) -> list[tuple[str, list[str]]]:
    """(version, notes) for each job, in order: see `_write_one`."""
    return render_in_batches(_render_batch, jobs, templates_dir, workers=workers, progress=progress)


def pdf_copies(run_dir: Path, pupils: list[PupilReviews], workers) -> tuple[str, ...]:
    """A PDF beside each reviewed plan written (`pdf = true`), as `run` makes one beside each plan: a sentence per
    plan left without one, naming its Referral ID."""
    from pipeline.deliver.pdf import convert_to_pdf, require_soffice

    try:
        soffice = require_soffice()
    except Exception as exc:  # noqa: BLE001 - LibreOffice missing: every plan is left without its PDF, said once
        return (f"no PDF copies were made ({exc})",)
    done = convert_to_pdf([run_dir / p.reviewed_plan for p in pupils], None, workers, soffice=soffice)
    return tuple(f"the reviewed plan of {p.referral_id}: {c.error}" for p, c in zip(pupils, done) if c.error)
