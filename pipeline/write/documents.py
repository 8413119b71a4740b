"""Rendering and writing each accepted pupil's plan and letter (a plan for every pupil; an invitation from an
AP, a request from a school), named by Referral ID and name, in parallel worker processes when the batch is
big enough to pay for starting them (`pipeline.write.batch`).
"""

from __future__ import annotations

import hashlib
from datetime import date
from pathlib import Path
from typing import NamedTuple

from pipeline.core import files
from pipeline.write.batch import compiled_templates, render_in_batches
from pipeline.write.context import build_context
from pipeline.write.render import INVITATION, PLAN, REQUEST, default_templates_dir


class Written(NamedTuple):
    """One pupil's documents as written: paths relative to the run folder, and the SHA-256 of each file's
    bytes, which tells `send` whether the officer has since edited it in Word."""

    plan: str
    letter: str
    plan_sha256: str
    letter_sha256: str


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


def _render_batch(job) -> list[tuple[str, str]]:
    """Render and write one batch; the (plan, letter) SHA-256 of each pupil, in order."""
    templates_dir, run_dir, run_id, generated_on, items = job
    templates = compiled_templates(templates_dir)
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
    digests = render_in_batches(_render_batch, items, templates_dir, shared=(str(run_dir), run_id, generated_on),
                                workers=workers, progress=progress, alongside=alongside)
    return [Written(f"plans/{name}", f"letters/{name}", plan_sha, letter_sha)
            for name, (plan_sha, letter_sha) in zip(names, digests)]
