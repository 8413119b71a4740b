"""The one-screen summary printed at the end of `reintegrate run` and `validate`, built from each run's
summary (what summary.json holds, as the run computed it): rows accepted and rejected per file, rejected rows counted by rule, warnings by rule, and where
the files are.

It shows file names, counts, rule ids and folders, never a pupil's name, date of birth or UPN (the plan and
letter files are named after the pupil, so it names their folders, not the files). Plain ASCII, at most 80
columns, so it reads the same in a Windows console, a log file and an email.

    from pipeline.cli.summary import RunSummary, summary_table

    print("\\n".join(summary_table([RunSummary(result.summary, result.run_dir, result.pdfs)], documents=True)))
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

from pipeline.check.rules import rule_title

WIDTH = 80


@dataclass
class RunSummary:
    """One processed file: its summary.json, its run folder, and the PDF copies made."""

    data: dict
    run_dir: Path
    pdfs: int = 0
    pdf_failed: tuple[str, ...] = ()

    @property
    def row_warnings(self) -> int:
        return self.data["warnings"]

    @property
    def file_warnings(self) -> int:
        return sum(i["severity"] == "warning" for i in self.data["file_issues"])


@dataclass
class Totals:
    files: int = 0
    unreadable: int = 0
    rows: int = 0
    accepted: int = 0
    rejected: int = 0
    warnings: int = 0
    file_warnings: int = 0  # about a whole file (an unknown column, provisional term dates), not a row
    rejected_by_rule: Counter = field(default_factory=Counter)  # rule -> rows rejected under it
    warnings_by_rule: Counter = field(default_factory=Counter)  # rule -> warnings on rows


def totals(runs: list[RunSummary], unreadable: int = 0) -> Totals:
    t = Totals(files=len(runs), unreadable=unreadable)
    for run in runs:
        d = run.data
        t.rows += d["rows"]
        t.accepted += d["accepted"]
        t.rejected += d["rejected"]
        t.warnings += d["warnings"]  # warnings on rows, as summary.json counts them
        t.file_warnings += run.file_warnings
        for referral in d["referrals"]:
            rules = {i["rule"] for i in referral["issues"] if i["severity"] == "error"}
            if referral["status"] == "rejected":
                t.rejected_by_rule.update(rules or {"(file)"})  # no row error: a file-level error rejected it
            t.warnings_by_rule.update(i["rule"] for i in referral["issues"] if i["severity"] == "warning")
    return t


def _fit(text: str, width: int) -> str:
    return text if len(text) <= width else text[:width - 3] + "..."


def _plural(n: int, word: str) -> str:
    return f"{n} {word}" + ("" if n == 1 else "s")


def counts_text(rows: int, accepted: int, rejected: int, warnings: int, file_warnings: int) -> str:
    """`24 rows, 15 accepted, 9 rejected, 2 warnings on rows and 2 about the file`: one wording everywhere."""
    about = f" and {file_warnings} about the file" if file_warnings else ""
    return (f"{_plural(rows, 'row')}, {accepted} accepted, {rejected} rejected, "
            f"{_plural(warnings, 'warning')} on rows{about}")


def _folder(run: RunSummary) -> str:
    try:
        shown = run.run_dir.relative_to(Path.cwd())
    except ValueError:
        shown = run.run_dir
    return shown.as_posix().rstrip("/") + "/"


def summary_table(runs: list[RunSummary], *, documents: bool, unreadable: list[str] = (), as_of: str | None = None,
                  width: int = WIDTH) -> list[str]:
    """The summary's lines. `documents`: a `run` (plans and letters) rather than a `validate`; `unreadable`:
    the names of the inputs that could not be read at all."""
    t = totals(runs, len(unreadable))
    title = "Summary" + (f" (rules judged on {as_of}) " if as_of else " ")
    lines = ["-- " + title + "-" * max(0, width - len(title) - 3)]
    name_width = max([len("file"), *(len(r.data["input"]) for r in runs), *(len(n) for n in unreadable)])
    name_width = min(name_width, width - 44)
    lines.append(f"  {'file':<{name_width}}  {'rows':>5}  {'accepted':>8}  {'rejected':>8}  {'warnings':>8}")
    for run in runs:
        d = run.data
        lines.append(f"  {_fit(d['input'], name_width):<{name_width}}  {d['rows']:>5}  {d['accepted']:>8}  "
                     f"{d['rejected']:>8}  {d['warnings']:>8}")
    for name in unreadable:
        lines.append(_fit(f"  {_fit(name, name_width):<{name_width}}  could not be read (the error above says why)",
                          width))
    if len(runs) > 1:
        lines.append(f"  {'all':<{name_width}}  {t.rows:>5}  {t.accepted:>8}  {t.rejected:>8}  {t.warnings:>8}")

    def by_rule(title: str, counts: Counter) -> None:
        if not counts:
            return
        lines.append("")
        lines.append(title)
        for rule, n in sorted(counts.items(), key=lambda kv: (-kv[1], kv[0])):
            meaning = rule_title(rule) or ("a missing or unreadable column" if rule == "(file)" else "")
            lines.append(_fit(f"  {rule:<9} {n:>4}  {meaning}", width))

    by_rule("Rejected rows, by rule (a row can break more than one)", t.rejected_by_rule)
    by_rule("Warnings on rows, by rule (a warning alone rejects nothing)", t.warnings_by_rule)
    if not runs:
        return lines
    lines.append("")
    if len(runs) == 1:
        lines.append(_fit(f"Where the files are: {_folder(runs[0])}", width))
    else:
        lines.append("Where the files are: one run folder for each file")
        for run in runs:
            lines.append(_fit(f"  {_folder(run)}  ({run.data['input']})", width))
    accepted = sum(r.data["accepted"] for r in runs)
    pdfs = sum(r.pdfs for r in runs)
    kind = ("Word and PDF" if pdfs == 2 * accepted else f"Word; {pdfs} PDF copies") if pdfs else "Word"
    legend = []
    if documents and accepted:
        made = (f"{_plural(accepted, 'plan')} and {_plural(accepted, 'meeting letter')}" if len(runs) == 1
                else "the plans and meeting letters")
        legend.append(("plans/, letters/", f"{made} ({kind})"))
        legend.append(("review-tracker.xlsx", "one row per review: record them as they happen"))
    legend.append(("validation-report.xlsx", "your rows, faulty cells highlighted; an Issues sheet"))
    legend.append(("summary.json", "these results, for other programs"))
    for name, text in legend:
        lines.append(_fit(f"  {name:<23} {text}", width))
    return lines


def final_line(runs: list[RunSummary], *, documents: bool, unreadable: int = 0) -> str:
    """The last line of every run, even with --quiet."""
    t = totals(runs, unreadable)
    counts = counts_text(t.rows, t.accepted, t.rejected, t.warnings, t.file_warnings)
    if not runs:
        return f"Done: no file could be read ({_plural(unreadable, 'file')} with errors above)."
    where = _folder(runs[0]) if len(runs) == 1 else f"{len(runs)} run folders in {_folder_parent(runs)}"
    extra = f"; {_plural(unreadable, 'file')} could not be read" if unreadable else ""
    pdfs = sum(r.pdfs for r in runs)
    made = f", {pdfs} PDF copies" if pdfs else ""
    return f"Done: {counts}{made}{extra}. Files: {where}"


def _folder_parent(runs: list[RunSummary]) -> str:
    parents = {_folder(r).rstrip("/").rsplit("/", 1)[0] if "/" in _folder(r).rstrip("/") else "." for r in runs}
    return (parents.pop() + "/") if len(parents) == 1 else "several folders"
