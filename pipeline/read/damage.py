"""How a damaged workbook is told: `DamagedWorkbook` for a structural problem our readers find, and
`damage_reason` for what the zip, zlib and XML libraries raise, each as the few words a sentence to an officer
ends with."""

from __future__ import annotations

import zipfile

from lxml import etree


class DamagedWorkbook(Exception):
    """A structural problem found while reading a workbook; becomes an InputError naming the file."""


def damage_reason(exc: Exception) -> str:
    """Why a library could not read the file, in words ('its XML is malformed'), else the exception's type."""
    if isinstance(exc, etree.XMLSyntaxError):
        return "its XML is malformed"
    if isinstance(exc, zipfile.BadZipFile):
        return "a part fails its checksum" if "CRC" in str(exc) else "the zip structure is broken"
    if isinstance(exc, (EOFError, ValueError)) or type(exc).__name__ == "error":  # zlib.error
        return "a part is cut short or corrupt"
    return type(exc).__name__
