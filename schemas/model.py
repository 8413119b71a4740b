"""The accepted referral as the rest of the pipeline sees it: plain, typed, normalised."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date


def referral_key(referral_id: str) -> str:
    """Referral IDs compare case-insensitively everywhere: `l4` is `L4`."""
    return str(referral_id).strip().casefold()


@dataclass(frozen=True)
class Referral:
    referral_id: str
    upn: str
    legal_forename: str
    legal_surname: str
    date_of_birth: date
    year_group: str  # "R" or "1".."11"
    sen_status: str  # "No SEN" | "SEN support" | "EHCP"
    looked_after_child: bool
    parent_carer_name: str
    reintegration_reason: str  # "Medical provision" | "Alternative provision" | "Direction off-site" | "Fair Access Protocol"
    returning_via_fap: bool
    current_provision_type: str  # "Alternative provision" | "School" | "Medical provision"
    current_provision_name: str
    referring_school: str
    receiving_school: str
    receiving_school_contact: str
    receiving_school_email: str
    decision_date: date
    planned_return_date: date
    key_worker: str
    buddy: str
    reasonable_adjustments: tuple[str, ...]
    inclusions_officer: str
    inclusions_officer_email: str
    preferred_name: str | None = None
    social_worker: str | None = None
    parent_carer_email: str | None = None
    parent_carer_phone: str | None = None
    ipa_reference: str | None = None
    ipa_start_date: date | None = None
    ipa_end_date: date | None = None
    planning_meeting_date: date | None = None
    planning_meeting_time: str | None = None  # as typed, or HH:MM from an Excel time
    planning_meeting_venue: str | None = None
    previous_return_date: date | None = None
    strengths_and_interests: str | None = None
    needs_and_triggers: str | None = None
    additional_support: str | None = None
    review_frequency_weeks: int = 2
    settling_in_period_weeks: int = 6
    # set by rule 3.9, not read from the sheet: the return it judged the direction against, and where that
    # return is recorded (the row's Previous return date, or an earlier run's referral in the ledger)
    last_return_date: date | None = None
    last_return_source: str | None = None
    # the spreadsheet row this came from, for messages
    row: int | None = field(default=None, compare=False)

    @property
    def greeting_name(self) -> str:
        return self.preferred_name or self.legal_forename

    @property
    def shown_name(self) -> str:
        """How the review tracker and the term register name the pupil."""
        return f"{self.greeting_name} {self.legal_surname}"

    @property
    def from_ap(self) -> bool:
        """Clause 3.6 vs 3.7: which letter this pupil's placement gets. A medical provision is an alternative
        provision in the DfE's terms, so it gets the AP's invitation too."""
        return self.current_provision_type != "School"
