"""What a zip must be before any part of it is read as a workbook: not too many parts, no two parts that Excel
would take for one, an .ods or .xlsb that does not unpack past its limit, and the parts of an Excel workbook
at all. Sizes come from the zip directory, so a zip bomb is refused before anything inflates."""

from __future__ import annotations

import zipfile
from pathlib import Path

from pipeline.core.errors import InputError
from pipeline.read.limits import MAX_UNPACKED_BYTES, MAX_ZIP_MEMBERS, shown_size

ODS_MIMETYPE = b"application/vnd.oasis.opendocument.spreadsheet"


def member_key(name: str) -> str:
    """A zip member's name as Excel finds it: `\\` and `/` alike, case ignored, no leading slash."""
    return name.replace("\\", "/").lstrip("/").lower()


def check_zip(path: Path) -> str:
    """'xlsx', 'xlsb' or 'ods' for a zip that is a workbook; InputError otherwise. Member names are compared
    as Excel does (case-insensitively, either slash), so two parts with one name are refused, never one of
    them read silently."""
    infos, mimetype = _directory(path)
    if len(infos) > MAX_ZIP_MEMBERS:
        raise InputError(path, f"the file holds {len(infos):,} parts, more than the {MAX_ZIP_MEMBERS:,} a workbook can have; it is not a normal referral workbook")
    seen = _one_part_a_name(path, infos)
    if mimetype.strip() == ODS_MIMETYPE:
        _check_unpacked(path, infos)
        return "ods"
    if "[content_types].xml" not in seen or "_rels/.rels" not in seen and not any(k.startswith("xl/") for k in seen):
        raise InputError(path, "the file is a zip archive but not an Excel workbook (it may be a Word or other Office file renamed)")
    if any(k.endswith(".bin") and k.rsplit("/", 1)[-1] == "workbook.bin" for k in seen):
        _check_unpacked(path, infos)
        return "xlsb"
    return "xlsx"


def _directory(path: Path) -> tuple[list[zipfile.ZipInfo], bytes]:
    """The zip's directory, and the start of its `mimetype` part (which names an OpenDocument file)."""
    try:
        with zipfile.ZipFile(path) as zf:
            infos = zf.infolist()
            mimetype = zf.read("mimetype")[:100] if "mimetype" in zf.NameToInfo else b""
    except Exception:  # zipfile raises many types for a damaged archive
        raise InputError(path, "the workbook is damaged and cannot be opened (it is cut short, or its zip structure is broken)") from None
    return infos, mimetype


def _one_part_a_name(path: Path, infos) -> dict[str, str]:
    """member_key -> the part's own name; InputError for two parts that Excel counts as one."""
    seen: dict[str, str] = {}
    for info in infos:
        key = member_key(info.filename)
        if key in seen:
            raise InputError(path, f"the workbook holds two parts named {info.filename!r} and {seen[key]!r}, which Excel "
                                   "counts as one; it cannot be read one way only: open it in Excel and save it again")
        seen[key] = info.filename
    return seen


def _check_unpacked(path: Path, infos) -> None:
    total = sum(i.file_size for i in infos)
    if total > MAX_UNPACKED_BYTES:
        raise InputError(path, f"the workbook unpacks to {shown_size(total)}, more than the {shown_size(MAX_UNPACKED_BYTES)} limit; "
                               "it is not a normal referral workbook (it may be a 'zip bomb')")
