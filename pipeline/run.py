"""One input spreadsheet, one run: ingest -> check -> render -> write -> record.

`run_file` is the whole job of `reintegrate run` for one file, and `validate_file` of `reintegrate validate`;
the CLI only turns options into these calls and their results into messages and exit codes.
"""

from __future__ import annotations

import shutil
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path

from pipeline.core import files
from pipeline.core.addresses import allowed_domains_of
from pipeline.check.calendar import SchoolCalendar, settling_in_end
from pipeline.core.errors import CalendarError, ExitCode
from pipeline.core.config import Config
from pipeline.read.referrals import read_referrals
from pipeline.core.ledger import Ledger, now_iso
from pipeline.write.reports import summary, write_json_by_line, write_summary, write_validation_report
from pipeline.check.rules import RuleContext, check_sheet, provisional_years
from schemas.manifest import dump_manifest, entry_record, substance_of

@dataclass(frozen=True)
class RunResult:
    input: Path
    run_id: str
    run_dir: Path
    rows: int
    accepted: int
    rejected: int
    warnings: int
    pdfs: int = 0  # PDF copies written (run --pdf, or pdf = true in the config)
    summary: dict | None = field(default=None, repr=False, compare=False)  # what summary.json holds
    pdf_failed: tuple[str, ...] = ()  # one sentence per document left without its PDF copy, naming the Referral ID

    @property
    def exit_code(self) -> ExitCode:
        return ExitCode.ACT if self.rejected or self.pdf_failed else ExitCode.OK


def manifest(run_id: str, input_name: str, as_of: date, accepted: list, written: list) -> dict:
    """What `send` and `reviews` need from a run (`schemas.manifest`): who gets which documents (and their
    bytes' SHA-256 as written, so an officer's later edit is seen), and each pupil's data."""
    entries = [entry_record(referral, reviews, docs) for (referral, reviews), docs in zip(accepted, written)]
    return dump_manifest(run_id, input_name, as_of, entries)


def pdf_copies(run_dir: Path, accepted: list, paths: list, *, soffice: str | None = None,
               workers: int | None = None, progress=None) -> tuple[int, tuple[str, ...]]:
    """A PDF beside each plan and letter (`pipeline.deliver.pdf`): how many were written, and a sentence for each
    document left without one, naming its Referral ID (never the file: its name carries the pupil's)."""
    from pipeline.deliver.pdf import convert_to_pdf

    sources, labels = [], []
    for (referral, _), docs in zip(accepted, paths):
        sources += [run_dir / docs.plan, run_dir / docs.letter]
        labels += [f"the plan of {referral.referral_id}", f"the letter of {referral.referral_id}"]
    done = convert_to_pdf(sources, None, workers, soffice=soffice, progress=progress)
    failed = tuple(f"{label}: {c.error}" for label, c in zip(labels, done) if c.error)
    return len(done) - len(failed), failed


def write_manifest(path: Path, data: dict) -> None:
    """manifest.json, one referral a line (`reports.write_json_by_line`)."""
    write_json_by_line(path, data, ("referrals",))


def process_file(path: str | Path, *, config: Config | None = None, as_of: date | None = None,
                 documents: bool = True, workers: int | None = None, progress=None,
                 run_id: str | None = None, pdf: bool | None = None, pdf_progress=None) -> RunResult:
    """Validate one spreadsheet and, with `documents`, write its plans, letters and tracker. Raises InputError
    (nothing written) when the file cannot be read at all. `run_id` (from `files.new_run_id()`) lets a caller
    name the run folder before it exists, so it can find and remove an interrupted one (`pipeline.watch`).
    `pdf` (default: the config's `pdf`) also saves a PDF copy beside each plan and letter; LibreOffice is looked
    for first, so without it `pipeline.deliver.pdf.LibreOfficeNotFound` is raised before anything is read or written."""
    config = config or Config()
    as_of = as_of or date.today()
    path = Path(path)
    pdf = documents and (config.pdf if pdf is None else pdf)
    if pdf:
        from pipeline.deliver.pdf import require_soffice

        soffice = require_soffice()
    sheet = read_referrals(path)
    sha256 = files.file_sha256(path)
    calendar = SchoolCalendar.load(config.term_dates)
    with Ledger(config.ledger_path) as ledger:
        results = check_sheet(sheet, RuleContext(calendar, as_of, ledger, allowed_domains_of(config.email)))
        if (note := provisional_years(results, calendar)) is not None:
            sheet.file_issues.append(note)
        run_id, run_dir = _new_run_dir(config.outbox, run_id)
        try:  # a run folder is complete or absent: anything that stops the run removes what it wrote
            accepted = [(r.referral, r.reviews) for r in results if r.accepted]
            paths, entries = _write_outputs(run_dir, run_id, path.name, sheet, results, accepted, as_of=as_of,
                                            config=config, documents=documents, workers=workers, progress=progress)
            pdfs, pdf_failed = (pdf_copies(run_dir, accepted, paths, soffice=soffice, workers=workers or config.workers,
                                           progress=pdf_progress) if pdf and paths else (0, ()))
            by_row = {referral.row: (p.plan, p.letter) for (referral, _), p in zip(accepted, paths)}
            data = summary(input_name=path.name, sha256=sha256, run_id=run_id, as_of=as_of, sheet=sheet,
                           results=results, documents=by_row)
            write_summary(run_dir / "summary.json", data)
            _record(ledger, run_id, run_dir, path.name, sha256, as_of, data, results, accepted, paths, entries,
                    documents, calendar)
        except BaseException as exc:
            _remove_run_dir(run_dir, exc)
            raise
    return RunResult(path, run_id, run_dir, data["rows"], data["accepted"], data["rejected"], data["warnings"],
                     pdfs=pdfs, pdf_failed=pdf_failed, summary=data)


def _new_run_dir(outbox: Path, run_id: str | None) -> tuple[str, Path]:
    if run_id is None:
        return files.create_run_dir(outbox)
    run_dir = files.make_dir(Path(outbox)) / run_id
    run_dir.mkdir(mode=files.DIR_MODE)  # created exclusively: a run id is never reused
    return run_id, run_dir


def _write_outputs(run_dir: Path, run_id: str, input_name: str, sheet, results, accepted, *, as_of: date,
                   config: Config, documents: bool, workers, progress) -> tuple[list, list]:
    """The validation report and, with `documents`, the plans, letters, tracker and manifest; returns the
    documents written (`documents.Written`) and the manifest entries, one of each per accepted referral."""

    def report():
        write_validation_report(run_dir / "validation-report.xlsx", sheet, results)

    if not (documents and accepted):
        report()
        return [], []
    from pipeline.write.documents import write_documents
    from pipeline.write.tracker import tracker_rows, write_tracker

    def tracker_and_report():  # done by this process while worker processes render the documents
        rows = [row for referral, reviews in accepted for row in tracker_rows(referral, reviews)]
        write_tracker(run_dir / "review-tracker.xlsx", rows, run_id=run_id)
        report()

    paths = write_documents(run_dir, accepted, run_id=run_id, generated_on=as_of, templates_dir=config.templates(),
                            workers=workers or config.workers, progress=progress, alongside=tracker_and_report)
    data = manifest(run_id, input_name, as_of, accepted, paths)
    write_manifest(run_dir / "manifest.json", data)
    return paths, data["referrals"]


def _record(ledger: Ledger, run_id: str, run_dir: Path, input_name: str, sha256: str, as_of: date, data: dict,
            results, accepted, paths, entries, documents: bool, calendar: SchoolCalendar) -> None:
    """The run in the ledger: what 3.9 and `send` remember, and what the term register shows."""
    referrals = [_register_facts(referral, reviews, p, entry, calendar)
                 for (referral, reviews), p, entry in zip(accepted, paths, entries)]
    rejections = [{"row": r.number, "referral_id": r.referral_id,
                   "rules": sorted({i.rule for i in r.issues if i.is_error})} for r in results if not r.accepted]
    ledger.record_run(
        {"run_id": run_id, "kind": "run" if documents else "validate", "started_at": now_iso(),
         "input_name": input_name, "sha256": sha256, "as_of": as_of.isoformat(), "run_dir": str(run_dir),
         "rows": data["rows"], "accepted": data["accepted"], "rejected": data["rejected"]},
        referrals if documents else [], rejections,
    )


def _register_facts(referral, reviews, written, entry: dict, calendar: SchoolCalendar) -> dict:
    try:
        protected_until = calendar.protected_period_end(referral.planned_return_date)  # clause 3.9
    except CalendarError:
        protected_until = None
    return {"referral_id": referral.referral_id, "upn": referral.upn, "planned_return": referral.planned_return_date,
            "plan": written.plan, "letter": written.letter,
            "pupil": referral.shown_name,
            "receiving_school": referral.receiving_school, "route": referral.reintegration_reason,
            "reviews": reviews, "protected_until": protected_until, "substance": substance_of(entry),
            "settling_in_end": settling_in_end(referral.planned_return_date, referral.settling_in_period_weeks, reviews)}


def _remove_run_dir(run_dir: Path, exc: BaseException) -> None:
    """A run that stops leaves no run folder; a full disk or a lost share, whoever reported it, is raised as
    its OSError (one sentence for the officer, not a traceback)."""
    shutil.rmtree(run_dir, ignore_errors=True)
    error = files.os_error(exc)
    if error is not None and error is not exc and not isinstance(exc, (KeyboardInterrupt, SystemExit)):
        raise error from None


def run_file(path, **kwargs) -> RunResult:
    return process_file(path, documents=True, **kwargs)


def validate_file(path, **kwargs) -> RunResult:
    kwargs.pop("workers", None)
    return process_file(path, documents=False, **kwargs)
