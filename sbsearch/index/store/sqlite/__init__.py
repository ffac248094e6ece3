"""The SQLite store (an index folder), one module per concern; SqliteStore puts them together."""

from .store import SqliteStore

__all__ = ["SqliteStore"]
