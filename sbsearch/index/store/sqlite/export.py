"""What leaves a SQLite store as rows: every table, for `sbsearch migrate`."""

from __future__ import annotations

from typing import Iterator


class ExportMixin:
    """Rows of the exported tables, over self.db."""

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
            yield rows
