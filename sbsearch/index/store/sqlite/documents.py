"""The SQLite store's documents and chunks: reading them, and writing a run's rows for publish
(store.publish.PublishMixin walks them)."""

from __future__ import annotations

from typing import Iterable, Iterator

import numpy as np

from ..rows import DocumentRow, NewChunk, NewDocument
from ..vector_codec import encode
from .schema import lexical_row


class DocumentsMixin:
    """Documents and chunks, over self.db."""

    def documents(self) -> dict[str, DocumentRow]:
        return {
            r["path"]: DocumentRow(r["id"], r["path"], r["sha256"], r["mtime"], r["size"], r["status"], r["error"],
                                   r["parent"])
            for r in self.db.query("SELECT id, path, sha256, mtime, size, status, error, parent FROM documents")
        }

    def _query_in(self, sql: str, values: Iterable, params: list | None = None) -> Iterator[dict]:
        """Run `sql` (with one "{marks}" placeholder for an IN list) over values in batches, so a
        long list never exceeds SQLite's limit on bound parameters."""
        for statement, args in _in_batches(sql, values, params):
            yield from self.db.query(statement, args)

    def _tuples_in(self, sql: str, values: Iterable, params: list | None = None) -> Iterator[list[tuple]]:
        """As _query_in, but each batch's rows at once as plain tuples: no dict per row, for a
        hot path (the 50 vectors a hybrid search rescores)."""
        for statement, args in _in_batches(sql, values, params):
            yield self.db.execute(statement, args).fetchall()

    def chunk_rows(self, ids: Iterable[int]) -> dict[int, dict]:
        return {r["id"]: r for r in self._query_in(
            "SELECT c.id, c.text, c.page, c.heading, c.location, c.start, c.end, d.path, d.root, d.id AS doc_id FROM chunks c "
            "JOIN documents d ON d.id = c.doc_id WHERE c.id IN ({marks})", ids)}

    def chunk_texts(self) -> list[tuple[int, str, str]]:
        """(chunk id, text, document path) of every chunk, in id order."""
        return [(r["id"], r["text"], r["path"]) for r in self.db.query(
            "SELECT c.id, c.text, d.path FROM chunks c JOIN documents d ON d.id = c.doc_id ORDER BY c.id")]

    def chunk_count(self) -> int:
        return self.db.execute("SELECT count(*) FROM chunks").fetchone()[0]

    def chunk_texts_with_headings(self) -> list[tuple[int, str, str | None]]:
        """(chunk id, text, heading) of every chunk, in id order."""
        return [(r["id"], r["text"], r["heading"])
                for r in self.db.query("SELECT id, text, heading FROM chunks ORDER BY id")]

    def headings(self, limit: int, min_length: int = 8, max_length: int = 120) -> list[str]:
        """Distinct section headings (heading paths "A > B") of a readable length, alphabetically."""
        return [r["heading"] for r in self.db.query(
            "SELECT DISTINCT heading FROM chunks WHERE heading IS NOT NULL AND length(heading) BETWEEN ? AND ? "
            "ORDER BY heading LIMIT ?", [min_length, max_length, limit])]

    def touch_documents(self, touched: dict[str, float]) -> None:
        """New modification times of documents whose content did not change (what date filters read)."""
        with self.db.atomic():
            self.db.conn.executemany("UPDATE documents SET mtime = ? WHERE path = ?",
                                     [(mtime, path) for path, mtime in touched.items()])

    def _document_totals(self) -> dict:
        docs = self.db.execute(
            "SELECT count(*), sum(status = 'ok'), sum(status = 'failed'), sum(size) FROM documents").fetchone()
        return {"documents": docs[0] or 0, "documents_ok": docs[1] or 0, "documents_failed": docs[2] or 0,
                "source_bytes": docs[3] or 0}

    def _document_lists(self) -> dict:
        return {
            "failed_files": list(self.db.query(
                "SELECT path, error FROM documents WHERE status = 'failed' ORDER BY path")),
            # indexed, but with pages or rows left out (their reason)
            "partly_read_files": list(self.db.query(
                "SELECT path, error AS warning FROM documents WHERE status = 'ok' AND error IS NOT NULL ORDER BY path")),
        }

    def _delete_documents(self, paths: list[str]) -> list[int]:
        """Delete these documents with their chunks, lexical rows and vectors; the chunks' ids."""
        removed_ids: list[int] = []
        for path in paths:
            row = list(self.db.query("SELECT id FROM documents WHERE path = ?", [path]))
            if not row:
                continue
            doc_id = row[0]["id"]
            removed_ids += [r["id"] for r in self.db.query("SELECT id FROM chunks WHERE doc_id = ?", [doc_id])]
            self.db.execute("DELETE FROM lexical WHERE rowid IN (SELECT id FROM chunks WHERE doc_id = ?)", [doc_id])
            self.db.execute(
                "DELETE FROM embeddings WHERE chunk_id IN (SELECT id FROM chunks WHERE doc_id = ?)", [doc_id])
            self.db.execute("DELETE FROM chunks WHERE doc_id = ?", [doc_id])
            self.db.execute("DELETE FROM documents WHERE id = ?", [doc_id])
        return removed_ids

    def _publish_sink(self, new_docs: list[NewDocument]) -> "_Sink":
        return _Sink(self.db, self.vector_encoding())


class _Sink:
    """publish's rows, one INSERT each: SQLite hands out the ids (a chunk's AUTOINCREMENT id is
    never reused, so a stale FAISS file can never point at new text). Vectors are written in the
    index's encoding."""

    def __init__(self, db, vector_encoding: str):
        self.db = db
        self.vector_encoding = vector_encoding

    def document(self, doc: NewDocument, indexed_at: str) -> int:
        return self.db["documents"].insert({**doc.columns(), "n_chunks": len(doc.chunks),
                                            "indexed_at": indexed_at}).last_pk

    def chunk(self, doc_id: int, ord_: int, chunk: NewChunk) -> int:
        return self.db["chunks"].insert({"doc_id": doc_id, "ord": ord_, **chunk.columns()}).last_pk

    def lexical(self, chunk_id: int, text: str, heading: str | None, name: str) -> None:
        self.db.execute("INSERT INTO lexical (rowid, body, heading, name) VALUES (?, ?, ?, ?)",
                        lexical_row(chunk_id, text, heading, name))

    def vector(self, model: str, chunk_id: int, vector: bytes) -> None:
        blob = encode(np.frombuffer(vector, dtype=np.float32), self.vector_encoding)
        self.db["embeddings"].insert({"chunk_id": chunk_id, "model": model, "vector": blob})

    def flush(self) -> None:
        """Every row is written already."""


def _in_batches(sql: str, values: Iterable, params: list | None) -> Iterator[tuple[str, list]]:
    """(statement, arguments) per batch of at most 500 values for sql's "{marks}"."""
    values = list(values)
    for i in range(0, len(values), 500):
        part = values[i:i + 500]
        yield sql.format(marks=",".join("?" * len(part))), [*(params or []), *part]
