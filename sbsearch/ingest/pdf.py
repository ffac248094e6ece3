"""PDF (pdfplumber): page numbers kept, headings recognised by font size."""

from __future__ import annotations

import io
from pathlib import Path

from ..errors import IngestError
from .document import Document, Section

SUFFIXES = {".pdf"}


def load(path: Path, data: bytes) -> Document:
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
