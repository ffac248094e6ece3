"""What every loader returns: a Document made of Sections (text, page, heading), structure kept."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass
class Section:
    text: str
    page: int | None = None
    heading: str | None = None


@dataclass
class Document:
    path: str
    format: str
    sections: list[Section] = field(default_factory=list)
    encoding: str | None = None

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
