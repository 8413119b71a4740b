"""The officers' guide (docs/) is true: getting-started.md runs literally, step by step, in an empty folder and
prints what it shows; every link and picture is there; the tables match the code they describe."""

from __future__ import annotations

import re
import subprocess
import sys
import unicodedata
from pathlib import Path

import pytest

from pipeline.cli.main import main
from pipeline.write.context import sample_context
from pipeline.deliver.template import EMAIL_CONTEXT_KEYS
from pipeline.check.rules import RULES
from schemas.referral import SCHEMA

ROOT = Path(__file__).resolve().parent.parent
DOCS = ROOT / "docs"
PAGES = sorted(DOCS.glob("*.md"))
SAMPLE_RUN = "20261130T091502123456Z-3f0a"  # the run folder name the pages show
RUN_ID = re.compile(r"\d{8}T\d{12}Z-[0-9a-f]{4}")
LINK = re.compile(r"!?\[([^\]]*)\]\(([^)\s]+)\)|<img src=\"([^\"]+)\" alt=\"([^\"]*)\"")
# links to pages other work is writing: checked as soon as they exist
NOT_YET_WRITTEN = {"benchmarks/README.md"}


def links(text: str) -> list[tuple[str, str]]:
    """(text or alt, target) of every Markdown link, picture and <img>."""
    return [(m.group(1) or m.group(4) or "", m.group(2) or m.group(3)) for m in LINK.finditer(text)]


def without_code(text: str) -> str:
    return re.sub(r"^ *```.*?^ *```$", "", text, flags=re.M | re.S)


def fences(text: str, *, sections: bool = False) -> list[tuple]:
    """(language, body) of each fenced block, in order; with `sections`, also the heading it is under."""
    found = []
    for m in re.finditer(r"^ *```(\w*)\n(.*?)^ *```$", text, re.M | re.S):
        headings = re.findall(r"^#+ (.+)$", without_code(text[:m.start()]), re.M)
        found.append((m.group(1), m.group(2), headings[-1] if headings else "") if sections else (m.group(1), m.group(2)))
    return found


def slug(heading: str) -> str:
    """GitHub's anchor for a heading."""
    text = unicodedata.normalize("NFKD", heading.strip().lower())
    text = re.sub(r"[^\w\- ]", "", text)
    return text.replace(" ", "-")


def anchors(path: Path) -> set[str]:
    return {slug(m.group(1)) for m in re.finditer(r"^#+ (.+)$", without_code(path.read_text(encoding="utf-8")), re.M)}


def reintegrate_command() -> list[str]:
    script = Path(sys.executable).with_name("reintegrate")
    return [str(script)] if script.is_file() else [sys.executable, "-m", "pipeline"]


# ------------------------------------------------------------------------------------------ getting started

def test_getting_started_runs_literally_in_an_empty_folder(tmp_path):
    """Every ```console command of getting-started.md, in order, in an empty folder, as a newcomer types it
    (with the run folder the page shows replaced by the one the run really made); each ```text block that
    follows one in the same section shows lines of what it printed, in order ("..." stands for lines left
    out)."""
    cwd = tmp_path
    run_folder = None
    last_output = None
    ran = 0
    console_section = None
    for language, body, section in fences((DOCS / "getting-started.md").read_text(encoding="utf-8"), sections=True):
        if language == "console":
            console_section = section
            outputs = []
            for line in body.strip().splitlines():
                words = line.strip().split()
                if words[0] == "cd":
                    cwd = cwd / words[1]
                    assert cwd.is_dir(), line
                    continue
                assert words[0] == "reintegrate", line
                if run_folder:
                    words = [w.replace(SAMPLE_RUN, run_folder) for w in words]
                proc = subprocess.run(reintegrate_command() + words[1:], cwd=cwd, capture_output=True, text=True,
                                      timeout=120)
                assert proc.returncode in (0, 1) and "Traceback" not in proc.stderr, (line, proc.stderr)
                assert proc.stderr == "", (line, proc.stderr)
                ran += 1
                if words[1] == "run" and "--as-of" in words:  # the example's run: the folder later steps use
                    run_folder = re.search(r"-> outbox/(\S+)", proc.stdout).group(1)
                outputs.append(proc.stdout)
            last_output = "".join(outputs)
        elif language == "text" and last_output is not None and section == console_section:
            shown = [RUN_ID.sub("RUN", line) for line in body.strip("\n").splitlines()]
            printed = [RUN_ID.sub("RUN", line) for line in last_output.splitlines()]
            at = 0
            for line in shown:
                if line == "...":
                    continue
                assert line in printed[at:], f"getting-started.md shows a line the command does not print:\n{line}"
                at = printed.index(line, at) + 1
            last_output = None
        else:
            last_output = None
    assert ran >= 10 and run_folder


# ---------------------------------------------------------------------------------------------- links

@pytest.mark.parametrize("page", [*PAGES, ROOT / "README.md"], ids=lambda p: p.name)
def test_every_link_and_picture_is_there(page):
    for _, target in links(without_code(page.read_text(encoding="utf-8"))):
        if re.match(r"[a-z]+:", target):
            continue
        path, _, anchor = target.partition("#")
        resolved = (page.parent / path).resolve() if path else page
        if not resolved.exists() and resolved.relative_to(ROOT).as_posix() in NOT_YET_WRITTEN:
            continue
        assert resolved.exists(), f"{page.name}: {target} does not exist"
        if anchor and resolved.suffix == ".md":
            assert anchor in anchors(resolved), f"{page.name}: no heading #{anchor} in {resolved.name}"


def test_every_picture_is_a_small_png_that_a_page_shows():
    shown = set()
    for page in [*PAGES, ROOT / "README.md"]:
        for _, target in links(page.read_text(encoding="utf-8")):
            if target.endswith(".png"):
                shown.add((page.parent / target).resolve())
    for image in sorted((DOCS / "images").glob("*")):
        assert image.suffix == ".png" and image.read_bytes().startswith(b"\x89PNG"), image.name
        assert image.stat().st_size < 200_000, image.name
        assert image.resolve() in shown, f"{image.name} is not shown on any page"
    for page in [*PAGES, ROOT / "README.md"]:
        for alt, target in links(page.read_text(encoding="utf-8")):
            if target.endswith(".png"):
                assert len(alt) > 20, f"{page.name}: describe {target} in its alt text"


def test_the_guide_lists_every_page():
    index = (DOCS / "README.md").read_text(encoding="utf-8")
    for page in PAGES:
        if page.name != "README.md":
            assert f"]({page.name})" in index, page.name


def test_every_command_in_the_docs_is_a_real_command_with_real_options():
    for page in [*PAGES, ROOT / "README.md"]:
        for language, body in fences(page.read_text(encoding="utf-8")):
            if language not in ("console", "bat", "bash", "cron", "ini", ""):
                continue
            for line in body.splitlines():
                match = re.search(r"(?:^|[\s/\\])reintegrate(?:\.exe)? ([a-z][a-z-]*)(.*)", line)
                if not match or line.lstrip().startswith("#"):
                    continue
                name, rest = match.groups()
                assert name in main.commands, f"{page.name}: {line.strip()}"
                command = main.commands[name]
                known = {opt for param in command.params for opt in param.opts + param.secondary_opts}
                known |= {"--help", "-h"}
                for word in rest.split():
                    if word.startswith("-") and not word.startswith(("->", "--->")):
                        assert word.split("=")[0] in known, f"{page.name}: {line.strip()} ({word})"


# ---------------------------------------------------------------------------------------- the tables

def test_the_workbook_page_lists_every_column_as_the_template_has_it():
    from openpyxl.utils import get_column_letter

    text = (DOCS / "referral-workbook.md").read_text(encoding="utf-8")
    rows = re.findall(r"^\| ([A-Z]{1,2}) \| ([^|]+?) \| (yes|no) \|", text, re.M)
    expected = [(get_column_letter(i), f.data_key, "yes" if f.required else "no")
                for i, f in enumerate(SCHEMA.fields.values(), start=1)]
    assert rows == expected
    for field in SCHEMA.fields.values():  # every drop-down choice is named
        for choice in field.metadata["choices"] or ():
            assert f"`{choice}`" in text or field.data_key == "Year group", (field.data_key, choice)


def _value(context, dotted: str):
    value = context
    for part in dotted.split("."):
        value = value[part]
    return value


def test_the_templates_page_lists_every_tag_there_is_and_no_other():
    text = (DOCS / "templates.md").read_text(encoding="utf-8")
    section = text.split("## The tags there are")[1].split("\n## ")[0]
    documented = set(re.findall(r"\{\{ ([a-z_.]+) \}\}", section))
    documented |= set(re.findall(r"^\| `([a-z_.]+)` \|", section, re.M))  # the lists
    context = sample_context()
    for name in documented - {"loop.index", "a"}:  # `a`: the loop variable of the adjustments example
        _value(context, name)  # a KeyError: the page names a tag that does not exist

    def flatten(d, prefix=""):
        for key, value in d.items():
            if isinstance(value, dict):
                yield from flatten(value, f"{prefix}{key}.")
            else:
                yield f"{prefix}{key}"

    short = {name for name in flatten(context) if name.startswith("dates.short.")}
    assert {name for name in flatten(context) if name not in documented} == short - {"dates.short.decision"}
    assert "(and `planned_return`, `planning_meeting`, `previous_return`)" in section


def test_the_email_page_lists_every_value_the_email_text_can_use():
    text = (DOCS / "email.md").read_text(encoding="utf-8")
    assert set(re.findall(r"\{\{ ([a-z_]+) \}\}", text.split("## The email text")[1])) == EMAIL_CONTEXT_KEYS


def test_the_rules_page_explains_every_rule_with_its_clause():
    text = (DOCS / "rules.md").read_text(encoding="utf-8")
    headings = re.findall(r"^## (.+)$", text, re.M)
    for rule in (r.id for r in RULES):
        assert any(h.startswith(f"{rule}:") for h in headings), rule
    for clause in ("2.2", "3.1", "3.4", "3.6", "3.7", "3.8", "3.9"):
        assert re.search(rf"^> {re.escape(clause)} ", text, re.M), f"clause {clause} is not quoted"
