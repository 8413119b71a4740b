"""`reintegrate template`: the blank workbook generated from the schema, filled in by code and validated clean."""

from __future__ import annotations

from datetime import date

import openpyxl
from click.testing import CliRunner

from pipeline.cli.main import main
from pipeline.core.config import Config
from pipeline.run import validate_file
from schemas.referral import SCHEMA


def test_template_has_the_spec_headings_lists_and_instructions(tmp_path):
    path = tmp_path / "t.xlsx"
    result = CliRunner().invoke(main, ["template", str(path)])
    assert result.exit_code == 0, result.output
    wb = openpyxl.load_workbook(path)
    assert wb.sheetnames[:2] == ["Referrals", "Instructions"]
    ws = wb["Referrals"]
    headings = [c.value for c in ws[1]]
    assert headings == [f.data_key for f in SCHEMA.fields.values()]
    assert ws.freeze_panes == "B2"
    assert "Required" in ws["A1"].comment.text
    lists_by_heading = {}
    for dv in ws.data_validations.dataValidation:
        col = str(dv.sqref).split(":")[0].rstrip("0123456789")
        lists_by_heading[ws[f"{col}1"].value] = dv
    assert lists_by_heading["SEN status"].type == "list"
    source = lists_by_heading["SEN status"].formula1.lstrip("=")
    sheet, rng = source.split("!")
    values = [c.value for row in wb[sheet][rng.replace("$", "")] for c in row]
    assert values == ["No SEN", "SEN support", "EHCP"]
    assert lists_by_heading["Returning via FAP"].type == "list"
    assert lists_by_heading["Date of birth"].type == "date"
    assert lists_by_heading["Review frequency (weeks)"].type == "whole"
    col = headings.index("Date of birth") + 1
    assert ws.cell(row=2, column=col).number_format in ("dd/mm/yyyy", "DD/MM/YYYY") or \
        ws.column_dimensions[openpyxl.utils.get_column_letter(col)].number_format == "dd/mm/yyyy"
    info = [c.value for c in wb["Instructions"]["A"] if c.value]
    assert "UPN" in info and "Reasonable adjustments" in info
    # never overwrites
    again = CliRunner().invoke(main, ["template", str(path)])
    assert again.exit_code == 2 and "already exists" in again.output


def test_filled_template_validates_clean(tmp_path, valid_row):
    path = tmp_path / "t.xlsx"
    CliRunner().invoke(main, ["template", str(path)])
    wb = openpyxl.load_workbook(path)
    ws = wb["Referrals"]
    headings = [c.value for c in ws[1]]
    for r, seed in enumerate((1, 2, 3), start=2):
        row = valid_row(seed=seed)
        for col, heading in enumerate(headings, start=1):
            ws.cell(row=r, column=col, value=row.get(heading))
    wb.save(path)
    result = validate_file(path, config=Config(outbox=tmp_path / "o"), as_of=date(2026, 11, 30))
    assert (result.rows, result.accepted, result.rejected) == (3, 3, 0)
