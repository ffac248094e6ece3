"""Saved e-mails: .eml (standard library) and Outlook .msg (extract-msg).

The subject is the heading; From, To, Cc and Date open the text (a search for "Birte's mail about
parking" finds them); then the body, plain text preferred, HTML reduced to its text. Attachments
are handed back as Document.attachments: the indexer reads each one of a supported type as a
document of its own, under the message (path `message.eml#attachment.pdf`). An attachment larger
than ReadOptions.max_attachment_bytes is reported and not unpacked.
"""

from __future__ import annotations

from pathlib import Path

from ..errors import IngestError
from .document import Attachment, Document, Section, paragraph_sections
from .html import html_text
from .options import ReadOptions

SUFFIXES = {".eml", ".msg"}
LOCATION = "mail"
HEADER_FIELDS = ("From", "To", "Cc", "Date")


def load(path: Path, data: bytes, options: ReadOptions) -> Document:
    if path.suffix.lower() == ".msg":
        return _load_msg(path, data, options)
    return _load_eml(path, data, options)


def _message_document(path: Path, subject: str | None, headers: dict[str, str], body: str,
                      attachments: list[Attachment]) -> Document:
    meta = "\n".join(f"{k}: {v}" for k, v in headers.items() if v)
    subject = " ".join((subject or "").split()) or None
    sections = paragraph_sections(f"{meta}\n\n{body}" if meta else body, None, subject)
    if not sections and subject:
        sections = [Section(subject, None, subject)]
    for s in sections:
        s.location = LOCATION
    return Document(str(path), "email", sections, attachments=attachments)


def _too_large(name: str, size: int, options: ReadOptions) -> Attachment:
    return Attachment(name, None, f"attachment too large ({size / (1 << 20):.0f} MB; limit "
                                  f"{options.max_attachment_bytes / (1 << 20):.0f} MB)")


def _unique(name: str, taken: set[str]) -> str:
    """Two attachments may share a name; their documents may not."""
    name = name.replace("/", "_").replace("\\", "_").strip() or "attachment"
    candidate, n = name, 1
    while candidate in taken:
        n += 1
        stem, dot, suffix = name.rpartition(".")
        candidate = f"{stem} ({n}).{suffix}" if dot else f"{name} ({n})"
    taken.add(candidate)
    return candidate


# ------------------------------------------------------------------------------------------ .eml

def _load_eml(path: Path, data: bytes, options: ReadOptions) -> Document:
    import email
    from email import policy

    try:
        message = email.message_from_bytes(data, policy=policy.default)
        headers = {k: _header(message, k) for k in HEADER_FIELDS}
        subject = _header(message, "Subject")
    except Exception as exc:  # noqa: BLE001 - the parser is lenient, header decoding less so
        raise IngestError(f"not a readable e-mail ({type(exc).__name__})") from None
    # The parser accepts any bytes as a message body; a message has headers.
    if not subject and not any(headers.values()):
        raise IngestError("not an e-mail message (no Subject, From, To or Date header)")
    return _message_document(path, subject, headers, _eml_body(message), _eml_attachments(message, options))


def _header(message, name: str) -> str:
    value = message.get(name)
    return " ".join(str(value).split()) if value is not None else ""


def _eml_body(message) -> str:
    part = message.get_body(preferencelist=("plain", "html"))
    if part is None:
        return ""
    try:
        content = part.get_content()
    except (LookupError, ValueError, AssertionError):  # unknown charset, broken transfer encoding
        content = (part.get_payload(decode=True) or b"").decode("utf-8", "replace")
    if not isinstance(content, str):
        return ""
    return html_text(content) if part.get_content_type() == "text/html" else content


def _eml_attachments(message, options: ReadOptions) -> list[Attachment]:
    out: list[Attachment] = []
    taken: set[str] = set()
    for number, part in enumerate(message.iter_attachments(), start=1):
        if number > options.max_attachments:
            break
        if part.get_content_type() == "message/rfc822":
            inner = part.get_payload(0) if part.is_multipart() else None
            name = _unique((part.get_filename() or f"forwarded-{number}") + ".eml", taken)
            out.append(Attachment(name, inner.as_bytes() if inner is not None else b""))
            continue
        name = _unique(part.get_filename() or f"attachment-{number}", taken)
        raw = part.get_payload()
        # base64 grows data by a third (plus line breaks): the size is known before decoding
        size = (len(raw) - raw.count("\n") - raw.count("\r")) * 3 // 4 if isinstance(raw, str) else 0
        if size > options.max_attachment_bytes:
            out.append(_too_large(name, size, options))
            continue
        out.append(Attachment(name, part.get_payload(decode=True) or b""))
    return out


# ------------------------------------------------------------------------------------------ .msg

def _load_msg(path: Path, data: bytes, options: ReadOptions) -> Document:
    import logging

    import extract_msg

    # extract-msg logs every odd property it meets; a hostile file would flood the terminal
    logging.getLogger("extract_msg").setLevel(logging.CRITICAL)
    try:
        message = extract_msg.openMsg(data)
    except Exception as exc:  # noqa: BLE001 - olefile and extract-msg raise many kinds
        raise IngestError(f"not a readable Outlook .msg file ({type(exc).__name__})") from None
    try:
        headers = {"From": message.sender, "To": message.to, "Cc": message.cc,
                   "Date": message.date.isoformat(sep=" ") if hasattr(message.date, "isoformat") else message.date}
        headers = {k: " ".join(str(v).split()) for k, v in headers.items() if v}
        body = message.body or ""
        if not body.strip() and message.htmlBody:
            body = html_text(message.htmlBody.decode("utf-8", "replace"))
        return _message_document(path, message.subject, headers, body, _msg_attachments(message, options))
    except IngestError:
        raise
    except Exception as exc:  # noqa: BLE001 - properties are decoded lazily, and may be broken
        raise IngestError(f"not a readable Outlook .msg file ({type(exc).__name__})") from None
    finally:
        message.close()


def _msg_attachments(message, options: ReadOptions) -> list[Attachment]:
    out: list[Attachment] = []
    taken: set[str] = set()
    for number, attachment in enumerate(message.attachments, start=1):
        if number > options.max_attachments:
            break
        data = attachment.data
        if not isinstance(data, bytes):  # an embedded message or an OLE object: not a file
            continue
        name = _unique(attachment.longFilename or attachment.shortFilename or f"attachment-{number}", taken)
        if len(data) > options.max_attachment_bytes:
            out.append(_too_large(name, len(data), options))
        else:
            out.append(Attachment(name, data))
    return out
