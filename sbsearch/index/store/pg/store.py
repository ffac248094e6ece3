"""The index's source of truth in PostgreSQL with pgvector: what many search servers share.

The same public methods as the SQLite store (store.protocol.IndexStore), over tables of the
schema `sbsearch` of the database the URL names. Vectors live in `embeddings.vector` (pgvector);
each model has a partial HNSW index (cosine) over its own rows, so models of different dimensions
share one table. The lexical index is the table `lexical`: a weighted tsvector per chunk (body,
heading, file name) under a GIN index, written in the same transactions as the chunks. Its lexemes
are the tokens of the SQLite store's FTS5 table (store.tokens.lexical_tokens), not PostgreSQL's
own parser and stemmer, and it is ranked by FTS5's BM25: both stores find and rank the same words.
Beside it, `lexical_postings` keeps each lexeme's chunks, counts and lengths, so that a one-token
phrase is ranked without reading the rows' tsvectors (pg/lexical.py).

The guarantees of the SQLite store hold here too, by PostgreSQL's own means:
- one writer: a session-level advisory lock, released by the server when the writer's connection
  dies, so a killed `sbsearch index` never leaves a stale lock;
- a run is published in one transaction, so a killed writer leaves the last complete state;
- searches read one REPEATABLE READ snapshot and never wait for the writer (MVCC).

This package imports psycopg only when a store is opened.
"""

from __future__ import annotations

import time
from contextlib import contextmanager
from typing import Iterable

from ....errors import SbsearchError
from ..base import StoreBase
from ..publish import PublishMixin
from .access import AccessMixin
from .accounts import AccountsMixin
from .documents import DocumentsMixin
from .imports import ImportMixin
from .lexical import LexicalMixin
from .runs import RunsMixin
from .schema import LEXICAL_FORMAT, SCHEMA, SCHEMA_SQL, SCHEMA_VERSION, WRITER_LOCK_KEY, display_url
from .vectors import VectorsMixin


class PgStore(DocumentsMixin, VectorsMixin, LexicalMixin, AccessMixin, RunsMixin, AccountsMixin, ImportMixin,
              PublishMixin, StoreBase):
    """All reads and writes of an sbsearch index in PostgreSQL. One instance per process and index."""

    vector_backend = "pgvector"

    def __init__(self, url: str, create: bool = False):
        self.url = url
        self.path = display_url(url)
        self.conn = self._connect()
        if not self._has_schema():
            if not create:
                raise SbsearchError(f"no index in {self.path} (run `sbsearch index DIR --store {self.path}` first)")
            self._create_schema()
        elif create:
            self.upgrade_schema()

    def _connect(self):
        try:
            import psycopg
            from psycopg.rows import dict_row
        except ImportError:
            raise SbsearchError("a PostgreSQL store needs the scale extra: pip install 'sbsearch[scale]'") from None
        try:
            conn = psycopg.connect(self.url, autocommit=True, row_factory=dict_row, connect_timeout=10,
                                   application_name="sbsearch")
        except psycopg.Error as exc:
            reason = (str(exc).strip().splitlines() or [type(exc).__name__])[-1]
            raise SbsearchError(f"cannot connect to {self.path}: {reason}") from None
        try:
            if conn.execute("SELECT 1 FROM pg_extension WHERE extname = 'vector'").fetchone() is None:
                conn.execute("CREATE EXTENSION IF NOT EXISTS vector")
            from pgvector.psycopg import register_vector

            register_vector(conn)
        except psycopg.Error as exc:
            conn.close()
            reason = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
            raise SbsearchError(f"{self.path} has no pgvector extension and it cannot be created ({reason}); "
                                "install pgvector on the server and run CREATE EXTENSION vector as a superuser") from None
        conn.execute(f"SET search_path = {SCHEMA}, public")
        return conn

    def _has_schema(self) -> bool:
        return self.conn.execute("SELECT to_regclass(%s) AS t", [f"{SCHEMA}.meta"]).fetchone()["t"] is not None

    def _create_schema(self) -> None:
        with self.conn.transaction():
            # two processes creating the same index: the second waits, then finds it made
            self.conn.execute("SELECT pg_advisory_xact_lock(%s)", [WRITER_LOCK_KEY + 1])
            if self._has_schema():
                return
            for statement in SCHEMA_SQL:
                self.conn.execute(statement)
            self.conn.execute("INSERT INTO meta (key, value) VALUES ('schema_version', %s), ('lexical_format', %s), "
                              "('lexical_postings', '1')", [SCHEMA_VERSION, LEXICAL_FORMAT])
            self._name_index()

    def upgrade_schema(self) -> None:
        """What was added since a store was made (as the SQLite store's migration m006): users.session_key,
        the partial index of documents without access rules, the lexical postings."""
        has = self._value("SELECT count(*) FROM information_schema.columns WHERE table_schema = %s "
                          "AND table_name = 'users' AND column_name = 'session_key'", [SCHEMA])
        if not has:
            with self.atomic():
                self.conn.execute("ALTER TABLE users ADD COLUMN IF NOT EXISTS session_key TEXT")
                self.conn.execute("CREATE INDEX IF NOT EXISTS documents_access_null ON documents (id) WHERE access IS NULL")
        self._name_index()  # an index made before the postings cache (store.postings) has no id
        self._add_postings()

    def close(self) -> None:
        self.conn.close()

    def _rows(self, sql: str, params: Iterable = ()) -> list[dict]:
        return self.conn.execute(sql, list(params)).fetchall()

    def _value(self, sql: str, params: Iterable = ()):
        row = self.conn.execute(sql, list(params)).fetchone()
        return None if row is None else next(iter(row.values()))

    @contextmanager
    def atomic(self):
        with self.conn.transaction():
            yield

    @contextmanager
    def snapshot(self):
        """One REPEATABLE READ transaction: every read inside sees the same committed state, and no
        writer is waited for."""
        if self.conn.info.transaction_status != 0:  # already inside one
            yield
            return
        with self.conn.transaction():
            self.conn.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ")
            yield

    @contextmanager
    def writer_lock(self, wait: bool | float = False):
        """Hold the index's writer lock, on a connection of its own so that it is released by the
        server when this process dies. wait: see locking.writer_lock."""
        conn = self._connect()
        try:
            deadline = None if wait is True else time.monotonic() + (0 if wait is False else float(wait))
            while not conn.execute("SELECT pg_try_advisory_lock(%s) AS got", [WRITER_LOCK_KEY]).fetchone()["got"]:
                if deadline is not None and time.monotonic() >= deadline:
                    holder = conn.execute(
                        "SELECT a.pid, a.client_addr::text AS addr, a.backend_start::text AS since FROM pg_locks l "
                        "JOIN pg_stat_activity a ON a.pid = l.pid WHERE l.locktype = 'advisory' AND l.objid = %s "
                        "AND l.granted AND l.database = (SELECT oid FROM pg_database WHERE datname = current_database())",
                        [WRITER_LOCK_KEY]).fetchone()
                    who = (f" (server pid {holder['pid']}, client {holder['addr'] or 'local'}, since {holder['since']})"
                           if holder else "")
                    raise SbsearchError(f"another sbsearch process is writing to {self.path}{who}; "
                                        "try again later or pass --wait")
                time.sleep(0.2)
            try:
                yield
            finally:
                # released now, not when the server notices the closed connection: a run that
                # follows at once (cron, watch, a test) would find the lock still held
                try:
                    conn.execute("SELECT pg_advisory_unlock(%s)", [WRITER_LOCK_KEY])
                except Exception:  # noqa: BLE001 - a lost connection has released it already
                    pass
        finally:
            conn.close()

    def checkpoint(self, truncate: bool = False) -> None:
        """Nothing to do: PostgreSQL checkpoints by itself, and readers never replay a log."""

    def integrity_check(self) -> str:
        """PostgreSQL keeps its own pages consistent; what can disagree is checked below."""
        return "ok" if self._value("SELECT 1") == 1 else "no answer"

    def orphan_vector_count(self) -> int:
        return self._value("SELECT count(*) FROM embeddings e LEFT JOIN chunks c ON c.id = e.chunk_id "
                           "WHERE c.id IS NULL")

    def orphan_attachments(self) -> list[str]:
        return [r["path"] for r in self._rows(
            "SELECT a.path FROM documents a LEFT JOIN documents m ON m.path = a.parent "
            "WHERE a.parent IS NOT NULL AND m.id IS NULL ORDER BY a.path")]

    def dangling_chunk_count(self) -> int:
        return self._value("SELECT count(*) FROM chunks c LEFT JOIN documents d ON d.id = c.doc_id WHERE d.id IS NULL")

    @property
    def state(self) -> tuple[int, int]:
        """(generation, access_version), in one round trip (a search reads it first)."""
        meta = {r["key"]: int(r["value"]) for r in self._rows(
            "SELECT key, value FROM meta WHERE key IN ('generation', 'access_version')")}
        return meta.get("generation", 0), meta.get("access_version", 0)

    def get_meta(self, key: str, default: str | None = None) -> str | None:
        row = self.conn.execute("SELECT value FROM meta WHERE key = %s", [key]).fetchone()
        return row["value"] if row else default

    def set_meta(self, key: str, value: str) -> None:
        self.conn.execute("INSERT INTO meta (key, value) VALUES (%s, %s) "
                          "ON CONFLICT (key) DO UPDATE SET value = EXCLUDED.value", [key, value])

    def disk_bytes(self) -> int:
        """Tables, their indexes (the HNSW and GIN ones too) and their out-of-line values."""
        return int(self._value(
            "SELECT coalesce(sum(pg_total_relation_size(c.oid)), 0) FROM pg_class c JOIN pg_namespace n "
            "ON n.oid = c.relnamespace WHERE n.nspname = %s AND c.relkind = 'r'", [SCHEMA]))
