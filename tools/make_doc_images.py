"""Regenerate the pictures in docs/images/ from the project's own outputs (made-up pupils only).

    python tools/make_doc_images.py                      # every picture
    python tools/make_doc_images.py term-register.png    # only those named

Each picture is a real render: the example workbook is run (as of 30 November 2026), the documents and
workbooks it writes (and the blank template workbook, and the shipped plan template) are converted to PDF by
LibreOffice headless through `pipeline.deliver.pdf`, and a page is rasterised with `pdftoppm -png -r 70`. Spreadsheets
are printed from a copy whose print area is the part worth showing (openpyxl sets it), so the text is legible.
The drop-down picture is a sheet built from the template workbook's own data validation lists. Every PNG is
kept under 200 KB.
Needs LibreOffice (`soffice`) and poppler's `pdftoppm`.
"""

from __future__ import annotations

import shutil
import socket
import subprocess
import sys
import tempfile
from datetime import date
from pathlib import Path

import openpyxl
from openpyxl.styles import Alignment, Border, Font, PatternFill, Side

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from pipeline.core.config import Config  # noqa: E402
from pipeline.deliver.pdf import convert_to_pdf  # noqa: E402
from pipeline.run import run_file  # noqa: E402
from pipeline.write.template_workbook import write_template  # noqa: E402

OUT = ROOT / "docs" / "images"
EXAMPLE = ROOT / "examples" / "referrals-spring-2027.xlsx"
MAX_BYTES = 200_000
DARK = "1F4E79"


def png(pdf: Path, name: str, *, page: int = 1, resolution: int = 70, crop=None) -> Path:
    """Page `page` of `pdf` as docs/images/<name>; `crop` = (x, y, width, height) in points (1/72 inch).

    Whole pages are rendered at 70 dpi; a cropped part of a spreadsheet at a higher `resolution`, so that
    its 8-point text stays legible."""
    target = OUT / name
    cmd = ["pdftoppm", "-png", "-r", str(resolution), "-f", str(page), "-l", str(page), "-singlefile"]
    if crop:
        x, y, w, h = (round(v * resolution / 72) for v in crop)
        cmd += ["-x", str(x), "-y", str(y), "-W", str(w), "-H", str(h)]
    subprocess.run(cmd + [str(pdf), str(target.with_suffix(""))], check=True)
    size = target.stat().st_size
    if size > MAX_BYTES:
        raise SystemExit(f"{target.name} is {size:,} bytes, more than {MAX_BYTES:,}")
    print(f"{target.relative_to(ROOT)}: {size:,} bytes")
    return target


def print_area(path: Path, sheet: str, area: str, *, landscape: bool = True, keep_only: bool = True,
               widths: dict | None = None, wrap: str | None = None) -> Path:
    """A copy of a workbook that prints `area` of `sheet` on one page, for a legible render; `widths` sets
    column widths, `wrap` a column whose text wraps."""
    wb = openpyxl.load_workbook(path)
    for ws in list(wb.worksheets):
        if ws.title != sheet and keep_only:
            wb.remove(ws)
    ws = wb[sheet]
    for column, width in (widths or {}).items():
        ws.column_dimensions[column].width = width
    if wrap:  # LibreOffice keeps the rows' saved heights, so size them for the wrapped text
        width = ws.column_dimensions[wrap].width or 10
        for cell in ws[wrap]:
            cell.alignment = Alignment(wrap_text=True, vertical="top")
            lines = -(-len(str(cell.value or "")) // int(width * 1.1)) or 1
            ws.row_dimensions[cell.row].height = 15 * max(1, lines)
    ws.print_area = area
    ws.print_title_rows = None
    ws.page_setup.orientation = "landscape" if landscape else "portrait"
    ws.page_setup.paperSize = ws.PAPERSIZE_A4
    ws.sheet_properties.pageSetUpPr.fitToPage = True
    ws.page_setup.fitToWidth = 1
    ws.page_setup.fitToHeight = 1
    ws.oddHeader.center.text = ws.oddFooter.center.text = ws.oddFooter.right.text = ""
    out = path.with_name(f"{path.stem}-{sheet}-render.xlsx")
    wb.save(out)
    return out


def dropdowns(template: Path, folder: Path) -> Path:
    """A sheet showing each drop-down list of the template's Referrals sheet, read from its data validation."""
    wb = openpyxl.load_workbook(template)
    ws = wb["Referrals"]
    lists = wb["Lists"]
    shown = openpyxl.Workbook()
    out = shown.active
    out.title = "Drop-downs"
    out["A1"] = "The drop-down lists of the referral workbook (reintegrate template): click a cell, then its arrow"
    out["A1"].font = Font(bold=True, size=12)
    thin = Side(style="thin", color="A6A6A6")
    col = 1
    for dv in ws.data_validations.dataValidation:
        if dv.type != "list":
            continue
        first = str(dv.sqref).split()[0].split(":")[0]
        letter = "".join(ch for ch in first if ch.isalpha())
        heading = ws[f"{letter}1"].value
        source = dv.formula1.split("!")[1].replace("$", "")
        choices = [c.value for row in lists[source] for c in row]
        head = out.cell(row=3, column=col, value=f"{heading} (column {letter})")
        head.font = Font(bold=True, color="FFFFFF")
        head.fill = PatternFill("solid", fgColor=DARK)
        head.alignment = Alignment(wrap_text=True, vertical="top")
        for i, choice in enumerate(choices, start=4):
            cell = out.cell(row=i, column=col, value=choice)
            cell.border = Border(left=thin, right=thin, top=thin, bottom=thin)
            cell.fill = PatternFill("solid", fgColor="F2F2F2")
        out.column_dimensions[openpyxl.utils.get_column_letter(col)].width = 20
        out.column_dimensions[openpyxl.utils.get_column_letter(col + 1)].width = 2
        col += 2
    out.row_dimensions[3].height = 32
    out.page_setup.orientation = "landscape"
    out.page_setup.paperSize = out.PAPERSIZE_A4
    out.sheet_properties.pageSetUpPr.fitToPage = True
    out.page_setup.fitToWidth = 1
    out.page_setup.fitToHeight = 1
    path = folder / "dropdowns.xlsx"
    shown.save(path)
    return path


def register_picture(tmp: Path) -> Path:
    """A term's register as the team manager sees it on 13 January 2027: the example run, its plans emailed
    (through a local aiosmtpd server: the example's one address outside allowed_domains is not sent), two
    reviews held and one missed, then the register rebuilt on that day."""
    from aiosmtpd.controller import Controller
    from aiosmtpd.handlers import Sink

    from pipeline.deliver.send import send_with_config
    from pipeline.register import rebuild_register
    from pipeline.reviews import review_tracker

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    controller = Controller(Sink(), hostname="127.0.0.1", port=port)
    controller.start()
    try:
        config = Config(outbox=tmp / "term" / "outbox", email={
            "transport": "smtp", "host": "127.0.0.1", "port": port,
            "security": "none", "sender": "inclusions@havering.gov.uk",
            "allowed_domains": ["havering.gov.uk", "sch.uk"]})
        result = run_file(EXAMPLE, config=config, as_of=date(2026, 11, 30))
        send_with_config(result.run_dir, config, env={})
    finally:
        controller.stop()
    tracker = result.run_dir / "review-tracker.xlsx"
    wb = openpyxl.load_workbook(tracker)
    ws = wb["Reviews"]
    # every review up to 12 January held, but HAV-00012's first missed and HAV-00018's not yet recorded
    for row in ws.iter_rows(min_row=2):
        if row[5].value and row[5].value.date() < date(2027, 1, 12) and row[0].value != "HAV-00018":
            row[6].value = "Missed" if (row[0].value, row[4].value) == ("HAV-00012", 1) else "Held"
    wb.save(tracker)
    review_tracker(tracker, config=config, as_of=date(2027, 1, 12))
    path = rebuild_register(config, date(2027, 1, 13))
    return print_area(path, "Register", "A1:Q13", widths={"Q": 30})


def main() -> None:
    only = sys.argv[1:]  # picture names to make (e.g. term-register.png); none: every picture
    if not shutil.which("pdftoppm"):
        raise SystemExit("pdftoppm (poppler-utils) is needed")
    OUT.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        result = run_file(EXAMPLE, config=Config(outbox=tmp / "outbox"), as_of=date(2026, 11, 30))
        run_dir = result.run_dir
        letter = next((run_dir / "letters").glob("HAV-00002_*.docx"))
        template = write_template(tmp / "referrals.xlsx")
        sources = {
            "letter": letter,
            "plan-template": ROOT / "templates" / "reintegration-plan.docx",
            "issues": print_area(run_dir / "validation-report.xlsx", "Issues", "A1:H12",
                                 widths={"D": 16, "E": 14, "H": 70}, wrap="H"),
            "rows": print_area(run_dir / "validation-report.xlsx", "Referrals", "A3:H25"),
            "tracker": print_area(run_dir / "review-tracker.xlsx", "Reviews", "A1:I11",
                                  widths={"D": 24, "H": 22, "I": 22}),
            "dropdowns": dropdowns(template, tmp),
            "register": register_picture(tmp),
        }
        sources["plan"] = next((run_dir / "plans").glob("HAV-00002_*.docx"))
        pdf_dir = tmp / "pdf"
        pdf_dir.mkdir()
        copies = {}
        (tmp / "in").mkdir()
        for key, source in sources.items():
            target = tmp / "in" / f"{key}{source.suffix}"
            shutil.copy(source, target)
            copies[key] = target
        done = convert_to_pdf(list(copies.values()), pdf_dir, workers=2)
        failed = [c for c in done if c.error]
        if failed:
            raise SystemExit(f"LibreOffice failed: {failed}")
        pdf = {key: pdf_dir / f"{key}.pdf" for key in copies}
        pictures = [
            (pdf["letter"], "letter-page-1.png", {}),
            (pdf["plan-template"], "plan-template-page-1.png", {}),
            (pdf["issues"], "validation-report-issues.png", {"resolution": 110, "crop": (40, 30, 780, 290)}),
            (pdf["rows"], "validation-report-rows.png", {"resolution": 110, "crop": (40, 50, 745, 233)}),
            (pdf["tracker"], "review-tracker.png", {"resolution": 110, "crop": (40, 30, 740, 110)}),
            (pdf["dropdowns"], "referral-workbook-dropdowns.png", {"resolution": 110, "crop": (35, 40, 770, 240)}),
            (pdf["register"], "term-register.png", {"resolution": 150, "crop": (25, 28, 790, 95)}),
            (pdf["plan"], "plan-page-1.png", {}),
        ]
        for source, name, options in pictures:
            if not only or name in only:
                png(source, name, **options)


if __name__ == "__main__":
    main()
