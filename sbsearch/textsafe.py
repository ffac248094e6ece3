"""Text that came from a document or a file name, made safe to write to a terminal or a log.

A document's text, a heading, a sheet's name or a file's name is data: written to a terminal as it
is, an escape sequence in it clears the screen, recolours or hides output, plants a hyperlink
(OSC 8) or writes the clipboard (OSC 52). Every face that writes such text to a terminal passes it
through visible() first: control characters (C0 but tab, and newline where asked; DEL; C1, 0x9b
CSI included) and the bidirectional overrides and isolates (which reorder what is shown) are
written as visible escapes (\\x1b, \\u202e), never sent. The rich markup of the terminal face is
escaped separately (sbsearch.cli.common.shown and cell).
"""

from __future__ import annotations

# U+202A-U+202E (embeddings, overrides), U+2066-U+2069 (isolates), U+2028/U+2029 (line and paragraph
# separators: a new line to some terminals)
_FORMAT = [0x2028, 0x2029, *range(0x202A, 0x202F), *range(0x2066, 0x206A)]
_CONTROL = [*range(0x00, 0x20), 0x7F, *range(0x80, 0xA0)]


def _escape_of(code: int) -> str:
    return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}"


_ONE_LINE = {code: _escape_of(code) for code in _CONTROL + _FORMAT if code != 0x09}
_LINES = {code: text for code, text in _ONE_LINE.items() if code != 0x0A}
# in JSON text: C0 is escaped by json.dumps already; the rest must be \u escapes to stay valid JSON
_JSON = {code: f"\\u{code:04x}" for code in [0x7F, *range(0x80, 0xA0), *_FORMAT]}


def visible(text, newlines: bool = False) -> str:
    """text with every control character shown as an escape (\\x1b): safe to write to a terminal.
    newlines=True keeps line breaks (a passage); by default they are shown too (a name, a one-line
    message). Tabs are kept."""
    if text is None:
        return ""
    return str(text).translate(_LINES if newlines else _ONE_LINE)


def json_visible(json_text: str) -> str:
    """JSON written with ensure_ascii=False, with the characters a terminal acts on (DEL, C1, the
    bidi overrides) as \\u escapes: the same JSON value, safe on a terminal (json.dumps already
    escapes C0, whatever ensure_ascii)."""
    return json_text.translate(_JSON)
