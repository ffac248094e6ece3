"""PowerPoint .pptx (python-pptx): one section per slide, the slide title as heading, text of
every shape (groups and tables included), then the speaker notes; the slide number is kept like
a page number."""

from __future__ import annotations

import io
from pathlib import Path

from ..errors import IngestError
from .document import Document, Section
from .office import check_office_container
from .options import ReadOptions

SUFFIXES = {".pptx"}


def load(path: Path, data: bytes, options: ReadOptions) -> Document:
    check_office_container(data, ".pptx", options)
    try:
        from pptx import Presentation

        deck = Presentation(io.BytesIO(data))
        sections = [_slide_section(number, slide) for number, slide in enumerate(deck.slides, start=1)]
    except IngestError:
        raise
    except Exception as exc:  # noqa: BLE001 - python-pptx raises many kinds on bad zips/xml
        raise IngestError(f"not a readable .pptx file ({type(exc).__name__})") from None
    return Document(str(path), "pptx", [s for s in sections if s is not None])


def _slide_section(number: int, slide) -> Section | None:
    title_shape = slide.shapes.title
    title = title_shape.text_frame.text.strip() if title_shape is not None and title_shape.has_text_frame else ""
    title_id = title_shape.shape_id if title_shape is not None else None
    lines = [text for shape in slide.shapes if shape.shape_id != title_id for text in _shape_texts(shape)]
    if slide.has_notes_slide and slide.notes_slide.notes_text_frame is not None:
        notes = slide.notes_slide.notes_text_frame.text.strip()
        if notes:
            lines.append(f"Speaker notes: {notes}")
    body = "\n".join(lines).strip() or title
    if not body:
        return None
    return Section(body, number, " ".join(title.split()) or None, f"slide {number}")


def _shape_texts(shape) -> list[str]:
    from pptx.enum.shapes import MSO_SHAPE_TYPE

    if shape.shape_type == MSO_SHAPE_TYPE.GROUP:
        return [text for inner in shape.shapes for text in _shape_texts(inner)]
    if getattr(shape, "has_table", False):
        rows = [" | ".join(cell.text.strip() for cell in row.cells) for row in shape.table.rows]
        return [r for r in rows if r.strip(" |")]
    if shape.has_text_frame:
        return [p.strip() for p in shape.text_frame.text.splitlines() if p.strip()]
    return []
