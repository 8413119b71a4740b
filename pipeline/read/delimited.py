"""Reading a CSV file as a stream: its encoding (UTF-8, else Windows-1252 with a warning; UTF-16 and binary
refused), then (line number, cells) with a bounded line length, field size and line count. Named `delimited`
so that it never shadows the standard library's `csv`."""

from __future__ import annotations

import codecs
import csv
from pathlib import Path

from pipeline.core.errors import WARNING, InputError, Issue
from pipeline.read.limits import CSV_FIELD_LIMIT, MAX_COLUMNS, MAX_CSV_LINE_CHARS, MAX_SHEET_ROW, MiB


def csv_encoding(path: Path) -> tuple[str, list[Issue]]:
    """The encoding the whole file decodes in, and a warning when that is not UTF-8."""
    with path.open("rb") as fh:
        head = fh.read(4)
    if head.startswith((b"\xff\xfe", b"\xfe\xff")):
        raise InputError(path, "the CSV file is in UTF-16 ('Unicode text'): save it from Excel as 'CSV UTF-8'")
    for encoding in ("utf-8-sig", "cp1252"):
        decoder = codecs.getincrementaldecoder(encoding)()
        try:
            with path.open("rb") as fh:
                while chunk := fh.read(MiB):
                    if b"\x00" in chunk:
                        raise InputError(path, "the file is not a CSV text file (it holds binary data)")
                    decoder.decode(chunk)
                decoder.decode(b"", final=True)
        except UnicodeDecodeError:
            continue
        if encoding == "cp1252":
            return encoding, [Issue(WARNING, "schema", "the CSV file is not UTF-8; it was read as Windows-1252 (save it "
                                                       "as 'CSV UTF-8' to be sure accents are right)")]
        return encoding, []
    raise InputError(path, "the CSV file is not text in UTF-8 or Windows-1252: save it from Excel as 'CSV UTF-8'")


def csv_rows(path: Path, encoding: str):
    """Yield (line number, cells) of the file, each row cut at MAX_COLUMNS cells."""
    def lines(fh):
        number = 0
        while line := fh.readline(MAX_CSV_LINE_CHARS + 1):
            number += 1
            if len(line) > MAX_CSV_LINE_CHARS:
                raise InputError(path, f"line {number:,} of the CSV file is longer than {MAX_CSV_LINE_CHARS:,} characters; "
                                       "it is not a referral spreadsheet")
            yield line

    old_limit = csv.field_size_limit(CSV_FIELD_LIMIT)
    try:
        with path.open("r", encoding=encoding, newline="") as fh:
            reader = csv.reader(lines(fh))
            try:
                for number, cells in enumerate(reader, start=1):
                    if number > MAX_SHEET_ROW:
                        raise InputError(path, f"the CSV file has more than {MAX_SHEET_ROW:,} lines, more than Excel can hold")
                    yield number, tuple(cells[:MAX_COLUMNS])
            except csv.Error as exc:
                raise InputError(path, f"the CSV file cannot be read at line {reader.line_num:,} ({exc})") from None
    finally:
        csv.field_size_limit(old_limit)
