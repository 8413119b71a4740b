"""Reading .xls, .xlsb and .ods with python-calamine, in a child process. calamine allocates a sheet's whole
declared range, so a hostile file could exhaust memory or abort the process: the child has a bounded address
space and time, and its death is a sentence about the file, never the end of the run. Its rows are the same
(row number, cells) the .xlsx reader yields, so the referral sheet is judged exactly as an .xlsx."""

from __future__ import annotations

from pathlib import Path

from pipeline.core.errors import InputError
from pipeline.read.celltext import no_lone_surrogates
from pipeline.read.limits import CALAMINE_MEMORY, CALAMINE_SECONDS, MAX_CELL_CHARS, MAX_COLUMNS, MAX_SHEET_ROW


def calamine_sheets(path: Path):
    """([(name, rows)], None) read by python-calamine in a child process, the same (row number, cells) as the
    .xlsx reader yields: blanks as None, whole numbers as int, dates and times as Python values. The None
    stands where the .xlsx reader gives its open workbook: nothing is left open here."""
    kind, value = _read_in_child(path)
    if kind == "password":
        raise InputError(path, "the workbook is password-protected: open it, remove the password and save it again")
    if kind == "error":
        raise InputError(path, f"the workbook cannot be read: {value}")
    return [(name, iter(rows)) for name, rows in value], None


def _read_in_child(path: Path) -> tuple[str, object]:
    """('ok', sheets), ('password', None) or ('error', why) from a child process given CALAMINE_SECONDS."""
    import multiprocessing

    context = multiprocessing.get_context("fork" if "fork" in multiprocessing.get_all_start_methods() else "spawn")
    receive, send = context.Pipe(duplex=False)
    child = context.Process(target=_calamine_child, args=(str(path), send), daemon=True)
    child.start()
    send.close()
    try:
        return receive.recv() if receive.poll(CALAMINE_SECONDS) else ("error", "it took too long to read")
    except EOFError:  # the child died: out of memory, or calamine aborted on the file
        return ("error", "it is too large, or damaged in a way that stops it being read")
    finally:
        receive.close()
        child.join(1)
        if child.is_alive():
            child.kill()
            child.join()


def _calamine_child(path: str, send) -> None:
    try:
        import resource

        resource.setrlimit(resource.RLIMIT_AS, (CALAMINE_MEMORY, CALAMINE_MEMORY))
    except (ImportError, ValueError, OSError):  # Windows: no address-space limit, the process still isolates
        pass
    try:
        from python_calamine import CalamineWorkbook

        with open(path, "rb") as fh:  # from the content, not the name: an .xls saved as .xlsx is still an .xls
            book = CalamineWorkbook.from_filelike(fh)
            sheets = [(name, list(_calamine_rows(book, name))) for name in book.sheet_names]
            book.close()
        send.send(("ok", sheets))
    except MemoryError:
        send.send(("error", "it is too large to read"))
    except Exception as exc:  # calamine raises its own error types for damage
        if type(exc).__name__ == "PasswordError":
            send.send(("password", None))
        else:
            send.send(("error", f"it is damaged ({type(exc).__name__})"))
    finally:
        send.close()


def _calamine_rows(book, name: str):
    sheet = book.get_sheet_by_name(name)
    first_col = (sheet.start or (0, 0))[1]
    # iter_rows counts rows from the sheet's first row (empty ones included) but columns from its first
    # used column: both made the sheet's own numbers here (tests/test_workbooks.py checks it)
    for index, row in enumerate(sheet.iter_rows()):
        if index + 1 > MAX_SHEET_ROW:
            break
        cells = [None] * first_col + [_calamine_value(v) for v in row[:max(0, MAX_COLUMNS - first_col)]]
        while cells and cells[-1] is None:
            cells.pop()
        if cells:
            yield index + 1, tuple(cells)


def _calamine_value(value):
    if value == "" or value is None:
        return None
    if isinstance(value, float) and value.is_integer() and abs(value) < 2 ** 53:
        return int(value)
    if isinstance(value, str):
        return no_lone_surrogates(value[:MAX_CELL_CHARS])
    return value
