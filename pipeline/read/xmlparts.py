"""Zip parts as streams lxml may parse safely. Every part refuses a DOCTYPE or ENTITY declaration wherever it
stands (OOXML never has one), and is parsed without DTDs, entities or network access. A worksheet is also
filtered as bytes before parsing, so that a million formatted but empty rows, or anything else a sheet carries
besides its rows and merged cells, costs little time and memory."""

from __future__ import annotations

import re

from pipeline.read.damage import DamagedWorkbook
from pipeline.read.limits import MiB

XML_PARSER = dict(resolve_entities=False, no_network=True, load_dtd=False, huge_tree=False, remove_comments=True,
                  remove_pis=True)


def local_name(tag) -> str:
    """An element's or attribute's name without its namespace ('' for a comment or other non-element)."""
    return tag[tag.rfind("}") + 1:] if isinstance(tag, str) else ""


_DECLARATION = re.compile(rb"<!(?:DOCTYPE|ENTITY)", re.I)


class Part:
    """A zip member as a file object for lxml that refuses a DOCTYPE or ENTITY declaration wherever it stands
    in the part (OOXML never has one; a long comment first must not hide one)."""

    CHUNK = MiB

    def __init__(self, raw):
        self.raw = raw
        self.tail = b""  # the end of the last chunk: a declaration split across two chunks is still seen

    def read(self, size=-1) -> bytes:
        chunk = self.raw.read(self.CHUNK)
        if b"<!" in self.tail + chunk[:16] or b"<!" in chunk:
            if _DECLARATION.search(self.tail + chunk):
                raise DamagedWorkbook("it holds an XML document type declaration, which Excel never writes")
        self.tail = chunk[-16:]
        return chunk

    def close(self):
        self.raw.close()


_QNAME = rb"(?:[A-Za-z_][\w.\-]*:)?"


class SheetStream(Part):
    """A worksheet's XML with only what we read left in it, so that parsing is fast and holds little memory
    whatever else the sheet carries: the root element, the rows of <sheetData> that hold something (a row
    with an explicit number and only self-closed, valueless cells is dropped as bytes, before parsing), and
    <mergeCells>. Everything else (column formats, conditional formats, extensions...) is skipped unparsed.
    Tags never contain '<', so cutting each chunk at its last '<' never splits a tag we look for."""

    MAX_CARRY = 4 * MiB
    _ROOT = re.compile(rb"<(?![?!])(" + _QNAME + rb"[A-Za-z_][\w.\-]*)[^>]*>")
    _SHEET_DATA = re.compile(rb"<(" + _QNAME + rb")sheetData(?=[\s/>])[^>]*?(/?)>")
    _MERGE_CELLS = re.compile(rb"<(" + _QNAME + rb")mergeCells(?=[\s/>])[^>]*?(/?)>")
    _EMPTY_ROW = re.compile(rb"<(" + _QNAME + rb")row\s[^>]*?\br\s*=\s*[\"']\d+[\"'][^>]*?"
                            rb"(?:/>|>(?:\s*<\1c\s[^>]*/>)*\s*</\1row\s*>)")

    def __init__(self, raw):
        super().__init__(raw)
        self.state = "prolog"  # prolog -> skip -> rows -> tail -> (merges -> tail) -> done
        self.root = b""
        self.close_tag = None
        self.carry = b""
        self.eof = False

    def read(self, size=-1) -> bytes:
        while not self.eof:
            chunk = super().read()
            if not chunk:
                self.eof = True
                out = self._flush_rows(self.carry) if self.state in ("rows", "merges") else b""
                self.carry = b""
                if self.state == "prolog":
                    raise DamagedWorkbook("a worksheet has no root element")
                if self.state in ("rows", "merges"):
                    raise DamagedWorkbook("a worksheet is cut short")
                return out + (b"</" + self.root + b">" if self.root else b"")
            data = self.carry + chunk
            cut = data.rfind(b"<")
            if cut <= 0 or len(data) - cut > self.MAX_CARRY:
                if self.state in ("rows", "merges"):
                    self.carry = b""
                    return self._flush_rows(data)
                self.carry = data[-64:] if self.state == "prolog" else b""
                continue
            data, self.carry = data[:cut], data[cut:]
            out = self._process(data)
            if out:
                return out
        return b""

    def _flush_rows(self, data: bytes) -> bytes:
        return self._EMPTY_ROW.sub(b"", data) if self.state == "rows" else data

    def _process(self, data: bytes) -> bytes:
        out = []
        while data:
            if self.state == "prolog":
                m = self._ROOT.search(data)
                if m is None:
                    return b"".join(out)
                self.root = m[1]
                out.append(data[:m.end()])
                data, self.state = data[m.end():], "skip"
            elif self.state == "skip":
                m = self._SHEET_DATA.search(data)
                if m is None:
                    return b"".join(out)
                out.append(m[0])
                data = data[m.end():]
                if m[2]:  # <sheetData/>
                    self.state = "tail"
                else:
                    self.state, self.close_tag = "rows", re.compile(rb"</" + re.escape(m[1]) + rb"sheetData\s*>")
            elif self.state in ("rows", "merges"):
                m = self.close_tag.search(data)
                if m is None:
                    out.append(self._flush_rows(data))
                    return b"".join(out)
                out.append(self._flush_rows(data[:m.end()]))
                data, self.state = data[m.end():], "tail"
            elif self.state == "tail":
                m = self._MERGE_CELLS.search(data)
                if m is None:
                    return b"".join(out)
                out.append(m[0])
                data = data[m.end():]
                if not m[2]:
                    self.state, self.close_tag = "merges", re.compile(rb"</" + re.escape(m[1]) + rb"mergeCells\s*>")
            else:
                return b"".join(out)
        return b"".join(out)
