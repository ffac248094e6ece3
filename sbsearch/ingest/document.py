"""What every loader returns: a Document made of Sections (text, page, heading, location),
structure kept; and what a loader is given besides the file: ReadOptions."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass
class Section:
    text: str
    page: int | None = None
    heading: str | None = None
    # where the section sits when a page number does not say it: "slide 7", "sheet Prices", "mail"
    location: str | None = None


@dataclass
class Attachment:
    """A file carried inside another one (an e-mail's attachment), indexed as its own document.
    `error` instead of `data` when it was refused before being unpacked (too large)."""

    name: str
    data: bytes | None
    error: str | None = None


@dataclass
class Document:
    path: str
    format: str
    sections: list[Section] = field(default_factory=list)
    encoding: str | None = None
    # what was read only in part and why (rows over a cap, pages OCR could not read): the
    # document is indexed, and these lines are shown by `index` and `status`
    warnings: list[str] = field(default_factory=list)
    attachments: list[Attachment] = field(default_factory=list)

    @property
    def text_length(self) -> int:
        return sum(len(s.text) for s in self.sections)


def paragraph_sections(text: str, page: int | None = None, heading: str | None = None) -> list[Section]:
    # One section per file part; the chunker splits by paragraph inside it.
    text = text.replace("\r\n", "\n").replace("\r", "\n").strip()
    return [Section(text, page, heading)] if text else []


class SectionBuilder:
    """Collects body text under a heading path ("Travel > Hotels"); shared by the structured formats."""

    def __init__(self, joiner: str = "\n"):
        self.sections: list[Section] = []
        self.path: list[tuple[int, str]] = []
        self.buf: list[str] = []
        self.joiner = joiner

    def heading(self, level: int, text: str) -> None:
        self.flush()
        self.path = [(lv, h) for lv, h in self.path if lv < level] + [(level, text)]

    def add(self, text: str) -> None:
        self.buf.append(text)

    def flush(self) -> None:
        body = self.joiner.join(self.buf).strip()
        if body:
            self.sections.append(Section(body, None, " > ".join(h for _, h in self.path) or None))
        self.buf = []

    def finish(self) -> list[Section]:
        self.flush()
        return self.sections
