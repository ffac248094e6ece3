"""What the Office formats (.docx, .pptx, .xlsx) share: they are zip files, and a password turns
them into something else. Checked before a library unpacks anything, so that a zip bomb or an
encrypted file is one clear line instead of a memory blow-up or a library's puzzling exception."""

from __future__ import annotations

import io
import zipfile

from ..errors import IngestError
from .options import ReadOptions

# Compound File Binary: the container of encrypted Office files and of the old .doc/.xls/.ppt
OLE_MAGIC = b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1"
# the stream that holds the real document of a password-protected one (its name is UTF-16)
ENCRYPTED_STREAM = "EncryptedPackage".encode("utf-16-le")
# members smaller than this may compress as well as they like (tiny XML parts do)
RATIO_CHECK_FROM_BYTES = 16 << 20


def check_office_container(data: bytes, kind: str, options: ReadOptions) -> None:
    """Raise IngestError unless `data` is a zip that unpacks within the caps of `options`."""
    if data.startswith(OLE_MAGIC):
        if ENCRYPTED_STREAM in data:
            raise IngestError(f"password-protected {kind} file (remove the password to index it)")
        raise IngestError(f"old binary Office format, not {kind} (save it as {kind} to index it)")
    try:
        members = zipfile.ZipFile(io.BytesIO(data)).infolist()
    except (zipfile.BadZipFile, OSError, ValueError, EOFError):
        raise IngestError(f"not a readable {kind} file (corrupt zip container)") from None
    if len(members) > options.max_zip_members:
        raise IngestError(f"{kind} container holds {len(members):,} parts (limit {options.max_zip_members:,})")
    # zipfile never unpacks more than a member's declared size, so the declared sizes bound the work
    total = sum(m.file_size for m in members)
    if total > options.max_unpacked_bytes:
        raise IngestError(f"{kind} container unpacks to {total / (1 << 20):,.0f} MB "
                          f"(limit {options.max_unpacked_bytes / (1 << 20):,.0f} MB): zip bomb or data dump")
    for m in members:
        if m.file_size > RATIO_CHECK_FROM_BYTES and m.file_size > options.max_compression_ratio * max(1, m.compress_size):
            raise IngestError(f"{kind} container part {m.filename} unpacks {m.file_size // max(1, m.compress_size):,}x "
                              f"its stored size (zip bomb; limit {options.max_compression_ratio}x)")
