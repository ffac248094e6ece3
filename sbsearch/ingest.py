"""Turn files into Documents: a list of Sections (text, page, heading), structure kept.

One loader per format. A loader either returns a Document with some text or raises IngestError
with a one-line reason (corrupt PDF, binary data, no question/answer fields, …); the indexer
records the reason and goes on. No model is needed here.
"""

from __future__ import annotations

import csv
import io
import json
import re
from dataclasses import dataclass, field
from pathlib import Path

from .errors import IngestError

TEXT_SUFFIXES = {".txt", ".text", ".log", ".rst"}
MARKDOWN_SUFFIXES = {".md", ".markdown"}
FAQ_SUFFIXES = {".csv", ".jsonl", ".json"}
HTML_SUFFIXES = {".html", ".htm"}
SUPPORTED_SUFFIXES = TEXT_SUFFIXES | MARKDOWN_SUFFIXES | FAQ_SUFFIXES | HTML_SUFFIXES | {".pdf", ".docx"}

QUESTION_KEYS = ("question", "q", "query", "title", "frage")
ANSWER_KEYS = ("answer", "a", "response", "body", "antwort")


@dataclass
class Section:
    text: str
    page: int | None = None
    heading: str | None = None


@dataclass
class Document:
    path: str
    format: str
    sections: list[Section] = field(default_factory=list)
    encoding: str | None = None

    @property
    def text_length(self) -> int:
        return sum(len(s.text) for s in self.sections)


def is_supported(path: Path) -> bool:
    return path.suffix.lower() in SUPPORTED_SUFFIXES


def load_document(path: Path, data: bytes | None = None) -> Document:
    """Read one file. `data` lets the indexer pass bytes it already read (and hashed)."""
    suffix = path.suffix.lower()
    if suffix not in SUPPORTED_SUFFIXES:
        raise IngestError(f"unsupported file type {suffix or '(none)'}")
    if data is None:
        try:
            data = path.read_bytes()
        except OSError as exc:
            raise IngestError(f"cannot read: {exc.strerror or exc}") from None
    if not data.strip():
        raise IngestError("empty file")
    if suffix == ".pdf":
        doc = _load_pdf(path, data)
    elif suffix == ".docx":
        doc = _load_docx(path, data)
    else:
        text, encoding = decode_text(data)
        if suffix in MARKDOWN_SUFFIXES:
            doc = Document(str(path), "markdown", _markdown_sections(text))
        elif suffix in HTML_SUFFIXES:
            doc = Document(str(path), "html", _html_sections(text))
        elif suffix in FAQ_SUFFIXES:
            doc = Document(str(path), "faq", _faq_sections(suffix, text))
        else:
            doc = Document(str(path), "text", _paragraph_sections(text))
        doc.encoding = encoding
    doc.sections = [s for s in doc.sections if s.text.strip()]
    if not doc.sections:
        raise IngestError("no text found")
    return doc


# --------------------------------------------------------------------------- text decoding

_BOMS = [(b"\xef\xbb\xbf", "utf-8-sig"), (b"\xff\xfe", "utf-16"), (b"\xfe\xff", "utf-16")]


def decode_text(data: bytes) -> tuple[str, str]:
    """Decode bytes of unknown encoding; refuse binary data that merely has a text extension."""
    for bom, encoding in _BOMS:
        if data.startswith(bom):
            try:
                return data.decode(encoding), encoding
            except UnicodeDecodeError:
                raise IngestError(f"invalid {encoding} text") from None
    head = data[:8192]
    if b"\x00" in head:
        raise IngestError("binary data, not text")
    try:
        return data.decode("utf-8"), "utf-8"
    except UnicodeDecodeError:
        pass
    from charset_normalizer import from_bytes

    best = from_bytes(data).best()
    if best is None:
        raise IngestError("binary data or unknown text encoding")
    text = str(best)
    if _control_ratio(text) > 0.05:
        raise IngestError("binary data, not text")
    return text, best.encoding


def _control_ratio(text: str) -> float:
    sample = text[:20000]
    if not sample:
        return 0.0
    bad = sum(1 for ch in sample if ord(ch) < 32 and ch not in "\t\n\r\f")
    return bad / len(sample)


# --------------------------------------------------------------------------- plain text & markdown

def _paragraph_sections(text: str, page: int | None = None, heading: str | None = None) -> list[Section]:
    # One section per file part; the chunker splits by paragraph inside it.
    text = text.replace("\r\n", "\n").replace("\r", "\n").strip()
    return [Section(text, page, heading)] if text else []


class _Sections:
    """Collects body text under a heading path ("Travel > Hotels"); shared by the structured formats."""

    def __init__(self, joiner: str = "\n"):
        self.sections: list[Section] = []
        self.path: list[tuple[int, str]] = []
        self.buf: list[str] = []
        self.joiner = joiner

    def heading(self, level: int, text: str) -> None:
        self.flush()
        self.path = [(lv, h) for lv, h in self.path if lv < level] + [(level, text)]

    def add(self, text: str) -> None:
        self.buf.append(text)

    def flush(self) -> None:
        body = self.joiner.join(self.buf).strip()
        if body:
            self.sections.append(Section(body, None, " > ".join(h for _, h in self.path) or None))
        self.buf = []

    def finish(self) -> list[Section]:
        self.flush()
        return self.sections


_HEADING = re.compile(r"^(#{1,6})\s+(.*?)\s*#*\s*$")
_FENCE = re.compile(r"^\s*(```|~~~)")


def _markdown_sections(text: str) -> list[Section]:
    """Split at ATX headings (not inside code fences); a section's heading is its heading path."""
    out = _Sections()
    in_fence = False
    for line in text.replace("\r\n", "\n").split("\n"):
        if _FENCE.match(line):
            in_fence = not in_fence
        m = None if in_fence else _HEADING.match(line)
        if m:
            out.heading(len(m.group(1)), m.group(2).strip())
        else:
            out.add(line)
    return out.finish()


# --------------------------------------------------------------------------- FAQ files

def _pick(record: dict, keys: tuple[str, ...]) -> str | None:
    lowered = {str(k).strip().lower(): v for k, v in record.items()}
    for key in keys:
        value = lowered.get(key)
        if isinstance(value, list):
            value = "\n".join(str(v) for v in value if v)
        if value is not None and str(value).strip():
            return str(value).strip()
    return None


def _qa_records(records: list) -> list[Section]:
    sections = []
    for rec in records:
        if not isinstance(rec, dict):
            continue
        q, a = _pick(rec, QUESTION_KEYS), _pick(rec, ANSWER_KEYS)
        if q and a:
            sections.append(Section(f"Q: {q}\nA: {a}", None, q))
    return sections


def _faq_sections(suffix: str, text: str) -> list[Section]:
    if suffix == ".csv":
        try:
            dialect = csv.Sniffer().sniff(text[:4096], delimiters=",;\t")
        except csv.Error:
            dialect = csv.excel
        try:  # newline="": the csv module wants line splitting left to it (a lone \r ends a row)
            rows = list(csv.DictReader(io.StringIO(text, newline=""), dialect=dialect))
        except csv.Error:  # not parseable as CSV at all: still text
            return _paragraph_sections(text)
        sections = _qa_records(rows)
        if sections:
            return sections
        # A CSV that is not an FAQ is still text: one line per row, "column: value".
        lines = ["; ".join(f"{k}: {v}" for k, v in row.items() if k and v) for row in rows]
        return _paragraph_sections("\n".join(line for line in lines if line))
    if suffix == ".jsonl":
        records = []
        for n, line in enumerate(text.splitlines(), start=1):
            if not line.strip():
                continue
            try:
                records.append(json.loads(line))
            except ValueError:
                raise IngestError(f"invalid JSON on line {n}") from None
    else:
        try:
            data = json.loads(text)
        except ValueError as exc:
            raise IngestError(f"invalid JSON: {exc.msg} (line {exc.lineno})") from None
        records = _find_record_list(data)
    sections = _qa_records(records)
    if not sections:
        raise IngestError("no question/answer pairs (expected 'question' and 'answer' fields)")
    return sections


def _find_record_list(data) -> list:
    """A list of objects at the top level or under any key ({"faq": [...]}, {"items": [...]})."""
    if isinstance(data, list):
        return data
    if isinstance(data, dict):
        for value in data.values():
            found = _find_record_list(value)
            if found and any(isinstance(r, dict) for r in found):
                return found
    return []


# --------------------------------------------------------------------------- HTML

_HTML_DROP = ["script", "style", "noscript", "nav", "header", "footer", "template", "svg", "form", "aside"]
_HTML_HEADINGS = {"h1", "h2", "h3", "h4", "h5", "h6"}
_HTML_BLOCKS = {"p", "li", "pre", "blockquote", "td", "th", "dd", "dt", "figcaption", "caption"}


def _html_sections(text: str) -> list[Section]:
    from bs4 import BeautifulSoup

    soup = BeautifulSoup(text, "html.parser")
    for tag in soup(_HTML_DROP):
        tag.decompose()
    root = soup.body or soup
    out = _Sections()
    for el in root.find_all(list(_HTML_HEADINGS | _HTML_BLOCKS | {"tr"})):
        name = el.name
        if name in _HTML_HEADINGS:
            out.heading(int(name[1]), el.get_text(" ", strip=True))
        elif name == "tr":
            cells = [c.get_text(" ", strip=True) for c in el.find_all(["td", "th"])]
            if any(cells):
                out.add(" | ".join(cells))
        elif name in ("td", "th"):
            continue  # already taken with their row
        elif el.find_parent(list(_HTML_BLOCKS - {"td", "th"})) is None:
            # nested blocks (a <p> in an <li>) are taken once, by the outermost block
            words = el.get_text(" ", strip=True)
            if words:
                out.add(words)
    sections = out.finish()
    if not sections:  # markup without block tags: fall back to all visible text
        return _paragraph_sections(root.get_text("\n", strip=True))
    return sections


# --------------------------------------------------------------------------- DOCX

def _load_docx(path: Path, data: bytes) -> Document:
    try:
        import docx

        d = docx.Document(io.BytesIO(data))
    except Exception as exc:  # noqa: BLE001 - python-docx raises many kinds on bad zips/xml
        raise IngestError(f"not a readable .docx file ({type(exc).__name__})") from None
    out = _Sections(joiner="\n\n")
    for para in d.paragraphs:
        style = (para.style.name if para.style is not None else "") or ""
        text = para.text.strip()
        if not text:
            continue
        level = _docx_heading_level(style)
        if level:
            out.heading(level, text)
        else:
            out.add(text)
    sections = out.finish()
    for table in d.tables:
        rows = [" | ".join(c.text.strip() for c in row.cells) for row in table.rows]
        body = "\n".join(r for r in rows if r.strip(" |"))
        if body:
            sections.append(Section(body, None, "Table"))
    return Document(str(path), "docx", sections)


def _docx_heading_level(style: str) -> int:
    if style == "Title":
        return 1
    m = re.match(r"Heading (\d)", style)
    return int(m.group(1)) if m else 0


# --------------------------------------------------------------------------- PDF

def _load_pdf(path: Path, data: bytes) -> Document:
    import logging

    import pdfplumber

    # pdfminer logs a warning per odd object; a hostile PDF would flood the terminal.
    logging.getLogger("pdfminer").setLevel(logging.ERROR)
    if not data.startswith(b"%PDF"):
        raise IngestError("not a PDF file (missing %PDF header)")
    try:
        with pdfplumber.open(io.BytesIO(data)) as pdf:
            pages = [_pdf_page_lines(page) for page in pdf.pages]
    except Exception as exc:  # noqa: BLE001 - pdfminer raises a zoo of exception types
        # pdfplumber wraps pdfminer's errors: look at the wrapped one too
        inner = exc.args[0] if exc.args and isinstance(exc.args[0], Exception) else exc
        name = type(inner).__name__
        if "Password" in name or "Encrypt" in name or "encrypt" in str(inner).lower():
            raise IngestError("encrypted PDF (password protected)") from None
        raise IngestError(f"corrupt or unreadable PDF ({name})") from None
    sizes = sorted(size for lines in pages for _, size in lines)
    if not sizes:
        raise IngestError("PDF has no text layer (scanned images?)")
    body_size = sizes[len(sizes) // 2]
    sections: list[Section] = []
    heading: str | None = None
    for page_no, lines in enumerate(pages, start=1):
        buf: list[str] = []
        for text, size in lines:
            # A short line set clearly larger than the body text is a heading.
            if size >= body_size * 1.15 and len(text) < 120:
                if buf:
                    sections.append(Section("\n".join(buf), page_no, heading))
                    buf = []
                heading = text
            else:
                buf.append(text)
        if buf:
            sections.append(Section("\n".join(buf), page_no, heading))
    return Document(str(path), "pdf", sections)


def _pdf_page_lines(page) -> list[tuple[str, float]]:
    out = []
    for line in page.extract_text_lines(return_chars=True):
        text = line["text"].strip()
        chars = line.get("chars") or []
        if not text or not chars:
            continue
        size = sum(c.get("size", 0) for c in chars) / len(chars)
        out.append((text, round(size, 1)))
    return out
