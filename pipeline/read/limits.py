"""The bounds on reading an untrusted referral file, in one place: docs/limits.md states them for officers and
administrators, and `tests/test_bad_inputs.py` holds a file for each of them."""

from __future__ import annotations

MiB = 1 << 20
MAX_FILE_BYTES = 100 * MiB  # the file on disk
MAX_DATA_ROWS = 20_000  # non-blank rows below the heading row (twice the largest batch the benchmark measures)
MAX_SHEET_ROW = 1_048_576  # Excel's last row: a row numbered beyond it is damage, not data
MAX_COLUMNS = 256  # column IV: cells further right are ignored (with a warning)
MAX_ZIP_MEMBERS = 10_000
MAX_UNPACKED_BYTES = 512 * MiB  # an .ods or .xlsb read whole (calamine): all its parts, unpacked
MAX_SHEET_XML_BYTES = 256 * MiB  # a worksheet's XML, streamed (bounds the time taken)
MAX_STRINGS_XML_BYTES = 64 * MiB  # the shared-strings table, held in memory while reading
MAX_PART_BYTES = 16 * MiB  # workbook.xml, relationships, styles
MAX_CELL_CHARS = 32_768  # Excel holds at most 32,767 in a cell: longer text is cut here, one past the limit,
#                          so the schema still reports it as too long, and no message, report or summary
#                          grows with what a hostile file puts in one cell
MAX_CSV_LINE_CHARS = 1_000_000
CSV_FIELD_LIMIT = 131_072  # csv's own default, stated here so it is a documented bound
CALAMINE_MEMORY = 1024 * MiB  # address space of the reading process: calamine allocates a sheet's declared range
CALAMINE_SECONDS = 120  # time the reading process has for one file


def shown_size(size: int) -> str:
    """A size as a sentence names it: '12 MB', or '4,096 bytes' below a megabyte."""
    return f"{size / MiB:,.0f} MB" if size >= MiB else f"{size:,} bytes"
