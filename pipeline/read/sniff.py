"""What kind of file this is, from its content, not its name: an Excel workbook saved with a .csv or .xls
name is still read as a workbook. Password-protected workbooks (an encrypted package inside an OLE file),
old `.xls` files and other Office files are told apart by the names in the OLE directory, and each file we
cannot read is refused with a sentence saying what to do."""

from __future__ import annotations

import mmap
from pathlib import Path

from pipeline.core.errors import InputError
from pipeline.read.limits import MAX_FILE_BYTES, shown_size
from pipeline.read.zipcheck import check_zip

SPREADSHEET_SUFFIXES = (".xlsx", ".xlsm", ".csv", ".xls", ".xlsb", ".ods")

_OLE_SIGNATURE = b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1"
_ZIP_SIGNATURE = b"PK\x03\x04"
_OLE_NAMES = ("EncryptionInfo", "EncryptedPackage", "Workbook", "Book", "WordDocument", "PowerPoint Document")


def sniff(path: Path) -> str:
    """'xlsx', 'xlsb', 'ods', 'xls' or 'csv', or InputError saying why the file cannot be read. The content
    decides, not the name: an Excel workbook saved with a .csv or .xls name is still read as a workbook."""
    path = Path(path)
    if not path.is_file():
        raise InputError(path, "the file does not exist")
    suffix = path.suffix.lower()
    head = _first_bytes(path)
    if head.startswith(_OLE_SIGNATURE):
        return _ole_kind(path)
    if head.startswith(_ZIP_SIGNATURE):
        if suffix not in SPREADSHEET_SUFFIXES:
            raise InputError(path, f"a '{suffix or 'no extension'}' file is not a referral spreadsheet: use .xlsx, .xls, .ods or .csv")
        return check_zip(path)
    if suffix in (".xlsx", ".xlsm", ".xlsb", ".ods"):
        raise InputError(path, "the file is not an Excel workbook despite its name (it may be damaged, or another kind of file renamed)")
    if suffix == ".xls":
        raise InputError(path, "this is not an Excel 97-2003 workbook despite its .xls name: save the referrals as .xlsx")
    if suffix == ".csv":
        return "csv"
    raise InputError(path, f"'{suffix or 'no extension'}' is not a spreadsheet type we read: use .xlsx, .xls, .ods or .csv")


def _first_bytes(path: Path) -> bytes:
    """The file's first 8 bytes (its signature); InputError for a file that cannot be opened, is empty or is
    larger than a referral workbook can be."""
    try:
        size = path.stat().st_size
        with path.open("rb") as fh:
            head = fh.read(8)
    except OSError as exc:
        raise InputError(path, f"the file cannot be opened ({exc.strerror or type(exc).__name__})") from None
    if size == 0:
        raise InputError(path, "the file is empty")
    if size > MAX_FILE_BYTES:
        raise InputError(path, f"the file is {shown_size(size)}, more than the {shown_size(MAX_FILE_BYTES)} a referral workbook can be")
    return head


def _ole_stream_names(path: Path) -> set[str]:
    """Names of the streams we care about in an OLE compound file: directory entries are 128 bytes, aligned
    to 128 bytes, the name in UTF-16 followed at offset 64 by its length in bytes (with the terminator)."""
    found = set()
    with path.open("rb") as fh, mmap.mmap(fh.fileno(), 0, access=mmap.ACCESS_READ) as data:
        for name in _OLE_NAMES:
            needle = name.encode("utf-16-le") + b"\x00\x00"
            start = 512
            while (at := data.find(needle, start)) != -1:
                if at % 128 == 0 and int.from_bytes(data[at + 64:at + 66], "little") == len(needle):
                    found.add(name)
                    break
                start = at + 1
    return found


def _ole_kind(path: Path) -> str:
    """'xls' for an Excel 97-2003 workbook; InputError for an encrypted workbook or another Office file."""
    names = _ole_stream_names(path)
    if {"EncryptionInfo", "EncryptedPackage"} & names:
        raise InputError(path, "the workbook is password-protected: open it in Excel, remove the password (File > Info > "
                               "Protect Workbook > Encrypt with Password) and save it again")
    if {"Workbook", "Book"} & names:
        return "xls"
    if {"WordDocument", "PowerPoint Document"} & names:
        raise InputError(path, "this is a Word or PowerPoint file, not a spreadsheet: use .xlsx, .xls, .ods or .csv")
    raise InputError(path, "this is an old-style Office file but not an Excel workbook we can read: save the referrals as .xlsx")
