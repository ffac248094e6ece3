"""The SQLite store's answers about who may read what: documents' access lists, a reader's view
of a document and of the counts, and the chunks a DocumentFilter lets through."""

from __future__ import annotations

import numpy as np

from ...filters import DocumentFilter
from ..base import filter_where

# A document's path relative to the folder that was indexed, in SQL (documents d)
RELPATH = ("(CASE WHEN d.root IS NOT NULL AND d.root != '' AND substr(d.path, 1, length(d.root) + 1) = d.root || '/' "
           "THEN substr(d.path, length(d.root) + 2) ELSE d.path END)")


def _groups_sql(groups: list[str]) -> tuple[str, list]:
    return (f"(d.access IS NULL OR EXISTS (SELECT 1 FROM json_each(d.access) j "
            f"WHERE j.value IN ({','.join('?' * len(groups))})))", groups)


def filter_sql(doc_filter: DocumentFilter | None) -> tuple[str, list]:
    """A WHERE condition over documents d (and its parameters) for a DocumentFilter; "1" when none."""
    return filter_where(doc_filter, RELPATH, "?", "GLOB", str, _groups_sql, "1")


class AccessMixin:
    """Documents' readers, over self.db."""

    def document_access(self) -> dict[str, tuple[str, str | None, str | None]]:
        """path -> (root, access JSON or None, parent message or None) of every document."""
        return {r["path"]: (r["root"], r["access"], r["parent"])
                for r in self.db.query("SELECT path, root, access, parent FROM documents")}

    def set_document_access(self, access: dict[str, str | None]) -> None:
        """New access (JSON group lists, None = readable by all) of existing documents, one transaction:
        a rules change never needs the documents read or embedded again."""
        with self.db.atomic():
            self.db.conn.executemany("UPDATE documents SET access = ? WHERE path = ?",
                                     [(a, path) for path, a in access.items()])
            self.set_meta("access_version", str(self.access_version + 1))

    def document(self, doc_id: int, doc_filter: DocumentFilter | None = None) -> dict | None:
        """One document row, only if it passes the filter (e.g. the reader's groups)."""
        where, params = filter_sql(doc_filter)
        rows = list(self.db.query(f"SELECT d.* FROM documents d WHERE d.id = ? AND {where}", [doc_id, *params]))
        return rows[0] if rows else None

    def visible_counts(self, doc_filter: DocumentFilter | None) -> dict:
        """Documents and chunks a reader may see (what a status page may tell them)."""
        where, params = filter_sql(doc_filter)
        docs, failed = self.db.execute(
            f"SELECT count(*), sum(d.status = 'failed') FROM documents d WHERE {where}", params).fetchone()
        chunks = self.db.execute(
            f"SELECT count(*) FROM chunks c JOIN documents d ON d.id = c.doc_id WHERE {where}", params).fetchone()[0]
        return {"documents": docs or 0, "documents_failed": failed or 0, "chunks": chunks}

    def documents_without_access(self) -> int:
        """Documents indexed without access rules (access NULL: readable by every reader)."""
        return self.db.execute("SELECT count(*) FROM documents WHERE access IS NULL").fetchone()[0]

    def any_document_without_access(self) -> bool:
        """documents_without_access() > 0, through a partial index: cheap enough for every request."""
        return self.db.execute("SELECT 1 FROM documents WHERE access IS NULL LIMIT 1").fetchone() is not None

    def filtered_chunk_ids(self, doc_filter: DocumentFilter) -> np.ndarray:
        """Ids of the chunks of documents that pass the filter, ascending."""
        where, params = filter_sql(doc_filter)
        rows = self.db.execute(
            f"SELECT c.id FROM chunks c JOIN documents d ON d.id = c.doc_id WHERE {where} ORDER BY c.id", params)
        return np.fromiter((r[0] for r in rows), dtype=np.int64)
