"""The project's exceptions and the Issue record every stage reports problems with.

The CLI turns `InputError` into exit code 2 with its one-sentence message; nothing here ever
carries a pupil's name, date of birth or UPN in its message unless the officer needs it to find the cell.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from enum import IntEnum

ERROR = "error"
WARNING = "warning"


class ExitCode(IntEnum):
    """What every command exits with (docs/design.md, "Exit codes"). Results say which applies (a run's
    `exit_code`, a send report's, a review report's, a watched file's outcome); the CLI exits with the worst."""

    OK = 0  # every row accepted (warnings allowed), everything sent, no review overdue
    ACT = 1  # something for the officer to act on: a row rejected, a review overdue, a message not surely sent
    UNREADABLE = 2  # a usage error, or an input or config that cannot be used at all: one sentence on stderr


class ReintegrateError(Exception):
    """Base class: a problem the officer can act on, never shown as a traceback."""


class InputError(ReintegrateError):
    """A spreadsheet that cannot be read at all (exit code 2)."""

    def __init__(self, path, reason: str):
        self.path = str(path)
        self.reason = reason
        super().__init__(f"{_name(path)}: {reason}")


class ConfigError(ReintegrateError):
    """A config file or term-dates file that is wrong (exit code 2)."""


class MissingPassword(ConfigError):
    """An SMTP username is set but the password's environment variable is empty: nothing is sent."""


class TemplateError(ReintegrateError):
    """A Word template that cannot be compiled or rendered: names the template and the placeholder."""


class CalendarError(ReintegrateError):
    """A date a rule needs lies outside the configured school calendar."""


def _name(path) -> str:
    from pathlib import Path

    return Path(str(path)).name


@dataclass(frozen=True)
class Issue:
    """One problem found in the input.

    `column` is the heading as docs/referral-workbook.md names it, whatever the file calls it; `cell` is the file's own reference
    (e.g. "T7"); `row` is the spreadsheet's own row number. File-level issues have no row or cell.
    """

    severity: str
    rule: str
    message: str
    column: str | None = None
    cell: str | None = None
    row: int | None = None
    value: str | None = None

    @property
    def is_error(self) -> bool:
        return self.severity == ERROR

    def as_dict(self) -> dict:
        return asdict(self)
