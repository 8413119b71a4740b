"""Word documents from Word templates, fast: compile a .docx template once, render it many times.

Templates are ordinary .docx files an officer edits in Word, with Jinja2 placeholders in docxtpl's
syntax: ``{{ pupil.full_name }}`` in text; ``{%tr for r in reviews %}`` ... ``{%tr endfor %}`` each
in a table row of its own (the row is replaced by the statement, the rows between are repeated);
``{%p if provisional_note %}`` ... ``{%p endif %}`` each in a paragraph of its own (likewise ``{%tc``
for a cell and ``{%r`` for a run). The data is the plain dict of `pipeline.write.context.build_context`.

Example::

    from pipeline.write.render import load_templates
    templates = load_templates()                 # compile once per run
    templates["reintegration-plan.docx"].render_to(context, "plans/HAV-0001_Smith_Amy.docx")

How it is fast (docxtpl, which these templates also work with, re-reads and re-patches the whole
package with python-docx for every document):

* `compile_template` opens the zip once. Each part holding placeholders (the body, headers,
  footers, footnotes, endnotes) is parsed with lxml; placeholders that Word split over several runs
  (it does when an officer edits a tag) are moved whole into the run where they start; ``{%tr``/
  ``{%p``... tags replace their whole row/paragraph; every tag is swapped for a processing
  instruction, so the serialised XML carries the tag text exactly as typed (no ``&lt;`` to undo);
  the result is compiled once by one sandboxed, autoescaping Jinja2 environment.
* Every other zip member is deflated once, at compile time. `CompiledTemplate.render` only renders
  and deflates the changed parts and writes the zip by hand (see `_LOCAL`).

Values are escaped (``& < > "`` in a name come out as text) and a multi-line value becomes line
breaks (``<w:br/>``), a tab a ``<w:tab/>``; characters XML cannot hold are dropped; ``None`` shows
as nothing. A placeholder the data does not provide is an error (`TemplateError`), never a silent
blank. Dict keys win over attributes, so ``{{ r.items }}`` is the key "items" when there is one.
"""

from __future__ import annotations

import marshal
import re
import struct
import zipfile
import zlib
from dataclasses import dataclass, field
from pathlib import Path

import jinja2
from jinja2 import StrictUndefined, nodes
from jinja2.sandbox import SandboxedEnvironment
from lxml import etree
from markupsafe import Markup, escape

from pipeline.core import files
from pipeline.core.errors import TemplateError

__all__ = [
    "CompiledTemplate", "compile_template", "load_templates", "check_template", "check_templates",
    "default_templates_dir", "PLAN", "INVITATION", "REQUEST", "LETTERS", "TEMPLATE_NAMES",
]

PLAN = "reintegration-plan.docx"
INVITATION = "meeting-invitation.docx"  # clause 3.6: from an AP (or a medical provision)
REQUEST = "meeting-request.docx"  # clause 3.7: from a school
LETTERS = {"invitation": INVITATION, "request": REQUEST}  # context["letter"]["kind"] -> template
TEMPLATE_NAMES = (PLAN, INVITATION, REQUEST)

_W = "http://schemas.openxmlformats.org/wordprocessingml/2006/main"
_W_P, _W_R, _W_T, _W_TR, _W_TC = (f"{{{_W}}}{t}" for t in ("p", "r", "t", "tr", "tc"))
_W_RPR = f"{{{_W}}}rPr"
_XML_SPACE = "{http://www.w3.org/XML/1998/namespace}space"
_LEVELS = {"tr": _W_TR, "tc": _W_TC, "p": _W_P, "r": _W_R}

# Parts that may hold placeholders; every other member is copied as it is.
_TEMPLATE_PART = re.compile(r"word/(document|header\d*|footer\d*|footnotes|endnotes)\.xml")
_TAG = re.compile(r"\{\{.*?\}\}|\{%.*?%\}|\{#.*?#\}", re.S)
_LEVEL_PREFIX = re.compile(r"(tr|tc|p|r)\s")
_PI_NAME = "jinja"
_PI = re.compile(r"<\?jinja (\d+)\?>")
_DECLARATION = '<?xml version="1.0" encoding="UTF-8" standalone="yes"?>\r\n'
# Word's autocorrect turns quotes typed in a tag into curly ones; Jinja needs straight ones.
_TAG_CHARS = str.maketrans({"\u201c": '"', "\u201d": '"', "\u2018": "'", "\u2019": "'",
                            "\u00a0": " "})

# ---------------------------------------------------------------------------------------------
# The one Jinja environment


class _Environment(SandboxedEnvironment):
    """Sandboxed (a tampered template cannot reach Python internals) and dict-first: the context
    is plain dicts, so look the key up before trying an attribute (faster, and no AttributeError
    raised per placeholder)."""

    def getattr(self, obj, attribute):
        if type(obj) is dict:
            try:
                return obj[attribute]
            except KeyError:
                pass
        return super().getattr(obj, attribute)


_BR = '</w:t><w:br/><w:t xml:space="preserve">'
_TAB = '</w:t><w:tab/><w:t xml:space="preserve">'
_SPECIAL = re.compile(r"[\x00-\x1f\ud800-\udfff\ufffe\uffff]")
# characters XML 1.0 cannot hold (tab, line feed and carriage return are handled, not dropped)
_DROP = dict.fromkeys([*range(0x00, 0x09), 0x0B, 0x0C, *range(0x0E, 0x20), *range(0xD800, 0xE000),
                       0xFFFE, 0xFFFF])


_DOCXTPL_OBJECTS = frozenset({"InlineImage", "RichText", "RichTextParagraph", "Listing", "Subdoc"})


def _finalize(value):
    """Each ``{{ value }}`` before autoescaping: text; line breaks and tabs become Word's own."""
    if value is None:
        return ""
    if isinstance(value, Markup):
        return value
    if type(value).__name__ in _DOCXTPL_OBJECTS:
        raise ValueError(f"a docxtpl {type(value).__name__} is not supported here: reintegrate's templates take "
                         "text only (docs/templates.md)")
    text = value if type(value) is str else str(value)  # str(StrictUndefined) raises
    if _SPECIAL.search(text) is None:
        return text
    text = text.replace("\r\n", "\n").replace("\r", "\n").translate(_DROP)
    return Markup(str(escape(text)).replace("\n", _BR).replace("\t", _TAB))


_ENV = _Environment(autoescape=True, undefined=StrictUndefined, finalize=_finalize,
                    keep_trailing_newline=True, cache_size=0, auto_reload=False)


def _plain(value):
    """`|e` and `|escape` (docxtpl's documented escape): every value is escaped already, so the filter leaves
    it as it is and `_finalize` treats it like any value (line breaks become Word's, control characters go)."""
    return "" if value is None else value


_ENV.filters["e"] = _ENV.filters["escape"] = _plain

# ---------------------------------------------------------------------------------------------
# Compiling a part


@dataclass(frozen=True)
class _Tag:
    """One placeholder or statement as the officer typed it, and the source lines it occupies."""

    text: str  # as typed, quotes straightened, e.g. "{%tr for r in reviews %}"
    body: str  # the expression or statement, e.g. "for r in reviews"
    first_line: int = 0
    last_line: int = 0

    @property
    def described(self) -> str:
        if self.text.startswith("{{"):
            return f"placeholder '{self.body}'"
        return f"tag '{self.text}'"


@dataclass
class _Part:
    """A zip member that is a Jinja template once prepared."""

    name: str
    filename: str  # what Jinja calls the template in its tracebacks: "plan.docx:word/document.xml"
    source: str
    tags: list[_Tag]
    code: object = None  # the compiled module code, built by `compile`
    cell_loops: bool = False  # has {%tc ...%} tags: the rendered tables' grids are fixed (`_fix_grids`)
    template: jinja2.Template | None = field(default=None, repr=False)

    def tag_at(self, line: int | None) -> _Tag | None:
        if line is None:
            return None
        for tag in self.tags:  # a tag's expression lines lie strictly inside its first/last line
            if tag.first_line < line < tag.last_line:
                return tag
        for tag in self.tags:
            if tag.first_line <= line <= tag.last_line:
                return tag
        return None

    def compile(self, template_name: str) -> None:
        try:
            self.code = _ENV.compile(self.source, name=self.name, filename=self.filename)
        except jinja2.TemplateSyntaxError as exc:
            raise _syntax_error(template_name, self, exc) from None
        self._load()

    def _load(self) -> None:
        self.template = _ENV.template_class.from_code(_ENV, self.code, _ENV.make_globals(None))

    def __getstate__(self):
        state = dict(self.__dict__, template=None)
        state["code"] = marshal.dumps(self.code)
        return state

    def __setstate__(self, state):
        self.__dict__.update(state)
        self.code = marshal.loads(self.code)
        self._load()


def _nearest(element, tag):
    element = element.getparent()
    while element is not None and element.tag != tag:
        element = element.getparent()
    return element


def _attached(element, root) -> bool:
    while element is not None:
        if element is root:
            return True
        element = element.getparent()
    return False


def _split_tag(text: str) -> tuple[str, str, str, str, str]:
    """"{%- tr for x in y -%}" -> ("{%", "-", "tr for x in y", "-", "%}")."""
    opener, closer, inner = text[:2], text[-2:], text[2:-2]
    left = inner[:1] if inner[:1] in ("-", "+") else ""
    inner = inner[len(left):]
    right = inner[-1:] if inner[-1:] in ("-", "+") else ""
    if right:
        inner = inner[:-1]
    return opener, left, inner, right, closer


def _merge_paragraph(template_name: str, paragraph) -> None:
    """Move every tag that Word split over several w:t (runs) whole into the w:t where it starts."""
    texts = [t for t in paragraph.iter(_W_T) if _nearest(t, _W_P) is paragraph]
    if not texts:
        return
    values = [t.text or "" for t in texts]
    full = "".join(values)
    if "{" not in full and "}" not in full:
        return
    leftover = _TAG.sub("", full)
    for mark, what in (("{{", "'}}'"), ("{%", "'%}'"), ("{#", "'#}'")):
        if mark in leftover:
            at = leftover.index(mark)
            raise TemplateError(f"{template_name}: the placeholder starting "
                                f"'{leftover[at:at + 40].strip()}' is not closed (a {what} is "
                                f"missing)")
    for mark, what in (("}}", "'{{'"), ("%}", "'{%'")):
        if mark in leftover:
            at = leftover.index(mark)
            raise TemplateError(f"{template_name}: the placeholder ending "
                                f"'{leftover[max(0, at - 38):at + 2].strip()}' is not opened "
                                f"(a {what} is missing)")
    owner = []  # for each character of the paragraph's text, the index of the w:t holding it
    for index, value in enumerate(values):
        owner.extend([index] * len(value))
    split = False
    for match in _TAG.finditer(full):
        first, last = owner[match.start()], owner[match.end() - 1]
        if first != last:
            split = True
            owner[match.start():match.end()] = [first] * (match.end() - match.start())
    if not split:
        return
    new = [[] for _ in values]
    for char, index in zip(full, owner):
        new[index].append(char)
    for t, chars, old in zip(texts, new, values):
        text = "".join(chars)
        if text == old:
            continue
        if text:
            t.text = text
            continue
        run = t.getparent()
        run.remove(t)
        if run.tag == _W_R and all(child.tag == _W_RPR for child in run):
            run.getparent().remove(run)


def _prepare_part(template_name: str, part_name: str, data: bytes) -> _Part:
    """Parse one XML part and turn it into Jinja source (not yet compiled)."""
    try:
        root = etree.fromstring(data, etree.XMLParser(resolve_entities=False, huge_tree=True))
    except etree.XMLSyntaxError as exc:
        raise TemplateError(f"{template_name}: {part_name} is not valid XML ({exc})") from None
    for paragraph in list(root.iter(_W_P)):
        _merge_paragraph(template_name, paragraph)

    raw_tags: list[tuple[str, str]] = []  # (as typed, Jinja source of the tag)

    def new_tag(typed: str, jinja_text: str) -> etree._Element:
        raw_tags.append((typed, jinja_text))
        return etree.ProcessingInstruction(_PI_NAME, str(len(raw_tags) - 1))

    _mark_block_tags(template_name, root, new_tag)
    _mark_inline_tags(root, new_tag)
    source, tags = _splice(etree.tostring(root, encoding="unicode"), raw_tags)
    cell_loops = any(_LEVEL_PREFIX.match(_split_tag(m.group())[2]) and _split_tag(m.group())[2].startswith("tc ")
                     for typed, _ in raw_tags for m in _TAG.finditer(typed))
    return _Part(part_name, f"{template_name}:{part_name}", source, tags, cell_loops=cell_loops)


def _mark_block_tags(template_name: str, root, new_tag) -> None:
    """1. {%tr ...%}, {%p ...%}, {%tc ...%}, {%r ...%}: the statement replaces its whole element."""
    blocks: dict = {}  # element -> [(typed, statement)]
    for t in list(root.iter(_W_T)):
        for match in _TAG.finditer((t.text or "").translate(_TAG_CHARS)):
            opener, left, inner, right, closer = _split_tag(match.group())
            level = _LEVEL_PREFIX.match(inner)
            if not level:
                continue
            if opener == "{{":
                raise TemplateError(f"{template_name}: '{match.group()}' is not supported: only "
                                    f"statements ({{%{level.group(1)} ... %}}) can take a whole "
                                    f"{level.group(1)}")
            element = _nearest(t, _LEVELS[level.group(1)])
            if element is None:
                raise TemplateError(f"{template_name}: '{match.group()}' is not inside a "
                                    f"{_describe_level(level.group(1))}")
            body = inner[level.end():]
            blocks.setdefault(element, []).append(
                (match.group(), f"{opener}{left} {body}{right}{closer}"))
    for element, statements in blocks.items():
        if not _attached(element, root):  # inside a row or paragraph already replaced
            continue
        parent = element.getparent()
        pi = new_tag(" ".join(s[0] for s in statements), "".join(s[1] for s in statements))
        pi.tail = element.tail
        parent.replace(element, pi)


def _mark_inline_tags(root, new_tag) -> None:
    """2. Every other tag becomes a processing instruction inside its w:t."""
    for t in list(root.iter(_W_T)):
        text = t.text
        if not text or "{" not in text:
            continue
        pieces = _TAG.split(text)
        found = _TAG.findall(text)
        if not found:
            continue
        t.text = pieces[0]
        for tag, tail in zip(found, pieces[1:]):
            typed = tag.translate(_TAG_CHARS)
            pi = new_tag(typed, typed)
            pi.tail = tail
            t.append(pi)
        t.set(_XML_SPACE, "preserve")


def _splice(xml: str, raw_tags: list[tuple[str, str]]) -> tuple[str, list[_Tag]]:
    """3. Literal XML, then each tag's Jinja text with its expression on a line of its own (so an error's
    line number names the tag)."""
    source: list[str] = []
    tags: list[_Tag] = []
    line = 1
    for index, chunk in enumerate(_PI.split(xml)):
        if index % 2 == 0:
            if "{{" in chunk or "{%" in chunk or "{#" in chunk:
                chunk = "{% raw %}" + chunk + "{% endraw %}"
            source.append(chunk)
            line += chunk.count("\n")
            continue
        typed, jinja_text = raw_tags[int(chunk)]
        parts = []
        for match in _TAG.finditer(jinja_text):
            opener, left, inner, right, closer = _split_tag(match.group())
            parts.append(f"{opener}{left}\n{inner.strip()}\n{right}{closer}")
        text = "".join(parts)
        body = " ".join(_split_tag(m.group())[2].strip() for m in _TAG.finditer(jinja_text))
        last = line + text.count("\n")
        tags.append(_Tag(typed, body, line, last))
        source.append(text)
        line = last
    return "".join(source), tags


def _describe_level(level: str) -> str:
    return {"tr": "table row", "tc": "table cell", "p": "paragraph", "r": "run"}[level]


# ---------------------------------------------------------------------------------------------
# Errors


def _error_line(exc: BaseException, filename: str) -> int | None:
    if isinstance(exc, jinja2.TemplateSyntaxError):
        return exc.lineno
    line, tb = None, exc.__traceback__
    while tb is not None:
        if tb.tb_frame.f_code.co_filename == filename:
            line = tb.tb_lineno
        tb = tb.tb_next
    return line


_MISSING = (re.compile(r"has no (?:attribute|element) '?(.*?)'?$"),
            re.compile(r"^'(.*)' is undefined$"))


def _missing_name(message: str) -> str | None:
    for pattern in _MISSING:
        found = pattern.search(message)
        if found:
            return found.group(1)
    return None


def _syntax_error(template_name: str, part: _Part, exc: jinja2.TemplateSyntaxError) -> TemplateError:
    tag = part.tag_at(exc.lineno)
    message = (exc.message or str(exc)).rstrip(".")
    if tag is not None and "end of template" not in message:
        return TemplateError(f"{template_name}: syntax error in '{tag.text}': {message}")
    return TemplateError(f"{template_name}: syntax error ({part.name}): {message}")


def _render_error(template_name: str, part: _Part, exc: BaseException) -> TemplateError:
    tag = part.tag_at(_error_line(exc, part.filename))
    what = tag.described if tag else f"a placeholder in {part.name}"
    verb = "cannot be filled" if (tag is None or tag.text.startswith("{{")) else "cannot be run"
    if isinstance(exc, jinja2.UndefinedError):
        missing = _missing_name(str(exc))
        if missing:
            return TemplateError(f"{template_name}: {what} {verb} (the data has no '{missing}')")
    return TemplateError(f"{template_name}: {what} {verb} ({exc})")


_W_TBL, _W_GRID, _W_GRIDCOL, _W_TBLW, _W_GRIDSPAN = (f"{{{_W}}}{t}" for t in
                                                    ("tbl", "tblGrid", "gridCol", "tblW", "gridSpan"))


def _fix_grids(data: bytes) -> bytes:
    """A table whose rows a {%tc for %} loop widened gets as many grid columns as its widest row, sharing the
    table's width (as docxtpl does): Word and LibreOffice lay a table out by its grid, and drop cells past it."""
    root = etree.fromstring(data, etree.XMLParser(resolve_entities=False, huge_tree=True))
    changed = False
    for table in root.iter(_W_TBL):
        grid = table.find(_W_GRID)
        if grid is None:
            continue
        cols = grid.findall(_W_GRIDCOL)
        widest = 0
        for row in table.findall(_W_TR):
            span = 0
            for cell in row.findall(_W_TC):
                spans = cell.findall(f".//{_W_GRIDSPAN}")
                span += int(spans[0].get(f"{{{_W}}}val", "1")) if spans else 1
            widest = max(widest, span)
        if widest <= len(cols):
            continue
        total = sum(int(c.get(f"{{{_W}}}w", "0") or 0) for c in cols) or 9000
        for col in cols:
            grid.remove(col)
        for _ in range(widest):
            etree.SubElement(grid, _W_GRIDCOL).set(f"{{{_W}}}w", str(total // widest))
        changed = True
    return etree.tostring(root, xml_declaration=True, encoding="UTF-8", standalone=True) if changed else data


_RENDER_ERRORS = (jinja2.TemplateError, TypeError, ValueError, AttributeError, LookupError,
                  ArithmeticError)

# ---------------------------------------------------------------------------------------------
# The zip, by hand: the stdlib's zipfile cannot write a member from bytes that are already
# compressed, and recompressing the unchanged styles, theme, settings... for every document would
# cost more than rendering it. So each unchanged member's local header and deflated data are built
# once at compile time and copied; only the rendered parts are deflated per document.

# local header: signature, version, flags, method, time, date, crc, sizes, name and extra lengths
_LOCAL = struct.Struct("<IHHHHHIIIHH")
_CENTRAL = struct.Struct("<IHHHHHHIIIHHHHHII")
_END = struct.Struct("<IHHHHIIH")
_VERSION = 20
_DEFLATED = 8
_UTF8_NAME = 0x800
_LEVEL = 3  # for rendered parts: a third of level 6's time for ~10% more bytes
_STATIC_LEVEL = 9  # unchanged members are compressed once


@dataclass
class _Member:
    name: bytes
    flags: int
    time: int
    date: int
    part: _Part | None = None  # rendered per document when set
    local: bytes = b""  # local header + deflated data, for unchanged members
    crc: int = 0
    compressed: int = 0
    size: int = 0


def _dos_time(date_time) -> tuple[int, int]:
    year, month, day, hour, minute, second = date_time
    year = max(year, 1980)
    return (hour << 11) | (minute << 5) | (second // 2), ((year - 1980) << 9) | (month << 5) | day


def _member(info: zipfile.ZipInfo) -> _Member:
    try:
        name = info.filename.encode("ascii")
        flags = 0
    except UnicodeEncodeError:
        name, flags = info.filename.encode("utf-8"), _UTF8_NAME
    time, date = _dos_time(info.date_time)
    return _Member(name, flags, time, date)


def _static(member: _Member, data: bytes) -> None:
    compressed = zlib.compress(data, _STATIC_LEVEL, -15)
    member.crc, member.compressed, member.size = zlib.crc32(data), len(compressed), len(data)
    member.local = _LOCAL.pack(0x04034B50, _VERSION, member.flags, _DEFLATED, member.time,
                               member.date, member.crc, member.compressed, member.size,
                               len(member.name), 0) + member.name + compressed


# ---------------------------------------------------------------------------------------------
# Templates


class CompiledTemplate:
    """A .docx template compiled once; `render` and `render_to` make one document each.

    Picklable (for worker processes): the compiled Jinja code travels with it, nothing is parsed
    again on the other side.
    """

    def __init__(self, name: str, members: list[_Member]):
        self.name = name
        self._members = members
        self._parts = [m.part for m in members if m.part is not None]

    def __repr__(self) -> str:
        return f"<CompiledTemplate {self.name}: {len(self._parts)} templated parts>"

    @property
    def parts(self) -> list[str]:
        """The zip members that hold placeholders, e.g. ``["word/document.xml", ...]``."""
        return [p.name for p in self._parts]

    def render_parts(self, context: dict) -> dict[str, bytes]:
        """The rendered XML of each templated part (no zip): for tests and checks."""
        return {p.name: self._render_part(p, context) for p in self._parts}

    def _render_part(self, part: _Part, context: dict) -> bytes:
        try:
            text = part.template.render(context)
        except _RENDER_ERRORS as exc:
            raise _render_error(self.name, part, exc) from None
        data = (_DECLARATION + text).encode("utf-8")
        return _fix_grids(data) if part.cell_loops else data

    def render(self, context: dict) -> bytes:
        """The complete .docx for `context`, as bytes."""
        rendered = {id(p): self._render_part(p, context) for p in self._parts}
        chunks, central, offset = [], [], 0
        for m in self._members:
            if m.part is None:
                crc, compressed_size, size = m.crc, m.compressed, m.size
                chunks.append(m.local)
                length = len(m.local)
            else:
                data = rendered[id(m.part)]
                compressed = zlib.compress(data, _LEVEL, -15)
                crc, compressed_size, size = zlib.crc32(data), len(compressed), len(data)
                header = _LOCAL.pack(0x04034B50, _VERSION, m.flags, _DEFLATED, m.time, m.date,
                                     crc, compressed_size, size, len(m.name), 0) + m.name
                chunks += (header, compressed)
                length = len(header) + compressed_size
            central.append(_CENTRAL.pack(0x02014B50, _VERSION, _VERSION, m.flags, _DEFLATED,
                                         m.time, m.date, crc, compressed_size, size, len(m.name),
                                         0, 0, 0, 0, 0, offset) + m.name)
            offset += length
        directory = b"".join(central)
        chunks += central
        chunks.append(_END.pack(0x06054B50, 0, 0, len(central), len(central), len(directory),
                                offset, 0))
        return b"".join(chunks)

    def render_to(self, context: dict, path) -> Path:
        """Render and write atomically (temp file in the same folder, then rename), readable by
        its owner only (`pipeline.core.files.write_bytes`). Returns the path."""
        path = Path(path)
        files.write_bytes(path, self.render(context))
        return path

    # Pickling: members hold compiled parts, which pickle themselves (see `_Part`).
    def __getstate__(self):
        return {"name": self.name, "members": self._members}

    def __setstate__(self, state):
        self.__init__(state["name"], state["members"])


def _read_package(path: Path) -> list[tuple[zipfile.ZipInfo, bytes]]:
    try:
        with zipfile.ZipFile(path) as package:
            return [(info, package.read(info)) for info in package.infolist()]
    except FileNotFoundError:
        raise TemplateError(f"{path.name}: the template file does not exist ({path})") from None
    except (zipfile.BadZipFile, OSError, EOFError, zlib.error) as exc:
        raise TemplateError(f"{path.name}: not a Word .docx file ({exc})") from None


def _is_template_part(name: str, data: bytes) -> bool:
    return bool(_TEMPLATE_PART.fullmatch(name)) and (b"{{" in data or b"{%" in data or b"{#" in data)


def compile_template(path) -> CompiledTemplate:
    """Read and compile one .docx template. Raises `TemplateError` naming the file and the tag."""
    path = Path(path)
    members = []
    for info, data in _read_package(path):
        member = _member(info)
        if _is_template_part(info.filename, data):
            member.part = _prepare_part(path.name, info.filename, data)
            member.part.compile(path.name)
        else:
            _static(member, data)
        members.append(member)
    return CompiledTemplate(path.name, members)


def default_templates_dir() -> Path:
    """The repository's ``templates/`` in a checkout, else the copy installed with the package."""
    from pipeline.core.resources import shipped

    found = shipped(f"templates/{PLAN}")
    return found.parent if found else shipped("templates") or Path("templates")


def load_templates(templates_dir=None) -> dict[str, CompiledTemplate]:
    """Compile the plan and both letters, keyed by file name (`PLAN`, `INVITATION`, `REQUEST`:
    ``"reintegration-plan.docx"``...). A template missing from `templates_dir` (an officer's
    override folder) comes from `default_templates_dir`."""
    folders = [Path(templates_dir)] if templates_dir else []
    folders.append(default_templates_dir())
    templates = {}
    for name in TEMPLATE_NAMES:
        for folder in folders:
            candidate = folder / name
            if candidate.is_file():
                templates[name] = compile_template(candidate)
                break
        else:
            raise TemplateError(f"{name}: the template is missing (looked in "
                                f"{', '.join(str(f) for f in folders)})")
    return templates


# ---------------------------------------------------------------------------------------------
# check-templates

_ANY = object()  # a value the checker cannot know (loop variables over empty lists, set names...)


class _Checker:
    def __init__(self, template_name: str, context: dict):
        self.template_name = template_name
        self.context = context
        self.problems: list[str] = []
        self.local_names: set[str] = set()

    def check(self, ast: nodes.Template) -> None:
        targets = {id(n) for f in ast.find_all(nodes.For) for n in _names(f.target)}
        self.local_names = {n.name for n in ast.find_all(nodes.Name)
                            if n.ctx in ("store", "param") and id(n) not in targets}
        self.visit(ast, dict(self.context))

    def report(self, text: str, key) -> None:
        problem = (f"{self.template_name}: placeholder '{text}' is not provided by the data model "
                   f"(the data has no '{key}')")
        if problem not in self.problems:
            self.problems.append(problem)

    def visit(self, node, scope: dict) -> None:
        if isinstance(node, nodes.For):
            self.visit(node.iter, scope)
            values = self.value(node.iter, scope)
            inner = dict(scope, loop=_ANY)
            element = values[0] if isinstance(values, (list, tuple)) and values else _ANY
            if isinstance(node.target, nodes.Name):
                inner[node.target.name] = element
            else:
                for name in _names(node.target):
                    inner[name.name] = _ANY
            for child in ([node.test] if node.test else []) + list(node.body):
                self.visit(child, inner)
            for child in node.else_:
                self.visit(child, scope)
            return
        if isinstance(node, (nodes.Getattr, nodes.Getitem, nodes.Name)):
            self.chain(node, scope)
            return
        for child in node.iter_child_nodes():
            self.visit(child, scope)

    def value(self, node, scope: dict):
        """The sample value an expression stands for, or _ANY."""
        steps, base = _steps(node)
        if not isinstance(base, nodes.Name) or base.name not in scope:
            return _ANY
        value = scope[base.name]
        for kind, key in steps:
            if kind == "attr" or kind == "item":
                try:
                    value = value[key]
                    continue
                except (KeyError, IndexError, TypeError):
                    return _ANY
            return _ANY
        return value

    def chain(self, node, scope: dict) -> None:
        steps, base = _steps(node)
        for kind, key in steps:
            if kind == "dyn":
                self.visit(key, scope)
        if not isinstance(base, nodes.Name):
            self.visit(base, scope)
            return
        if base.ctx != "load":
            return
        name = base.name
        if name in scope:
            value = scope[name]
        elif name in self.local_names or name in _ENV.globals:
            return
        else:
            self.report(name, name)
            return
        text = name
        for kind, key in steps:
            if value is _ANY or kind == "dyn":
                return
            text += f".{key}" if kind == "attr" else f"[{key!r}]"
            if isinstance(value, dict) and key in value:
                value = value[key]
                continue
            if (isinstance(value, (list, tuple)) and isinstance(key, int)
                    and -len(value) <= key < len(value)):
                value = value[key]
                continue
            if kind == "attr" and isinstance(key, str) and hasattr(value, key):
                return  # a method such as .upper() or .items()
            if isinstance(value, (list, tuple)) and not value:
                return  # an empty sample list: nothing to judge by
            self.report(text, key)
            return


def _names(target) -> list[nodes.Name]:
    if isinstance(target, nodes.Name):
        return [target]
    return list(target.find_all(nodes.Name))


def _steps(node):
    """``pupil.address['town']`` -> ([("attr", "address"), ("item", "town")], Name("pupil"))."""
    steps = []
    while isinstance(node, (nodes.Getattr, nodes.Getitem)):
        if isinstance(node, nodes.Getattr):
            steps.append(("attr", node.attr))
        elif isinstance(node.arg, nodes.Const):
            steps.append(("item", node.arg.value))
        else:
            steps.append(("dyn", node.arg))
        node = node.node
    steps.reverse()
    return steps, node


def check_template(path, sample_context: dict | None = None) -> list[str]:
    """Every problem with one template, one sentence each naming the template: syntax errors and
    each placeholder the data model does not provide (judged against `sample_context`, by default
    `pipeline.write.context.SAMPLE_CONTEXT`). An empty list means the template is fine."""
    if sample_context is None:
        from pipeline.write.context import sample_context as make_sample

        sample_context = make_sample()
    path = Path(path)
    problems: list[str] = []
    try:
        package = _read_package(path)
    except TemplateError as exc:
        return [str(exc)]
    members, broken = [], False  # only the templated parts: the check renders no zip
    for info, data in package:
        if not _is_template_part(info.filename, data):
            continue
        member = _member(info)
        try:
            part = _prepare_part(path.name, info.filename, data)
            part.compile(path.name)
        except TemplateError as exc:
            problems.append(str(exc))
            broken = True
            continue
        checker = _Checker(path.name, sample_context)
        checker.check(_ENV.parse(part.source))
        problems += [p for p in checker.problems if p not in problems]
        member.part = part
        members.append(member)
    if broken or problems:
        return problems
    template = CompiledTemplate(path.name, members)
    try:
        rendered = template.render_parts(sample_context)
    except TemplateError as exc:
        return [str(exc)]
    for name, xml in rendered.items():
        try:
            etree.fromstring(xml)
        except etree.XMLSyntaxError as exc:
            problems.append(f"{path.name}: the filled-in {name} is not valid XML ({exc}); check "
                            f"that each {{%tr %}} and {{%p %}} tag sits in a row or paragraph of "
                            f"its own")
    return problems


def check_templates(templates_dir=None, sample_context: dict | None = None) -> list[str]:
    """`check_template` for every Word template in `templates_dir` (default: the shipped ones);
    Word's lock files (``~$*.docx``) are skipped. For ``reintegrate check-templates [DIR]``."""
    folder = Path(templates_dir) if templates_dir else default_templates_dir()
    paths = sorted(p for p in folder.glob("*.docx") if not p.name.startswith(("~$", ".")))
    if not paths:
        return [f"{folder}: no Word templates (.docx) found"]
    problems: list[str] = []
    for path in paths:
        problems += check_template(path, sample_context)
    return problems
