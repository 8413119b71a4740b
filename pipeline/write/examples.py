"""Realistic, made-up referral rows: the shipped example workbook, the tests' builders and the benchmark all
use this generator. No real pupil is in it; UPNs are generated with valid check letters."""

from __future__ import annotations

import random
from datetime import date, timedelta
from pathlib import Path

from pipeline.check.calendar import SchoolCalendar
from pipeline.core.files import atomic_path
from pipeline.write.workbooks import Formats, new_workbook, write_value
from schemas.parsers import upn_check_letter
from schemas.referral import HEADINGS

FORENAMES = ["Amelia", "Oliver", "Isla", "George", "Ava", "Noah", "Zoë", "Jayden", "Chloé", "Mohammed", "Aaliyah",
             "Kacper", "Maya", "Tyler", "Grace", "Ibrahim", "Freya", "Leo", "Sienna", "Dylan", "Amara", "Kai", "Niamh",
             "Oskar", "Precious", "Reggie", "Tia", "Yusuf"]
NICKNAMES = {"Oliver": "Ollie", "Mohammed": "Mo", "Amelia": "Millie", "Reggie": "Reg", "Jayden": "Jay",
             "Ibrahim": "Ibby", "Tyler": "Ty", "George": "Georgie"}
SURNAMES = ["Smith", "O'Brien", "Okafor", "Patel", "Nowak", "Williams", "Ahmed", "Jones", "Brown", "Kowalski",
            "Taylor", "Adeyemi", "Murphy", "Khan", "Evans", "Davies", "Mensah", "Clarke", "Hughes", "Singh", "Lewis",
            "Walker", "Ali", "Green"]
SCHOOLS = [("Brookfield Academy", "brookfield.sch.uk"), ("Hylands School", "hylands.havering.sch.uk"),
           ("Marshalls Park Academy", "marshallspark.havering.sch.uk"), ("Redden Court School", "reddencourt.havering.sch.uk"),
           ("Royal Liberty School", "royalliberty.havering.sch.uk"), ("Sanders School", "sanders.havering.sch.uk"),
           ("The Albany School", "albany.havering.sch.uk"), ("Drapers' Academy", "drapersacademy.com")]
APS = ["Olive Academy Havering", "Havering Medical Tuition Service", "Koala Centre", "Bridge AP"]
OFFICERS = [("Sam Jones", "sam.jones@havering.gov.uk"), ("Priya Shah", "priya.shah@havering.gov.uk")]
ADJUSTMENTS = ["Time-out card", "Reduced timetable for the first two weeks", "Seat near the door",
               "Check-in with key worker each morning", "Lunchtime club access", "Extra time between lessons",
               "Movement breaks", "Homework club"]


def make_upn(rng: random.Random) -> str:
    body = "".join(rng.choice("0123456789") for _ in range(12))
    return upn_check_letter("X" + body) + body


def _school_day_on_or_before(calendar: SchoolCalendar, day: date) -> date:
    while not calendar.is_school_day(day):
        day -= timedelta(days=1)
    return day


def _meeting_day(calendar: SchoolCalendar, decided: date, returning: date) -> date:
    """A school day soon after the decision and before the return (the decision day itself if none is)."""
    day = calendar.next_school_day(decided + timedelta(days=2))
    return day if day < returning else decided


def generate_rows(n: int, *, seed: int = 2026, calendar: SchoolCalendar | None = None,  # long: one realistic row, column by column
                  decided_from: date = date(2026, 11, 30)) -> list[dict]:
    """`n` valid referral rows as {heading: value}: decided by `decided_from`, returning after it."""
    rng = random.Random(seed)
    calendar = calendar or SchoolCalendar.load()
    rows = []
    for i in range(1, n + 1):
        # decided in the week up to `decided_from` (an as-of date: a later decision warns), returning 5 to 12
        # school days after it (so at most 16 school days after the decision: FAP20 stays quiet)
        # (each draw as before the dates moved, so a seed still gives the same pupils, schools and officers)
        decided = _school_day_on_or_before(calendar, decided_from - timedelta(days=rng.randint(0, 10) * 6 // 10))
        returning = decided_from
        for _ in range(5 + (rng.randint(5, 15) - 5) * 7 // 10):
            returning = calendar.next_school_day(returning + timedelta(days=1))
        year = rng.randint(1, 11)
        # a birthday that puts the pupil in `year` on the return date
        school_year = returning.year if returning.month >= 9 else returning.year - 1
        cohort = school_year - 5 - year
        born = date(cohort, 9, 1) + timedelta(days=rng.randint(0, 364))
        reason = rng.choice(["Alternative provision", "Direction off-site", "Fair Access Protocol", "Medical provision"])
        provision = {"Alternative provision": "Alternative provision", "Direction off-site": "Alternative provision",
                     "Medical provision": "Medical provision"}.get(reason, rng.choice(["School", "Alternative provision"]))
        school, domain = rng.choice(SCHOOLS)
        referring = rng.choice([s for s, _ in SCHOOLS if s != school])
        forename, surname = rng.choice(FORENAMES), rng.choice(SURNAMES)
        officer, officer_email = rng.choice(OFFICERS)
        ipa = provision == "Alternative provision"
        ipa_start = calendar.next_school_day(decided - timedelta(days=rng.randint(40, 200)))
        row = {
            "Referral ID": f"HAV-{i:05d}", "UPN": make_upn(rng), "Legal forename": forename, "Legal surname": surname,
            "Preferred name": rng.choice([None, None, None, NICKNAMES.get(forename)]), "Date of birth": born,
            "Year group": rng.choice([f"Year {year}", f"Y{year}", str(year)]),
            "SEN status": rng.choice(["No SEN", "No SEN", "SEN support", "EHCP"]),
            "Looked after child": rng.choice(["No", "No", "No", "Yes"]),
            "Social worker": rng.choice([None, "Dana Reid"]),
            "Parent/carer name": f"{rng.choice(['Mrs', 'Mr', 'Ms'])} {surname}",
            "Parent/carer email": rng.choice([None, f"{surname.lower().replace(chr(39), '')}.family@example.com"]),
            "Parent/carer phone": rng.choice([None, "07700 900" + f"{rng.randint(0, 999):03d}"]),
            "Reintegration reason": reason, "Returning via FAP": "Yes",
            "Current provision type": provision,
            "Current provision name": rng.choice(APS) if provision != "School" else referring,
            "Referring school": referring, "Receiving school": school,
            "Receiving school contact": rng.choice(["Ms J Patel", "Mr T Green", "Mrs A Osei"]),
            "Receiving school email": f"inclusion@{domain}",
            "IPA reference": f"IPA-{rng.randint(1000, 9999)}" if ipa else None,
            "IPA start date": ipa_start if ipa else None,
            "IPA end date": returning - timedelta(days=1) if ipa else None,
            "Decision date": decided, "Planned return date": returning,
            "Planning meeting date": rng.choice([None, _meeting_day(calendar, decided, returning)]),
            "Previous return date": None,
            "Key worker": rng.choice(["Mr D Harris (learning mentor)", "Ms K Boateng (pastoral lead)"]),
            "Buddy": rng.choice(["A Year 10 peer mentor", "Form buddy chosen by tutor"]),
            "Reasonable adjustments": "; ".join(rng.sample(ADJUSTMENTS, rng.randint(1, 3))),
            "Strengths and interests": rng.choice([None, "Football, drawing", "Enjoys science practicals"]),
            "Needs and triggers": rng.choice([None, "Loud corridors at changeover", "Unstructured time"]),
            "Additional support": rng.choice([None, "Weekly session with school counsellor"]),
            "Review frequency (weeks)": rng.choice([None, 2, 2, 3]),
            "Settling-in period (weeks)": rng.choice([None, 6, 8]),
            "Inclusions officer": officer, "Inclusions officer email": officer_email,
        }
        # drawn apart, so a seed gives the same pupils as before these columns existed
        extra = random.Random(seed * 100_003 + i)
        has_meeting = row["Planning meeting date"] is not None
        row["Planning meeting time"] = extra.choice(["10:00", "13:30", "15:45"]) if has_meeting else None
        row["Planning meeting venue"] = (extra.choice(["Receiving school, meeting room 1", "Online (Teams)",
                                                       "Havering Town Hall, Romford"]) if has_meeting else None)
        rows.append(row)
    return rows


def write_rows(path: str | Path, rows: list[dict], *, title_rows: list[str] = (), extra_columns: dict | None = None,
               sheet: str = "Referrals") -> Path:
    """Write rows as a referral workbook (xlsx) the way an officer's would look: title rows, then headings."""
    path = Path(path)
    headings = list(HEADINGS.values()) + list(extra_columns or {})
    with atomic_path(path) as tmp:
        wb = new_workbook(tmp, constant_memory=len(rows) > 2000)
        fmt = Formats(wb)
        ws = wb.add_worksheet(sheet)
        r = 0
        for line in title_rows:
            ws.write_string(r, 0, line, fmt.title)
            r += 1
        if title_rows:
            r += 1
        for c, h in enumerate(headings):
            ws.write_string(r, c, h, fmt.heading)
        for row in rows:
            r += 1
            for c, h in enumerate(headings):
                value = row.get(h, (extra_columns or {}).get(h))
                if value is not None:
                    write_value(ws, r, c, value, fmt)
        ws.freeze_panes(len(title_rows) + (1 if title_rows else 0) + 1, 0)
        wb.close()
    return path
