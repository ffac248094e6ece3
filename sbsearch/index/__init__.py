"""The index on disk: the SQLite store (the truth), the indexer that fills it, the writer lock,
and `sbsearch check`.

`from sbsearch.index import Indexer` is public API. It is loaded on first use, so that code that
only reads the store (every query, `sbsearch status`) does not load the indexer and the format
loaders.
"""

from __future__ import annotations

__all__ = ["Indexer", "IndexSummary"]


def __getattr__(name: str):
    if name in __all__:
        from . import indexer

        return getattr(indexer, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
