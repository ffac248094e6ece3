"""HTML: navigation, scripts and other boilerplate dropped; headings kept as a section path."""

from __future__ import annotations

from pathlib import Path

from .document import Document, Section, SectionBuilder, paragraph_sections
from .options import ReadOptions
from .text import decode_text

SUFFIXES = {".html", ".htm"}


def load(path: Path, data: bytes, options: ReadOptions) -> Document:
    text, encoding = decode_text(data)
    return Document(str(path), "html", _html_sections(text), encoding)


def html_text(markup: str) -> str:
    """The readable text of an HTML fragment (an e-mail's body), blocks as paragraphs."""
    return "\n\n".join(s.text for s in _html_sections(markup))


_HTML_DROP = ["script", "style", "noscript", "nav", "header", "footer", "template", "svg", "form", "aside"]
_HTML_HEADINGS = {"h1", "h2", "h3", "h4", "h5", "h6"}
_HTML_BLOCKS = {"p", "li", "pre", "blockquote", "td", "th", "dd", "dt", "figcaption", "caption"}


def _html_sections(text: str) -> list[Section]:
    from bs4 import BeautifulSoup

    soup = BeautifulSoup(text, "html.parser")
    for tag in soup(_HTML_DROP):
        tag.decompose()
    root = soup.body or soup
    out = SectionBuilder()
    for el in root.find_all(list(_HTML_HEADINGS | _HTML_BLOCKS | {"tr"})):
        name = el.name
        if name in _HTML_HEADINGS:
            out.heading(int(name[1]), el.get_text(" ", strip=True))
        elif name == "tr":
            cells = [c.get_text(" ", strip=True) for c in el.find_all(["td", "th"])]
            if any(cells):
                out.add(" | ".join(cells))
        elif name in ("td", "th"):
            continue  # already taken with their row
        elif el.find_parent(list(_HTML_BLOCKS - {"td", "th"})) is None:
            # nested blocks (a <p> in an <li>) are taken once, by the outermost block
            words = el.get_text(" ", strip=True)
            if words:
                out.add(words)
    sections = out.finish()
    if not sections:  # markup without block tags: fall back to all visible text
        return paragraph_sections(root.get_text("\n", strip=True))
    return sections
