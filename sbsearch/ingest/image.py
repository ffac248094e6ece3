"""Images (.png, .jpg, .tif): read by OCR, one page per frame of a multi-page TIFF (faxes)."""

from __future__ import annotations

import functools
import io
import re
import warnings
from pathlib import Path

from ..errors import IngestError
from ..hashing import sha256_bytes
from .document import Document, Section
from .ocr import OCR_UNAVAILABLE, readable
from .options import ReadOptions

SUFFIXES = {".png", ".jpg", ".jpeg", ".tif", ".tiff"}


def load(path: Path, data: bytes, options: ReadOptions) -> Document:
    image = _open(data, options)
    width, height = image.size
    if width * height > options.max_image_pixels:
        raise _too_large(width * height, options)
    if not options.ocr.available:
        raise IngestError(f"image: no text layer, {OCR_UNAVAILABLE}")
    frames = min(getattr(image, "n_frames", 1), options.max_image_frames)
    texts = options.ocr.read_pages(sha256_bytes(data), {n: functools.partial(_frame, image, n, options)
                                                        for n in range(1, frames + 1)})
    multi_page = frames > 1
    sections = [Section(text, n if multi_page else None) for n, text in sorted(texts.items()) if readable(text)]
    if not sections:
        raise IngestError("OCR found no readable text in the image")
    doc_warnings = []
    if getattr(image, "n_frames", 1) > frames:
        doc_warnings.append(f"only the first {frames} of {image.n_frames} pages read (limit)")
    return Document(str(path), "image", sections, warnings=doc_warnings)


def _open(data: bytes, options: ReadOptions):
    from PIL import Image, UnidentifiedImageError

    # Pillow refuses images over twice its own limit when opening them (reading the header
    # only); ours is checked right after, with the size in the message.
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", Image.DecompressionBombWarning)
        try:
            return Image.open(io.BytesIO(data))
        except Image.DecompressionBombError as exc:
            found = re.search(r"\((\d+) pixels\)", str(exc))
            raise _too_large(int(found.group(1)) if found else None, options) from None
        except (UnidentifiedImageError, OSError, ValueError, SyntaxError) as exc:
            raise IngestError(f"not a readable image ({type(exc).__name__})") from None


def _frame(image, number: int, options: ReadOptions):
    from PIL import Image

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", Image.DecompressionBombWarning)
        try:
            image.seek(number - 1)
            width, height = image.size  # frames of one TIFF may differ in size
            if width * height > options.max_image_pixels:
                raise _too_large(width * height, options)
            return image.convert("L")
        except (OSError, ValueError, EOFError, SyntaxError) as exc:
            raise IngestError(f"corrupt image ({type(exc).__name__}: {exc})"[:200]) from None


def _too_large(pixels: int | None, options: ReadOptions) -> IngestError:
    size = f"{pixels:,} pixels" if pixels else "too many pixels"
    return IngestError(f"image too large ({size}; limit {options.max_image_pixels:,}): "
                       "decompression bomb or poster scan")
