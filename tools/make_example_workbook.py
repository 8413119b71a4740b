"""Regenerate the shipped example workbook `examples/referrals-spring-2027.xlsx`.

24 made-up pupils returning in the spring term 2027, with title rows above the headings, an extra column the
tool does not know, and a few deliberate mistakes so an officer can see what the validation report shows:

| Referral ID | mistake                                   | rule      |
|-------------|-------------------------------------------|-----------|
| HAV-00003   | UPN check letter wrong                    | schema    |
| HAV-00005   | Returning via FAP = No                    | 3.1       |
| HAV-00008   | AP placement without an IPA end date      | 3.8       |
| HAV-00011   | direction off-site in the protected term  | 3.9       |
| HAV-00013   | the same Referral ID on two rows          | duplicate |
| HAV-00016   | impossible date of birth 31/02/2013       | schema    |
| HAV-00019   | blank Buddy                               | ME        |
| HAV-00021   | decision date after the planned return    | 3.4       |
| HAV-00023   | return 30 school days after the decision  | FAP20 (warning only) |
| HAV-00024   | year group inconsistent with date of birth | schema (warning only) |
"""

from datetime import date
from pathlib import Path

from pipeline.write.examples import generate_rows, write_rows

OUT = Path(__file__).resolve().parent.parent / "examples" / "referrals-spring-2027.xlsx"
AS_OF = date(2026, 11, 30)  # the README's `reintegrate run ... --as-of 2026-11-30`


def main() -> None:
    rows = generate_rows(24, seed=27, decided_from=AS_OF)  # decided by the README's --as-of date
    by_id = {r["Referral ID"]: r for r in rows}
    upn = by_id["HAV-00003"]["UPN"]
    by_id["HAV-00003"]["UPN"] = ("A" if upn[0] != "A" else "B") + upn[1:]
    by_id["HAV-00005"]["Returning via FAP"] = "No"
    r = by_id["HAV-00008"]
    r.update({"Reintegration reason": "Alternative provision", "Current provision type": "Alternative provision",
              "Current provision name": "Olive Academy Havering", "IPA reference": "IPA-5521",
              "IPA start date": date(2026, 9, 14), "IPA end date": None})
    r = by_id["HAV-00011"]
    r.update({"Reintegration reason": "Direction off-site", "Current provision type": "Alternative provision",
              "Current provision name": "Koala Centre", "IPA reference": "IPA-7310",
              "Previous return date": date(2026, 9, 3), "IPA start date": date(2026, 10, 5),
              "IPA end date": date(2027, 1, 8)})
    by_id["HAV-00014"]["Referral ID"] = "HAV-00013"
    by_id["HAV-00016"]["Date of birth"] = "31/02/2013"
    by_id["HAV-00019"]["Buddy"] = None
    r = by_id["HAV-00021"]
    r["Decision date"] = date(2027, 1, 20)
    r["Planned return date"] = date(2027, 1, 11)
    r["Planning meeting date"] = None
    r = by_id["HAV-00023"]
    r["Decision date"] = AS_OF
    r["Planned return date"] = date(2027, 1, 25)
    r["Planning meeting date"] = date(2027, 1, 12)
    if r.get("IPA end date"):
        r["IPA end date"] = date(2027, 1, 22)
    r = by_id["HAV-00024"]
    r["Year group"] = "Year 3" if r["Year group"] not in ("3", "Y3", "Year 3") else "Year 5"
    for row in rows:
        row["Internal notes"] = "checked by SJ" if row["Referral ID"].endswith("2") else None
    write_rows(OUT, rows, title_rows=["London Borough of Havering – Inclusions Team",
                                      "Reintegration referrals – spring term 2027 (OFFICIAL-SENSITIVE)"],
               extra_columns={"Internal notes": None})
    print(f"wrote {OUT}")


if __name__ == "__main__":
    main()
