"""Rows that arrive in a PostgreSQL store from another store as they are (`sbsearch migrate`)."""

from __future__ import annotations

import numpy as np


class ImportMixin:
    """Import of another store's tables, over self.conn."""

    IMPORTED = {
        "meta": ("key", "value"),
        "models": ("name", "path", "sha256", "dim", "layers", "total_layers", "added_at", "info"),
        "documents": ("id", "path", "root", "sha256", "mtime", "size", "format", "encoding", "status", "error",
                      "n_chunks", "indexed_at", "parent", "access"),
        "chunks": ("id", "doc_id", "ord", "text", "page", "heading", "start", "end", "text_sha", "location"),
        "embeddings": ("model", "chunk_id", "vector"),
        "runs": ("id", "started", "ended", "model", "roots", "status", "added", "updated", "removed", "unchanged",
                 "failed", "chunks_embedded", "seconds", "error"),
        "compares": ("id", "created", "model_a", "model_b", "result"),
        "users": ("name", "password_hash", "groups", "created", "session_key"),
        "tokens": ("id", "user", "label", "token_hash", "created", "last_used"),
    }

    def is_empty(self) -> bool:
        return not self._value("SELECT count(*) FROM documents") and not self._value("SELECT count(*) FROM models")

    def import_rows(self, table: str, rows: list[dict]) -> None:
        """Rows of another store's table as they are (ids kept; vectors as float32 bytes); call
        inside atomic(), then finish_import()."""
        from psycopg import sql

        columns = self.IMPORTED[table]
        statement = sql.SQL("INSERT INTO {} ({}) VALUES ({})").format(
            sql.Identifier(table), sql.SQL(", ").join(map(sql.Identifier, columns)),
            sql.SQL(", ").join(sql.Placeholder() * len(columns)))
        if table == "meta":  # the schema's own keys stay
            statement += sql.SQL(" ON CONFLICT (key) DO UPDATE SET value = EXCLUDED.value")
        values = [[np.frombuffer(r[c], dtype=np.float32) if c == "vector" else r.get(c) for c in columns]
                  for r in rows if not (table == "meta" and r["key"] == "schema_version")]
        with self.conn.cursor() as cur:
            cur.executemany(statement, values)

    def finish_import(self) -> None:
        """After import_rows: new ids continue after the imported ones; the lexical index and each
        model's HNSW index are built from the imported rows."""
        for table in ("documents", "chunks", "runs", "compares"):
            self.conn.execute(f"SELECT setval('{table}_id_seq', coalesce((SELECT max(id) FROM {table}), 0) + 1, false)")
        self.rebuild_lexical()
        for m in self.models():
            self.build_hnsw(m["name"], m["dim"], rebuild=True)
