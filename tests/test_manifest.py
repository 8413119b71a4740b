"""manifest.json: written by `run` and read back by the one schema (schemas/manifest.py)."""

from __future__ import annotations

import json
from datetime import date

import pytest
from marshmallow import ValidationError

from pipeline.core.config import Config
from pipeline.run import run_file
from pipeline.write.examples import generate_rows, write_rows
from schemas.manifest import MANIFEST, load_manifest
from schemas.model import Referral


@pytest.fixture(scope="module")
def written(tmp_path_factory):
    folder = tmp_path_factory.mktemp("manifest")
    source = write_rows(folder / "referrals.xlsx", generate_rows(12))
    result = run_file(source, config=Config(outbox=folder / "outbox", ledger=folder / "ledger.sqlite3"),
                      as_of=date(2026, 11, 30))
    return json.loads((result.run_dir / "manifest.json").read_text(encoding="utf-8")), result


def test_what_run_writes_is_exactly_what_the_schema_dumps(written):
    data, result = written
    assert data["referrals"] and len(data["referrals"]) == result.accepted
    assert MANIFEST.dump(load_manifest(data)) == data


def test_the_pupils_data_comes_back_typed_as_the_dataclass_declares(written):
    data, _ = written
    loaded = load_manifest(data)
    assert loaded["as_of"] == date(2026, 11, 30) and loaded["run_id"] == data["run_id"]
    entry = loaded["referrals"][0]
    pupil = entry["referral"]
    assert isinstance(pupil, Referral)
    assert isinstance(pupil.date_of_birth, date) and isinstance(pupil.planned_return_date, date)
    assert isinstance(pupil.reasonable_adjustments, tuple) and isinstance(pupil.looked_after_child, bool)
    assert all(isinstance(d, date) for d in entry["reviews"]) and entry["reviews"]
    assert pupil.referral_id == entry["referral_id"] == data["referrals"][0]["referral_id"]


@pytest.mark.parametrize("change, problem", [
    (lambda p: p.update(date_of_birth="12/03/2015"), "date_of_birth"),
    (lambda p: p.update(looked_after_child="no"), "looked_after_child"),
    (lambda p: p.update(reasonable_adjustments="None needed"), "reasonable_adjustments"),
    (lambda p: p.pop("upn"), "incomplete"),
])
def test_a_hand_edited_pupil_record_is_refused_naming_the_field(written, change, problem):
    data, _ = written
    data = json.loads(json.dumps(data))
    change(data["referrals"][0]["referral"])
    with pytest.raises(ValidationError) as err:
        load_manifest(data)
    assert problem in json.dumps(err.value.messages)


def test_an_older_manifest_without_hashes_or_pupil_data_still_reads(written):
    data, _ = written
    data = json.loads(json.dumps(data))
    for entry in data["referrals"]:
        for key in ("plan_sha256", "letter_sha256", "referral"):
            entry.pop(key)
        entry["added_by_a_newer_version"] = 1
    loaded = load_manifest(data)
    assert all(e["referral"] is None and e["plan_sha256"] is None for e in loaded["referrals"])
