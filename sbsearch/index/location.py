"""Where an index lives: a folder (SQLite + FAISS, the default) or a PostgreSQL URL (pgvector),
and the store that opens it. Everything above the index layer names an index by its location."""

from __future__ import annotations

from pathlib import Path

from ..config import is_store_url
from .store import Store


def open_store(location: Path | str, create: bool = False):
    """A SqliteStore (index folder) or a PgStore (postgresql:// URL); both implement store.IndexStore."""
    if is_store_url(location):
        from .store.pg import PgStore

        return PgStore(location, create=create)
    return Store(Path(location), create=create)
