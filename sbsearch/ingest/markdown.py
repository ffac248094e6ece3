"""Markdown: sections split at ATX headings, each under its heading path."""

from __future__ import annotations

import re
from pathlib import Path

from .document import Document, Section, SectionBuilder
from .options import ReadOptions
from .text import decode_text

SUFFIXES = {".md", ".markdown"}


def load(path: Path, data: bytes, options: ReadOptions) -> Document:
    text, encoding = decode_text(data)
    return Document(str(path), "markdown", _markdown_sections(text), encoding)


_HEADING = re.compile(r"^(#{1,6})\s+(.*?)\s*#*\s*$")
_FENCE = re.compile(r"^\s*(```|~~~)")


def _markdown_sections(text: str) -> list[Section]:
    """Split at ATX headings (not inside code fences); a section's heading is its heading path."""
    out = SectionBuilder()
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
