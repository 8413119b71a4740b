"""The term register: every referral of the term on one sheet, rebuilt from the ledger after each command.

    from pipeline.register import rebuild_register, read_term
    rebuild_register(config)                      # outbox/term-register.xlsx, as of today
    view = read_term(config, as_of=date(2027, 1, 11))   # what `reintegrate status` shows

`view` holds the rows (`TermView`); `workbook` writes them. docs/term-register.md is the manager's guide.
"""

from __future__ import annotations

import sqlite3
from datetime import date
from pathlib import Path

from pipeline.check.calendar import SchoolCalendar
from pipeline.core.config import Config
from pipeline.core.errors import ConfigError, ReintegrateError
from pipeline.core.ledger import Ledger
from pipeline.register.view import TermView, term_view
from pipeline.register.workbook import NAME, write_register

__all__ = ["NAME", "TermView", "read_term", "rebuild_register", "register_path", "update_register"]


def register_path(config: Config) -> Path:
    return Path(config.outbox) / NAME


def read_term(config: Config, as_of: date | None = None) -> TermView | None:
    """The term on `as_of` (today by default) from the ledger; None when no run has made a ledger yet."""
    if not config.ledger_path.is_file():
        return None
    try:
        calendar = SchoolCalendar.load(config.term_dates)
    except ConfigError:
        calendar = None  # only needed for runs recorded before the ledger kept the 3.9 date
    with Ledger(config.ledger_path) as ledger:
        return term_view(ledger, as_of or date.today(), calendar, Path(config.outbox))


def rebuild_register(config: Config, as_of: date | None = None, view: TermView | None = None) -> Path | None:
    """Write `outbox/term-register.xlsx` afresh (atomically) from `view`, else from the ledger on `as_of`; None
    when there is no ledger yet."""
    view = view or read_term(config, as_of)
    if view is None:
        return None
    return write_register(register_path(config), view)


def update_register(config: Config, as_of: date | None = None,
                    view: TermView | None = None) -> tuple[Path | None, str | None]:
    """`rebuild_register` after a command has done its own work: a register that cannot be written (a full
    disk, the file open in Excel on Windows) must not undo or hide that work, so the problem comes back as a
    sentence, (None, sentence); else (the register's path or None when there is no ledger, None)."""
    try:
        return rebuild_register(config, as_of, view), None
    except (OSError, sqlite3.Error, ReintegrateError) as exc:
        reason = getattr(exc, "strerror", None) or str(exc)
        return None, (f"the term register ({register_path(config)}) could not be updated ({reason}); it is made "
                      "again after the next command, and nothing else was affected")
