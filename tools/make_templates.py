"""Build the Word templates in ``templates/``: the Reintegration Plan and the two meeting letters.

    python tools/make_templates.py            # rewrites templates/*.docx
    python tools/make_templates.py OUT_DIR    # somewhere else, e.g. to compare

The .docx files are committed; this script is how they are regenerated. They are ordinary Word
documents that officers open and edit in Word: A4, Arial, proper heading and table styles, a header
and footer with the OFFICIAL-SENSITIVE protective marking, "Page X of Y" fields. Placeholders are
Jinja2 in docxtpl's syntax (see `pipeline.write.render`) and use only the names of
`pipeline.write.context.build_context`. The output is deterministic (fixed dates in the zip and the
document properties) so a regenerated template only shows as changed when its content changed.
The packages are kept small: no thumbnail, fonts or images, and only the styles the documents use.
"""

from __future__ import annotations

import io
import sys
import zipfile
from datetime import datetime
from pathlib import Path

from docx import Document
from docx.enum.section import WD_ORIENT
from docx.enum.table import WD_ROW_HEIGHT_RULE, WD_TABLE_ALIGNMENT
from docx.enum.style import WD_STYLE_TYPE
from docx.enum.text import WD_ALIGN_PARAGRAPH, WD_TAB_ALIGNMENT
from docx.oxml import OxmlElement
from docx.oxml.ns import qn
from docx.shared import Cm, Pt, RGBColor
from lxml import etree

ROOT = Path(__file__).resolve().parent.parent
FONT = "Arial"
ACCENT = RGBColor(0x1F, 0x38, 0x64)  # dark blue for headings
HEAD_FILL = "D9E2F3"  # table heading rows
LABEL_FILL = "F2F2F2"  # label cells of key/value tables
TEXT_WIDTH = 17.0  # cm: A4 less 2 cm margins
FIXED_DATE = datetime(2024, 9, 1, 9, 0, 0)
COUNCIL = "London Borough of Havering"
TEAM = "Inclusions Team"
MARKING = "OFFICIAL-SENSITIVE"


# ---------------------------------------------------------------------------------------------
# Document set-up


def _fonts(rpr_owner, name: str = FONT) -> None:
    """Set all four font slots and drop theme fonts, which would otherwise win."""
    rpr = rpr_owner.find(qn("w:rPr"))
    if rpr is None:
        rpr = OxmlElement("w:rPr")
        rpr_owner.append(rpr)
    fonts = rpr.find(qn("w:rFonts"))
    if fonts is None:
        fonts = OxmlElement("w:rFonts")
        rpr.insert(0, fonts)
    for attr in list(fonts.attrib):
        del fonts.attrib[attr]
    for slot in ("w:ascii", "w:hAnsi", "w:cs", "w:eastAsia"):
        fonts.set(qn(slot), name)


def _style(doc, name, *, size=None, bold=None, color=None, before=None, after=None,
           keep_next=None, base=None):
    style = doc.styles[name]
    if base is not None:
        style.base_style = doc.styles[base]
    _fonts(style.element)
    font = style.font
    if size is not None:
        font.size = Pt(size)
    if bold is not None:
        font.bold = bold
    if color is not None:
        font.color.rgb = color
    font.italic = False
    fmt = style.paragraph_format
    if before is not None:
        fmt.space_before = Pt(before)
    if after is not None:
        fmt.space_after = Pt(after)
    if keep_next is not None:
        fmt.keep_with_next = keep_next
    return style


def new_document(title: str):
    doc = Document()
    section = doc.sections[0]
    section.orientation = WD_ORIENT.PORTRAIT
    section.page_width, section.page_height = Cm(21.0), Cm(29.7)
    section.left_margin = section.right_margin = Cm(2.0)
    section.top_margin, section.bottom_margin = Cm(2.2), Cm(2.0)
    section.header_distance = section.footer_distance = Cm(1.0)

    # Defaults for every run: Arial, so nothing falls back to the theme's Calibri/Cambria.
    defaults = doc.styles.element.find(qn("w:docDefaults"))
    rpr_default = defaults.find(qn("w:rPrDefault"))
    _fonts(rpr_default)

    normal = _style(doc, "Normal", size=10.5, after=6)
    normal.paragraph_format.line_spacing = 1.1
    _style(doc, "Title", size=20, bold=True, color=ACCENT, after=2)
    title_style = doc.styles["Title"]
    ppr = title_style.element.get_or_add_pPr()
    for border in ppr.findall(qn("w:pBdr")):  # python-docx's Title has a rule under it: keep ours
        ppr.remove(border)
    subtitle = _style(doc, "Subtitle", size=11, color=RGBColor(0x40, 0x40, 0x40), after=10)
    for spacing in subtitle.element.rPr.findall(qn("w:spacing")):  # no letter-spacing
        subtitle.element.rPr.remove(spacing)
    _style(doc, "Heading 1", size=13, bold=True, color=ACCENT, before=14, after=4, keep_next=True)
    _style(doc, "Heading 2", size=11, bold=True, color=ACCENT, before=10, after=3, keep_next=True)
    for name in ("Header", "Footer"):  # one right-aligned tab stop at the right margin
        style = _style(doc, name, size=8.5)
        style.paragraph_format.tab_stops.clear_all()
        style.paragraph_format.tab_stops.add_tab_stop(Cm(TEXT_WIDTH), WD_TAB_ALIGNMENT.RIGHT)
    table_text = doc.styles.add_style("Table Text", WD_STYLE_TYPE.PARAGRAPH)
    table_text.base_style = doc.styles["Normal"]
    table_text.font.size = Pt(9.5)
    table_text.paragraph_format.space_before = Pt(1)
    table_text.paragraph_format.space_after = Pt(1)
    table_text.paragraph_format.line_spacing = 1.0
    table_text.quick_style = True
    table_heading = doc.styles.add_style("Table Heading", WD_STYLE_TYPE.PARAGRAPH)
    table_heading.base_style = table_text
    table_heading.font.bold = True
    table_heading.quick_style = True
    small = doc.styles.add_style("Note", WD_STYLE_TYPE.PARAGRAPH)
    small.base_style = doc.styles["Normal"]
    small.font.size = Pt(9)
    small.font.color.rgb = RGBColor(0x40, 0x40, 0x40)
    small.paragraph_format.keep_with_next = True  # a note introduces the table after it
    small.quick_style = True

    _header_footer(doc, title)
    props = doc.core_properties
    props.title = title
    props.subject = "Reintegration Policy 2023/24"
    props.author = f"{COUNCIL}, {TEAM}"
    props.last_modified_by = f"{COUNCIL}, {TEAM}"
    props.comments = ("Template for the reintegrate tool: placeholders in double curly brackets "
                      "are filled in for each pupil. Keep each table-row tag (tr) in a row of its "
                      "own and each paragraph tag (p) in a paragraph of its own.")
    props.keywords = MARKING
    props.category = MARKING
    props.created = props.modified = FIXED_DATE
    props.revision = 1
    return doc


def _field(paragraph, instruction: str, shown: str) -> None:
    """A Word field (PAGE, NUMPAGES) as begin/instruction/separate/result/end runs."""
    def run_with(child):
        run = paragraph.add_run()
        run._r.append(child)
        return run

    begin = OxmlElement("w:fldChar")
    begin.set(qn("w:fldCharType"), "begin")
    run_with(begin)
    instr = OxmlElement("w:instrText")
    instr.set(qn("xml:space"), "preserve")
    instr.text = f" {instruction} "
    run_with(instr)
    separate = OxmlElement("w:fldChar")
    separate.set(qn("w:fldCharType"), "separate")
    run_with(separate)
    paragraph.add_run(shown)
    end = OxmlElement("w:fldChar")
    end.set(qn("w:fldCharType"), "end")
    run_with(end)


def _rule(paragraph, side: str) -> None:
    ppr = paragraph._p.get_or_add_pPr()
    borders = OxmlElement("w:pBdr")
    line = OxmlElement(f"w:{side}")
    for key, value in (("val", "single"), ("sz", "6"), ("space", "4"), ("color", "1F3864")):
        line.set(qn(f"w:{key}"), value)
    borders.append(line)
    # pBdr must come before spacing/ind/jc... in pPr: insert after pStyle/keepNext when present
    anchor = None
    for tag in ("w:pStyle", "w:keepNext", "w:keepLines", "w:pageBreakBefore"):
        found = ppr.find(qn(tag))
        if found is not None:
            anchor = found
    if anchor is None:
        ppr.insert(0, borders)
    else:
        anchor.addnext(borders)


def _header_footer(doc, title: str) -> None:
    section = doc.sections[0]
    header = section.header
    header.is_linked_to_previous = False
    marking = header.paragraphs[0]
    marking.style = doc.styles["Header"]
    marking.alignment = WD_ALIGN_PARAGRAPH.CENTER
    marking.add_run(MARKING).bold = True
    line = header.add_paragraph(style="Header")
    line.add_run(COUNCIL).bold = True
    line.add_run(f"  |  {TEAM}\t{title}  |  Ref {{{{ referral_id }}}}")
    _rule(line, "bottom")

    footer = section.footer
    footer.is_linked_to_previous = False
    line = footer.paragraphs[0]
    line.style = doc.styles["Footer"]
    _rule(line, "top")
    line.add_run(f"{COUNCIL}, {TEAM}  |  Ref {{{{ referral_id }}}}\tPage ")
    _field(line, "PAGE", "1")
    line.add_run(" of ")
    _field(line, "NUMPAGES", "1")
    marking = footer.add_paragraph(style="Footer")
    marking.alignment = WD_ALIGN_PARAGRAPH.CENTER
    marking.add_run(MARKING).bold = True


# ---------------------------------------------------------------------------------------------
# Tables


def _shade(cell, fill: str) -> None:
    tcpr = cell._tc.get_or_add_tcPr()
    shading = OxmlElement("w:shd")
    shading.set(qn("w:val"), "clear")
    shading.set(qn("w:color"), "auto")
    shading.set(qn("w:fill"), fill)
    width = tcpr.find(qn("w:tcW"))
    if width is not None:
        width.addnext(shading)
    else:
        tcpr.insert(0, shading)


def _row_flag(row, tag: str) -> None:
    trpr = row._tr.get_or_add_trPr()
    trpr.append(OxmlElement(f"w:{tag}"))


def new_table(doc, widths_cm: list[float], heading: list[str] | None = None):
    table = doc.add_table(rows=0, cols=len(widths_cm))
    table.style = doc.styles["Table Grid"]
    table.alignment = WD_TABLE_ALIGNMENT.LEFT
    table.autofit = False  # python-docx writes <w:tblLayout w:type="fixed"/> in its place
    tblpr = table._tbl.tblPr
    total = OxmlElement("w:tblW")
    total.set(qn("w:w"), str(int(sum(widths_cm) * 567)))
    total.set(qn("w:type"), "dxa")
    existing = tblpr.find(qn("w:tblW"))
    if existing is not None:
        tblpr.replace(existing, total)
    else:
        tblpr.append(total)
    for column, width in zip(table.columns, widths_cm):
        column.width = Cm(width)
    table._widths = widths_cm
    if heading:
        cells = add_row(table, heading, style="Table Heading")
        for cell in cells:
            _shade(cell, HEAD_FILL)
        _row_flag(table.rows[-1], "tblHeader")
    return table


def add_row(table, texts: list[str], *, style: str = "Table Text", labels: tuple[int, ...] = (),
            height_cm: float | None = None):
    row = table.add_row()
    _row_flag(row, "cantSplit")
    if height_cm:
        row.height = Cm(height_cm)
        row.height_rule = WD_ROW_HEIGHT_RULE.AT_LEAST
    for index, (cell, text) in enumerate(zip(row.cells, texts)):
        cell.width = Cm(table._widths[index])
        paragraph = cell.paragraphs[0]
        paragraph.style = style if index not in labels else "Table Heading"
        if text:
            paragraph.add_run(text)
        if index in labels:
            _shade(cell, LABEL_FILL)
    return row.cells


def tag_row(table, tag: str) -> None:
    """A row holding only a {%tr %} tag: docxtpl and our renderer replace the whole row."""
    add_row(table, [tag] + [""] * (len(table.columns) - 1))


def loop_rows(table, loop: str, cells: list[str], **row_options) -> None:
    """One table row repeated for each item: `{%tr for ... %}`, the row, `{%tr endfor %}`."""
    tag_row(table, f"{{%tr for {loop} %}}")
    add_row(table, cells, **row_options)
    tag_row(table, "{%tr endfor %}")


def key_value_table(doc, rows: list[tuple[str, str, str, str]]):
    """Four columns: label, value, label, value."""
    # values wider than labels: an email address fits on a line instead of breaking mid-word
    table = new_table(doc, [3.1, 5.4, 3.1, 5.4])
    for row in rows:
        add_row(table, list(row), labels=(0, 2))
    return table


def heading(doc, text: str, level: int = 1) -> None:
    doc.add_heading(text, level=level)


def para(doc, text: str = "", style: str | None = None, *, bold_lead: str | None = None):
    paragraph = doc.add_paragraph(style=style)
    if bold_lead:
        paragraph.add_run(bold_lead).bold = True
    if text:
        paragraph.add_run(text)
    return paragraph


# ---------------------------------------------------------------------------------------------
# The plan


def build_plan():
    doc = new_document("Reintegration Plan")
    doc.add_paragraph("Reintegration Plan", style="Title")
    para(doc, "{{ pupil.full_name }}, {{ pupil.year_group }}  |  Prepared {{ generated_on }}",
         "Subtitle")
    para(doc, "{%p if provisional_note %}")
    para(doc, "{{ provisional_note }}", "Note", bold_lead="Please note: ")
    para(doc, "{%p endif %}")
    para(doc, "This is Havering's reintegration planning document (Reintegration Policy 2023/24, "
              "clause 3.2). It is drafted when the decision to return is made and is ready before "
              "{{ pupil.greeting_name }} returns to school (clause 3.4). All parties follow it "
              "through the settling-in period, and each review is recorded in section 8.")

    heading(doc, "1. Pupil and placement details")
    key_value_table(doc, [
        ("Legal name", "{{ pupil.full_name }}", "Preferred name", "{{ pupil.preferred_name }}"),
        ("Date of birth", "{{ pupil.date_of_birth }}", "Year group", "{{ pupil.year_group }}"),
        ("UPN", "{{ pupil.upn }}", "SEN status", "{{ pupil.sen_status }}"),
        ("Looked after child", "{{ pupil.looked_after }}", "Social worker",
         "{{ pupil.social_worker }}"),
        ("Parent/carer", "{{ parent.name }}", "Parent/carer contact",
         "{{ parent.contact }}"),
        ("Reason for reintegration", "{{ placement.reason }}", "Returning via FAP",
         "{{ placement.via_fap }}"),
        ("Current provision", "{{ placement.provision_name }} ({{ placement.provision_type }})",
         "Referring school", "{{ placement.referring_school }}"),
        ("Receiving school", "{{ placement.receiving_school }}", "Receiving school contact",
         "{{ placement.receiving_contact }}\n{{ placement.receiving_email }}"),
        ("IPA reference", "{{ placement.ipa_reference }}", "IPA dates",
         "{{ placement.ipa_dates }}"),
        ("Decision date", "{{ dates.decision }}", "Planned return date",
         "{{ dates.planned_return }}"),
        ("Planning meeting", "{{ dates.planning_meeting }}", "Previous return date",
         "{{ dates.previous_return }}"),
        ("Meeting time", "{{ dates.planning_meeting_time }}", "Meeting venue",
         "{{ dates.planning_meeting_venue }}"),
    ])

    heading(doc, "2. Route and policy checklist")
    para(doc, "How this reintegration meets each clause of the Reintegration Policy 2023/24, as "
              "checked when the plan was prepared.", "Note")
    # wide enough for "Clause" in a font wider than Arial (LibreOffice without Arial's metric twin)
    table = new_table(doc, [1.9, 7.0, 8.1], ["Clause", "Requirement", "Status for this pupil"])
    loop_rows(table, "c in checklist", ["{{ c.clause }}", "{{ c.requirement }}", "{{ c.status }}"])

    heading(doc, "3. Key worker and buddy")
    key_value_table(doc, [
        ("Key worker", "{{ support.key_worker }}", "Buddy", "{{ support.buddy }}"),
        ("Reviews", "Held {{ review_frequency }}", "Settling-in period",
         "{{ settling_in_period_weeks }} school weeks from {{ dates.planned_return }}"),
    ])

    heading(doc, "4. Reasonable adjustments")
    table = new_table(doc, [1.2, 15.8], ["No.", "Adjustment"])
    loop_rows(table, "a in support.adjustments", ["{{ loop.index }}", "{{ a }}"])

    heading(doc, "5. Strengths, needs and additional support")
    table = new_table(doc, [4.2, 12.8])
    add_row(table, ["Strengths and interests", "{{ support.strengths }}"], labels=(0,))
    add_row(table, ["Needs and triggers", "{{ support.needs }}"], labels=(0,))
    add_row(table, ["Additional support", "{{ support.additional_support }}"], labels=(0,))

    heading(doc, "6. Minimum expectations")
    para(doc, "The agreed minimum expectations for a reintegration (Reintegration Policy "
              "2023/24), and what is in place for {{ pupil.greeting_name }}.", "Note")
    table = new_table(doc, [3.9, 3.9, 3.9, 5.3],
                      ["Steps", "Result", "Outcome", "In place for this pupil"])
    loop_rows(table, "m in minimum_expectations",
              ["{{ m.step }}", "{{ m.result }}", "{{ m.outcome }}", "{{ m.in_place }}"])

    heading(doc, "7. Review schedule")
    para(doc, "Reviews are held {{ review_frequency }} through the {{ settling_in_period_weeks }}"
              "-school-week settling-in period, each on the last school day of its week. Week 1 "
              "is the seven days from the return; a week wholly in a school holiday does not "
              "count.", "Note")
    table = new_table(doc, [2.0, 9.0, 6.0], ["Review", "Date", "Settling-in week"])
    loop_rows(table, "r in reviews", ["{{ r.number }}", "{{ r.date }}", "{{ r.week }}"])

    heading(doc, "8. Review record")
    para(doc, "Record each review when it is held: status (Held, Missed or Cancelled), outcome "
              "and next steps.", "Note")
    table = new_table(doc, [1.9, 3.4, 2.2, 4.9, 4.6],
                      ["Review", "Date", "Status", "Outcome", "Next steps"])
    loop_rows(table, "r in review_record",
              ["{{ r.number }}", "{{ r.date }}", "{{ r.status }}", "{{ r.outcome }}", "{{ r.next_steps }}"])
    tag_row(table, "{%tr if not review_record %}")
    loop_rows(table, "r in reviews", ["{{ r.number }}", "{{ r.date }}", "", "", ""], height_cm=1.4)
    tag_row(table, "{%tr endif %}")

    heading(doc, "9. Sign-off")
    para(doc, "By signing, each party agrees to follow this plan through the settling-in period.",
         "Note")
    table = new_table(doc, [5.0, 4.6, 4.4, 3.0], ["Role", "Name", "Signature", "Date"])
    for role, name in (
        ("Parent/carer", "{{ parent.name }}"),
        ("Pupil", "{{ pupil.full_name }}"),
        ("Receiving school\n{{ placement.receiving_school }}", "{{ placement.receiving_contact }}"),
        ("Referring school/AP\n{{ placement.referring_school }}", ""),
        ("Inclusions officer", "{{ officer.name }}"),
    ):
        add_row(table, [role, name, "", ""], labels=(0,), height_cm=1.2)
    para(doc)
    para(doc, "Inclusions Team, {{ officer.name }}, {{ officer.email }}. Plan produced "
              "{{ generated_on }} (run {{ run_id }}). Keep this document secure: it is "
              "OFFICIAL-SENSITIVE.", "Note")
    return doc


# ---------------------------------------------------------------------------------------------
# The letters


def _letter_top(doc, title: str) -> None:
    sender = doc.add_paragraph(style="Normal")
    sender.alignment = WD_ALIGN_PARAGRAPH.RIGHT
    sender.paragraph_format.space_after = Pt(12)
    sender.add_run(TEAM).bold = True
    for line in (COUNCIL, "Town Hall, Main Road", "Romford RM1 3BB", "{{ officer.email }}"):
        sender.add_run().add_break()
        sender.add_run(line)
    recipient = doc.add_paragraph(style="Normal")
    recipient.paragraph_format.space_after = Pt(12)
    recipient.add_run("{{ placement.receiving_contact }}")
    for line in ("{{ placement.receiving_school }}", "By email: {{ placement.receiving_email }}"):
        recipient.add_run().add_break()
        recipient.add_run(line)
    para(doc, "{{ generated_on }}")
    para(doc, "{{ referral_id }}", bold_lead="Our reference: ")
    para(doc, "Dear {{ placement.receiving_contact }},")
    subject = doc.add_paragraph(style="Normal")
    subject.add_run(f"{title}: {{{{ pupil.full_name }}}} ({{{{ pupil.year_group }}}})").bold = True


def _letter_details(doc, rows: list[tuple[str, str]]) -> None:
    table = new_table(doc, [5.0, 12.0])
    for label, value in rows:
        add_row(table, [label, value], labels=(0,))
    doc.add_paragraph().paragraph_format.space_after = Pt(0)


def _letter_close(doc) -> None:
    para(doc, "Yours sincerely,")
    signature = doc.add_paragraph(style="Normal")
    signature.paragraph_format.space_before = Pt(24)
    signature.add_run("{{ officer.name }}").bold = True
    for line in (f"Inclusions Officer, {TEAM}", COUNCIL, "{{ officer.email }}"):
        signature.add_run().add_break()
        signature.add_run(line)
    para(doc, "Enclosure: Reintegration Plan (draft) for {{ pupil.full_name }}", "Note")


def build_invitation():
    title = "Invitation to a reintegration planning meeting"
    doc = new_document("Reintegration planning meeting")
    _letter_top(doc, title)
    para(doc, "{{ pupil.full_name }}, who is currently at {{ placement.provision_name }} "
              "({{ placement.provision_type }}), is ready to return to mainstream school at "
              "{{ placement.receiving_school }}. The decision for {{ pupil.greeting_name }} to "
              "return {{ dates.decision_made }} and the planned return date is "
              "{{ dates.planned_return }}.")
    para(doc, "As {{ pupil.greeting_name }} is reintegrating from {{ placement.provision_name }}, "
              "the receiving school is invited to the reintegration planning meeting (clause "
              "{{ letter.clause }} of Havering's Reintegration Policy 2023/24). At the meeting we "
              "will agree the enclosed Reintegration Plan with you, {{ pupil.greeting_name }}, "
              "their parent/carer and {{ placement.provision_name }}: the key worker and buddy, "
              "the reasonable adjustments and the review dates.")
    _letter_details(doc, [
        ("Pupil", "{{ pupil.full_name }}, {{ pupil.year_group }}"),
        ("Date of birth and UPN", "{{ pupil.date_of_birth }}, {{ pupil.upn }}"),
        ("Current provision", "{{ placement.provision_name }}"),
        ("Referring school", "{{ placement.referring_school }}"),
        ("Planned return date", "{{ dates.planned_return }}"),
        ("Planning meeting", "{{ dates.planning_meeting }}"),
        ("Time", "{{ dates.planning_meeting_time }}"),
        ("Venue", "{{ dates.planning_meeting_venue }}"),
    ])
    para(doc, "Please confirm that you can attend, or suggest another time, by replying to "
              "{{ officer.email }}. The meeting needs to take place before "
              "{{ dates.planned_return }} so that the plan is ready to use when "
              "{{ pupil.greeting_name }} returns (clause 3.4).")
    _letter_close(doc)
    return doc


def build_request():
    title = "Request for a reintegration planning meeting"
    doc = new_document("Reintegration planning meeting")
    _letter_top(doc, title)
    para(doc, "{{ pupil.full_name }} is moving from {{ placement.provision_name }} to "
              "{{ placement.receiving_school }} through the Fair Access Protocol. The decision for "
              "{{ pupil.greeting_name }} to move {{ dates.decision_made }} and the planned start date "
              "is {{ dates.planned_return }}.")
    para(doc, "As {{ pupil.greeting_name }} is reintegrating from a school, the Inclusions Team "
              "has been asked to arrange the reintegration planning meeting (clause "
              "{{ letter.clause }} of Havering's Reintegration Policy 2023/24). The meeting will "
              "agree the enclosed Reintegration Plan with you, {{ pupil.greeting_name }}, their "
              "parent/carer and {{ placement.referring_school }}: the key worker and buddy, the "
              "reasonable adjustments and the review dates.")
    _letter_details(doc, [
        ("Pupil", "{{ pupil.full_name }}, {{ pupil.year_group }}"),
        ("Date of birth and UPN", "{{ pupil.date_of_birth }}, {{ pupil.upn }}"),
        ("Current school", "{{ placement.provision_name }}"),
        ("Referring school", "{{ placement.referring_school }}"),
        ("Planned start date", "{{ dates.planned_return }}"),
        ("Planning meeting", "{{ dates.planning_meeting }}"),
        ("Time", "{{ dates.planning_meeting_time }}"),
        ("Venue", "{{ dates.planning_meeting_venue }}"),
    ])
    para(doc, "I will contact you to confirm the date, time and place of the meeting, which needs "
              "to take place before {{ dates.planned_return }} so that the plan is ready to use "
              "when {{ pupil.greeting_name }} starts (clause 3.4). In the meantime, please contact "
              "me at {{ officer.email }} with any questions.")
    _letter_close(doc)
    return doc


# ---------------------------------------------------------------------------------------------
# Packaging: small and deterministic

_DROP_PARTS = {"docProps/thumbnail.jpeg", "word/stylesWithEffects.xml", "customXml/item1.xml",
               "customXml/itemProps1.xml", "customXml/_rels/item1.xml.rels"}
_APP_XML = (
    '<?xml version="1.0" encoding="UTF-8" standalone="yes"?>\n'
    '<Properties xmlns="http://schemas.openxmlformats.org/officeDocument/2006/extended-properties" '
    'xmlns:vt="http://schemas.openxmlformats.org/officeDocument/2006/docPropsVTypes">'
    f"<Template>Normal.dotm</Template><Application>reintegrate</Application>"
    f"<DocSecurity>0</DocSecurity><Company>{COUNCIL}</Company>"
    "<LinksUpToDate>false</LinksUpToDate><SharedDoc>false</SharedDoc>"
    "<HyperlinksChanged>false</HyperlinksChanged><AppVersion>16.0000</AppVersion></Properties>"
).encode()
_W = "http://schemas.openxmlformats.org/wordprocessingml/2006/main"


def _without(xml: bytes, element: str, attribute: str, values: set[str]) -> bytes:
    root = etree.fromstring(xml)
    for node in list(root):
        if node.tag.endswith(element) and node.get(attribute, "").lstrip("/") in values:
            root.remove(node)
    return etree.tostring(root, xml_declaration=True, encoding="UTF-8", standalone=True)


def _prune_styles(styles: bytes, used_parts: list[bytes]) -> bytes:
    """Keep the default styles, the styles the documents use and what those are based on."""
    w = f"{{{_W}}}"
    root = etree.fromstring(styles)
    by_id = {s.get(f"{w}styleId"): s for s in root.iter(f"{w}style")}
    wanted = {s.get(f"{w}styleId") for s in by_id.values() if s.get(f"{w}default") == "1"}
    wanted |= {"Heading1", "Heading2", "Heading3", "ListBullet", "ListNumber", "Title",
               "Subtitle", "TableGrid", "Header", "Footer", "Hyperlink"}
    for xml in used_parts:
        part = etree.fromstring(xml)
        for tag in ("pStyle", "rStyle", "tblStyle"):
            wanted |= {e.get(f"{w}val") for e in part.iter(f"{w}{tag}")}
    queue = [s for s in wanted if s in by_id]
    while queue:
        style = by_id[queue.pop()]
        for tag in ("basedOn", "next", "link"):
            ref = style.find(f"{w}{tag}")
            if ref is not None and ref.get(f"{w}val") not in wanted and ref.get(f"{w}val") in by_id:
                wanted.add(ref.get(f"{w}val"))
                queue.append(ref.get(f"{w}val"))
    for style_id, style in by_id.items():
        if style_id not in wanted:
            root.remove(style)
    return etree.tostring(root, xml_declaration=True, encoding="UTF-8", standalone=True)


def package(doc) -> bytes:
    buffer = io.BytesIO()
    doc.save(buffer)
    with zipfile.ZipFile(io.BytesIO(buffer.getvalue())) as source:
        members = {info.filename: source.read(info) for info in source.infolist()}
    for name in _DROP_PARTS:
        members.pop(name, None)
    dropped = {n.split("/")[-1] for n in _DROP_PARTS} | {"../customXml/item1.xml"} | _DROP_PARTS
    members["_rels/.rels"] = _without(members["_rels/.rels"], "Relationship", "Target", dropped)
    members["word/_rels/document.xml.rels"] = _without(
        members["word/_rels/document.xml.rels"], "Relationship", "Target", dropped)
    members["[Content_Types].xml"] = _without(members["[Content_Types].xml"], "Override",
                                              "PartName", _DROP_PARTS)
    members["docProps/app.xml"] = _APP_XML
    used = [data for name, data in members.items()
            if name.startswith("word/") and name.endswith(".xml") and name != "word/styles.xml"]
    members["word/styles.xml"] = _prune_styles(members["word/styles.xml"], used)
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED, compresslevel=9) as target:
        for name, data in members.items():
            info = zipfile.ZipInfo(name, date_time=FIXED_DATE.timetuple()[:6])
            info.compress_type = zipfile.ZIP_DEFLATED
            info.external_attr = 0o644 << 16
            target.writestr(info, data)
    return out.getvalue()


BUILDERS = {
    "reintegration-plan.docx": build_plan,
    "meeting-invitation.docx": build_invitation,
    "meeting-request.docx": build_request,
}


def main(argv: list[str]) -> int:
    out_dir = Path(argv[0]) if argv else ROOT / "templates"
    out_dir.mkdir(parents=True, exist_ok=True)
    for name, build in BUILDERS.items():
        data = package(build())
        (out_dir / name).write_bytes(data)
        print(f"{out_dir / name}: {len(data):,} bytes")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
