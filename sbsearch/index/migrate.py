"""`sbsearch migrate --to postgresql://…`: copy an index folder (SQLite) into a PostgreSQL store as
it is: documents, chunks with their ids, every model's vectors (nothing is re-embedded), runs,
comparisons, users and tokens. The lexical and HNSW indexes are built from the copied rows.

Both writer locks are held and the copy is one transaction: an interrupted migration leaves the
PostgreSQL store empty and the folder untouched."""

from __future__ import annotations

import time
from pathlib import Path

from ..errors import SbsearchError
from ..progress import NullProgress, Progress
from .location import open_store
from .store import Store


def migrate(source: Path, target_url: str, progress: Progress | None = None) -> dict:
    progress = progress or NullProgress()
    t0 = time.perf_counter()
    src = Store(Path(source))
    dst = open_store(target_url, create=True)
    with src.writer_lock(wait=True), dst.writer_lock(wait=False):
        if not dst.is_empty():
            raise SbsearchError(f"{dst.path} already holds an index; migrate into an empty database")
        counts = {}
        with dst.atomic():
            for table in src.EXPORTED:
                n = 0
                progress.message(f"copying {table}")
                for rows in src.export_rows(table):
                    dst.import_rows(table, rows)
                    n += len(rows)
                counts[table] = n
            progress.message("building the lexical and vector indexes")
            dst.finish_import()
    return {"from": str(src.path), "to": dst.path, "rows": counts, "generation": dst.generation,
            "seconds": round(time.perf_counter() - t0, 3)}
