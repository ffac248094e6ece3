"""Plain text files, and the decoding of text of unknown encoding that every text format shares."""

from __future__ import annotations

from pathlib import Path

from ..errors import IngestError
from .document import Document, paragraph_sections
from .options import ReadOptions

SUFFIXES = {".txt", ".text", ".log", ".rst"}


def load(path: Path, data: bytes, options: ReadOptions) -> Document:
    text, encoding = decode_text(data)
    return Document(str(path), "text", paragraph_sections(text), encoding)


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
