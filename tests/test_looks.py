"""What a school and an officer see: the example run's plan, both letters, the tracker and the validation report
rendered by LibreOffice, as a person opens them, and checked for words split across lines (a name, an email
address, a heading broken mid-word), plus the report as a spreadsheet program shows it: its first sheet, links
and column widths. Needs LibreOffice and pdftotext (CI installs both); skipped where they are missing."""

from __future__ import annotations

import re
import shutil
import subprocess
from datetime import date
from pathlib import Path

import docx
import openpyxl
import pytest

from pipeline.core.config import Config
from pipeline.deliver.pdf import find_soffice
from pipeline.run import run_file

REPO = Path(__file__).resolve().parent.parent
EXAMPLE = REPO / "examples" / "referrals-spring-2027.xlsx"
TOKEN = re.compile(r"[A-Za-z0-9@.'’]+")


@pytest.fixture(scope="module")
def example_run(tmp_path_factory):
    outbox = tmp_path_factory.mktemp("looks") / "outbox"
    result = run_file(EXAMPLE, config=Config(outbox=outbox), as_of=date(2026, 11, 30))
    return result.run_dir


def tokens(text: str) -> set[str]:
    """Words, numbers, dates and email addresses: split on spaces and on the hyphens and slashes a line may
    break at, so only a break inside one of them loses it."""
    return {t.strip(".'’") for t in TOKEN.findall(text) if len(t.strip(".'’")) >= 2}


def render_text(path: Path, tmp_path: Path) -> str:
    soffice, pdftotext = find_soffice(), shutil.which("pdftotext")
    if soffice is None or pdftotext is None:
        pytest.skip("LibreOffice and pdftotext are needed (CI installs them)")
    out = tmp_path / path.stem
    out.mkdir(exist_ok=True)
    subprocess.run([soffice, "--headless", f"-env:UserInstallation=file://{tmp_path}/profile", "--convert-to",
                    "pdf", "--outdir", str(out), str(path)], check=True, capture_output=True, timeout=180)
    pdf = out / (path.stem + ".pdf")
    return subprocess.run([pdftotext, "-layout", str(pdf), "-"], check=True, capture_output=True,
                          text=True).stdout


def docx_text(path: Path) -> str:
    document = docx.Document(str(path))
    cells = [c.text for t in document.tables for r in t.rows for c in r.cells]
    return "\n".join([p.text for p in document.paragraphs] + cells)


def assert_no_word_split(expected: str, rendered: str, what: str) -> None:
    missing = sorted(tokens(expected) - tokens(rendered))
    assert not missing, f"{what}: split across lines or cut off in the render: {missing[:20]}"


@pytest.mark.parametrize("kind, referral", [("plans", "HAV-00002"), ("letters", "HAV-00002"),
                                            ("letters", "HAV-00001")])
def test_plan_and_both_letters_render_without_a_word_split(example_run, tmp_path, kind, referral):
    (path,) = (example_run / kind).glob(f"{referral}_*.docx")
    expected = docx_text(path)
    assert_no_word_split(expected, render_text(path, tmp_path), f"{kind}/{path.name}")


def request_letter(run_dir: Path) -> Path:
    return next(p for p in sorted((run_dir / "letters").glob("*.docx"))
                if "Request for a reintegration planning meeting" in docx_text(p))


def test_the_request_letter_renders_without_a_word_split(example_run, tmp_path):
    path = request_letter(example_run)
    assert_no_word_split(docx_text(path), render_text(path, tmp_path), f"letters/{path.name}")


def test_both_letters_give_a_time_and_a_venue_or_say_they_are_to_be_arranged(example_run):
    invitation = docx_text(next((example_run / "letters").glob("HAV-00002_*.docx")))
    assert "Invitation to a reintegration planning meeting" in invitation
    for text in (invitation, docx_text(request_letter(example_run))):
        assert "\nTime\n" in text and "\nVenue\n" in text


def test_the_letter_gives_the_meeting_time_and_venue(example_run):
    document = docx.Document(str(next((example_run / "letters").glob("HAV-00002_*.docx"))))
    details = {row.cells[0].text: row.cells[1].text for t in document.tables for row in t.rows}
    assert details["Planning meeting"] != "To be arranged"
    assert re.fullmatch(r"\d\d:\d\d", details["Time"]) and details["Venue"] not in ("", "To be arranged")


def test_the_plans_parent_contact_is_labelled_and_the_phone_keeps_its_spaces(example_run):
    for plan in (example_run / "plans").glob("*.docx"):
        document = docx.Document(str(plan))
        for table in document.tables:
            for row in table.rows:
                cells = [c.text for c in row.cells]
                if "Parent/carer contact" in cells:
                    contact = cells[cells.index("Parent/carer contact") + 1]
                    lines = contact.split("\n")
                    assert contact == "None recorded" or all(re.match(r"(Email|Phone): \S", line) for line in lines)
                    for line in lines:
                        if line.startswith("Phone: "):
                            assert re.fullmatch(r"Phone: 0\d{4} \d{6}", line), line


def test_week_labels_never_pass_the_settling_in_period(example_run):
    for plan in (example_run / "plans").glob("*.docx"):
        document = docx.Document(str(plan))
        settling = int(re.search(r"(\d+) school weeks from", docx_text(plan))[1])
        schedule = next(t for t in document.tables if [c.text for c in t.rows[0].cells] ==
                        ["Review", "Date", "Settling-in week"])
        weeks = [int(r.cells[2].text.removeprefix("Week ")) for r in schedule.rows[1:]]
        assert weeks and max(weeks) == settling and weeks == sorted(set(weeks)), plan.name


def test_the_tracker_renders_without_a_review_number_running_into_its_date(example_run, tmp_path):
    path = example_run / "review-tracker.xlsx"
    ws = openpyxl.load_workbook(path)["Reviews"]
    assert ws["E2"].alignment.horizontal == "center"
    rendered = render_text(path, tmp_path)
    assert not re.search(r"\b\d\d?\d\d/\d\d/\d{4}", rendered), "a review number runs into its date"
    dates = {c.value.strftime("%d/%m/%Y") for c in ws["F"][1:] if c.value}
    assert dates and all(re.search(rf"(?<![\d/]){re.escape(d)}(?![\d/])", rendered) for d in dates)


def test_the_report_opens_on_issues_each_linking_to_its_cell(example_run, tmp_path):
    path = example_run / "validation-report.xlsx"
    wb = openpyxl.load_workbook(path)
    assert wb.sheetnames[0] == "Issues" and wb.active.title == "Issues"
    issues = wb["Issues"]
    widths = {col: issues.column_dimensions[col].width for col in "ABCDEFGH"}
    assert widths["H"] >= 80 and widths["A"] >= 12 and issues["H2"].alignment.wrap_text
    copy = wb["Referrals"]
    links = 0
    for row in issues.iter_rows(min_row=2):
        formula = row[2].value
        if not formula or row[0].value is None:  # a file's own issue (an unknown column) links to its heading
            continue
        target, shown = re.fullmatch(r"""=HYPERLINK\("#'Referrals'!([A-Z]+\d+)","([A-Z]+\d+)"\)""", formula).groups()
        assert target == shown
        cell = copy[target]
        assert cell.comment is not None and row[7].value in cell.comment.text  # the link lands on the cell
        assert cell.fill.fgColor.rgb[-6:] in ("FFC7CE", "FFEB9C")  # highlighted
        links += 1
    assert links >= 10
    # the Issues sheet as printed: every word of every message whole, the Referral ID and cell columns apart
    rendered = render_text(path, tmp_path)
    messages = "\n".join(str(c.value) for c in issues["H"][1:] if c.value)
    assert_no_word_split(messages, rendered, "validation-report.xlsx Issues")
    assert not re.search(r"\b\d{1,4}[A-Z]{1,3}\d{1,4}\b", rendered.split("Referrals")[0]), "Row and Cell read as one"
