"""How a damaged workbook is told: `DamagedWorkbook` for a structural problem our readers find, and
`damage_reason` for what the zip, zlib and XML libraries raise, each as the few words a sentence to an officer
ends with."""

from __future__ import annotations

import zipfile
from contextlib import contextmanager

from lxml import etree

from pipeline.core.errors import InputError


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


@contextmanager
def told_as_damaged(path, doing: str = "read", *, too_big: str | None = None):
    """Whatever reading the workbook at `path` raises becomes one sentence naming the file (`InputError`):
    ours (`DamagedWorkbook`) as found, the libraries' through `damage_reason`. With `too_big`, running out of
    memory or stack says that sentence instead."""
    try:
        yield
    except InputError:
        raise
    except DamagedWorkbook as exc:
        raise InputError(path, f"the workbook is damaged: {exc}") from None
    except (MemoryError, RecursionError) as exc:
        if too_big is None:
            raise InputError(path, f"the workbook is damaged and cannot be {doing} ({damage_reason(exc)})") from None
        raise InputError(path, too_big) from None
    except Exception as exc:  # zipfile, zlib and lxml raise many types for damaged files
        raise InputError(path, f"the workbook is damaged and cannot be {doing} ({damage_reason(exc)})") from None
