"""PDF (pdfplumber): page numbers kept, headings recognised by font size; pages without a usable
text layer (scans, faxes, a layer of unmapped glyphs) are read by OCR."""

from __future__ import annotations

import functools
import io
from pathlib import Path

from ..errors import IngestError
from ..hashing import sha256_bytes
from .document import Document, Section
from .ocr import OCR_UNAVAILABLE, render_scale, readable
from .options import ReadOptions

SUFFIXES = {".pdf"}


def load(path: Path, data: bytes, options: ReadOptions) -> Document:
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
            self.pdf.close()

    def render(self, number: int):
        import pypdfium2

        try:
            if self.pdf is None:
                self.pdf = pypdfium2.PdfDocument(self.data)
            page = self.pdf[number - 1]
            return page.render(scale=render_scale(*page.get_size()), grayscale=True).to_pil()
        except Exception as exc:  # noqa: BLE001 - pdfium reads what pdfminer read, but not always
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
