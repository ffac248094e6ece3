"""What leaves a SQLite store as rows: every table, for `sbsearch migrate`."""

from __future__ import annotations

from typing import Iterator

from ..vector_codec import ENCODING_KEY, FLOAT32, recode


class ExportMixin:
    """Rows of the exported tables, over self.db. Vectors leave as float32 bytes, whatever this
    index's encoding (the receiving store keeps them its own way); the encoding's meta row stays."""

    EXPORTED = ("meta", "models", "documents", "chunks", "embeddings", "runs", "compares", "users", "tokens")

    def export_rows(self, table: str, batch: int = 5000) -> Iterator[list[dict]]:
        """Every row of one of the EXPORTED tables, in batches, in rowid order (parents first)."""
        if table not in self.EXPORTED:
            raise ValueError(f"not an exported table: {table}")
        last = -1
        while True:
            rows = list(self.db.query(f"SELECT rowid AS _rowid, * FROM {table} WHERE rowid > ? ORDER BY rowid LIMIT ?",
                                      [last, batch]))
            if not rows:
                return
            last = rows[-1].pop("_rowid")
            for r in rows[:-1]:
                r.pop("_rowid")
            yield self._exported(table, rows)

    def _exported(self, table: str, rows: list[dict]) -> list[dict]:
        if table == "meta":
            return [r for r in rows if r["key"] != ENCODING_KEY]
        if table == "embeddings":
            encoding = self.vector_encoding()
            for r in rows:
                r["vector"] = recode(r["vector"], encoding, FLOAT32)
        return rows
