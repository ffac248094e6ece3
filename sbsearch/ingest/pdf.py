"""PDF (PDFium, through pypdfium2): page numbers kept, headings recognised by font size; pages
without a usable text layer (scans, faxes, a layer of unmapped glyphs) are read by OCR.

PDFium reads a page's text ~20-30x faster than pdfplumber (pdfminer's layout analysis in Python),
which made PDF parsing the larger part of a first index of PDF-heavy folders (benchmarks/indexing.py).
Lines are rebuilt the way pdfplumber built them: text segments whose tops lie within
LINE_TOLERANCE points are one line, left to right, lines top to bottom; a table row stays one line.
PDFium is not thread-safe: every call into it holds PDFIUM_LOCK."""

from __future__ import annotations

import functools
import threading
from pathlib import Path

from ..errors import IngestError
from ..hashing import sha256_bytes
from .document import Document, Section
from .ocr import OCR_UNAVAILABLE, render_scale, readable
from .options import ReadOptions

SUFFIXES = {".pdf"}
LINE_TOLERANCE = 3.0  # points; pdfplumber's y_tolerance
PDFIUM_LOCK = threading.RLock()


def load(path: Path, data: bytes, options: ReadOptions) -> Document:
    if not data.startswith(b"%PDF"):
        raise IngestError("not a PDF file (missing %PDF header)")
    with PDFIUM_LOCK:
        pages = _read_pages(data)
    no_layer = [n for n, lines in enumerate(pages, start=1) if not lines]
    garbage = [n for n, lines in enumerate(pages, start=1) if lines and not readable(" ".join(t for t, _ in lines))]
    warnings: list[str] = []
    ocr_text: dict[int, str] = {}
    if no_layer or garbage:
        if options.ocr.available:
            with _PageImages(data) as images:
                ocr_text = options.ocr.read_pages(sha256_bytes(data),
                                                  {n: functools.partial(images.render, n) for n in no_layer + garbage})
        else:
            if no_layer:
                warnings.append(f"{_pages(no_layer)}: no text layer, {OCR_UNAVAILABLE}")
            if garbage:
                warnings.append(f"{_pages(garbage)}: unreadable text layer, {OCR_UNAVAILABLE}")
    for n in garbage:
        pages[n - 1] = []
    sections = _sections(pages)
    for n, text in sorted(ocr_text.items()):
        if readable(text):
            sections.append(Section(text, n))
    sections.sort(key=lambda s: s.page)  # stable: a page's own sections keep their order
    if not sections:
        if warnings:
            raise IngestError("; ".join(warnings))
        if no_layer:
            raise IngestError("PDF has no text layer and OCR found no readable text")
        if garbage:
            raise IngestError("unreadable text layer (unmapped glyphs or symbols) and OCR found no readable text")
        raise IngestError("PDF has no pages")
    return Document(str(path), "pdf", sections, warnings=warnings)


def _pages(numbers: list[int]) -> str:
    return ("page " if len(numbers) == 1 else "pages ") + ", ".join(map(str, numbers))


class _PageImages:
    """Renders pages of one PDF (pdfium, opened on the first page asked for, not at all when
    every page comes from the OCR cache)."""

    def __init__(self, data: bytes):
        self.data = data
        self.pdf = None

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        if self.pdf is not None:
            with PDFIUM_LOCK:
                self.pdf.close()

    def render(self, number: int):
        import pypdfium2

        with PDFIUM_LOCK:
            return self._render(pypdfium2, number)

    def _render(self, pypdfium2, number: int):
        try:
            if self.pdf is None:
                self.pdf = pypdfium2.PdfDocument(self.data)
            page = self.pdf[number - 1]
            return page.render(scale=render_scale(*page.get_size()), grayscale=True).to_pil()
        except Exception as exc:  # noqa: BLE001 - a page whose text was read may still fail to render
            raise IngestError(f"cannot render page {number} for OCR ({type(exc).__name__})") from None


def _sections(pages: list[list[tuple[str, float]]]) -> list[Section]:
    sizes = sorted(size for lines in pages for _, size in lines)
    if not sizes:
        return []
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
    return sections


def _read_pages(data: bytes) -> list[list[tuple[str, float]]]:
    """(line, mean font size) of each page, in reading order."""
    import pypdfium2

    try:
        pdf = pypdfium2.PdfDocument(data)
    except pypdfium2.PdfiumError as exc:
        if "password" in str(exc).lower():
            raise IngestError("encrypted PDF (password protected)") from None
        raise IngestError(f"corrupt or unreadable PDF ({str(exc).strip() or type(exc).__name__})") from None
    try:
        return [_page_lines(pdf[n]) for n in range(len(pdf))]
    except pypdfium2.PdfiumError as exc:
        raise IngestError(f"corrupt or unreadable PDF ({str(exc).strip() or type(exc).__name__})") from None
    finally:
        pdf.close()


def _page_lines(page) -> list[tuple[str, float]]:
    import pypdfium2.raw as pdfium_c

    textpage = page.get_textpage()
    try:
        segments = []  # (top, left, text, font sizes of its visible characters)
        chars: list[str] = []
        sizes: list[float] = []
        top = left = 0.0

        def close_segment() -> None:
            text = _join_surrogates(chars).strip()
            if text and sizes:
                segments.append((top, left, text, sizes[:]))

        for i in range(textpage.count_chars()):
            ch = chr(pdfium_c.FPDFText_GetUnicode(textpage.raw, i))
            if ch in "\r\n":
                if ch == "\n":  # PDFium ends each of its lines with a generated \r\n
                    close_segment()
                    chars, sizes = [], []
                continue
            if ch == "\x00":
                continue
            if not sizes and not ch.isspace():
                left, _, _, top = textpage.get_charbox(i)
            chars.append(ch)
            if not ch.isspace():
                sizes.append(pdfium_c.FPDFText_GetFontSize(textpage.raw, i))
        close_segment()
    finally:
        textpage.close()
        page.close()
    segments.sort(key=lambda seg: -seg[0])  # PDF y grows upwards: top of the page first
    lines: list[list[tuple]] = []
    for seg in segments:
        if lines and abs(lines[-1][0][0] - seg[0]) <= LINE_TOLERANCE:
            lines[-1].append(seg)
        else:
            lines.append([seg])
    out = []
    for line in lines:
        line.sort(key=lambda seg: seg[1])
        sizes = [size for seg in line for size in seg[3]]
        out.append((" ".join(seg[2] for seg in line), round(sum(sizes) / len(sizes), 1)))
    return out


def _join_surrogates(chars: list[str]) -> str:
    """PDFium reports characters outside the BMP as UTF-16 surrogate pairs: join them, and drop
    a lone surrogate (it cannot be stored as UTF-8)."""
    text = "".join(chars)
    return text.encode("utf-16", "surrogatepass").decode("utf-16", "ignore") if any(
        "\ud800" <= c <= "\udfff" for c in text) else text
