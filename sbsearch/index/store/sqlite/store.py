"""The index's source of truth: SQLite, in an index folder (the layout is in schema.py).

SQLite runs in WAL mode so that searches read the last committed state while a re-index writes.
This package imports neither torch nor faiss."""

from __future__ import annotations

import sqlite3
from contextlib import contextmanager
from pathlib import Path

from ....errors import SbsearchError
from ..base import StoreBase
from ..publish import PublishMixin
from .access import AccessMixin
from .accounts import AccountsMixin
from .documents import DocumentsMixin
from .export import ExportMixin
from .lexical import LexicalMixin
from .runs import RunsMixin
from .schema import DB_NAME, migrations, sqlite_utils
from .vectors import VectorsMixin


class SqliteStore(DocumentsMixin, VectorsMixin, LexicalMixin, AccessMixin, RunsMixin, AccountsMixin, ExportMixin,
                  PublishMixin, StoreBase):
    """All reads and writes of index.db. One instance per process and index."""

    vector_backend = "faiss"  # its vectors' index: FAISS files beside index.db (sbsearch.vectors)

    def __init__(self, path: Path, create: bool = False):
        self.path = Path(path)
        db_file = self.path / DB_NAME
        if not db_file.exists():
            if not create:
                raise SbsearchError(f"no index at {self.path} (run `sbsearch index DIR` first)")
            try:
                self.path.mkdir(parents=True, exist_ok=True)
            except OSError as exc:
                raise SbsearchError(f"cannot create index directory {self.path}: {exc.strerror}") from None
        try:
            conn = sqlite3.connect(str(db_file), timeout=60, isolation_level=None)
            self.db = sqlite_utils.Database(conn)
            self.db.execute("PRAGMA busy_timeout = 60000")
            if create:
                if self.db.journal_mode != "wal":
                    self.db.enable_wal()
                migrations.apply(self.db)
            elif not self.db["documents"].exists():
                self._wait_for_schema(db_file)
        except sqlite3.DatabaseError as exc:
            raise SbsearchError(f"cannot open index {db_file}: {exc}") from None
        self.db.execute("PRAGMA foreign_keys = ON")

    def _wait_for_schema(self, db_file: Path, seconds: float = 5.0) -> None:
        """A file with no tables yet is an index another process is creating (the file appears just
        before its first migration commits): give it a moment before calling it foreign."""
        import time

        deadline = time.monotonic() + seconds
        while not self.db["documents"].exists():
            # our first migration creates `meta` before `documents`; any other table means a foreign file
            tables = {r[0] for r in self.db.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
            if tables - {"meta", "_sqlite_migrations"} or time.monotonic() > deadline:
                raise SbsearchError(f"{db_file} is not an sbsearch index")
            time.sleep(0.05)

    def close(self) -> None:
        self.db.close()

    def writer_lock(self, wait: bool | float = False):
        """The index's one-writer lock (see locking.writer_lock)."""
        from ...locking import writer_lock

        return writer_lock(self.path, wait)

    def atomic(self):
        """One transaction (a savepoint inside another): everything in it is written, or nothing."""
        return self.db.atomic()

    @contextmanager
    def snapshot(self):
        """One read transaction: in WAL mode every read inside sees the same committed state."""
        self.db.execute("BEGIN")
        try:
            yield
        finally:
            self.db.execute("COMMIT")

    def upgrade_schema(self) -> None:
        """Apply the migrations an existing index lacks (e.g. before serving it)."""
        migrations.apply(self.db)

    def checkpoint(self, truncate: bool = False) -> None:
        """Copy the write-ahead log into the database file. After a large run, readers otherwise
        look every page up in a long WAL first (measured: lexical search ~15x slower at 100k chunks
        right after the run that wrote them). truncate also empties the log; it waits for readers."""
        self.db.execute(f"PRAGMA wal_checkpoint({'TRUNCATE' if truncate else 'PASSIVE'})")

    def integrity_check(self) -> str:
        return self.db.execute("PRAGMA integrity_check").fetchone()[0]

    def orphan_vector_count(self) -> int:
        """Vectors whose chunk no longer exists."""
        return self.db.execute(
            "SELECT count(*) FROM embeddings e LEFT JOIN chunks c ON c.id = e.chunk_id WHERE c.id IS NULL").fetchone()[0]

    def orphan_attachments(self) -> list[str]:
        """Attachments whose message is no longer indexed."""
        return [r["path"] for r in self.db.query(
            "SELECT a.path FROM documents a LEFT JOIN documents m ON m.path = a.parent "
            "WHERE a.parent IS NOT NULL AND m.id IS NULL ORDER BY a.path")]

    def dangling_chunk_count(self) -> int:
        """Chunks whose document no longer exists."""
        return self.db.execute(
            "SELECT count(*) FROM chunks c LEFT JOIN documents d ON d.id = c.doc_id WHERE d.id IS NULL").fetchone()[0]

    def get_meta(self, key: str, default: str | None = None) -> str | None:
        rows = list(self.db.query("SELECT value FROM meta WHERE key = ?", [key]))
        return rows[0]["value"] if rows else default

    def set_meta(self, key: str, value: str) -> None:
        self.db["meta"].upsert({"key": key, "value": value}, pk="key")

    def disk_bytes(self) -> int:
        return sum(p.stat().st_size for p in self.path.glob(DB_NAME + "*"))
