"""The plan's review record table, filled in place in the officer's own version of the plan (`reviews`, docs/reviews.md).

`reviews` never rebuilds a plan the officer may have edited in Word: it opens the latest version with
python-docx, finds the review record table by its heading row (a table whose first row names Review and Date
and Status or Outcome: the review *schedule* table has Review and Date but neither of those), replaces that
table's rows under the headings with one row per recorded review, and saves a copy. Everything else in the
document (text, other tables, formatting, comments, headers) is python-docx's untouched XML.

The rows copy the formatting of the table's first row under its headings; each column is filled by its heading
(Review, Date, Status, Outcome, Next steps, matched case- and space-insensitively), so an officer who moved,
renamed or added columns keeps them: a column with another heading is left blank, a missing one is named in
`Filled.missing`. When no such table is left, `fill_review_record` returns None and the caller makes the plan
afresh from the template (and says so).
"""

from __future__ import annotations

import copy
import io
import re
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path, PurePosixPath

from pipeline.core import files
from schemas.parsers import normalise_heading

# record key -> the headings that mean it
COLUMNS = {
    "number": ("review", "review no", "review number", "no"),
    "date": ("date", "review date"),
    "status": ("status",),
    "outcome": ("outcome", "outcomes"),
    "next_steps": ("next steps", "actions", "next step"),
}
_BY_HEADING = {normalise_heading(h): key for key, headings in COLUMNS.items() for h in headings}


@dataclass
class Filled:
    """What `fill_review_record` did: the columns the table lacks, and rows typed in Word that it replaced."""

    missing: list[str] = field(default_factory=list)
    replaced_typed_rows: int = 0


def _columns(table) -> dict[str, int] | None:
    """{record key: column index} when `table` is a review record table, else None."""
    if not table.rows:
        return None
    found: dict[str, int] = {}
    for index, cell in enumerate(table.rows[0].cells):
        key = _BY_HEADING.get(normalise_heading(cell.text))
        if key and key not in found:
            found[key] = index
    if "number" in found and "date" in found and ("status" in found or "outcome" in found):
        return found
    return None


def _tables(document) -> list:
    """Every table, those nested in table cells included, in document order."""
    out = []

    def walk(tables):
        for table in tables:
            out.append(table)
            for row in table.rows:
                for cell in row.cells:
                    walk(cell.tables)

    walk(document.tables)
    return out


def find_record_table(document) -> tuple[object, dict[str, int]] | None:
    """(python-docx Table, {record key: column index}) of the first review record table, or None."""
    for table in _tables(document):
        columns = _columns(table)
        if columns:
            return table, columns
    return None


def _set_text(cell, text: str) -> None:
    """The cell holds `text` in its first paragraph, with the formatting of that paragraph's first run."""
    paragraphs = cell.paragraphs
    first = paragraphs[0]
    for extra in paragraphs[1:]:
        extra._p.getparent().remove(extra._p)
    runs = first.runs
    if runs:
        runs[0].text = text
        for run in runs[1:]:
            run._r.getparent().remove(run._r)
    elif text:
        first.add_run(text)


def _row_text(row) -> str:
    return "|".join(" ".join(c.text.split()) for c in row.cells)


def fill_review_record(source: Path, dest: Path, records: list[dict]) -> Filled | None:
    """Write `dest`: `source` with its review record table holding `records` (dicts with the string values of
    number, date, status, outcome, next_steps). None, writing nothing, when `source` has no such table."""
    import docx  # here, not at the top: `send` imports this module for `newest_plan` alone
    from docx.table import _Row

    document = docx.Document(str(source))
    found = find_record_table(document)
    if found is None:
        return None
    table, columns = found
    result = Filled(missing=[k for k in COLUMNS if k not in columns])
    body = list(table.rows)[1:]
    new_texts = set()
    pattern = copy.deepcopy(body[0]._tr) if body else copy.deepcopy(table.rows[0]._tr)
    for row in body:
        table._tbl.remove(row._tr)
    width = len(table.rows[0].cells)
    for record in records:
        tr = copy.deepcopy(pattern)
        table._tbl.append(tr)
        row = _Row(tr, table)
        cells = row.cells
        values = [""] * width
        for key, index in columns.items():
            values[index] = str(record.get(key) or "")
        for index, cell in enumerate(cells[:width]):
            _set_text(cell, values[index])
        new_texts.add(_row_text(row))
    # a row typed into the table in Word (not one the template or a reviews run put there) is replaced
    # by the tracker's rows: say so, since the tracker is the record
    for old in body:
        texts = [" ".join(c.text.split()) for c in old.cells]
        typed = any(texts[i] for key, i in columns.items() if key in ("status", "outcome", "next_steps") and i < len(texts))
        if typed and _row_text(old) not in new_texts:
            result.replaced_typed_rows += 1
    buffer = io.BytesIO()
    document.save(buffer)
    files.write_bytes(dest, buffer.getvalue())
    return result


_REVIEW_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}$")
_REVIEWED = re.compile(r"\.reviewed-(\d{4}-\d{2}-\d{2})\.docx$")


def reviewed_plan_name(plan: str, as_of: date) -> str:
    """``plans/HAV-0001_Smith_Amy.docx`` -> ``plans/HAV-0001_Smith_Amy.reviewed-2027-03-01.docx`` (what
    `newest_plan` picks up)."""
    p = PurePosixPath(plan)
    return str(p.with_name(f"{p.stem}.reviewed-{as_of.isoformat()}.docx"))


def review_date_of(plan: Path) -> str | None:
    """``2027-03-01`` for a reviewed version of a plan, None for the plan as `run` wrote it."""
    match = _REVIEWED.search(Path(plan).name)
    return match[1] if match else None


def newest_plan(plan: Path) -> Path:
    """The newest version of a plan: the ``<stem>.reviewed-YYYY-MM-DD.docx`` written last (its date is the
    --as-of of that `reviews`, which can be in the future), else the plan."""
    plan = Path(plan)
    prefix, suffix = plan.stem + ".reviewed-", ".docx"
    try:
        siblings = [path for path in plan.parent.iterdir()
                    if path.name.startswith(prefix) and path.name.endswith(suffix)]
    except OSError:
        return plan
    newest = _newest_by_plan(siblings)
    return plan.parent / newest[plan.stem] if plan.stem in newest else plan


def newest_versions(folder: Path) -> dict[str, str]:
    """For every plan in a run's plans/ folder that has reviewed versions: its stem -> the file name of the
    newest (as `newest_plan` chooses), from one look at the folder."""
    try:
        return _newest_by_plan(list(Path(folder).iterdir()))
    except OSError:
        return {}


def _newest_by_plan(paths) -> dict[str, str]:
    best: dict[str, tuple] = {}
    for path in paths:
        match = _REVIEWED.search(path.name)
        if not match or not _REVIEW_DATE.match(match[1]):
            continue
        try:
            when = (path.stat().st_mtime_ns, date.fromisoformat(match[1]))
        except (ValueError, OSError):
            continue
        if not path.is_file():
            continue
        stem = path.name[:match.start()]
        if stem not in best or when > best[stem][0]:
            best[stem] = (when, path.name)
    return {stem: name for stem, (_, name) in best.items()}
