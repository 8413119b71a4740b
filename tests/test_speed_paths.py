"""The fast paths give exactly what the plain ones give (equivalence, not timing: `benchmarks/bench.py` times).

* `pipeline.rules.RowLoader` (memoised field by field) against marshmallow's own `SCHEMA.load`.
"""

from __future__ import annotations

import math
import random
from datetime import date, datetime

import pytest
from marshmallow import ValidationError

from pipeline.examples import generate_rows
from pipeline.rules import RowLoader
from schemas.referral import HEADINGS, SCHEMA

# values an officer (or a broken formula) can leave in any cell, read as ingest reads them
ODD_VALUES = [
    "", " ", "x", "  padded  ", "#REF!", " #n/a ", "None needed", "Yes", "no", "Y", "TRUE", "0", "1", "7", "2.0",
    "Year 9", "y10", "R", "Reception", "12", "31/02/2024", "03/09/2024", "3 Sept 2024", "2024-09-03", "13/13/2024",
    "03/09/24", "Tuesday 3 September 2024", "September 3, 2024", "B801200005001", "A801200005001",
    "B80120000500A", "b801 2000 0500 1", "inclusion@school.sch.uk", "mailto:A@Example.ORG", "not an email",
    "07700 900123", "+44 7700 900123", "12345", "EHCP", "sen k", "AP", "Direction offsite", "School", "Medical",
    "a;b\nc", "- item one\r\n• item two", "x" * 2001, "=1+1", "Zoë O'Brien & <Co>",
    0, 1, 2, 6, 7, 16, 17, -3, 0.0, -0.0, 1.0, 2.5, 3.0, 45000.0, 45000.5, 45536, 1e20, float("nan"), float("inf"),
    True, False, date(2024, 9, 3), date(1899, 12, 31), datetime(2024, 9, 3), datetime(2024, 9, 3, 10, 30),
    7700900123.0,
]


def reference_load(data: dict) -> tuple[dict, dict]:
    try:
        return SCHEMA.load(data), {}
    except ValidationError as err:
        return err.valid_data or {}, err.messages


def same(a, b) -> bool:
    """Equal, with NaN equal to itself and types compared too (1 == 1.0 == True otherwise)."""
    if isinstance(a, float) and isinstance(b, float) and math.isnan(a) and math.isnan(b):
        return True
    return type(a) is type(b) and a == b


def assert_same_load(loader: RowLoader, data: dict) -> None:
    try:
        expected_values, expected_messages = reference_load(data)
    except Exception as exc:  # a parser bug is the same bug both ways (not ours to hide here)
        with pytest.raises(type(exc)):
            loader.load(data)
        return
    values, messages = loader.load(data)
    assert list(values) == list(expected_values)
    assert all(same(values[k], expected_values[k]) for k in values), (data, values, expected_values)
    assert messages == expected_messages
    assert list(messages) == list(expected_messages)


def mutated_rows(count: int, seed: int) -> list[dict]:
    rng = random.Random(seed)
    rows = []
    for row in generate_rows(count, seed=seed):
        data = {k: v for k, v in row.items() if v is not None}
        for heading in rng.sample(list(HEADINGS.values()), rng.randint(0, 6)):
            if rng.random() < 0.2:
                data.pop(heading, None)  # a blank cell
            else:
                data[heading] = rng.choice(ODD_VALUES)
        rows.append(data)
    return rows


def test_row_loader_matches_marshmallow_on_valid_rows():
    loader = RowLoader()
    for data in generate_rows(300, seed=11):
        assert_same_load(loader, {k: v for k, v in data.items() if v is not None})


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_row_loader_matches_marshmallow_on_faulty_rows(seed):
    loader = RowLoader()  # one loader for the sheet: later rows hit values remembered from earlier ones
    for data in mutated_rows(400, seed):
        assert_same_load(loader, data)


def test_row_loader_matches_marshmallow_value_by_value():
    loader = RowLoader()
    for heading in HEADINGS.values():
        for value in ODD_VALUES:
            assert_same_load(loader, {heading: value})
            assert_same_load(loader, {heading: value})  # the second time from memory


def test_empty_row_and_unknown_keys():
    loader = RowLoader()
    assert_same_load(loader, {})
    assert_same_load(loader, {"Internal notes": "x", "Referral ID": "HAV-1"})
