"""Reading workbooks: cases found in review that the corpus did not cover."""

from __future__ import annotations

from datetime import date, datetime

import openpyxl
import xlsxwriter

from pipeline.write.examples import generate_rows, write_rows
from pipeline.read.referrals import read_referrals
from schemas.referral import HEADINGS


def test_plain_numbers_in_date_columns_of_a_1904_workbook_are_read_in_its_date_system(tmp_path):
    row = generate_rows(1, seed=5)[0]
    path = tmp_path / "mac.xlsx"
    wb = xlsxwriter.Workbook(str(path), {"date_1904": True})
    ws = wb.add_worksheet("Referrals")
    date_format = wb.add_format({"num_format": "dd/mm/yyyy"})
    headings = list(HEADINGS.values())
    for col, heading in enumerate(headings):
        ws.write_string(0, col, heading)
        value = row.get(heading)
        if value is None:
            continue
        if heading == "Date of birth":  # a pasted value in a General cell: days since 1 Jan 1904
            ws.write_number(1, col, (datetime(value.year, value.month, value.day) - datetime(1904, 1, 1)).days)
        elif isinstance(value, date):
            ws.write_datetime(1, col, datetime(value.year, value.month, value.day), date_format)
        elif isinstance(value, (int, float)):
            ws.write_number(1, col, value)
        else:
            ws.write_string(1, col, str(value))
    wb.close()
    from schemas.parsers import parse_uk_date

    sheet = read_referrals(path)
    assert parse_uk_date(sheet.rows[0].values["Date of birth"]) == row["Date of birth"]
    assert parse_uk_date(sheet.rows[0].values["Decision date"]) == row["Decision date"]


def test_a_formula_on_another_sheet_is_not_blamed_on_the_referrals(tmp_path):
    path = write_rows(tmp_path / "two-sheets.xlsx", generate_rows(1, seed=5), sheet="Data")
    wb = openpyxl.load_workbook(path)
    cover = wb.create_sheet("Cover", 0)
    cover["A1"], cover["B2"] = "Termly referrals", "=TODAY()"
    wb.save(path)
    sheet = read_referrals(path)
    assert sheet.name == "Data" and sheet.file_issues == []
