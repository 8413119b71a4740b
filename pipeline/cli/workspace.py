"""`reintegrate init [DIR]`: a ready working folder for an officer, and nothing ever overwritten.

Used as a library::

    from pipeline.cli.workspace import init_workspace

    made = init_workspace("Inclusions")
    for path in made.created:
        print("created", path)
    for path in made.kept:
        print("kept (already there)", path)

The folder gets

    inbox/                  spreadsheets for `reintegrate watch`
    outbox/                 run folders (owner-only, like everything a run writes)
    templates/              copies of the shipped Word and email templates, to customise
    examples/referrals-spring-2027.xlsx   the made-up example workbook the README and every --help use
    reintegrate.toml        the settings, every one explained in a comment, pointing at the folders above
    HOW-TO.txt              one page: what is here and the commands of a term, in order

A file that already exists is kept as it is (reported in `InitResult.kept`): running `init` again on a folder in
use only adds what is missing, for example a template deleted by mistake. Each file is created exclusively
(written to a temporary name, then linked into place only if the name is free), so even two `init`s at once
never overwrite anything.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from pipeline.core import files
from pipeline.core.errors import ReintegrateError

EXAMPLE_NAME = "referrals-spring-2027.xlsx"
TEMPLATE_FILES = ("reintegration-plan.docx", "meeting-invitation.docx", "meeting-request.docx",
                  "email/plan-email.txt")

# Windows line ends: the officers open these in Notepad.
CONFIG_TEXT = """\
# reintegrate.toml: the settings for this folder (made by `reintegrate init`).
#
# reintegrate reads this file when you run it from this folder (from anywhere
# else, add --config and this file's path). A line starting with # is a note
# and is ignored: to switch a setting on, delete the "# " in front of it.
# Text goes in "double quotes"; true, false and numbers do not. Folder names
# are relative to this folder. If a setting is wrong, every command says which
# one and stops.

# Where each run writes its folder of plans, letters, tracker and reports:
# outbox/<run id>/
outbox = "outbox"

# The folder `reintegrate watch` takes referral spreadsheets from.
inbox = "inbox"

# Your copies of the Word and email templates. Edit them in Word, then run
# `reintegrate check-templates`. A template missing here comes from the
# shipped set.
templates_dir = "templates"

# true: also save a PDF copy beside each plan and letter, as
# `reintegrate run --pdf` does. LibreOffice must be installed
# (https://www.libreoffice.org/download/).
# pdf = false

# How many documents are written at once. Default: chosen from the computer.
# workers = 2

# The school term dates. Default: Havering's, shipped with reintegrate.
# term_dates = "term-dates.toml"

# The record of runs, accepted referrals (for clause 3.9) and emails sent.
# Default: ledger.sqlite3 in the outbox. Keep it on this computer's own disk
# when the outbox is on a network drive.
# ledger = "outbox/ledger.sqlite3"

[email]
# How `reintegrate send` sends:
#   "files": each message is saved in outbox/<run id>/mail/ as a draft
#            (<Referral ID>.eml) that Outlook opens ready to check and send.
#            Nothing leaves this computer until you press Send in Outlook.
#   "smtp":  sent straight away through the mail server set below.
transport = "files"

# Only addresses in these domains, or under them, are ever written to:
# "sch.uk" allows "brookfield.sch.uk". Mail to anyone else is held back.
allowed_domains = ["havering.gov.uk", "sch.uk"]

# The address the messages come from (needed for "smtp").
sender = "inclusions@havering.gov.uk"

# true: also attach the PDF copies of the plan and the letter (see pdf).
attach_pdf = false

# --- The mail server, for transport = "smtp" (ask IT for these) ---
# host = "smtp.example.org"
# port = 587
# security = "starttls"      # "starttls", "ssl" or "none"
# username = "inclusions"    # the password is never written here: IT sets
#                            # the REINTEGRATE_SMTP_PASSWORD variable
# ca_file = "council-ca.pem" # the council's own certificate authority,
#                            # if IT gives one (a PEM file beside this)
# timeout = 15               # seconds to wait for the server
# max_attempts = 3           # tries per message when the server is busy
# retry_delay = 2            # seconds before trying again
# retry_deadline = 45        # seconds without progress, then stop (max 55)
"""

HOW_TO_TEXT = """\
HOW TO USE THIS FOLDER             reintegrate, for Havering's Inclusions Team
==============================================================================
Open a command prompt in this folder (in File Explorer, click the address
bar, type cmd and press Enter) and type the commands below. Help on any
command: reintegrate run --help (or validate, send, reviews, watch...).

WHAT IS HERE
  inbox/            save referral spreadsheets here when `reintegrate watch`
                    is running
  outbox/           each run makes a folder here: plans, letters, review
                    tracker, validation report. Personal data: keep private.
  templates/        your copies of the Word and email templates
  examples/         a workbook of made-up referrals to practise on
  reintegrate.toml  the settings (open it in Notepad; each one is explained)

1. TRY IT ON THE EXAMPLE
     reintegrate run examples/referrals-spring-2027.xlsx --as-of 2026-11-30
   It lists the rows with mistakes (made on purpose) and the run folder.

2. MAKE A REFERRAL WORKBOOK
     reintegrate template referrals.xlsx
   Open referrals.xlsx in Excel: one row per pupil from row 2, choose from
   the drop-down lists, dates as 03/09/2026. Save and close it.

3. CHECK IT: every mistake is listed with its cell (e.g. cell T7)
     reintegrate validate referrals.xlsx
   Fix those cells (the run folder's validation-report.xlsx highlights
   them), save, and check again until it says 0 rejected.

4. MAKE THE PLANS AND LETTERS (add --pdf for PDF copies too)
     reintegrate run referrals.xlsx
   The summary at the end says where everything is.

5. EMAIL THEM: first see who gets what, then write Outlook drafts
     reintegrate send outbox --dry-run
     reintegrate send outbox
   (outbox means its newest run folder.) The drafts are in that folder's
   mail folder: open each and press Send. Each school gets each referral
   once: sending again after a new run sends only what is new or changed.

6. RECORD THE REVIEWS in outbox/<run id>/review-tracker.xlsx, then
     reintegrate reviews outbox

7. SEE THE WHOLE TERM: outbox/term-register.xlsx (one row per referral,
   kept up to date by every command), or on the screen:
     reintegrate status

After editing a template in Word:   reintegrate check-templates
Exit codes (for scripts): 0 all fine; 1 something to act on (rows rejected,
reviews overdue, mail not sent); 2 a file or setting could not be used.
The full guide ships with reintegrate: `reintegrate docs` says where it is
and lists its pages; `reintegrate docs getting-started` shows the first.
"""


class InitError(ReintegrateError):
    """The working folder cannot be made (the name is a file, no permission...)."""


@dataclass
class InitResult:
    folder: Path
    created: list[Path] = field(default_factory=list)  # relative to `folder`; folders end with "/" when shown
    kept: list[Path] = field(default_factory=list)  # already there, left exactly as they were


def example_workbook() -> Path | None:
    """The shipped example workbook: `examples/` in a checkout, else the copy installed with the package."""
    from pipeline.core.resources import shipped

    return shipped(f"examples/{EXAMPLE_NAME}")


def _crlf(text: str) -> bytes:
    return text.replace("\r\n", "\n").replace("\n", "\r\n").encode("utf-8")


def _create(path: Path, data: bytes) -> bool:
    """Write `path` only if it does not exist; True when written. Never a half-written file in its place.
    Readable as the officer's other files are (the umask decides): these are the team's to share."""
    if path.exists() or path.is_symlink():
        return False
    return files.write_bytes(path, data, mode=0o666, replace=False)


def _folder(root: Path, name: str, private: bool, result: InitResult) -> None:
    path = root / name
    if path.is_dir():
        result.kept.append(Path(name))
        return
    try:
        if private:
            files.make_dir(path)
        else:
            path.mkdir(parents=True)
    except FileExistsError:
        raise InitError(f"{path} exists but is a file, not a folder: rename or move it, then run init again") from None
    result.created.append(Path(name))


def init_workspace(folder: str | Path = ".") -> InitResult:
    """Make (or complete) a working folder; see the module docstring. Raises InitError when it cannot."""
    from pipeline.write.render import default_templates_dir

    root = Path(folder)
    if root.exists() and not root.is_dir():
        raise InitError(f"{root} is a file, not a folder: choose another name for the working folder")
    try:
        root.mkdir(parents=True, exist_ok=True)
        result = InitResult(root)
        _folder(root, "inbox", private=False, result=result)  # colleagues may save referrals into it
        _folder(root, "outbox", private=True, result=result)  # personal data: owner only, like every run
        wanted: list[tuple[str, bytes]] = []
        shipped = default_templates_dir()
        for name in TEMPLATE_FILES:
            source = shipped / name
            if source.is_file():
                wanted.append((f"templates/{name}", source.read_bytes()))
        example = example_workbook()
        if example is not None:
            wanted.append((f"examples/{EXAMPLE_NAME}", example.read_bytes()))
        wanted.append(("reintegrate.toml", _crlf(CONFIG_TEXT)))
        wanted.append(("HOW-TO.txt", _crlf(HOW_TO_TEXT)))
        for name, data in wanted:
            target = root / name
            if target.exists() and not target.is_file():
                raise InitError(f"{target} exists but is not a file: rename or move it, then run init again")
            (result.created if _create(target, data) else result.kept).append(Path(name))
    except PermissionError as exc:
        raise InitError(f"{exc.filename or root}: permission denied; choose a folder you can write to") from None
    except InitError:
        raise
    except OSError as exc:
        raise InitError(f"{exc.filename or root}: {exc.strerror or exc}") from None
    return result
