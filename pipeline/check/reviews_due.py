"""Which reviews are overdue on a day: the one judgement `reviews` (reading a tracker) and the term register
(reading the ledger) both make. Minimum expectations: reviews through the settling-in period are held."""

from __future__ import annotations

from datetime import date
from typing import Sequence

from schemas.tracker import HELD, MISSED, SCHEDULED


def overdue_flags(reviews: Sequence[tuple[date, str]], as_of: date) -> list[bool]:
    """For each (date, status): overdue when its day has passed with nothing recorded (still Scheduled), or
    when it was Missed and no later review has been held (the review is still owed)."""
    held = [when for when, status in reviews if status == HELD]
    return [when < as_of and (status == SCHEDULED or (status == MISSED and not any(h > when for h in held)))
            for when, status in reviews]
