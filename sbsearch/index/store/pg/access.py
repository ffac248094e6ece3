"""The PostgreSQL store's answers about who may read what, and a DocumentFilter in its dialect
(a path glob becomes an anchored POSIX regex)."""

from __future__ import annotations

import re

import numpy as np

from ...filters import DocumentFilter
from ..base import filter_where

# A document's path relative to the folder that was indexed, in SQL (documents d)
RELPATH = ("(CASE WHEN d.root IS NOT NULL AND d.root <> '' AND left(d.path, length(d.root) + 1) = d.root || '/' "
           "THEN substr(d.path, length(d.root) + 2) ELSE d.path END)")


def glob_regex(glob: str) -> str:
    """A SQLite GLOB (* any text, ? one character, [...] a class) as an anchored POSIX regex."""
    out, i = ["^"], 0
    while i < len(glob):
        ch = glob[i]
        if ch == "*":
            out.append(".*")
        elif ch == "?":
            out.append(".")
        elif ch == "[" and "]" in glob[i + 2:] + glob[i + 1:i + 2]:
            end = glob.index("]", i + 2) if glob[i + 1:i + 2] in ("]", "^", "!") else glob.index("]", i + 1)
            body = glob[i + 1:end]
            out.append("[" + ("^" + body[1:] if body.startswith(("^", "!")) else body).replace("\\", "\\\\") + "]")
            i = end
        else:
            out.append(re.sub(r"([.^$+(){}|\\\[\]])", r"\\\1", ch))
        i += 1
    return "".join(out) + "$"


def filter_sql(doc_filter: DocumentFilter | None) -> tuple[str, list]:
    """A WHERE condition over documents d (and its parameters) for a DocumentFilter; "TRUE" when none."""
    return filter_where(doc_filter, RELPATH, "%s", "~", glob_regex, _groups_sql, "TRUE")


def _groups_sql(groups: list[str]) -> tuple[str, list]:
    return ("(d.access IS NULL OR EXISTS (SELECT 1 FROM jsonb_array_elements_text(d.access::jsonb) j "
            "WHERE j = ANY(%s)))", [groups])


class AccessMixin:
    """Documents' readers, over self.conn."""

    def document_access(self) -> dict[str, tuple[str, str | None, str | None]]:
        return {r["path"]: (r["root"], r["access"], r["parent"])
                for r in self._rows("SELECT path, root, access, parent FROM documents")}

    def set_document_access(self, access: dict[str, str | None]) -> None:
        with self.atomic(), self.conn.cursor() as cur:
            cur.executemany("UPDATE documents SET access = %s WHERE path = %s", [(a, p) for p, a in access.items()])
            self.set_meta("access_version", str(self.access_version + 1))

    def document(self, doc_id: int, doc_filter: DocumentFilter | None = None) -> dict | None:
        where, params = filter_sql(doc_filter)
        return self.conn.execute(f"SELECT d.* FROM documents d WHERE d.id = %s AND {where}", [doc_id, *params]).fetchone()

    def visible_counts(self, doc_filter: DocumentFilter | None) -> dict:
        where, params = filter_sql(doc_filter)
        row = self.conn.execute(f"SELECT count(*) AS docs, count(*) FILTER (WHERE d.status = 'failed') AS failed "
                                f"FROM documents d WHERE {where}", params).fetchone()
        chunks = self._value(f"SELECT count(*) FROM chunks c JOIN documents d ON d.id = c.doc_id WHERE {where}", params)
        return {"documents": row["docs"] or 0, "documents_failed": row["failed"] or 0, "chunks": chunks}

    def documents_without_access(self) -> int:
        return int(self._value("SELECT count(*) FROM documents WHERE access IS NULL"))

    def any_document_without_access(self) -> bool:
        return self._value("SELECT 1 FROM documents WHERE access IS NULL LIMIT 1") is not None

    def filtered_chunk_ids(self, doc_filter: DocumentFilter) -> np.ndarray:
        where, params = filter_sql(doc_filter)
        rows = self._rows(f"SELECT c.id FROM chunks c JOIN documents d ON d.id = c.doc_id WHERE {where} ORDER BY c.id",
                          params)
        return np.fromiter((r["id"] for r in rows), dtype=np.int64, count=len(rows))
