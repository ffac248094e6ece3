"""What leaves a SQLite store as rows: every table for `sbsearch migrate`, and chunks as a small
SQLite file for the pruning tools."""

from __future__ import annotations

import sqlite3
from pathlib import Path
from typing import Iterable, Iterator


def write_chunks_file(path: Path, rows: Iterable[tuple[int, str, str | None]]) -> Path:
    """(chunk id, text, heading) rows as a SQLite file with the `chunks` table of an index, which
    the pruning tools read as distillation text: a PostgreSQL store's chunks, for `sbsearch tune`."""
    con = sqlite3.connect(path)
    try:
        with con:
            con.execute("CREATE TABLE chunks (id INTEGER PRIMARY KEY, text TEXT, heading TEXT)")
            con.executemany("INSERT INTO chunks (id, text, heading) VALUES (?, ?, ?)", rows)
    finally:
        con.close()
    return path


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
