"""`outbox/term-register.xlsx`: the term at a glance for the Inclusions Team manager (docs/term-register.md).

Sheet "Register": one row per referral, filters on every column, heading frozen, A4 landscape. A row with a
review overdue is filled red; a plan not yet sent (or an update not sent, or only drafted) has its Plan sent
cell filled amber (conditional formats on the values, so they survive sorting and filtering). Sheet "Waiting for a fix": rejected rows no later run accepted. Written whole and
owner-only (`files.atomic_path`), never holding a UPN: the Referral ID identifies the pupil.
"""

from __future__ import annotations

from pathlib import Path

from xlsxwriter.utility import xl_col_to_name

from pipeline.check.rules import rule_title
from pipeline.core.files import atomic_path
from pipeline.register.view import NEEDS_SENDING, TermView
from pipeline.write.workbooks import Formats, new_workbook, print_setup
from pipeline.write.xlsx_rows import RowsWorksheet

NAME = "term-register.xlsx"
SHEET, WAITING_SHEET = "Register", "Waiting for a fix"
HEADINGS = ("Referral ID", "Pupil", "Receiving school", "Route", "Planned return", "Settling-in ends", "Next review",
            "Reviews held", "Reviews missed", "Reviews overdue", "Plan sent", "Sent on", "Version sent", "Sent to",
            "Latest plan", "3.9 protection ends", "Run folder")
WIDTHS = (14, 24, 28, 22, 13, 13, 13, 9, 9, 9, 28, 12, 20, 24, 20, 13, 34)
WAITING_HEADINGS = ("Input file", "Row", "Referral ID", "Rejected by rules", "What the rules ask", "Run folder")
WAITING_WIDTHS = (32, 7, 14, 16, 60, 34)
OVERDUE_FILL = "#F8CBAD"  # as the review tracker marks an overdue review
NOT_SENT_FILL = "#FFE699"
_PLAN_SENT = HEADINGS.index("Plan sent")
_COUNTS = {HEADINGS.index(h): {"align": "center"} for h in ("Reviews held", "Reviews missed", "Reviews overdue")}


def register_row(referral) -> tuple:
    sent = referral.sent
    went = sent if sent and sent.status != "blocked" else None  # a refused send has no day or version, only its domain
    nxt = referral.next_review
    return (referral.referral_id, referral.pupil, referral.receiving_school, referral.route, referral.planned_return,
            referral.settling_in_end, nxt.date if nxt else None, referral.held, referral.missed,
            len(referral.overdue), referral.plan_sent, went.on if went else None, went.version if went else None,
            sent.domain if sent else None, referral.latest_version, referral.protected_until, referral.run_folder)


def write_register(path: Path, view: TermView) -> Path:
    """The register for `view`, replacing any earlier one in one step."""
    with atomic_path(path) as tmp:
        wb = new_workbook(tmp)
        wb.set_properties({"title": "Term register of reintegration referrals",
                           "subject": f"as of {view.as_of.isoformat()}", "company": "London Borough of Havering",
                           "keywords": "OFFICIAL-SENSITIVE"})
        fmt = Formats(wb)
        _register_sheet(wb, fmt, view)
        _waiting_sheet(wb, fmt, view)
        wb.close()
    return path


def _sheet(wb, fmt: Formats, name: str, headings, widths, rows: int):
    ws = wb.add_worksheet(name, worksheet_class=RowsWorksheet)
    for col, (heading, width) in enumerate(zip(headings, widths)):
        ws.set_column(col, col, width)
        ws.write_string(0, col, heading, fmt.heading)
    ws.set_row(0, 30)
    ws.freeze_panes(1, 0)
    ws.autofilter(0, 0, max(rows, 1), len(headings) - 1)
    print_setup(ws)
    return ws


def _register_sheet(wb, fmt: Formats, view: TermView) -> None:
    ws = _sheet(wb, fmt, SHEET, HEADINGS, WIDTHS, len(view.referrals))
    for r, referral in enumerate(view.referrals, start=1):
        ws.add_row(r, register_row(referral), fmt, blanks=True, props=_COUNTS)
    # highlights as conditional formats on the values written: Excel and LibreOffice show them, filters and
    # sorting keep them, and every row is written the fast way
    last = max(len(view.referrals), 1)
    sent = xl_col_to_name(_PLAN_SENT)
    waiting = ",".join(f'${sent}2="{label}"' for label in NEEDS_SENDING)
    # the amber cell first: a rule added earlier wins where both apply, so a plan not sent shows in a red row too
    ws.conditional_format(1, _PLAN_SENT, last, _PLAN_SENT, {
        "type": "formula", "criteria": f"=OR({waiting})", "format": wb.add_format({"bg_color": NOT_SENT_FILL})})
    overdue = xl_col_to_name(HEADINGS.index("Reviews overdue"))
    ws.conditional_format(1, 0, last, len(HEADINGS) - 1, {
        "type": "formula", "criteria": f"=${overdue}2>0", "format": wb.add_format({"bg_color": OVERDUE_FILL})})
    ws.set_footer(f"&L&8As of {view.as_of:%d/%m/%Y}: red, a review overdue; amber, the plan not yet sent"
                  "&C&8&\"-,Bold\"OFFICIAL-SENSITIVE&R&8Page &P of &N")


def _waiting_sheet(wb, fmt: Formats, view: TermView) -> None:
    ws = _sheet(wb, fmt, WAITING_SHEET, WAITING_HEADINGS, WAITING_WIDTHS, len(view.waiting))
    for r, item in enumerate(view.waiting, start=1):
        asks = "; ".join(rule_title(rule) or rule for rule in item.rules.split(", ") if rule)
        ws.add_row(r, (item.input_name, item.row, item.referral_id, item.rules, asks, item.run_folder), fmt,
                   blanks=True)
