"""Publishing an indexing run, once for both stores: the walk over the new documents, their
chunks, their lexical rows and their vectors is here; how a row is written (one INSERT at a time
in SQLite, ids drawn from sequences and batched in PostgreSQL) is the store's PublishSink."""

from __future__ import annotations

from typing import Protocol

from .base import now
from .rows import NewChunk, NewDocument
from .tokens import lexical_name


class PublishSink(Protocol):
    """Where publish writes one run's rows, inside the run's transaction."""

    def document(self, doc: NewDocument, indexed_at: str) -> int:
        """Store the document's row; its id."""

    def chunk(self, doc_id: int, ord_: int, chunk: NewChunk) -> int:
        """Store the chunk's row; its id (never one used before)."""

    def lexical(self, chunk_id: int, text: str, heading: str | None, name: str) -> None:
        """The chunk's lexical row (text and heading as chunked, name as lexical_name made it)."""

    def vector(self, model: str, chunk_id: int, vector: bytes) -> None:
        """A model's vector (float32 bytes) of the chunk."""

    def flush(self) -> None:
        """Write what was held back; called once, after the last row."""


class PublishMixin:
    """publish() over a store's atomic(), _delete_documents(), _publish_sink(), touch_documents(),
    _clear_pending() and _bump_generation()."""

    def publish(self, new_docs: list[NewDocument], removed_paths: list[str], vectors: dict[str, dict[str, bytes]],
                touched: dict[str, float] | None = None) -> tuple[int, list[int], list[tuple[int, str]]]:
        """Apply one indexing run in a single transaction.

        new_docs: added/changed documents with their chunks (none for failed files); a document's
        old chunks and vectors are replaced. removed_paths: documents to remove. vectors: model ->
        {text_sha: float32 bytes}; every inserted chunk gets the vectors found for its text_sha.
        touched: path -> new mtime of unchanged documents whose file was touched.
        Returns (generation, removed chunk ids, [(added chunk id, text_sha)]).
        """
        added: list[tuple[int, str]] = []
        with self.atomic():
            removed_ids = self._delete_documents(removed_paths + [d.path for d in new_docs])
            sink = self._publish_sink(new_docs)
            for doc in new_docs:
                doc_id = sink.document(doc, now())
                name = lexical_name(doc.path, doc.root)
                for ord_, chunk in enumerate(doc.chunks):
                    chunk_id = sink.chunk(doc_id, ord_, chunk)
                    added.append((chunk_id, chunk.text_sha))
                    sink.lexical(chunk_id, chunk.text, chunk.heading, name)
                    for model, by_sha in vectors.items():
                        vec = by_sha.get(chunk.text_sha)
                        if vec is not None:
                            sink.vector(model, chunk_id, vec)
            sink.flush()
            self.touch_documents(touched or {})
            self._clear_pending()  # published now, or text no longer present
            gen = self._bump_generation()
        return gen, removed_ids, added
