"""`reintegrate template`: the blank referral workbook, generated from the schema (one source of truth)."""

from __future__ import annotations

from datetime import date
from pathlib import Path

from pipeline.core.files import atomic_path
from pipeline.write.workbooks import DATE_FORMAT, Formats, new_workbook
from schemas.referral import SCHEMA

ROWS = 500
TEXT_KINDS = ("text", "phone", "email", "list")  # rows formatted and validated for officers to fill


def write_template(path: str | Path) -> Path:  # long: the blank workbook's layout, one sheet after another
    path = Path(path)
    with atomic_path(path) as tmp:
        wb = new_workbook(tmp)
        fmt = Formats(wb)
        ws = wb.add_worksheet("Referrals")
        info = wb.add_worksheet("Instructions")
        lists = wb.add_worksheet("Lists")
        lists.hide()
        date_fmt = wb.add_format({"num_format": DATE_FORMAT, "align": "left"})
        text_fmt = wb.add_format({"num_format": "@"})
        required_fmt = wb.add_format({"bold": True, "bg_color": "#1F4E79", "font_color": "#FFFFFF", "text_wrap": True,
                                      "valign": "top", "border": 1})
        optional_fmt = wb.add_format({"bold": True, "bg_color": "#9DC3E6", "font_color": "#000000", "text_wrap": True,
                                      "valign": "top", "border": 1})
        ws.set_row(0, 45)
        list_col = 0
        for col, (name, fld) in enumerate(SCHEMA.fields.items()):
            meta = fld.metadata
            heading = fld.data_key
            ws.write_string(0, col, heading, required_fmt if fld.required else optional_fmt)
            hint = meta["hint"] or ""
            note = ("Required. " if fld.required else "Optional. ") + hint
            if meta["choices"]:
                note += " Choose from the list."
            ws.write_comment(0, col, note.strip(), {"x_scale": 2, "author": "reintegrate"})
            kind = meta["kind"]
            width = 14 if kind in ("date", "choice", "number") else 24
            # text columns are formatted as Text so Excel keeps a phone number's leading zero
            ws.set_column(col, col, width, date_fmt if kind == "date" else text_fmt if kind in TEXT_KINDS else None)
            if meta["choices"]:
                choices = list(meta["choices"])
                for r, choice in enumerate(choices):
                    lists.write_string(r, list_col, choice)
                letter = chr(ord("A") + list_col)
                ws.data_validation(1, col, ROWS, col, {
                    "validate": "list", "source": f"=Lists!${letter}$1:${letter}${len(choices)}",
                    "error_title": heading, "error_message": f"Choose one of: {', '.join(choices)}",
                })
                list_col += 1
            elif kind == "date":
                ws.data_validation(1, col, ROWS, col, {
                    "validate": "date", "criteria": "between", "minimum": date(2000, 1, 1),
                    "maximum": date(2100, 12, 31), "error_type": "warning",
                    "error_title": heading, "error_message": "Type a date as day/month/year, e.g. 03/09/2024.",
                })
            elif kind == "number":
                low, high = (1, 6) if name == "review_frequency_weeks" else (2, 16)
                ws.data_validation(1, col, ROWS, col, {
                    "validate": "integer", "criteria": "between", "minimum": low, "maximum": high,
                    "error_title": heading, "error_message": f"A whole number from {low} to {high}.",
                })
        ws.freeze_panes(1, 1)
        ws.autofilter(0, 0, ROWS, len(SCHEMA.fields) - 1)

        info.set_column(0, 0, 30)
        info.set_column(1, 1, 12)
        info.set_column(2, 2, 100)
        info.write_string(0, 0, "Havering reintegration referrals", fmt.title)
        lines = [
            "Fill one row per pupil on the Referrals sheet, from row 2. Keep the headings as they are.",
            "Dark blue headings are required; light blue ones are optional. Hover over a heading for a hint.",
            "Dates are day/month/year (03/09/2024). Closed fields have drop-down lists.",
            "Check the file with:  reintegrate validate referrals.xlsx   then make the plans with:  reintegrate run referrals.xlsx",
            "Policy: Havering Reintegration Policy 2023/24. This workbook holds personal data: OFFICIAL-SENSITIVE.",
        ]
        for r, line in enumerate(lines, start=2):
            info.write_string(r, 0, line)
        top = len(lines) + 3
        for col, heading in enumerate(("Heading", "Required", "What to enter")):
            info.write_string(top, col, heading, fmt.heading)
        for r, (name, fld) in enumerate(SCHEMA.fields.items(), start=top + 1):
            meta = fld.metadata
            what = meta["hint"] or ""
            if meta["choices"]:
                what = (what + " One of: " + ", ".join(meta["choices"]) + ".").strip()
            if meta["kind"] == "date" and not what:
                what = "A date, day/month/year."
            info.write_string(r, 0, fld.data_key)
            info.write_string(r, 1, "Yes" if fld.required else "No")
            info.write_string(r, 2, what)
        wb.close()
    return path
