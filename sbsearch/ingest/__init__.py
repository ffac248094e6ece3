"""Files into Documents: one loader per format, chosen by the file's suffix.

A loader is a module with SUFFIXES and load(path, data, options) -> Document; it either returns a
Document with some text or raises IngestError with a one-line reason (corrupt PDF, binary data, no
question/answer fields, a zip bomb, …), which the indexer records before going on. `options`
(ReadOptions) carries the OCR engine and the caps on what one file may cost. A Document may carry
warnings (read in part, and why) and attachments (files inside it, read by the indexer as
documents of their own). A new format is a new module listed in LOADERS. No model is needed here.
"""

from __future__ import annotations

from pathlib import Path
from typing import Callable

from ..errors import IngestError
from . import faq, html, image, mail, markdown, pdf, sheets, slides, text, word
from .document import Attachment, Document, Section
from .options import ReadOptions
from .text import decode_text

__all__ = ["Attachment", "Document", "Section", "ReadOptions", "decode_text", "is_supported", "load_document",
           "LOADERS", "SUPPORTED_SUFFIXES"]

Loader = Callable[[Path, bytes, ReadOptions], Document]

LOADERS: dict[str, Loader] = {suffix: module.load
                              for module in (text, markdown, faq, html, word, pdf, image, slides, sheets, mail)
                              for suffix in module.SUFFIXES}
SUPPORTED_SUFFIXES = frozenset(LOADERS)


def is_supported(path: Path) -> bool:
    return path.suffix.lower() in LOADERS


def load_document(path: Path, data: bytes | None = None, options: ReadOptions | None = None) -> Document:
    """Read one file. `data` lets the indexer pass bytes it already read (and hashed)."""
    suffix = path.suffix.lower()
    loader = LOADERS.get(suffix)
    if loader is None:
        raise IngestError(f"unsupported file type {suffix or '(none)'}")
    if data is None:
        try:
            data = path.read_bytes()
        except OSError as exc:
            raise IngestError(f"cannot read: {exc.strerror or exc}") from None
    if not data.strip():
        raise IngestError("empty file")
    doc = loader(path, data, options or ReadOptions())
    doc.sections = [s for s in doc.sections if s.text.strip()]
    if not doc.sections:
        raise IngestError("no text found")
    return doc
