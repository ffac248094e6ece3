"""Word .docx files (python-docx): heading styles kept as a section path, tables as rows."""

from __future__ import annotations

import io
import re
from pathlib import Path

from ..errors import IngestError
from .document import Document, Section, SectionBuilder
from .office import check_office_container
from .options import ReadOptions

SUFFIXES = {".docx"}


def load(path: Path, data: bytes, options: ReadOptions) -> Document:
    check_office_container(data, ".docx", options)
    try:
        import docx

        d = docx.Document(io.BytesIO(data))
    except Exception as exc:  # noqa: BLE001 - python-docx raises many kinds on bad zips/xml
        raise IngestError(f"not a readable .docx file ({type(exc).__name__})") from None
    out = SectionBuilder(joiner="\n\n")
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
