"""Memory, time and output stay bounded for hostile inputs within docs/limits.md: one enormous shared string
filling every text cell, and the largest file the limits let through with about twenty errors on every row.
Each runs the real command in a child process and reads its peak memory from os.wait4."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from pipeline.write.examples import generate_rows, write_rows

pytestmark = pytest.mark.slow

EXAMPLE = Path(__file__).resolve().parent.parent / "examples" / "referrals-spring-2027.xlsx"


def run_measured(args: list[str], cwd: Path) -> tuple[int, float, float, str]:
    """(exit code, seconds, peak MB of the command, output) of `python -m pipeline ARGS`."""
    started = time.monotonic()
    proc = subprocess.Popen([sys.executable, "-m", "pipeline", *args], cwd=cwd, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT)
    out = proc.stdout.read()
    _, status, usage = os.wait4(proc.pid, 0)
    proc.returncode = os.waitstatus_to_exitcode(status)
    return proc.returncode, time.monotonic() - started, usage.ru_maxrss / 1024, out.decode("utf-8", "replace")


def one_huge_shared_string(path: Path, chars: int = 9_900_000) -> Path:
    """A small workbook whose text cells, on five rows, all hold one shared string of `chars` characters
    (openpyxl writes a repeated string once, as the table's one entry: a few KB zipped)."""
    import openpyxl

    from schemas.referral import HEADINGS

    big = "A" * chars
    rows = generate_rows(5, seed=3)
    wb = openpyxl.Workbook()
    ws = wb.active
    ws.title = "Referrals"
    headings = list(HEADINGS.values())
    ws.append(headings)
    for row in rows:
        ws.append([big if isinstance(row.get(h), str) else row.get(h) for h in headings])
    wb.save(path)
    return path


def test_one_enormous_shared_string_in_every_text_cell_is_bounded(tmp_path):
    path = one_huge_shared_string(tmp_path / "huge.xlsx")
    assert path.stat().st_size < 500_000
    code, seconds, peak_mb, out = run_measured(["validate", str(path), "--outbox", str(tmp_path / "out"),
                                                "--as-of", "2026-11-30"], tmp_path)
    assert code in (1, 2) and "Traceback" not in out, out[-2000:]
    assert seconds < 60 and peak_mb < 600, (seconds, peak_mb)
    assert len(out) < 100_000  # nothing printed grows with the cell
    for produced in (tmp_path / "out").rglob("*"):
        if produced.is_file():
            assert produced.stat().st_size < 20 * 2 ** 20, produced  # nor any output file


def test_twenty_thousand_rows_of_twenty_errors_each_are_reported_within_bounds(tmp_path):
    rows = generate_rows(2_000, seed=9)
    bad = {"UPN": "A801200005001", "Date of birth": "31/02/2013", "Year group": "Year 14", "SEN status": "some",
           "Looked after child": "perhaps", "Reintegration reason": "Managed move", "Returning via FAP": "No",
           "Current provision type": "Home", "Receiving school email": "not an email",
           "Parent/carer email": "nope", "Parent/carer phone": "12", "Decision date": "32/13/2026",
           "Planned return date": "yesterday", "Planning meeting date": "soon", "IPA start date": "x",
           "IPA end date": "y", "Previous return date": "z", "Key worker": "TBC", "Buddy": "?",
           "Review frequency (weeks)": 9, "Settling-in period (weeks)": 40, "Inclusions officer email": "x@"}
    for row in rows:
        row.update(bad)
    path = write_rows(tmp_path / "many-errors.xlsx", rows * 10)  # 20,000 rows (the limit), ~22 errors each
    code, seconds, peak_mb, out = run_measured(["validate", str(path), "--outbox", str(tmp_path / "out"),
                                                "--as-of", "2026-11-30", "--quiet"], tmp_path)
    assert code == 1 and "20000 rows" in out.replace(",", "") or "20,000 rows" in out, out[-500:]
    assert seconds < 60 and peak_mb < 600, (seconds, peak_mb)
