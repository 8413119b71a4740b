"""One manifest entry made ready to become a message: `prepare_entry` reads and checks it, reads the newest
plan and the letter (and their PDF copies when asked), names the attachments, and fingerprints what is sent.

Two fingerprints decide whether a referral was already delivered (`pipeline.deliver.send`): `content_hash`
over the attachments' bytes, and `substance_of` over what the referral says, whatever run produced it.

Personal data stays inside the attachments: attachment names carry the Referral ID and what the document is
(`HAV-0001 reintegration plan.docx`, `HAV-0001 meeting invitation.docx`), never a pupil's name, since a file
name travels in the message headers like a subject line; and no `MailError` names a plan or letter file,
whose names in the run folder carry the pupil's name.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Mapping

from pipeline.core.errors import ReintegrateError
from pipeline.core.files import safe_name_part
from schemas.manifest import substance_of
from pipeline.write.plan_record import newest_plan, review_date_of


class MailError(ReintegrateError):
    """A referral whose message cannot be built (missing file, missing or malformed field).

    The message never names a plan or letter file: their names carry the pupil's name.
    """


def one_line(value) -> str:
    """Header- and template-safe text: no line breaks or control characters, spaces collapsed."""
    if value is None:
        return ""
    return re.sub(r"[\s\x00-\x1f\x7f]+", " ", str(value)).strip()


def attachment_name(entry: Mapping, key: str, path: Path, review_date: str | None) -> str:
    """What the receiving school sees: the Referral ID and the document, never the pupil's name."""
    rid = safe_name_part(str(entry.get("referral_id") or "referral"))
    if key == "plan":
        what = "reintegration plan" + (f" reviewed {review_date}" if review_date else "")
    else:
        what = "meeting request" if entry.get("letter_kind") == "request" else "meeting invitation"
    return f"{rid} {what}{path.suffix.lower()}"


def content_hash(attachments: list[tuple[str, bytes]]) -> str:
    """SHA-256 over the attachments' bytes (in order): a new plan version is new content."""
    digest = hashlib.sha256()
    for _name, data in attachments:
        digest.update(hashlib.sha256(data).digest())
    return digest.hexdigest()


@dataclass
class Prepared:
    """One manifest entry, read and checked, ready to become a message."""

    referral_id: str
    entry: dict
    to: str
    cc: str | None
    attachments: list[tuple[str, bytes]]  # (file name, bytes)
    attachment_paths: list[str]  # relative to the run folder, for reports
    plan_review_date: str | None
    content_sha256: str  # the attachments' bytes
    substance: str  # what the referral says, apart from run id, row and preparation date
    as_generated: bool  # plan and letter are exactly as `run` wrote them (no reviewed version, no Word edit)

    @property
    def recipients(self) -> list[str]:
        return [self.to] + ([self.cc] if self.cc else [])


def _inside(run_dir: Path, relative) -> Path:
    if not isinstance(relative, str) or not relative.strip():
        raise MailError("the manifest names no file for it")
    path = Path(relative)
    if path.is_absolute():
        raise MailError("the manifest points outside the run folder")
    resolved = (run_dir / path).resolve()
    if not resolved.is_relative_to(run_dir.resolve()):
        raise MailError("the manifest points outside the run folder")
    return run_dir / path


def _read_document(run_dir: Path, entry: dict, key: str) -> tuple[Path, bytes]:
    """The newest version of the plan (or the letter) and its bytes."""
    try:
        path = _inside(run_dir, entry.get(key))
    except MailError as exc:
        raise MailError(f"the {key} file: {exc}") from None
    if key == "plan":
        path = newest_plan(path)
    try:
        return path, path.read_bytes()
    except FileNotFoundError:
        raise MailError(f"the {key} file is missing from the {path.parent.name}/ folder") from None
    except OSError as exc:
        raise MailError(f"the {key} file in the {path.parent.name}/ folder cannot be read "
                        f"({exc.strerror or exc})") from None


def _pdf_copies(files: list[tuple[Path, bytes]]) -> list[tuple[Path, bytes]]:
    """The PDF copy beside each document: plans/<name>.pdf, letters/<name>.pdf."""
    copies = []
    for key, (path, _) in zip(("plan", "letter"), files):
        pdf = path.with_suffix(".pdf")
        try:
            copies.append((pdf, pdf.read_bytes()))
        except OSError:
            raise MailError(f"attach_pdf is on but the PDF copy of the {key} is missing from "
                            f"the {path.parent.name}/ folder: make it with `reintegrate run --pdf` (or Word's "
                            "Save as PDF, beside the document), or set attach_pdf = false") from None
    return copies


def prepare_entry(entry: dict, run_dir: Path, index: int = 0, attach_pdf: bool = False) -> Prepared:
    """Manifest entry number `index` (from 0) of the run folder, with its documents; `MailError` says why not."""
    if not isinstance(entry, dict):
        raise MailError(f"manifest entry {index + 1} is not a record")
    referral_id = one_line(entry.get("referral_id"))
    if not referral_id:
        raise MailError(f"manifest entry {index + 1} has no referral_id")
    to = one_line(entry.get("receiving_school_email"))
    if not to:
        raise MailError("no receiving school email in the manifest")
    cc = one_line(entry.get("inclusions_officer_email")) or None
    if cc and cc.lower() == to.lower():
        cc = None
    files = [_read_document(run_dir, entry, "plan"), _read_document(run_dir, entry, "letter")]
    plan_path = files[0][0]
    review_date = review_date_of(plan_path)
    as_generated = review_date is None and all(
        entry.get(f"{key}_sha256") == hashlib.sha256(data).hexdigest()
        for key, (_, data) in zip(("plan", "letter"), files))
    if attach_pdf:
        files += _pdf_copies(files)
    attachments = [(attachment_name(entry, key, path, review_date), data)
                   for key, (path, data) in zip(("plan", "letter", "plan", "letter"), files)]
    return Prepared(referral_id=referral_id, entry=entry, to=to, cc=cc, attachments=attachments,
                    attachment_paths=[p.relative_to(run_dir).as_posix() for p, _ in files],
                    plan_review_date=review_date, content_sha256=content_hash(attachments),
                    substance=substance_of(entry), as_generated=as_generated)
