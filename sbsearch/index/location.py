"""Where an index lives: a folder (SQLite + FAISS, the default) or a PostgreSQL URL (pgvector),
and the store that opens it. Everything above the index layer names an index by its location."""

from __future__ import annotations

from pathlib import Path

from ..config import IndexLocation
from .store import IndexStore, Store


def open_store(location: IndexLocation | Path | str, create: bool = False) -> IndexStore:
    """A SqliteStore (index folder) or a PgStore (postgresql:// URL); both implement store.IndexStore."""
    location = IndexLocation.of(location)
    if location.shared:
        from .store.pg import PgStore

        return PgStore(location.url, create=create)
    return Store(location.folder, create=create)
