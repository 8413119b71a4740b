"""The README's first screen and its commands: the Quick start block CI runs, the example command run for real
with the results the README promises, and the links into docs/ (their targets are checked by test_docs)."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
from pathlib import Path

from pipeline.cli.main import main

ROOT = Path(__file__).resolve().parent.parent
README = (ROOT / "README.md").read_text(encoding="utf-8")
FIRST_COMMAND = "python3 -m pip install . && reintegrate run examples/referrals-spring-2027.xlsx --as-of 2026-11-30"
TEST_COMMAND = 'python3 -m pip install ".[test]" && python3 -m pytest'


def quick_start_blocks() -> list[list[str]]:
    section = README.split("## Quick start\n", 1)[1].split("\n## ", 1)[0]
    return [[line for line in body.splitlines() if line.strip()]
            for body in re.findall(r"^```\w*\n(.*?)^```$", section, re.M | re.S)]


def first_screen() -> str:
    return README.split("## What it does", 1)[0]


def test_quick_start_is_one_block_of_the_two_commands():
    assert quick_start_blocks() == [[FIRST_COMMAND, TEST_COMMAND]]


def test_ci_finds_the_test_command_where_it_looks():
    """.ci/run takes the second line of the Quick start block with this awk program."""
    ci = (ROOT / ".ci" / "run").read_text()
    program = re.search(r"awk '([^']+)' README\.md \| sed -n 2p", ci).group(1)
    if shutil.which("awk"):
        found = subprocess.run(["awk", program, str(ROOT / "README.md")], capture_output=True, text=True, check=True)
        assert found.stdout.splitlines()[1] == TEST_COMMAND


def reintegrate_command() -> list[str]:
    script = Path(sys.executable).with_name("reintegrate")
    return [str(script)] if script.is_file() else [sys.executable, "-m", "pipeline"]


def test_the_first_command_does_what_the_readme_says(tmp_path):
    install, command = FIRST_COMMAND.split(" && ")
    assert install == "python3 -m pip install ." and (ROOT / "pyproject.toml").is_file()  # this project, installed
    shutil.copytree(ROOT / "examples", tmp_path / "examples")
    args = command.split()
    assert args[0] == "reintegrate"
    proc = subprocess.run(reintegrate_command() + args[1:], cwd=tmp_path, capture_output=True, text=True, timeout=120)
    # "checks the 24 made-up referrals ... (... it lists them by row and cell and exits with code 1)"
    promised = re.search(r"checks the (\d+) made-up referrals", README).group(1)
    assert proc.returncode == 1 and proc.stderr == ""
    assert f"{promised} rows, 15 accepted, 9 rejected" in proc.stdout
    assert re.search(r"^  row \d+ \(HAV-\d+\): .*\(cell [A-Z]+\d+, ", proc.stdout, re.M)
    # "writes a run folder under outbox/ with 15 plans, 15 letters, the review tracker, the validation report
    # and summary.json, and prints a summary"
    plans, letters = map(int, re.search(r"with (\d+) plans, (\d+) letters", README).groups())
    (run_dir,) = [p for p in (tmp_path / "outbox").iterdir() if p.is_dir()]
    assert len(list((run_dir / "plans").glob("*.docx"))) == plans
    assert len(list((run_dir / "letters").glob("*.docx"))) == letters
    for name in ("review-tracker.xlsx", "validation-report.xlsx", "summary.json"):
        assert (run_dir / name).is_file(), name
    assert json.loads((run_dir / "summary.json").read_text())["accepted"] == plans
    assert "-- Summary" in proc.stdout and proc.stdout.splitlines()[-1].startswith("Done: ")


def test_the_first_screen_says_what_it_does_shows_a_plan_and_links_into_the_docs():
    screen = first_screen()
    intro = re.sub(r"<img[^>]*>", "", screen.split("## Quick start")[0].split("\n", 1)[1]).strip()
    assert len(re.findall(r"[.!?](\s|$)", intro)) == 2, "two sentences say what it does"
    image = re.search(r'<img src="([^"]+)"', screen).group(1)
    assert image == "docs/images/plan-page-1.png" and (ROOT / image).stat().st_size < 200_000
    docs = set(re.findall(r"\]\((docs/[^)#]+)", screen))
    assert {"docs/getting-started.md", "docs/referral-workbook.md", "docs/rules.md", "docs/templates.md",
            "docs/watch.md", "docs/email.md"} <= docs
    assert len(screen.splitlines()) <= 45


def test_the_readme_names_every_command():
    for name in main.commands:
        assert f"`reintegrate {name}" in README, name
