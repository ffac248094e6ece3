"""Builders for real test documents (PDF via reportlab, DOCX via python-docx), written at test time."""

from __future__ import annotations

from pathlib import Path


def make_pdf(path: Path, pages: list[tuple[str, list[str]]], encrypt: str | None = None) -> Path:
    """One page per (heading, paragraphs); headings set in a larger font, as real handbooks are."""
    from reportlab.lib.pagesizes import A4
    from reportlab.pdfgen import canvas

    c = canvas.Canvas(str(path), pagesize=A4, encrypt=encrypt, invariant=1)
    for heading, paragraphs in pages:
        y = 800
        c.setFont("Helvetica-Bold", 18)
        c.drawString(60, y, heading)
        y -= 36
        c.setFont("Helvetica", 10)
        for para in paragraphs:
            for line in _wrap(para, 95):
                c.drawString(60, y, line)
                y -= 14
            y -= 10
        c.showPage()
    c.save()
    return path


def _wrap(text: str, width: int) -> list[str]:
    lines, cur = [], ""
    for word in text.split():
        if len(cur) + len(word) + 1 > width:
            lines.append(cur)
            cur = word
        else:
            cur = f"{cur} {word}".strip()
    if cur:
        lines.append(cur)
    return lines


def make_docx(path: Path, sections: list[tuple[str, list[str]]]) -> Path:
    import docx

    d = docx.Document()
    d.add_heading("Policy", level=1)
    for heading, paragraphs in sections:
        d.add_heading(heading, level=2)
        for p in paragraphs:
            d.add_paragraph(p)
    d.save(str(path))
    return path
