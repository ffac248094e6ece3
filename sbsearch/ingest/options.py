"""What a loader is given besides the file: the OCR engine and the caps that keep one hostile file
from eating the machine. Each cap, when hit, is reported with the file (a warning when the file is
still indexed in part, the reason when it is refused)."""

from __future__ import annotations

from dataclasses import dataclass, field

from .ocr import Ocr


@dataclass
class ReadOptions:
    # pages without a usable text layer and images are read by it; without Tesseract they are
    # reported as OCR_UNAVAILABLE
    ocr: Ocr = field(default_factory=Ocr)
    # a spreadsheet is a document up to here; past it, a data dump (the rest is reported, not read)
    max_sheet_rows: int = 20_000
    max_sheet_columns: int = 200
    max_workbook_cells: int = 1_000_000
    # the size mail servers refuse above; a larger attachment is reported, not unpacked
    max_attachment_bytes: int = 25 << 20
    max_attachments: int = 100
    # an A3 page scanned at 600 dpi has 70 million pixels
    max_image_pixels: int = 100_000_000
    max_image_frames: int = 200
    # .pptx/.xlsx/.docx are zip files: what they may unpack to, in all and per byte stored
    max_unpacked_bytes: int = 1 << 30
    max_compression_ratio: int = 200
    max_zip_members: int = 10_000
