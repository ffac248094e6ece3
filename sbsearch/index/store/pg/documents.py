"""The PostgreSQL store's documents and chunks: reading them, and writing a run's rows for
publish (store.publish.PublishMixin walks them)."""

from __future__ import annotations

from typing import Iterable

import numpy as np

from ..rows import DocumentRow, NewChunk, NewDocument
from .lexical import lexical_rows


class DocumentsMixin:
    """Documents and chunks, over self.conn."""

    def documents(self) -> dict[str, DocumentRow]:
        return {r["path"]: DocumentRow(r["id"], r["path"], r["sha256"], r["mtime"], r["size"], r["status"],
                                       r["error"], r["parent"])
                for r in self._rows("SELECT id, path, sha256, mtime, size, status, error, parent FROM documents")}

    def chunk_rows(self, ids: Iterable[int]) -> dict[int, dict]:
        return {r["id"]: r for r in self._rows(
            "SELECT c.id, c.text, c.page, c.heading, c.location, c.start, c.\"end\", d.path, d.root, d.id AS doc_id "
            "FROM chunks c JOIN documents d ON d.id = c.doc_id WHERE c.id = ANY(%s)", [[int(i) for i in ids]])}

    def chunk_texts(self) -> list[tuple[int, str, str]]:
        return [(r["id"], r["text"], r["path"]) for r in self._rows(
            "SELECT c.id, c.text, d.path FROM chunks c JOIN documents d ON d.id = c.doc_id ORDER BY c.id")]

    def chunk_count(self) -> int:
        return self._value("SELECT count(*) FROM chunks")

    def chunk_texts_with_headings(self) -> list[tuple[int, str, str | None]]:
        return [(r["id"], r["text"], r["heading"]) for r in self._rows("SELECT id, text, heading FROM chunks ORDER BY id")]

    def headings(self, limit: int, min_length: int = 8, max_length: int = 120) -> list[str]:
        return [r["heading"] for r in self._rows(
            "SELECT DISTINCT heading FROM chunks WHERE heading IS NOT NULL AND length(heading) BETWEEN %s AND %s "
            "ORDER BY heading LIMIT %s", [min_length, max_length, limit])]

    def touch_documents(self, touched: dict[str, float]) -> None:
        if touched:
            with self.atomic(), self.conn.cursor() as cur:
                cur.executemany("UPDATE documents SET mtime = %s WHERE path = %s",
                                [(mtime, path) for path, mtime in touched.items()])

    def _document_totals(self) -> dict:
        docs = self.conn.execute(
            "SELECT count(*) AS n, count(*) FILTER (WHERE status = 'ok') AS ok, "
            "count(*) FILTER (WHERE status = 'failed') AS failed, sum(size) AS size FROM documents").fetchone()
        return {"documents": docs["n"] or 0, "documents_ok": docs["ok"] or 0, "documents_failed": docs["failed"] or 0,
                "source_bytes": int(docs["size"] or 0)}

    def _document_lists(self) -> dict:
        return {"failed_files": self._rows("SELECT path, error FROM documents WHERE status = 'failed' ORDER BY path"),
                "partly_read_files": self._rows("SELECT path, error AS warning FROM documents WHERE status = 'ok' "
                                                "AND error IS NOT NULL ORDER BY path")}

    def _new_ids(self, table: str, n: int) -> list[int]:
        return [r["id"] for r in self._rows(f"SELECT nextval('{table}_id_seq') AS id FROM generate_series(1, %s)", [n])]

    def _delete_documents(self, paths: list[str]) -> list[int]:
        """Delete these documents with their chunks, lexical rows and vectors; the chunks' ids."""
        doc_ids = [r["id"] for r in self._rows("SELECT id FROM documents WHERE path = ANY(%s)", [paths])]
        removed_ids = [r["id"] for r in self._rows("SELECT id FROM chunks WHERE doc_id = ANY(%s) ORDER BY id",
                                                   [doc_ids])]
        self._count_lexical(removed_ids, -1)
        for table, column in (("lexical", "chunk_id"), ("embeddings", "chunk_id"), ("chunks", "id")):
            self.conn.execute(f"DELETE FROM {table} WHERE {column} = ANY(%s)", [removed_ids])
        self.conn.execute("DELETE FROM documents WHERE id = ANY(%s)", [doc_ids])
        return removed_ids

    def _publish_sink(self, new_docs: list[NewDocument]) -> "_Sink":
        return _Sink(self, self._new_ids("documents", len(new_docs)),
                     self._new_ids("chunks", sum(len(d.chunks) for d in new_docs)))


class _Sink:
    """publish's rows, held until flush and written by executemany, one statement per table: ids
    are drawn from the tables' sequences up front (a chunk id is never reused, as in SQLite)."""

    def __init__(self, store, doc_ids: list[int], chunk_ids: list[int]):
        self.store = store
        self.doc_ids, self.chunk_ids = iter(doc_ids), iter(chunk_ids)
        self.documents, self.chunks, self.lexical_input, self.embeddings = [], [], [], []

    def document(self, doc: NewDocument, indexed_at: str) -> int:
        doc_id = next(self.doc_ids)
        self.documents.append([doc_id, doc.path, doc.root, doc.sha256, doc.mtime, doc.size, doc.format, doc.encoding,
                               doc.status, doc.error, len(doc.chunks), indexed_at, doc.parent, doc.access])
        return doc_id

    def chunk(self, doc_id: int, ord_: int, chunk: NewChunk) -> int:
        chunk_id = next(self.chunk_ids)
        self.chunks.append([chunk_id, doc_id, ord_, chunk.text, chunk.page, chunk.heading, chunk.start, chunk.end,
                            chunk.text_sha, chunk.location])
        return chunk_id

    def lexical(self, chunk_id: int, text: str, heading: str | None, name: str) -> None:
        self.lexical_input.append((chunk_id, text, heading, name))

    def vector(self, model: str, chunk_id: int, vector: bytes) -> None:
        self.embeddings.append([model, chunk_id, np.frombuffer(vector, dtype=np.float32)])

    def flush(self) -> None:
        with self.store.conn.cursor() as cur:
            cur.executemany("INSERT INTO documents (id, path, root, sha256, mtime, size, format, encoding, status, "
                            "error, n_chunks, indexed_at, parent, access) VALUES "
                            "(%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s)", self.documents)
            cur.executemany("INSERT INTO chunks (id, doc_id, ord, text, page, heading, start, \"end\", text_sha, "
                            "location) VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s)", self.chunks)
            cur.executemany("INSERT INTO lexical (chunk_id, tsv, ntok) VALUES (%s, %s::tsvector, %s)",
                            lexical_rows(self.lexical_input))
            self.store._count_lexical([row[0] for row in self.lexical_input], 1)
            cur.executemany("INSERT INTO embeddings (model, chunk_id, vector) VALUES (%s, %s, %s)", self.embeddings)
