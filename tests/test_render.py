"""pipeline.write.render: our compiled docx renderer, checked against python-docx, docxtpl and Word's rules."""

from __future__ import annotations

import io
import os
import pickle
import re
import shutil
import stat
import subprocess
import sys
import time
import zipfile
from dataclasses import replace
from datetime import date
from pathlib import Path

import docx
import pytest
from docx.shared import Pt
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from lxml import etree

from pipeline.write.context import build_context, sample_context, sample_referral
from pipeline.core.errors import TemplateError
from pipeline.write.render import (
    INVITATION,
    LETTERS,
    PLAN,
    REQUEST,
    check_template,
    check_templates,
    compile_template,
    default_templates_dir,
    load_templates,
)

ROOT = Path(__file__).resolve().parent.parent
TEMPLATES = ROOT / "templates"
W = "{http://schemas.openxmlformats.org/wordprocessingml/2006/main}"
REVIEWS = [date(2024, 10, 7), date(2024, 10, 21), date(2024, 11, 4)]


@pytest.fixture(scope="module")
def templates():
    return load_templates(TEMPLATES)


def referral(**changes):
    fields = dict(referral_id="HAV-0042", legal_forename="Amy", legal_surname="Smith",
                  preferred_name=None, upn="B801200005001")
    return replace(sample_referral(), **{**fields, **changes})


def school_referral(**changes):
    return referral(current_provision_type="School", current_provision_name="Sample Park Academy",
                    reintegration_reason="Fair Access Protocol", ipa_reference=None,
                    ipa_start_date=None, ipa_end_date=None, **changes)


def context_for(ref, reviews=REVIEWS, **kwargs):
    kwargs.setdefault("run_id", "20240902T090000-test")
    kwargs.setdefault("generated_on", date(2024, 9, 2))
    return build_context(ref, reviews, **kwargs)


def open_docx(data: bytes):
    return docx.Document(io.BytesIO(data))


def table_after(document, heading_prefix: str):
    """The first table after the heading that starts with `heading_prefix`."""
    body = document.element.body
    found = False
    for child in body.iterchildren():
        if child.tag == f"{W}p" and "".join(child.itertext()).startswith(heading_prefix):
            found = True
        elif found and child.tag == f"{W}tbl":
            return docx.table.Table(child, document._body)
    raise AssertionError(f"no table after {heading_prefix!r}")


def rows(table):
    return [[cell.text for cell in row.cells] for row in table.rows]


def value_next_to(table, label: str) -> str:
    for row in rows(table):
        for index, text in enumerate(row[:-1]):
            if text == label:
                return row[index + 1]
    raise AssertionError(f"no {label!r} in table")


def all_text(document) -> list[str]:
    texts = [p.text for p in document.paragraphs]
    for table in document.tables:
        for row in table.rows:
            texts += [cell.text for cell in row.cells]
    for section in document.sections:
        texts += [p.text for p in section.header.paragraphs]
        texts += [p.text for p in section.footer.paragraphs]
    return texts


def xml_parts(data: bytes) -> dict[str, bytes]:
    with zipfile.ZipFile(io.BytesIO(data)) as package:
        assert package.testzip() is None
        return {n: package.read(n) for n in package.namelist() if n.endswith((".xml", ".rels"))}


# --- the plan -----------------------------------------------------------------------------------


def test_plan_puts_the_pupil_data_in_the_right_places(templates):
    ctx = context_for(referral(social_worker="Dana Worker", looked_after_child=True))
    document = open_docx(templates[PLAN].render(ctx))

    assert document.paragraphs[0].text == "Reintegration Plan"
    assert document.paragraphs[1].text.startswith("Amy Smith, Year 9")
    details = table_after(document, "1. Pupil and placement details")
    assert value_next_to(details, "Legal name") == "Amy Smith"
    assert value_next_to(details, "UPN") == "B801200005001"
    assert value_next_to(details, "Date of birth") == "04/05/2010"
    assert value_next_to(details, "Looked after child") == "Yes"
    assert value_next_to(details, "Social worker") == "Dana Worker"
    assert value_next_to(details, "Preferred name") == "None recorded"
    assert value_next_to(details, "Receiving school") == "Sample Hill School"
    assert value_next_to(details, "Planned return date") == "Monday 23 September 2024"
    assert value_next_to(details, "IPA dates") == "Monday 22 April 2024 to Friday 18 October 2024"

    checklist = rows(table_after(document, "2. Route and policy checklist"))
    assert checklist[0] == ["Clause", "Requirement", "Status for this pupil"]
    assert [r[0] for r in checklist[1:]] == ["2.2", "3.1", "3.4", "3.6", "3.8"]

    people = table_after(document, "3. Key worker and buddy")
    assert value_next_to(people, "Key worker") == "Mr Lee Mentor"
    assert value_next_to(people, "Buddy") == "Priya (Year 9)"

    adjustments = rows(table_after(document, "4. Reasonable adjustments"))
    assert adjustments[1:] == [["1", "Time-out card"],
                               ["2", "Phased timetable for the first two weeks"],
                               ["3", "Quiet space at lunchtime"]]

    support = table_after(document, "5. Strengths")
    assert value_next_to(support, "Needs and triggers") == \
        "Crowded corridors\nSudden changes to the timetable"  # a line break, not two paragraphs

    expectations = rows(table_after(document, "6. Minimum expectations"))
    assert expectations[0] == ["Steps", "Result", "Outcome", "In place for this pupil"]
    assert len(expectations) == 4
    assert expectations[1][0] == "A Reintegration Plan is drawn up and followed by all parties"
    assert "3 reviews" in expectations[1][3]
    assert expectations[2][3] == "Key worker: Mr Lee Mentor. Buddy: Priya (Year 9)."

    schedule = rows(table_after(document, "7. Review schedule"))
    assert schedule[1:] == [["1", "Monday 7 October 2024", "Week 2"],
                            ["2", "Monday 21 October 2024", "Week 4"],
                            ["3", "Monday 4 November 2024", "Week 6"]]

    sign_off = rows(table_after(document, "9. Sign-off"))
    assert [r[0].split("\n")[0] for r in sign_off[1:]] == [
        "Parent/carer", "Pupil", "Receiving school", "Referring school/AP", "Inclusions officer"]
    assert sign_off[1][1] == "Sam Example" and sign_off[2][1] == "Amy Smith"
    assert sign_off[5][1] == "Pat Officer"
    assert all(r[2] == "" and r[3] == "" for r in sign_off[1:])  # signature and date by hand


@pytest.mark.parametrize("count", [0, 1, 3, 7])
def test_row_loops_make_one_table_row_per_review(templates, count):
    reviews = [date(2024, 10, 7 + i) for i in range(count)]
    document = open_docx(templates[PLAN].render(context_for(referral(), reviews=reviews)))
    schedule = rows(table_after(document, "7. Review schedule"))
    assert len(schedule) == 1 + count
    assert [r[0] for r in schedule[1:]] == [str(i + 1) for i in range(count)]


def test_review_record_lists_recorded_reviews_or_blank_rows_to_write_in(templates):
    blank = open_docx(templates[PLAN].render(context_for(referral())))
    record = rows(table_after(blank, "8. Review record"))
    assert record[0] == ["Review", "Date", "Status", "Outcome", "Next steps"]
    assert record[1:] == [["1", "Monday 7 October 2024", "", "", ""],
                          ["2", "Monday 21 October 2024", "", "", ""],
                          ["3", "Monday 4 November 2024", "", "", ""]]

    recorded = [{"number": 1, "date": date(2024, 10, 7), "status": "Held",
                 "outcome": "Settling well", "next_steps": "Keep the time-out card"}]
    filled = open_docx(templates[PLAN].render(context_for(referral(), review_record=recorded)))
    assert rows(table_after(filled, "8. Review record"))[1:] == [
        ["1", "Monday 7 October 2024", "Held", "Settling well", "Keep the time-out card"]]


def test_provisional_note_paragraph_only_when_there_is_one(templates):
    without = all_text(open_docx(templates[PLAN].render(context_for(referral()))))
    assert not any("Please note" in t for t in without)
    note = "The 2026/27 term dates are provisional."
    with_note = open_docx(templates[PLAN].render(context_for(referral(), provisional_note=note)))
    assert f"Please note: {note}" in [p.text for p in with_note.paragraphs]


# --- the letters --------------------------------------------------------------------------------


@pytest.mark.parametrize("ref, name, clause", [
    (referral(), INVITATION, "3.6"),
    (referral(current_provision_type="Medical provision", ipa_reference=None, ipa_start_date=None,
              ipa_end_date=None), INVITATION, "3.6"),
    (school_referral(), REQUEST, "3.7"),
])
def test_letters(templates, ref, name, clause):
    ctx = context_for(ref)
    assert LETTERS[ctx["letter"]["kind"]] == name
    document = open_docx(templates[name].render(ctx))
    text = "\n".join(all_text(document))
    assert "Dear Ms Jo Teacher," in text
    assert "Our reference: HAV-0042" in text
    assert f"clause {clause} of Havering's Reintegration Policy" in text
    assert "Amy Smith" in text and "Monday 23 September 2024" in text
    assert "Pat Officer" in text
    details = document.tables[0]
    assert value_next_to(details, "Planning meeting") == "Monday 16 September 2024"
    title = "Invitation to" if name == INVITATION else "Request for"
    assert any(p.text.startswith(title) for p in document.paragraphs)


# --- every document -----------------------------------------------------------------------------


@pytest.mark.parametrize("name", [PLAN, INVITATION, REQUEST])
def test_marking_page_numbers_and_no_tags_left(templates, name):
    data = templates[name].render(context_for(referral()))
    document = open_docx(data)
    section = document.sections[0]
    header = "\n".join(p.text for p in section.header.paragraphs)
    footer = "\n".join(p.text for p in section.footer.paragraphs)
    assert "OFFICIAL-SENSITIVE" in header and "OFFICIAL-SENSITIVE" in footer
    assert "London Borough of Havering" in header and "Inclusions Team" in header
    assert "HAV-0042" in header
    assert round(section.page_width.mm) == 210 and round(section.page_height.mm) == 297
    parts = xml_parts(data)
    footer_xml = b"".join(v for k, v in parts.items() if k.startswith("word/footer"))
    assert b" PAGE " in footer_xml and b" NUMPAGES " in footer_xml
    for part_name, xml in parts.items():
        etree.fromstring(xml)  # well-formed
        assert b"{{" not in xml and b"{%" not in xml and b"}}" not in xml, part_name
        assert b"<?jinja" not in xml


@pytest.mark.parametrize("name", [PLAN, INVITATION, REQUEST])
def test_members_keep_the_template_names_and_order(templates, name):
    data = templates[name].render(context_for(referral()))
    with zipfile.ZipFile(TEMPLATES / name) as template, \
            zipfile.ZipFile(io.BytesIO(data)) as rendered:
        assert rendered.namelist() == template.namelist()
        assert rendered.testzip() is None
        for member in template.namelist():
            if member not in templates[name].parts:
                assert rendered.read(member) == template.read(member)


def test_special_characters_survive_as_text(templates):
    name = 'Zoë "Zed" & <Co>'
    ref = referral(legal_forename=name, legal_surname="O'Brien", buddy="A & B <friends>",
                   reasonable_adjustments=("Use </w:t> & ]]> as text", "{{ not a tag }}"))
    data = templates[PLAN].render(context_for(ref))
    document = open_docx(data)
    details = table_after(document, "1. Pupil and placement details")
    assert value_next_to(details, "Legal name") == f"{name} O'Brien"
    assert document.paragraphs[1].text.startswith(f"{name} O'Brien, Year 9")
    adjustments = rows(table_after(document, "4. Reasonable adjustments"))
    assert adjustments[1][1] == "Use </w:t> & ]]> as text"
    assert adjustments[2][1] == "{{ not a tag }}"
    letter = open_docx(templates[INVITATION].render(context_for(ref)))
    assert "Dear Ms Jo Teacher," in [p.text for p in letter.paragraphs]
    assert any(f"{name} O'Brien" in t for t in all_text(letter))


def test_multiline_values_become_line_breaks_and_bad_characters_go(templates):
    ref = referral(additional_support="First line\r\nSecond\tline\x0b\x00 end\ufffe")
    data = templates[PLAN].render(context_for(ref))
    cell = value_next_to(table_after(open_docx(data), "5. Strengths"), "Additional support")
    assert cell == "First line\nSecond\tline end"
    assert b"<w:br/>" in xml_parts(data)["word/document.xml"]


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.text(min_size=1, max_size=40))
def test_any_text_renders_to_valid_xml_and_reads_back(templates, text):
    data = templates[PLAN].render(context_for(referral(buddy=text)))
    for xml in xml_parts(data).values():
        etree.fromstring(xml)
    expected = re.sub(r"[\x00-\x08\x0b\x0c\x0e-\x1f\ufffe\uffff]", "",
                      text.replace("\r\n", "\n").replace("\r", "\n"))
    shown = value_next_to(table_after(open_docx(data), "3. Key worker"), "Buddy")
    assert shown == (expected.strip() or "None recorded") or shown == expected


def test_rendering_is_deterministic(templates):
    ctx = context_for(referral())
    assert templates[PLAN].render(ctx) == templates[PLAN].render(ctx)


def test_render_to_writes_a_private_file_atomically(templates, tmp_path):
    target = tmp_path / "plans" / "HAV-0042_Smith_Amy.docx"
    written = templates[PLAN].render_to(context_for(referral()), target)
    assert written == target and target.is_file()
    assert stat.S_IMODE(target.stat().st_mode) == 0o600
    assert [p.name for p in target.parent.iterdir()] == [target.name]  # no temp file left
    open_docx(target.read_bytes())


def test_compiled_templates_pickle_for_worker_processes(templates):
    ctx = context_for(referral())
    copy = pickle.loads(pickle.dumps(templates[PLAN]))
    assert copy.render(ctx) == templates[PLAN].render(ctx)
    assert copy.name == "reintegration-plan.docx"


# --- docxtpl gives the same document --------------------------------------------------------------


@pytest.mark.parametrize("name, ref", [
    (PLAN, referral(legal_forename='Zoë "Zed" & <Co>')),
    (PLAN, school_referral(additional_support="one\ntwo")),
    (INVITATION, referral()),
    (REQUEST, school_referral(planning_meeting_date=None)),
])
def test_same_text_as_docxtpl(templates, name, ref):
    docxtpl = pytest.importorskip("docxtpl")
    ctx = context_for(ref, review_record=[{"number": 1, "date": date(2024, 10, 7),
                                           "status": "Held", "outcome": "Fine",
                                           "next_steps": "None"}])
    reference = docxtpl.DocxTemplate(str(TEMPLATES / name))
    reference.render(ctx, autoescape=True)
    buffer = io.BytesIO()
    reference.save(buffer)
    ours = templates[name].render(ctx)
    assert all_text(open_docx(ours)) == all_text(open_docx(buffer.getvalue()))


# --- templates an officer edited ------------------------------------------------------------------


def save(document, path: Path) -> Path:
    document.save(path)
    return path


def test_placeholder_split_across_three_runs_still_renders(tmp_path):
    document = docx.Document()
    paragraph = document.add_paragraph("Pupil: ")
    paragraph.add_run("{{ pupil.")
    middle = paragraph.add_run("full_")
    middle.bold = True  # Word splits runs where formatting changes
    paragraph.add_run("name }} (")
    paragraph.add_run("{{ pupil.upn }}").italic = True
    paragraph.add_run(")")
    cell = document.add_table(rows=1, cols=1).cell(0, 0)
    cell.paragraphs[0].add_run("{")
    cell.paragraphs[0].add_run("{ referral_id }")
    cell.paragraphs[0].add_run("}")
    path = save(document, tmp_path / "edited.docx")

    data = compile_template(path).render(context_for(referral()))
    rendered = open_docx(data)
    assert rendered.paragraphs[0].text == "Pupil: Amy Smith (B801200005001)"
    assert rendered.tables[0].cell(0, 0).text == "HAV-0042"
    runs = rendered.paragraphs[0].runs
    assert runs[1].text == "Amy Smith" and not runs[1].bold  # the run where the tag started
    assert any(r.italic and r.text == "B801200005001" for r in runs)


def test_curly_quotes_and_escaped_characters_inside_tags(tmp_path):
    document = docx.Document()
    document.add_paragraph("{% if pupil.looked_after == \u201cNo\u201d and 1 < 2 %}not looked after"
                           "{% endif %}")
    document.add_paragraph("{{ pupil.surname if 2 > 1 and pupil.upn else \u2018x\u2019 }}")
    path = save(document, tmp_path / "quotes.docx")
    rendered = open_docx(compile_template(path).render(context_for(referral())))
    assert [p.text for p in rendered.paragraphs] == ["not looked after", "Smith"]


def test_paragraph_and_row_tags_replace_their_whole_paragraph_or_row(tmp_path):
    document = docx.Document()
    document.add_paragraph("before")
    document.add_paragraph("{%p for a in support.adjustments %}")
    document.add_paragraph("- {{ a }}")
    document.add_paragraph("{%p endfor %}")
    document.add_paragraph("after")
    table = document.add_table(rows=4, cols=2)
    table.cell(0, 0).text = "Review"
    table.cell(1, 0).text = "{%tr for r in reviews %}"
    table.cell(2, 0).text = "{{ r.number }}"
    table.cell(2, 1).text = "{{ r.weekday }}"
    table.cell(3, 0).text = "{%tr endfor %}"
    path = save(document, tmp_path / "blocks.docx")
    rendered = open_docx(compile_template(path).render(context_for(referral())))
    assert [p.text for p in rendered.paragraphs] == [
        "before", "- Time-out card", "- Phased timetable for the first two weeks",
        "- Quiet space at lunchtime", "after"]
    assert rows(rendered.tables[0]) == [["Review", ""], ["1", "Monday"], ["2", "Monday"],
                                        ["3", "Monday"]]


# --- errors ------------------------------------------------------------------------------------


def template_with(tmp_path, *texts, name="officer-edit.docx") -> Path:
    document = docx.Document()
    for text in texts:
        document.add_paragraph(text)
    return save(document, tmp_path / name)


def test_unknown_placeholder_is_an_error_naming_template_and_placeholder(tmp_path):
    path = template_with(tmp_path, "Dear {{ pupil.greeting_name }},", "Known as {{ pupil.nickname }}")
    template = compile_template(path)
    with pytest.raises(TemplateError) as caught:
        template.render(context_for(referral()))
    assert str(caught.value) == ("officer-edit.docx: placeholder 'pupil.nickname' cannot be "
                                 "filled (the data has no 'nickname')")


def test_unknown_top_level_name_and_loop_are_errors(tmp_path):
    with pytest.raises(TemplateError, match=r"officer-edit.docx: placeholder 'school' cannot be "
                                            r"filled \(the data has no 'school'\)"):
        compile_template(template_with(tmp_path, "{{ school }}")).render(context_for(referral()))
    path = template_with(tmp_path, "{% for r in reviewz %}{{ r.date }}{% endfor %}")
    with pytest.raises(TemplateError, match=r"tag '\{% for r in reviewz %\}' cannot be run "
                                            r"\(the data has no 'reviewz'\)"):
        compile_template(path).render(context_for(referral()))


def test_syntax_errors_name_the_template_and_the_tag(tmp_path):
    with pytest.raises(TemplateError, match=r"broken.docx: syntax error in '\{\{ pupil.upn \+ \}\}'"):
        compile_template(template_with(tmp_path, "ok {{ pupil.upn }}", "{{ pupil.upn + }}",
                                       name="broken.docx"))
    with pytest.raises(TemplateError, match=r"unclosed.docx: the placeholder starting "
                                            r"'\{\{ pupil.upn' is not closed"):
        compile_template(template_with(tmp_path, "{{ pupil.upn", name="unclosed.docx"))
    with pytest.raises(TemplateError, match=r"endfor.docx: .*endfor"):
        compile_template(template_with(tmp_path, "{% for a in reviews %}", name="endfor.docx"))


def test_sandbox_keeps_templates_away_from_python(tmp_path):
    path = template_with(tmp_path, "{{ pupil.__class__.__mro__[1].__subclasses__() }}")
    with pytest.raises(TemplateError, match="officer-edit.docx"):
        compile_template(path).render(context_for(referral()))


def test_not_a_docx_is_a_template_error(tmp_path):
    bad = tmp_path / "notes.docx"
    bad.write_text("not a zip")
    with pytest.raises(TemplateError, match="notes.docx: not a Word .docx file"):
        compile_template(bad)
    with pytest.raises(TemplateError, match="missing.docx: the template file does not exist"):
        compile_template(tmp_path / "missing.docx")


# --- check-templates ------------------------------------------------------------------------------


@pytest.mark.parametrize("name", [PLAN, INVITATION, REQUEST])
def test_shipped_templates_have_no_problems(name):
    assert check_template(TEMPLATES / name, sample_context()) == []


def test_check_template_reports_unknown_placeholders(tmp_path):
    path = template_with(tmp_path, "{{ pupil.nickname }} {{ pupil.full_name }}",
                         "{% for r in reviews %}{{ r.date }} {{ r.venue }} {{ loop.index }}"
                         "{% endfor %}",
                         "{{ headteacher }} {{ dates['decision'] }} {{ reviews[0].when }}",
                         "{{ pupil.full_name.upper() }} {{ support.adjustments|join(', ') }}")
    problems = check_template(path, sample_context())
    assert problems == [
        "officer-edit.docx: placeholder 'pupil.nickname' is not provided by the data model "
        "(the data has no 'nickname')",
        "officer-edit.docx: placeholder 'r.venue' is not provided by the data model "
        "(the data has no 'venue')",
        "officer-edit.docx: placeholder 'headteacher' is not provided by the data model "
        "(the data has no 'headteacher')",
        "officer-edit.docx: placeholder 'reviews[0].when' is not provided by the data model "
        "(the data has no 'when')",
    ]


def test_check_templates_checks_a_whole_folder(tmp_path):
    assert check_templates() == []
    template_with(tmp_path, "{{ pupil.nickname }}", name="custom.docx")
    template_with(tmp_path, "{{ pupil.upn }}", name="~$custom.docx")  # Word's lock file
    assert check_templates(tmp_path) == [
        "custom.docx: placeholder 'pupil.nickname' is not provided by the data model (the data "
        "has no 'nickname')"]
    assert "no Word templates" in check_templates(tmp_path / "empty-folder")[0]


def test_check_template_reports_syntax_errors(tmp_path):
    path = template_with(tmp_path, "{% if pupil.upn %}", "no endif here")
    problems = check_template(path, sample_context())
    assert len(problems) == 1 and problems[0].startswith("officer-edit.docx: syntax error")
    path = template_with(tmp_path, "{{ pupil.upn | nosuchfilter }}", name="filter.docx")
    assert check_template(path)[0].startswith("filter.docx: syntax error")
    bad = tmp_path / "bad.docx"
    bad.write_bytes(b"PK\x03\x04 broken")
    assert check_template(bad)[0].startswith("bad.docx: not a Word .docx file")


# --- finding and loading templates ------------------------------------------------------------------


def test_default_templates_dir_is_the_checkout_templates_folder():
    assert default_templates_dir() == TEMPLATES
    assert (default_templates_dir() / PLAN).is_file()


def test_load_templates_fills_gaps_in_an_override_folder_from_the_defaults(tmp_path):
    override = tmp_path / "templates"
    override.mkdir()
    template_with(override, "Custom plan for {{ pupil.full_name }}", name=PLAN)
    loaded = load_templates(override)
    assert sorted(loaded) == sorted([PLAN, INVITATION, REQUEST])
    plan = open_docx(loaded[PLAN].render(context_for(referral())))
    assert plan.paragraphs[0].text == "Custom plan for Amy Smith"
    assert loaded[REQUEST].render(context_for(school_referral()))


def test_make_templates_reproduces_the_committed_templates(tmp_path):
    subprocess.run([sys.executable, str(ROOT / "tools" / "make_templates.py"), str(tmp_path)],
                   check=True, capture_output=True, cwd=ROOT)
    for name in (PLAN, INVITATION, REQUEST):
        built = tmp_path / name
        # the text (and so every placeholder) must match; bytes may differ between python-docx
        # versions
        assert all_text(docx.Document(str(built))) == all_text(docx.Document(str(TEMPLATES / name))), \
            f"templates/{name} is out of date: run python tools/make_templates.py"
        assert built.stat().st_size < 20_000  # no thumbnails, fonts or unused styles


def test_templates_look_like_word_documents():
    document = docx.Document(str(TEMPLATES / PLAN))
    assert document.styles["Normal"].font.name == "Arial"
    assert document.styles["Normal"].font.size == Pt(10.5)
    assert all(t.style.name == "Table Grid" for t in document.tables)
    headings = [p.text for p in document.paragraphs if p.style.name == "Heading 1"]
    assert headings[0] == "1. Pupil and placement details" and headings[-1] == "9. Sign-off"
    with zipfile.ZipFile(TEMPLATES / PLAN) as package:
        names = package.namelist()
    assert not any(n.startswith(("word/media", "word/fonts", "docProps/thumbnail")) for n in names)


# --- speed and LibreOffice ------------------------------------------------------------------------


@pytest.mark.timing
def test_timing_report(templates, capsys):
    """Not an assertion: prints ms per plan (ours and, when installed, docxtpl's)."""
    ctx = context_for(referral())
    plan = templates[PLAN]
    plan.render(ctx)
    count = 200
    start = time.perf_counter()
    for _ in range(count):
        plan.render(ctx)
    ours = (time.perf_counter() - start) / count * 1000
    line = f"render: {ours:.2f} ms per plan (ours)"
    try:
        from docxtpl import DocxTemplate
    except ImportError:
        DocxTemplate = None
    if DocxTemplate is not None:
        start = time.perf_counter()
        for _ in range(10):
            reference = DocxTemplate(str(TEMPLATES / PLAN))
            reference.render(ctx, autoescape=True)
            reference.save(io.BytesIO())
        line += f", {(time.perf_counter() - start) / 10 * 1000:.1f} ms per plan (docxtpl)"
    with capsys.disabled():
        print(f"\n{line}")


@pytest.mark.skipif(shutil.which("soffice") is None, reason="LibreOffice is not installed")
def test_libreoffice_opens_the_plan(templates, tmp_path):
    target = templates[PLAN].render_to(context_for(referral()), tmp_path / "plan.docx")
    result = subprocess.run(
        ["soffice", "--headless", f"-env:UserInstallation=file://{tmp_path}/lo-profile",
         "--convert-to", "pdf", "--outdir", str(tmp_path), str(target)],
        capture_output=True, timeout=180, env=dict(os.environ, HOME=str(tmp_path)))
    pdf = tmp_path / "plan.pdf"
    assert pdf.is_file(), result.stderr.decode(errors="replace")
    pages = len(re.findall(rb"/Type\s*/Page[^s]", pdf.read_bytes()))
    assert 2 <= pages <= 4


# ----------------------------------------------------------------- docxtpl's features an officer may use

def _officer_template(tmp_path: Path) -> Path:
    """A template as an officer would make it from docxtpl's documentation: |e on a value, and a table
    whose columns a {%tc for %} loop makes."""
    document = docx.Document()
    document.add_paragraph("Note: {{ note|e }}")
    document.add_paragraph("Again: {{ note|escape }}")
    table = document.add_table(rows=2, cols=4)  # docxtpl's way: the loop's tags in cells of their own
    for row, value in zip(table.rows, ("{{ c }}", "x")):
        row.cells[0].text = "Name" if value != "x" else "Row"
        row.cells[1].text = "{%tc for c in columns %}"
        row.cells[2].text = value
        row.cells[3].text = "{%tc endfor %}"
    path = tmp_path / "officer.docx"
    document.save(path)
    return path


def test_escape_filter_and_cell_loops_give_what_docxtpl_gives(tmp_path):
    import docxtpl

    path = _officer_template(tmp_path)
    context = {"note": "Line one\nLine two & <more>\x07", "columns": ["Mon", "Tue", "Wed", "Thu"]}
    ours = open_docx(compile_template(path).render(context))
    assert ours.paragraphs[0].text == "Note: Line one\nLine two & <more>"  # a Word line break, the bell gone
    assert ours.paragraphs[1].text == "Again: Line one\nLine two & <more>"
    table = ours.tables[0]
    assert [c.text for c in table.rows[0].cells] == ["Name", "Mon", "Tue", "Wed", "Thu"]
    grid = table._tbl.tblGrid.findall(f"{W}gridCol")
    assert len(grid) == 5  # the grid widened with the cells: LibreOffice keeps the last column's text
    reference = docxtpl.DocxTemplate(str(path))
    reference.render({"note": "Line one\nLine two & <more>", "columns": context["columns"]}, autoescape=True)
    buffer = io.BytesIO()
    reference.save(buffer)
    theirs = docx.Document(io.BytesIO(buffer.getvalue()))
    assert [c.text for c in theirs.tables[0].rows[0].cells] == [c.text for c in table.rows[0].cells]
    assert len(theirs.tables[0]._tbl.tblGrid.findall(f"{W}gridCol")) == len(grid)


def test_a_docxtpl_object_in_the_data_is_named_in_one_sentence(tmp_path):
    import docxtpl

    path = _officer_template(tmp_path)
    with pytest.raises(TemplateError, match="docxtpl RichText is not supported"):
        compile_template(path).render({"note": docxtpl.RichText("bold"), "columns": []})
