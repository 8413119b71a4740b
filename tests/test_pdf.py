"""pipeline.deliver.pdf: PDF copies through LibreOffice, one profile per worker, a time limit, nothing left behind.

Most tests use a stand-in `soffice` (a small script) so they are fast and can misbehave on purpose; the last
ones use the real LibreOffice and skip where it is not installed (CI installs it).
"""

from __future__ import annotations

import json
import os
import shutil
import stat
import subprocess
import sys
import tempfile
import time
from datetime import date
from pathlib import Path

import pytest

from pipeline.deliver import pdf
from pipeline.deliver.pdf import Converted, LibreOfficeNotFound, convert_to_pdf, find_soffice, require_soffice

FAKE = r'''#!{python}
"""A stand-in for soffice: --convert-to pdf --outdir DIR FILES... writes DIR/<stem>.pdf for each file."""
import os, subprocess, sys, time
from pathlib import Path

args = sys.argv[1:]
log = Path(os.environ["FAKE_LOG"])
profile = next(a.split("=", 1)[1] for a in args if a.startswith("-env:UserInstallation="))
outdir = Path(args[args.index("--outdir") + 1])
sources = [Path(a) for a in args[args.index("--outdir") + 2:]]
mode = os.environ.get("FAKE_MODE", "ok")
folder = Path(profile.replace("file://", ""))
folder.mkdir(parents=True, exist_ok=True)
try:  # two processes on one profile at once would fail like LibreOffice does
    fd = os.open(folder / "in-use", os.O_CREAT | os.O_EXCL | os.O_WRONLY)
except FileExistsError:
    sys.exit(81)
with log.open("a") as fh:
    fh.write(f"{{os.getpid()}} {{profile}} {{len(sources)}}\n")
if mode == "hang":
    child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(120)"])
    (log.parent / "child.pid").write_text(str(child.pid))
    time.sleep(120)
time.sleep(float(os.environ.get("FAKE_DELAY", "0.2")))
for source in sources:
    if mode == "bad" and "bad" in source.name:
        continue  # LibreOffice skips a file it cannot open and carries on
    (outdir / (source.stem + ".pdf")).write_bytes(b"%PDF-1.4 fake of " + source.name.encode())
os.close(fd)
os.unlink(folder / "in-use")
'''


@pytest.fixture
def private_tmp(tmp_path, monkeypatch) -> Path:
    """The process's temporary folder, fresh, so anything left in it is ours."""
    folder = tmp_path / "tmp"
    folder.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(folder))
    return folder


@pytest.fixture
def fake(tmp_path, monkeypatch) -> Path:
    script = tmp_path / "bin" / "soffice"
    script.parent.mkdir()
    script.write_text(FAKE.format(python=sys.executable))
    script.chmod(0o755)
    monkeypatch.setenv("FAKE_LOG", str(tmp_path / "fake.log"))
    return script


def documents(folder: Path, names) -> list[Path]:
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for name in names:
        path = folder / name
        path.write_bytes(b"not really a docx")
        paths.append(path)
    return paths


def log_lines(tmp_path) -> list[tuple[str, str, int]]:
    lines = (tmp_path / "fake.log").read_text().split("\n")
    return [(pid, profile, int(n)) for pid, profile, n in (line.split() for line in lines if line)]


def test_pdfs_are_written_beside_each_document_in_parallel_with_a_profile_per_worker(tmp_path, fake, private_tmp):
    plans = documents(tmp_path / "run" / "plans", [f"HAV-{i:04d}_Smith_Amy.docx" for i in range(6)])
    letters = documents(tmp_path / "run" / "letters", [p.name for p in plans])  # the same names: never one batch
    seen = []
    done = convert_to_pdf(plans + letters, None, 2, soffice=str(fake), progress=seen.append, batch_size=3)
    assert [c.source for c in done] == plans + letters
    for c in done:
        assert c.error is None and c.pdf == c.source.with_suffix(".pdf")
        assert c.pdf.read_bytes() == b"%PDF-1.4 fake of " + c.source.name.encode()
        assert stat.S_IMODE(c.pdf.stat().st_mode) == 0o600  # like every output: owner only
    assert sum(seen) == 12
    runs = log_lines(tmp_path)
    profiles = {profile for _, profile, _ in runs}
    assert len(runs) == 4 and all(n == 3 for *_, n in runs)
    assert len(profiles) == 2  # one LibreOffice profile per worker, reused by the worker's next batch
    for profile in profiles:
        assert profile.startswith("file:///") and Path(profile[len("file://"):]).name in ("worker-1", "worker-2")
        assert Path(profile[len("file://"):]).is_relative_to(private_tmp)
    assert list(private_tmp.iterdir()) == []  # profiles and output folders are gone


def test_a_plan_and_its_letter_never_share_a_batch_yet_pairs_are_not_split_one_by_one(tmp_path, fake, private_tmp):
    plans = documents(tmp_path / "plans", ["a.docx", "b.docx", "c.docx"])
    letters = documents(tmp_path / "letters", ["a.docx", "b.docx", "c.docx"])
    interleaved = [doc for pair in zip(plans, letters) for doc in pair]  # as a run lists them
    done = convert_to_pdf(interleaved, None, 1, soffice=str(fake))
    assert all(c.pdf == c.source.with_suffix(".pdf") for c in done)
    assert [n for *_, n in log_lines(tmp_path)] == [3, 3]  # the plans, then the letters: two LibreOffice runs


def test_out_dir_collects_the_pdfs_and_refuses_two_with_one_name(tmp_path, fake, private_tmp):
    sources = documents(tmp_path / "a", ["one.docx", "two.docx"])
    done = convert_to_pdf(sources, tmp_path / "pdfs", soffice=str(fake))
    assert sorted(p.name for p in (tmp_path / "pdfs").iterdir()) == ["one.pdf", "two.pdf"]
    assert all(c.pdf.parent == tmp_path / "pdfs" for c in done)
    clash = documents(tmp_path / "b", ["one.docx"])
    with pytest.raises(ValueError, match="one.pdf"):
        convert_to_pdf(sources + clash, tmp_path / "pdfs", soffice=str(fake))
    assert convert_to_pdf([], tmp_path / "pdfs", soffice=str(fake)) == []


def test_a_document_libreoffice_cannot_convert_is_retried_alone_then_reported(tmp_path, fake, private_tmp, monkeypatch):
    monkeypatch.setenv("FAKE_MODE", "bad")
    sources = documents(tmp_path, ["a.docx", "bad.docx", "c.docx"])
    done = convert_to_pdf(sources, None, 1, soffice=str(fake))
    assert [c.pdf is not None for c in done] == [True, False, True]
    assert done[1].error == "LibreOffice did not produce a PDF" and "bad" not in done[1].error
    assert [n for *_, n in log_lines(tmp_path)] == [3, 1]  # the batch, then the missing one on its own
    assert list(private_tmp.iterdir()) == []


@pytest.mark.timing
def test_a_hung_libreoffice_is_killed_with_its_children_at_the_time_limit(tmp_path, fake, private_tmp, monkeypatch):
    monkeypatch.setenv("FAKE_MODE", "hang")
    sources = documents(tmp_path, ["a.docx"])
    started = time.monotonic()
    done = convert_to_pdf(sources, None, 1, soffice=str(fake), startup_seconds=0.5, per_document_seconds=0.25)
    assert time.monotonic() - started < 15
    assert done == [Converted(sources[0], None, "LibreOffice took longer than 0.75 seconds")]
    child = int((tmp_path / "child.pid").read_text())
    for _ in range(50):  # the grandchild was in soffice's process group, so it was killed too
        try:
            os.kill(child, 0)
        except ProcessLookupError:
            break
        time.sleep(0.1)
    else:
        pytest.fail("LibreOffice's child process survived the time limit")
    assert list(private_tmp.iterdir()) == []


def test_ctrl_c_stops_every_libreoffice_and_removes_the_temporary_folder(tmp_path, fake, private_tmp, monkeypatch):
    monkeypatch.setenv("FAKE_DELAY", "0.5")
    sources = documents(tmp_path, [f"{i}.docx" for i in range(8)])

    def interrupt(_done):
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        convert_to_pdf(sources, None, 2, soffice=str(fake), progress=interrupt, batch_size=1)
    assert list(private_tmp.iterdir()) == []
    assert len(log_lines(tmp_path)) < 8  # the queued batches never started


def test_no_libreoffice_is_a_clear_error(monkeypatch, tmp_path):
    monkeypatch.setattr(pdf, "KNOWN_LOCATIONS", ())
    monkeypatch.setenv("PATH", str(tmp_path))
    assert find_soffice() is None
    with pytest.raises(LibreOfficeNotFound, match="PDF copies need LibreOffice, but its soffice program was not found"):
        require_soffice()
    with pytest.raises(LibreOfficeNotFound):
        convert_to_pdf(documents(tmp_path, ["a.docx"]), None)


def test_soffice_is_found_on_the_path_or_where_libreoffice_installs_itself(monkeypatch, fake, tmp_path):
    assert find_soffice(path=str(fake.parent)) == str(fake)
    monkeypatch.setattr(pdf, "KNOWN_LOCATIONS", (str(tmp_path / "missing"), str(fake)))
    assert find_soffice(path=str(tmp_path / "nothing-here")) == str(fake)


# ------------------------------------------------------------------------------- the real LibreOffice

needs_libreoffice = pytest.mark.skipif(find_soffice() is None, reason="LibreOffice (soffice) is not installed")


@needs_libreoffice
def test_run_with_pdf_writes_a_real_pdf_beside_each_plan_and_letter(tmp_path, workbook, valid_row, private_tmp):
    from pipeline.core.config import Config
    from pipeline.run import run_file

    rows = [valid_row(seed=s) for s in (1, 2)]
    rows[1]["Returning via FAP"] = "No"  # rejected: no documents, no PDFs
    seen = []
    result = run_file(workbook(rows), config=Config(outbox=tmp_path / "outbox"), as_of=date(2026, 11, 30),
                      pdf=True, pdf_progress=seen.append)
    assert (result.pdfs, result.pdf_failed, sum(seen)) == (2, (), 2)
    for folder in ("plans", "letters"):
        (docx_file,) = (result.run_dir / folder).glob("*.docx")
        pdf_file = docx_file.with_suffix(".pdf")
        assert pdf_file.read_bytes().startswith(b"%PDF") and pdf_file.stat().st_size > 5000
        assert stat.S_IMODE(pdf_file.stat().st_mode) == 0o600
        if shutil.which("pdftotext"):
            text = subprocess.run(["pdftotext", str(pdf_file), "-"], capture_output=True, text=True).stdout
            assert "HAV-00001" in text
    assert list(private_tmp.iterdir()) == []


@needs_libreoffice
def test_send_attaches_the_pdfs_when_attach_pdf_is_on(tmp_path, workbook, valid_row):
    from email import policy
    from email.parser import BytesParser

    from pipeline.core.config import Config
    from pipeline.deliver.send import send_with_config
    from pipeline.run import run_file

    email = {"allowed_domains": ["havering.gov.uk", "sch.uk", "drapersacademy.com"], "attach_pdf": True}
    config = Config(outbox=tmp_path / "outbox", email=email)
    result = run_file(workbook([valid_row(seed=3)]), config=config, as_of=date(2026, 11, 30), pdf=True)
    report = send_with_config(result.run_dir, config)
    assert report.exit_code == 0 and len(report.drafted) == 1, report.lines()
    (eml,) = (result.run_dir / "mail").glob("*.eml")
    msg = BytesParser(policy=policy.default).parsebytes(eml.read_bytes())
    kinds = [part.get_content_type() for part in msg.iter_attachments()]
    assert kinds.count("application/pdf") == 2 and len(kinds) == 4
    # without its PDF copy, a message is reported, not sent half-attached
    next((result.run_dir / "letters").glob("*.pdf")).unlink()
    report = send_with_config(result.run_dir, config, resend=True)
    assert report.exit_code == 1 and "PDF copy of the letter is missing" in report.failed[0].reason
    json.dumps(report.as_dict())
