"""The rows that cross the store's boundary in both directions, typed: what the indexer hands to
`publish` (NewDocument with its NewChunks) and what `documents()` gives back (DocumentRow)."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass
class NewChunk:
    """A passage of a document to store. text_sha names the text a model embeds (the chunk's text
    with its heading): chunks of the same text_sha share their vectors."""

    text: str
    text_sha: str
    page: int | None = None
    heading: str | None = None
    location: str | None = None  # "slide 7", "sheet Prices", "mail": where a page number does not say it
    start: int | None = None
    end: int | None = None

    def columns(self) -> dict:
        """The chunks table's columns (all but id, doc_id and ord, which the store sets)."""
        return dict(self.__dict__)


@dataclass
class NewDocument:
    """A new or changed document to store with its chunks (none for a file that failed)."""

    path: str
    root: str | None = None  # the indexed folder it is under
    sha256: str | None = None
    mtime: float | None = None
    size: int | None = None
    format: str | None = None
    encoding: str | None = None
    status: str | None = None  # "ok" or "failed"
    error: str | None = None  # the reason of a failure; for an "ok" document, what was read only in part
    parent: str | None = None  # the message an attachment came in
    access: str | None = None  # JSON list of the groups that may read it; None: no access rules
    chunks: list[NewChunk] = field(default_factory=list)

    def columns(self) -> dict:
        """The documents table's columns (all but n_chunks and indexed_at, which the store sets)."""
        return {k: v for k, v in self.__dict__.items() if k != "chunks"}


@dataclass
class DocumentRow:
    id: int
    path: str
    sha256: str
    mtime: float
    size: int
    status: str
    error: str | None  # the reason of a failure; for an "ok" document, what was read only in part
    parent: str | None = None  # the message an attachment came in
