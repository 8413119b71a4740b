"""Shared fixtures: real workbooks written by the project's own example generator."""

from __future__ import annotations

import os
from datetime import date

import pytest

from pipeline.check.calendar import SchoolCalendar
from pipeline.core.config import Config
from pipeline.write.examples import generate_rows, write_rows

AS_OF = date(2026, 11, 30)  # the example rows are decided from 30 Nov 2026 and return in spring 2027


@pytest.fixture(scope="session")
def calendar() -> SchoolCalendar:
    return SchoolCalendar.load()


@pytest.fixture
def valid_row():
    """A factory for one valid referral row {heading: value}, with overrides by heading."""

    def make(seed: int = 1, **overrides) -> dict:
        row = generate_rows(1, seed=seed)[0]
        row["Referral ID"] = f"HAV-{seed:05d}"
        row.update(overrides)
        return row

    return make


@pytest.fixture
def workbook(tmp_path):
    """A factory writing rows to a real .xlsx (openpyxl can read it, Excel can open it)."""

    def make(rows, name="referrals.xlsx", **kwargs):
        return write_rows(tmp_path / name, rows, **kwargs)

    return make


@pytest.fixture
def config(tmp_path) -> Config:
    return Config(outbox=tmp_path / "outbox")


@pytest.fixture(autouse=True)
def _private_umask():
    old = os.umask(0o022)
    yield
    os.umask(old)
