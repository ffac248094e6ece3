"""Builders for real test documents, written at test time (and by scripts/make_sample_formats.py
for the committed samples): PDF via reportlab, scans via pdfium and Pillow, DOCX via python-docx,
PPTX via python-pptx, XLSX via openpyxl, e-mails via the standard library, Outlook .msg via
aspose-email-foss."""

from __future__ import annotations

import io
from pathlib import Path

JAPANESE_FONTS = ["/usr/share/fonts/opentype/ipafont-gothic/ipag.ttf",
                  "/usr/share/fonts/truetype/fonts-japanese-gothic.ttf",
                  "/usr/share/fonts/opentype/noto/NotoSansCJK-Regular.ttc"]


def make_pdf(path: Path, pages: list[tuple[str, list[str]]], encrypt: str | None = None,
             japanese: bool = False) -> Path:
    """One page per (heading, paragraphs); headings set in a larger font, as real handbooks are.
    japanese: set in a Japanese TrueType font (fonts-ipafont-gothic)."""
    path = Path(path)
    path.write_bytes(pdf_bytes(pages, encrypt, japanese))
    return path


def pdf_bytes(pages: list[tuple[str, list[str]]], encrypt: str | None = None, japanese: bool = False) -> bytes:
    from reportlab.lib.pagesizes import A4
    from reportlab.pdfgen import canvas

    bold, regular, width, line_gap = "Helvetica-Bold", "Helvetica", 95, 14
    if japanese:
        bold = regular = _japanese_font()
        width, line_gap = 44, 18
    out = io.BytesIO()
    c = canvas.Canvas(out, pagesize=A4, encrypt=encrypt, invariant=1)
    for heading, paragraphs in pages:
        y = 800
        c.setFont(bold, 18)
        c.drawString(60, y, heading)
        y -= 36
        c.setFont(regular, 10 if not japanese else 12)
        for para in paragraphs:
            for line in _wrap(para, width):
                c.drawString(60, y, line)
                y -= line_gap
            y -= 10
        c.showPage()
    c.save()
    return out.getvalue()


def _japanese_font() -> str:
    from reportlab.pdfbase import pdfmetrics
    from reportlab.pdfbase.ttfonts import TTFont

    if "Japanese" not in pdfmetrics.getRegisteredFontNames():
        found = next((f for f in JAPANESE_FONTS if Path(f).exists()), None)
        if found is None:
            raise RuntimeError("no Japanese font: apt-get install fonts-ipafont-gothic")
        pdfmetrics.registerFont(TTFont("Japanese", found, subfontIndex=0))
    return "Japanese"


def _wrap(text: str, width: int) -> list[str]:
    """Lines of at most `width` characters, broken at spaces; text without spaces (Japanese) is
    broken anywhere."""
    lines, cur = [], ""
    for word in text.split():
        while len(word) > width:
            if cur:
                lines.append(cur)
                cur = ""
            lines.append(word[:width])
            word = word[width:]
        if len(cur) + len(word) + 1 > width:
            lines.append(cur)
            cur = word
        else:
            cur = f"{cur} {word}".strip()
    if cur:
        lines.append(cur)
    return lines


def make_scan(path: Path, pages: list[tuple[str, list[str]]], japanese: bool = False, dpi: int = 200,
              seed: int = 0) -> Path:
    """A scanned document: the pages typeset, rendered to grey images, tilted a little and
    speckled like a scanner's output, and saved as an image-only PDF (no text layer) or, for a
    .png/.tif/.jpg path, as that image (a .tif holds every page)."""
    import random

    import numpy as np
    import pypdfium2
    from PIL import Image

    rng = random.Random(seed)
    noise = np.random.default_rng(seed)
    doc = pypdfium2.PdfDocument(pdf_bytes(pages, japanese=japanese))
    images = []
    for page in doc:
        img = page.render(scale=dpi / 72, grayscale=True).to_pil().convert("L")
        img = img.rotate(rng.uniform(-0.8, 0.8), resample=Image.BICUBIC, fillcolor=255)
        pixels = np.asarray(img, dtype=np.int16) + noise.normal(0, 10, (img.height, img.width)).astype(np.int16)
        images.append(Image.fromarray(np.clip(pixels, 0, 255).astype(np.uint8), "L"))
    doc.close()
    path = Path(path)
    suffix = path.suffix.lower()
    if suffix == ".pdf":
        fixed = "D:20250301090000Z"  # reproducible files: no "now" in them
        images[0].save(path, "PDF", resolution=dpi, save_all=True, append_images=images[1:],
                       creationDate=fixed, modDate=fixed)
    elif suffix in (".tif", ".tiff"):
        images[0].save(path, save_all=True, append_images=images[1:], dpi=(dpi, dpi), compression="tiff_deflate")
    else:
        images[0].save(path, dpi=(dpi, dpi))
    return path


def make_image_pdf(path: Path, pages: list, invisible_text: str | None = None) -> Path:
    """A PDF of text pages (a str: one line set in Helvetica) and image pages (a Path: the image
    fills the page), as a scanner's software or a fax gateway writes them. invisible_text lies
    over every image page as a hidden text layer (what an OCR tool adds; garbage when it failed)."""
    from reportlab.lib.pagesizes import A4
    from reportlab.pdfgen import canvas

    c = canvas.Canvas(str(path), pagesize=A4, invariant=1)
    for page in pages:
        if isinstance(page, str):
            c.setFont("Helvetica", 11)
            c.drawString(60, 780, page)
        else:
            c.drawImage(str(page), 0, 0, *A4)
            if invisible_text:
                t = c.beginText(60, 400)
                t.setTextRenderMode(3)
                t.setFont("Helvetica", 10)
                t.textLine(invisible_text)
                c.drawText(t)
        c.showPage()
    c.save()
    return Path(path)


def make_pptx(path: Path, slides: list[dict]) -> Path:
    """slides: {"title", "bullets": [...], "notes": str, "table": [[header...], [row...]...]}."""
    from pptx import Presentation
    from pptx.util import Inches

    deck = Presentation()
    for spec in slides:
        slide = deck.slides.add_slide(deck.slide_layouts[1 if spec.get("bullets") else 5])
        slide.shapes.title.text = spec["title"]
        if spec.get("bullets"):
            frame = slide.placeholders[1].text_frame
            frame.text = spec["bullets"][0]
            for bullet in spec["bullets"][1:]:
                frame.add_paragraph().text = bullet
        if spec.get("table"):
            rows = spec["table"]
            shape = slide.shapes.add_table(len(rows), len(rows[0]), Inches(0.5), Inches(2), Inches(9), Inches(3))
            for r, row in enumerate(rows):
                for col, value in enumerate(row):
                    shape.table.cell(r, col).text = str(value)
        if spec.get("notes"):
            slide.notes_slide.notes_text_frame.text = spec["notes"]
    out = io.BytesIO()
    deck.core_properties.revision = 1
    deck.save(out)
    return _write_zip(path, out.getvalue())


def make_xlsx(path: Path, sheets: dict[str, list[list]], write_only: bool = False) -> Path:
    """sheets: name -> rows (lists of cell values); write_only streams rows (huge sheets)."""
    import datetime as dt

    import openpyxl

    book = openpyxl.Workbook(write_only=write_only)
    if not write_only:
        book.remove(book.active)
    for name, rows in sheets.items():
        sheet = book.create_sheet(name)
        for row in rows:
            sheet.append(row)
    book.properties.created = book.properties.modified = dt.datetime(2025, 3, 1, 9, 0)
    out = io.BytesIO()
    book.save(out)
    return _write_zip(path, out.getvalue())


def _write_zip(path: Path, data: bytes) -> Path:
    """Office files with fixed timestamps inside, so that a sample rebuilt is byte-identical."""
    import re
    import zipfile

    src = zipfile.ZipFile(io.BytesIO(data))
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", compression=zipfile.ZIP_DEFLATED) as dst:
        for info in src.infolist():
            fixed = zipfile.ZipInfo(info.filename, date_time=(2025, 3, 1, 9, 0, 0))
            fixed.compress_type = zipfile.ZIP_DEFLATED
            fixed.external_attr = 0o644 << 16
            part = src.read(info.filename)
            if info.filename == "docProps/core.xml":  # openpyxl stamps the time of saving
                part = re.sub(rb"(<dcterms:modified[^>]*>)[^<]*", rb"\g<1>2025-03-01T09:00:00Z", part)
            dst.writestr(fixed, part)
    path = Path(path)
    path.write_bytes(out.getvalue())
    return path


def make_email(subject: str, sender: str, to: str, date: str, body: str, html: str | None = None,
               attachments: list[tuple[str, bytes]] = (), message_id: str | None = None):
    """An EmailMessage (plain body, an HTML alternative when given, attachments as (name, bytes))."""
    import hashlib
    import mimetypes
    from email.message import EmailMessage

    msg = EmailMessage()
    msg["Subject"], msg["From"], msg["To"], msg["Date"] = subject, sender, to, date
    msg["Message-ID"] = message_id or f"<{hashlib.sha1(subject.encode()).hexdigest()[:16]}@halden-instruments.example>"
    msg.set_content(body)
    if html:
        msg.add_alternative(html, subtype="html")
    for name, data in attachments:
        kind = mimetypes.guess_type(name)[0] or "application/octet-stream"
        maintype, subtype = kind.split("/")
        msg.add_attachment(data, maintype=maintype, subtype=subtype, filename=name)
    for number, part in enumerate(msg.walk()):
        if part.is_multipart():  # the generator would pick random boundaries
            part.set_boundary(f"==halden-part-{number}==")
    return msg


def write_eml(path: Path, message) -> Path:
    from email import policy

    path = Path(path)
    path.write_bytes(message.as_bytes(policy=policy.SMTP))
    return path


def write_msg(path: Path, message) -> Path:
    """The same message as an Outlook .msg file."""
    from aspose.email_foss.msg import MapiMessage

    path = Path(path)
    path.write_bytes(MapiMessage.from_email_message(message).to_bytes())
    return path


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
