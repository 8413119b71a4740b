"""Data protection (SECURITY.md): outputs and the ledger owner-only; what reaches a terminal, a log or an error
file names referral IDs and cells, never a pupil's name, date of birth or UPN; spreadsheet text that could be a
formula is written as text in every workbook we write; templates are rendered in a sandbox; temporary files
never outlive a run, however it ends."""

from __future__ import annotations

import json
import os
import re
import stat
import tempfile
import zipfile
from datetime import date
from pathlib import Path

import docx
import openpyxl
import pytest
from click.testing import CliRunner
from lxml import etree

from pipeline.cli.main import main
from pipeline.core.config import Config
from pipeline.core.errors import TemplateError
from pipeline.write.examples import write_rows
from tests import corpus

AS_OF = "2026-11-30"
RISKY = ("=", "+", "-", "@", "\t", "\r")
NS = {"m": "http://schemas.openxmlformats.org/spreadsheetml/2006/main"}


def cli(*args):
    return CliRunner().invoke(main, [*map(str, args)])


def run_folders(outbox: Path) -> list[Path]:
    return sorted(p for p in outbox.iterdir() if p.is_dir()) if outbox.exists() else []


# ---------------------------------------------------------------- owner-only
@pytest.mark.parametrize("umask", [0o022, 0o000])
def test_every_output_and_the_ledger_are_readable_by_their_owner_only(tmp_path, umask):
    os.umask(umask)  # conftest puts the usual umask back afterwards
    path = corpus.valid_workbook(tmp_path, n=4)
    outbox = tmp_path / "outbox"
    config = tmp_path / "reintegrate.toml"
    config.write_text('[email]\nallowed_domains = ["sch.uk", "org.uk", "drapersacademy.com", "gov.uk"]\n', encoding="utf-8")
    assert cli("run", path, "--outbox", outbox, "--as-of", AS_OF, "--config", config).exit_code == 0
    assert cli("validate", path, "--outbox", outbox, "--as-of", AS_OF, "--config", config).exit_code == 0
    (run_dir, _) = run_folders(outbox)
    assert cli("send", run_dir, "--config", config).exit_code == 0  # .eml drafts in mail/
    written = [p for p in outbox.rglob("*")]
    assert {p.name for p in written} >= {"ledger.sqlite3", "summary.json", "validation-report.xlsx",
                                         "review-tracker.xlsx", "manifest.json", "plans", "letters", "mail"}
    assert len([p for p in written if p.suffix == ".docx"]) == 8
    assert len([p for p in written if p.suffix == ".eml"]) == 4
    for p in written:
        mode = stat.S_IMODE(p.stat().st_mode)
        assert mode & 0o077 == 0, f"{p.relative_to(outbox)} is {oct(mode)}"


def test_the_outbox_folder_a_run_creates_is_owner_only(tmp_path):
    outbox = tmp_path / "outbox"
    assert cli("validate", corpus.valid_workbook(tmp_path), "--outbox", outbox, "--as-of", AS_OF).exit_code == 0
    assert stat.S_IMODE(outbox.stat().st_mode) & 0o077 == 0


# ---------------------------------------------------------------- no personal data in messages and logs
PUPIL = {"Legal forename": "Xanthippe", "Legal surname": "Quetzal-Vorhees", "Preferred name": "Xanny",
         "Parent/carer name": "Mrs Ottoline Quetzal-Vorhees"}


def _personal_rows() -> tuple[list[dict], list[str]]:
    """Rows with a mistake in every personal field (and in others), and the strings that must not leak."""
    rows = corpus.rows(6)
    secrets = []
    for i, row in enumerate(rows):
        row.update({k: f"{v}{i}" for k, v in PUPIL.items()})
        secrets += [f"{v}{i}" for v in PUPIL.values()] + [row["UPN"], row["Date of birth"].strftime("%d/%m/%Y")]
    rows[0]["Date of birth"] = "31/02/2012"
    rows[1]["Date of birth"] = "14/03/12"
    rows[2]["Date of birth"] = "Fourteenth of Marchember"
    rows[3]["UPN"] = rows[3]["UPN"][:-1] + ("1" if rows[3]["UPN"][-1] != "1" else "2")  # wrong check letter
    rows[4]["UPN"] = "X" + rows[4]["UPN"]  # 14 characters
    rows[5]["Parent/carer email"] = "ottoline.quetzal-vorhees@@example"
    rows[5]["Parent/carer phone"] = "07700 QUETZAL"
    rows[5]["Legal surname"] = "Q" * 2500
    secrets += ["31/02/2012", "14/03/12", "Fourteenth of Marchember", rows[3]["UPN"], rows[4]["UPN"],
                "ottoline", "QUETZAL", "Q" * 50, "Marchember"]
    return rows, secrets


def test_terminal_output_names_rows_ids_and_cells_never_personal_data(tmp_path):
    rows, secrets = _personal_rows()
    path = write_rows(tmp_path / "referrals.xlsx", rows)
    outbox = tmp_path / "outbox"
    for command in ("validate", "run"):
        result = cli(command, path, "--outbox", outbox, "--as-of", AS_OF)
        assert result.exit_code == 1
        printed = result.stdout + result.stderr
        for secret in secrets:
            assert secret.lower() not in printed.lower(), secret
        # what it does say: the row, the Referral ID and the cell of each error
        assert re.search(r"row 2 \(HAV-00001\): .*\(cell F2, Date of birth\)", printed)
        assert re.search(r"row 5 \(HAV-00004\): the UPN.s check letter does not match its digits.*\(cell B5, UPN\)", printed)
    summary = json.loads((run_folders(outbox)[-1] / "summary.json").read_text(encoding="utf-8"))
    messages = " ".join(i["message"] for r in summary["referrals"] for i in r["issues"])
    for secret in secrets:
        assert secret.lower() not in messages.lower(), secret


def test_the_watchers_log_and_error_notes_carry_no_personal_data(tmp_path):
    from pipeline.watch import watch

    rows, secrets = _personal_rows()
    inbox, outbox = tmp_path / "inbox", tmp_path / "outbox"
    inbox.mkdir()
    write_rows(inbox / "referrals.xlsx", rows)
    corpus.password_protected(inbox)
    lines = []
    code = watch(Config(inbox=inbox, outbox=outbox), once=True, settle=0.0, grace=0.0, as_of=date(2026, 11, 30),
                 documents=False, log=lines.append)
    assert code == 2
    notes = [p.read_text(encoding="utf-8") for p in (inbox / "failed").glob("*.error.txt")]
    assert notes and all("password-protected" in n for n in notes)
    logged = "\n".join(lines + notes)
    for secret in secrets:
        assert secret.lower() not in logged.lower(), secret


# ---------------------------------------------------------------- formula-looking text stays text
def _sheet_cells(path: Path):
    """(sheet part, cell ref, text, has <f>, quote-prefixed) of every cell of every sheet in a workbook."""
    with zipfile.ZipFile(path) as zf:
        strings = []
        if "xl/sharedStrings.xml" in zf.namelist():
            root = etree.fromstring(zf.read("xl/sharedStrings.xml"))
            strings = ["".join(si.itertext()) for si in root.findall("m:si", NS)]
        styles = etree.fromstring(zf.read("xl/styles.xml"))
        xfs = styles.find("m:cellXfs", NS)
        quoted = [xf.get("quotePrefix") in ("1", "true") for xf in xfs]
        for name in zf.namelist():
            if not re.fullmatch(r"xl/worksheets/sheet\d+\.xml", name):
                continue
            for c in etree.fromstring(zf.read(name)).iter("{%s}c" % NS["m"]):
                kind, v = c.get("t"), c.find("m:v", NS)
                if kind == "s":
                    text = strings[int(v.text)]
                elif kind == "inlineStr":
                    text = "".join(c.find("m:is", NS).itertext())
                elif kind == "str":
                    text = v.text if v is not None else ""
                else:
                    text = None
                f = c.find("m:f", NS)
                yield name, c.get("r"), text, (f.text or "") if f is not None else None, quoted[int(c.get("s", 0))]


def test_formula_looking_text_is_text_in_every_workbook_we_write(tmp_path):
    path = corpus.risky_text(tmp_path)
    outbox = tmp_path / "outbox"
    result = cli("run", path, "--outbox", outbox, "--as-of", AS_OF)
    assert result.exit_code == 1  # one row has a UPN of '=1+1'
    (folder,) = run_folders(outbox)
    workbooks = [folder / "validation-report.xlsx", folder / "review-tracker.xlsx"]
    risky_seen = 0
    for workbook in workbooks:
        for part, ref, text, formula, quoted in _sheet_cells(workbook):
            # the only formulas are the Issues sheet's links to a cell of the report, made by us from a cell
            # reference: never text from the input
            assert formula is None or re.fullmatch(r"""HYPERLINK\("#'[^'"]+'![A-Z]{1,3}\d+","[A-Z]{1,3}\d+"\)""",
                                                    formula), f"{workbook.name} {part} {ref} is a formula: {formula}"
            if text and text.startswith(RISKY) and "calc" in text + "=1+1":
                risky_seen += 1
    assert risky_seen >= 12
    # and openpyxl, like Excel, reads the risky names back as the text we were given
    wb = openpyxl.load_workbook(folder / "review-tracker.xlsx")
    pupils = {c.value for c in wb["Reviews"]["B"]} | {c.value for row in wb["Reviews"].iter_rows() for c in row}
    assert any(isinstance(v, str) and v.startswith("=HYPERLINK") for v in pupils) or any(
        isinstance(v, str) and "=HYPERLINK" in v for v in pupils)


def test_formula_looking_data_cells_keep_a_quote_prefix_so_editing_keeps_them_text(tmp_path):
    path = corpus.risky_text(tmp_path)
    outbox = tmp_path / "outbox"
    cli("run", path, "--outbox", outbox, "--as-of", AS_OF)
    (folder,) = run_folders(outbox)
    for workbook in (folder / "validation-report.xlsx", folder / "review-tracker.xlsx"):
        unquoted = [(part, ref, text) for part, ref, text, _, quoted in _sheet_cells(workbook)
                    if text and text.startswith(RISKY) and not quoted and _is_data(workbook, ref)]
        assert unquoted == [], workbook.name


def _is_data(workbook: Path, ref: str) -> bool:
    """Data cells: every cell but the validation report's heading row (row 1 here), tested separately."""
    return not (workbook.name == "validation-report.xlsx" and re.fullmatch(r"[A-Z]+1", ref))


def test_formula_looking_headings_in_the_validation_report_keep_a_quote_prefix(tmp_path):
    path = corpus.risky_text(tmp_path)
    outbox = tmp_path / "outbox"
    cli("validate", path, "--outbox", outbox, "--as-of", AS_OF)
    (folder,) = run_folders(outbox)
    headings = [(ref, text, quoted) for _, ref, text, _, quoted in _sheet_cells(folder / "validation-report.xlsx")
                if text and text.startswith(RISKY) and re.fullmatch(r"[A-Z]+1", ref)]
    assert headings and all(quoted for _, _, quoted in headings)


def test_the_blank_template_workbook_has_no_formulas(tmp_path):
    target = tmp_path / "referrals-template.xlsx"
    assert cli("template", target).exit_code == 0
    assert not [ref for _, ref, _, formula, _ in _sheet_cells(target) if formula]


# ---------------------------------------------------------------- sandboxed templates
ATTACKS = [
    "{{ ''.__class__.__mro__[1].__subclasses__() }}",
    "{{ cycler.__init__.__globals__.os.system('touch PWNED') }}",
    "{{ self.__init__.__globals__.__builtins__.open('PWNED', 'w') }}",
    "{{ pupil.__class__.__base__.__subclasses__() }}",
    "{% for c in ''.__class__.__base__.__subclasses__() %}{{ c }}{% endfor %}",
    "{{ lipsum.__globals__['os'].popen('touch PWNED').read() }}",
]


def _context():
    from pipeline.write.context import build_context
    from pipeline.check.calendar import SchoolCalendar
    from pipeline.check.rules import RuleContext, check_sheet
    from pipeline.read.referrals import read_referrals

    path = corpus.valid_workbook(Path(tempfile.mkdtemp()), n=1)
    (result,) = check_sheet(read_referrals(path), RuleContext(SchoolCalendar.load(), date(2026, 11, 30)))
    return build_context(result.referral, result.reviews, run_id="20261130T000000000000Z-test",
                         generated_on=date(2026, 11, 30))


@pytest.mark.parametrize("attack", ATTACKS)
def test_a_tampered_word_template_cannot_run_code(tmp_path, attack, monkeypatch):
    from pipeline.write.render import compile_template

    monkeypatch.chdir(tmp_path)
    document = docx.Document()
    document.add_paragraph("Dear {{ pupil.greeting_name }},")
    document.add_paragraph(attack)
    document.save(tmp_path / "reintegration-plan.docx")
    with pytest.raises(TemplateError) as raised:
        compile_template(tmp_path / "reintegration-plan.docx").render(_context())
    assert str(raised.value).startswith("reintegration-plan.docx: ")
    assert not (tmp_path / "PWNED").exists()


@pytest.mark.parametrize("attack", ATTACKS)
def test_a_tampered_email_template_cannot_run_code(tmp_path, attack, monkeypatch):
    import jinja2
    from pipeline.deliver.template import load_email_template

    monkeypatch.chdir(tmp_path)
    (tmp_path / "templates" / "email").mkdir(parents=True)
    (tmp_path / "templates" / "email" / "plan-email.txt").write_text(f"Hello\n{attack}\n", encoding="utf-8")
    template = load_email_template(tmp_path / "templates")
    with pytest.raises(jinja2.exceptions.SecurityError):
        template.render(**_context())
    assert not (tmp_path / "PWNED").exists()


def test_a_tampered_template_in_a_run_is_one_sentence_and_exit_2(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    templates = tmp_path / "officer-templates"
    templates.mkdir()
    document = docx.Document()
    document.add_paragraph(ATTACKS[1])
    document.save(templates / "reintegration-plan.docx")
    (tmp_path / "reintegrate.toml").write_text('templates_dir = "officer-templates"\n', encoding="utf-8")
    path = corpus.valid_workbook(tmp_path, n=1)
    result = cli("run", path, "--outbox", tmp_path / "outbox", "--as-of", AS_OF, "--config", tmp_path / "reintegrate.toml")
    assert result.exit_code == 2
    assert result.stderr.startswith("Error: reintegration-plan.docx: ") and result.stderr.count("\n") == 1
    assert "Traceback" not in result.output
    assert not (tmp_path / "PWNED").exists()


def test_a_template_edited_between_runs_in_one_process_is_used(tmp_path):
    import shutil

    from pipeline.write.render import default_templates_dir
    from pipeline.run import process_file

    templates = tmp_path / "templates"
    shutil.copytree(default_templates_dir(), templates)
    config = Config(outbox=tmp_path / "outbox", templates_dir=templates)
    path = corpus.valid_workbook(tmp_path, n=1)
    process_file(path, config=config, as_of=date(2026, 11, 30))
    document = docx.Document()
    document.add_paragraph("Version two for {{ referral_id }}")
    document.save(templates / "reintegration-plan.docx")
    second = process_file(path, config=config, as_of=date(2026, 11, 30))
    (plan,) = (second.run_dir / "plans").iterdir()
    assert "Version two for HAV-00001" in "\n".join(p.text for p in docx.Document(plan).paragraphs)


# ---------------------------------------------------------------- temporary files
def _leftovers(*folders: Path) -> list[Path]:
    return [p for folder in folders if folder.exists() for p in folder.rglob("*")
            if p.name.startswith(".tmp-") or p.name.startswith("tmp")]


@pytest.fixture
def private_tmp(tmp_path, monkeypatch) -> Path:
    """The process's temporary folder, fresh, so anything left in it is ours."""
    folder = tmp_path / "tmp"
    folder.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(folder))
    monkeypatch.setenv("TMPDIR", str(folder))
    return folder


def test_no_temporary_file_survives_a_successful_run(tmp_path, private_tmp):
    path = corpus.valid_workbook(tmp_path, n=3)
    outbox = tmp_path / "outbox"
    assert cli("run", path, "--outbox", outbox, "--as-of", AS_OF).exit_code == 0
    assert _leftovers(outbox) == [] and list(private_tmp.iterdir()) == []


@pytest.mark.parametrize("build", [corpus.zip_bomb, corpus.truncated, corpus.password_protected, corpus.csv_long_line],
                         ids=lambda b: b.__name__)
def test_no_temporary_file_survives_an_unreadable_input(tmp_path, private_tmp, build):
    folder = tmp_path / "in"
    folder.mkdir()
    outbox = tmp_path / "outbox"
    assert cli("run", build(folder), "--outbox", outbox, "--as-of", AS_OF).exit_code == 2
    assert _leftovers(outbox) == [] and list(private_tmp.iterdir()) == []


@pytest.mark.parametrize("failure", [KeyboardInterrupt, OSError, MemoryError])
@pytest.mark.parametrize("where", ["render", "report", "tracker"])
def test_no_temporary_file_survives_a_run_that_fails_half_way(tmp_path, private_tmp, monkeypatch, failure, where):
    """Interrupt the run while it writes (Ctrl+C, a full disk, out of memory) at each kind of file."""
    import xlsxwriter

    from pipeline.write import render

    calls = {"n": 0}
    if where == "render":
        real = render.CompiledTemplate.render

        def broken(self, context):
            calls["n"] += 1
            if calls["n"] == 3:
                raise failure("interrupted")
            return real(self, context)

        monkeypatch.setattr(render.CompiledTemplate, "render", broken)
    else:
        real_close = xlsxwriter.Workbook.close
        target = "validation-report" if where == "report" else "review-tracker"

        def broken_close(self):
            if _is_target(self, target):
                real_close(self)  # the temporary file is really there...
                raise failure("interrupted")  # ...when the failure strikes
            return real_close(self)

        monkeypatch.setattr(xlsxwriter.Workbook, "close", broken_close)
    path = corpus.valid_workbook(tmp_path, n=3)
    outbox = tmp_path / "outbox"
    with pytest.raises(failure):
        from pipeline.run import process_file

        process_file(path, config=Config(outbox=outbox), as_of=date(2026, 11, 30))
    assert _leftovers(outbox) == [] and list(private_tmp.iterdir()) == []


def _is_target(workbook, target: str) -> bool:
    names = [ws.name for ws in workbook.worksheets()]
    return ("Issues" in names) if target == "validation-report" else ("Reviews" in names)
