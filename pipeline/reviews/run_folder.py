"""Finding the run a review tracker came from (its own folder, else `outbox/<run id>`) and loading what that
run's manifest.json says: each accepted referral's pupil data, plan and scheduled review dates.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from datetime import date
from pathlib import Path, PurePosixPath

from marshmallow import ValidationError

from pipeline.reviews.errors import TrackerMismatchError, UnknownRunError
from pipeline.reviews.tracker_file import Tracker
from pipeline.write.tracker import RUN_ID_PROPERTY
from schemas.manifest import load_manifest
from schemas.model import Referral

__all__ = ["Entry", "Run", "find_run"]

_RUN_ID = re.compile(r"[0-9A-Za-z][0-9A-Za-z_.-]{0,99}")


@dataclass(frozen=True)
class Entry:
    """One accepted referral of the run, from its manifest.json."""

    referral_id: str
    plan: str  # relative to the run folder: plans/<stem>.docx
    referral: Referral
    scheduled: tuple[date, ...]


@dataclass
class Run:
    run_id: str
    run_dir: Path
    as_of: date | None  # the run's own as-of date (when the original plans were prepared)
    entries: list[Entry]


def _load_run(tracker_path: Path, run_dir: Path, run_id: str) -> Run:
    """The run's accepted referrals from its manifest.json, read by the manifest's schema (`schemas.manifest`)."""
    manifest_path = run_dir / "manifest.json"
    if not manifest_path.is_file():
        raise UnknownRunError(tracker_path, f"run {run_id} ({run_dir}) has no manifest.json, so its plans are not "
                                            "known (it was a `validate` run, or it did not finish)")
    try:
        data = load_manifest(json.loads(manifest_path.read_text(encoding="utf-8")))
        entries = [_entry(item) for item in data["referrals"]]
    except ValidationError as exc:
        raise UnknownRunError(tracker_path, f"the manifest.json of run {run_id} cannot be read "
                                            f"({_first_message(exc.messages)}); run the referrals again to make a "
                                            "new tracker") from None
    except (OSError, ValueError) as exc:
        raise UnknownRunError(tracker_path, f"the manifest.json of run {run_id} cannot be read ({exc}); run the "
                                            "referrals again to make a new tracker") from None
    if data["run_id"] not in (None, run_id):
        raise UnknownRunError(tracker_path, f"the folder {run_dir} holds run {data['run_id']}, not run {run_id}")
    return Run(run_id, run_dir, data["as_of"], entries)


def _entry(item: dict) -> Entry:
    plan = PurePosixPath(item["plan"])
    if len(plan.parts) != 2 or plan.parts[0] != "plans" or plan.suffix != ".docx" or plan.name.startswith("."):
        raise ValueError(f"plan {item['plan']!r} is not in the run's plans folder")
    if item["referral"] is None:
        raise ValueError("no pupil data (made by an older version of reintegrate)")
    return Entry(item["referral_id"], str(plan), item["referral"], tuple(item["reviews"]))


def _first_message(messages) -> str:
    """marshmallow's nested messages as one phrase: where, then what."""
    where = []
    while isinstance(messages, dict) and messages:
        key, messages = next(iter(messages.items()))
        where.append(str(key))
    what = messages[0] if isinstance(messages, list) and messages else str(messages)
    return f"{'.'.join(where)}: {what}" if where else what


def _manifest_run_id(run_dir: Path) -> str | None:
    try:
        return json.loads((run_dir / "manifest.json").read_text(encoding="utf-8")).get("run_id")
    except (OSError, ValueError, AttributeError):
        return None


def find_run(tracker: Tracker, outbox: str | Path | None = None) -> Run:
    """The run the tracker came from: the folder the tracker sits in when it is that run's folder, else
    `outbox`/<run id>. Raises `UnknownRunError` (one sentence) when there is no such run."""
    path, run_id = tracker.path, tracker.run_id
    beside = path.parent
    beside_id = _manifest_run_id(beside)
    if run_id is None:
        if beside_id:
            return _load_run(path, beside, beside_id)
        raise UnknownRunError(path, f"the workbook has no run id (document property {RUN_ID_PROPERTY}) and does not "
                                    "sit in a run folder, so its run is unknown: use the review-tracker.xlsx that "
                                    "`reintegrate run` wrote, or keep it in its run folder")
    if not _RUN_ID.fullmatch(run_id) or ".." in run_id:
        raise UnknownRunError(path, f"the workbook's run id {run_id!r} is not one `reintegrate run` writes; use the "
                                    "review-tracker.xlsx from the run folder")
    if beside_id == run_id:
        return _load_run(path, beside, run_id)
    if beside_id is not None:  # a tracker copied into another run's folder: which run's pupils would it mean?
        raise TrackerMismatchError(path, f"the tracker belongs to run {run_id} but sits in the folder of run "
                                         f"{beside_id}, so it is not applied to either; use the review-tracker.xlsx "
                                         "that is in its own run folder")
    if outbox is not None and (Path(outbox) / run_id).is_dir():
        return _load_run(path, Path(outbox) / run_id, run_id)
    where = f"beside the tracker nor in {outbox}" if outbox is not None else "beside the tracker"
    raise UnknownRunError(path, f"the tracker belongs to run {run_id}, which is not {where}: give --outbox the "
                                "folder holding that run's folder")
