"""`reintegrate init`: the working folder an officer starts from, and that nothing is ever overwritten."""

from __future__ import annotations

import os
import re
import stat
import tomllib
from pathlib import Path

import pytest
from click.testing import CliRunner

from pipeline.cli.main import main
from pipeline.core.config import load_config
from schemas.config import KEYS
from pipeline.deliver.settings import EmailSettings
from pipeline.write.render import check_templates, default_templates_dir
from pipeline.cli.workspace import (CONFIG_TEXT, EXAMPLE_NAME, HOW_TO_TEXT, TEMPLATE_FILES, InitError, _create,
                                example_workbook, init_workspace)

ROOT = Path(__file__).resolve().parent.parent
EXPECTED = {"inbox", "outbox", "reintegrate.toml", "HOW-TO.txt", f"examples/{EXAMPLE_NAME}",
            *(f"templates/{name}" for name in TEMPLATE_FILES)}


def test_init_makes_a_ready_working_folder(tmp_path):
    made = init_workspace(tmp_path / "Inclusions")
    folder = tmp_path / "Inclusions"
    assert {p.as_posix() for p in made.created} == EXPECTED and made.kept == []
    assert (folder / "inbox").is_dir() and (folder / "outbox").is_dir()
    assert stat.S_IMODE((folder / "outbox").stat().st_mode) == 0o700  # run folders hold personal data
    for name in TEMPLATE_FILES:  # exact copies of the shipped templates, ready to customise
        assert (folder / "templates" / name).read_bytes() == (default_templates_dir() / name).read_bytes()
    assert (folder / "examples" / EXAMPLE_NAME).read_bytes() == (ROOT / "examples" / EXAMPLE_NAME).read_bytes()
    assert check_templates(folder / "templates") == []


def test_the_config_is_read_as_it_says(tmp_path):
    init_workspace(tmp_path)
    config = load_config(tmp_path / "reintegrate.toml")
    assert (config.outbox, config.inbox, config.templates_dir) == (tmp_path / "outbox", tmp_path / "inbox",
                                                                   tmp_path / "templates")
    assert (config.pdf, config.workers, config.term_dates, config.ledger) == (False, None, None, None)
    settings = EmailSettings.from_config(config.email, env={})
    assert (settings.transport, settings.allowed_domains, settings.attach_pdf) == (
        "files", ("havering.gov.uk", "sch.uk"), False)


def test_the_config_explains_every_setting_and_each_switched_on_line_is_valid():
    for key in set(KEYS) - {"email"}:
        assert re.search(rf"^(# )?{key} = ", CONFIG_TEXT, re.M), key
    email_part = CONFIG_TEXT.split("[email]", 1)[1]
    for key in EmailSettings.KEYS:
        assert re.search(rf"^(# )?{key} = ", email_part, re.M), key
    # switch every commented setting on: still a valid config (the values shown are real examples)
    on = "\n".join(re.sub(r"^# (?=[a-z_]+ = )", "", line) for line in CONFIG_TEXT.splitlines())
    data = tomllib.loads(on)
    assert set(data) - {"email"} == set(KEYS) - {"email"}
    assert data["email"].pop("ca_file") == "council-ca.pem"  # IT's file: it must exist to be accepted
    EmailSettings.from_config({**data["email"], "transport": "smtp"}, env={})


def test_the_how_to_is_one_page_of_real_commands():
    lines = HOW_TO_TEXT.splitlines()
    assert len(lines) <= 60 and max(map(len, lines)) <= 80
    commands = re.findall(r"\breintegrate ([a-z-]+)", HOW_TO_TEXT)
    assert set(commands) >= {"run", "template", "validate", "send", "reviews", "check-templates"}
    assert set(commands) <= set(main.commands)
    for text in (CONFIG_TEXT, HOW_TO_TEXT):
        assert max(map(len, text.splitlines())) <= 80 and text.isascii()


def test_text_files_have_windows_line_ends_for_notepad(tmp_path):
    init_workspace(tmp_path)
    for name in ("HOW-TO.txt", "reintegrate.toml"):
        data = (tmp_path / name).read_bytes()
        assert data.count(b"\r\n") == data.count(b"\n") > 10


def test_init_never_overwrites_and_adds_only_what_is_missing(tmp_path):
    init_workspace(tmp_path)
    (tmp_path / "reintegrate.toml").write_text('outbox = "elsewhere"\n')
    (tmp_path / "templates" / "reintegration-plan.docx").write_bytes(b"my edited plan")
    (tmp_path / "templates" / "meeting-request.docx").unlink()  # deleted by mistake
    (tmp_path / "outbox" / "keep.txt").write_text("a run")
    made = init_workspace(tmp_path)
    assert [p.as_posix() for p in made.created] == ["templates/meeting-request.docx"]
    assert {p.as_posix() for p in made.kept} == EXPECTED - {"templates/meeting-request.docx"}
    assert (tmp_path / "reintegrate.toml").read_text() == 'outbox = "elsewhere"\n'
    assert (tmp_path / "templates" / "reintegration-plan.docx").read_bytes() == b"my edited plan"
    assert (tmp_path / "outbox" / "keep.txt").read_text() == "a run"
    assert not [p for p in tmp_path.rglob(".tmp-*")]


def test_create_is_exclusive(tmp_path):
    target = tmp_path / "a.txt"
    assert _create(target, b"first") is True
    assert _create(target, b"second") is False
    assert target.read_bytes() == b"first" and sorted(os.listdir(tmp_path)) == ["a.txt"]


def test_a_file_where_the_folder_should_be_is_a_clear_error(tmp_path):
    (tmp_path / "Inclusions").write_text("oops")
    with pytest.raises(InitError, match="is a file, not a folder"):
        init_workspace(tmp_path / "Inclusions")
    (tmp_path / "other").mkdir()
    (tmp_path / "other" / "outbox").write_text("not a folder")
    with pytest.raises(InitError, match="outbox exists but is a file"):
        init_workspace(tmp_path / "other")


def test_the_cli_says_what_it_made_and_what_to_do_next(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    runner = CliRunner()
    result = runner.invoke(main, ["init", "Inclusions"])
    assert result.exit_code == 0, result.output
    assert "created  templates/reintegration-plan.docx" in result.stdout
    assert "Next: cd Inclusions, then read HOW-TO.txt" in result.stdout
    assert result.stdout.rstrip().endswith("Working folder ready: Inclusions (9 created, 0 kept as they were).")
    again = runner.invoke(main, ["init", "Inclusions", "--quiet"])
    assert again.exit_code == 0 and again.stdout == \
        "Working folder ready: Inclusions (0 created, 9 kept as they were).\n"
    (tmp_path / "afile").write_text("x")
    bad = runner.invoke(main, ["init", "afile"])
    assert bad.exit_code == 2 and "'afile' is a file" in bad.stderr and "Traceback" not in bad.output


def test_the_guide_ships_in_the_wheel_and_docs_shows_it(tmp_path):
    """An installed tool has no source tree: the guide travels inside the package (pipeline/_docs)."""
    import subprocess
    import sys
    import zipfile

    from click.testing import CliRunner

    text = (ROOT / "pyproject.toml").read_text()
    assert '"docs" = "pipeline/_docs"' in text
    subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q", "-w",
                    str(tmp_path), str(ROOT)], check=True, capture_output=True, timeout=300)
    (wheel,) = tmp_path.glob("reintegrate-*.whl")
    names = zipfile.ZipFile(wheel).namelist()
    assert "pipeline/_docs/getting-started.md" in names and "pipeline/_docs/images/plan-page-1.png" in names
    listing = CliRunner().invoke(main, ["docs"])
    assert listing.exit_code == 0 and "getting-started" in listing.output and "Getting started" in listing.output
    page = CliRunner().invoke(main, ["docs", "getting-started"])
    assert page.exit_code == 0 and page.output.startswith("# Getting started")


def test_the_example_ships_in_the_wheel():
    text = (ROOT / "pyproject.toml").read_text()
    assert f'"examples/{EXAMPLE_NAME}" = "pipeline/_examples/{EXAMPLE_NAME}"' in text
    assert example_workbook() == ROOT / "examples" / EXAMPLE_NAME
