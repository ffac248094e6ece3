"""The index's source of truth in PostgreSQL with pgvector: what many search servers share.

The same public methods as store.Store (the SQLite store), over tables of the schema `sbsearch`
of the database the URL names. Vectors live in `embeddings.vector` (pgvector); each model has a
partial HNSW index (cosine) over its own rows, so models of different dimensions share one table.
The lexical index is the table `lexical`: a weighted tsvector per chunk (body, heading, file name)
under a GIN index, written in the same transactions as the chunks. Its lexemes are the tokens of the
SQLite store's FTS5 table (store.lexical_tokens), not PostgreSQL's own parser and stemmer, and it is
ranked by FTS5's BM25: both stores find and rank the same words.

The guarantees of the SQLite store hold here too, by PostgreSQL's own means:
- one writer: a session-level advisory lock, released by the server when the writer's connection
  dies, so a killed `sbsearch index` never leaves a stale lock;
- a run is published in one transaction, so a killed writer leaves the last complete state;
- searches read one REPEATABLE READ snapshot and never wait for the writer (MVCC).

This module and store.py are the only ones that write SQL. It imports psycopg only when opened.
"""

from __future__ import annotations

import hashlib
import json
import math
import re
import time
from contextlib import contextmanager
from typing import Iterable, Iterator

import numpy as np

from ..config import is_store_url  # noqa: F401 (part of this module's interface)
from ..errors import SbsearchError
from ..lexical import index_text, name_text
from .filters import DocumentFilter
from .store import (LEXICAL_WEIGHTS, DocumentRow, StoreBase, filter_where, lexical_disagreements, lexical_tokens,
                    new_session_key, now, relpath_of)

SCHEMA = "sbsearch"
SCHEMA_VERSION = "1"
# Any constant: the advisory lock that makes one writer per database
WRITER_LOCK_KEY = 0x5B5EA2C1
# What the lexical rows hold (meta `lexical_format`): FTS5's tokens, written as tsvector literals.
# An index whose rows were made otherwise (PostgreSQL's 'english' parser, before) has no usable
# lexical index until `check --repair` or the next `index` rebuilds it.
LEXICAL_FORMAT = "fts5-tokens"
# tsvector limits: a lexeme under 2 KB, positions up to 16383
MAX_LEXEME_BYTES, MAX_POSITION = 2046, 16383
# HNSW build parameters (pgvector's defaults) and the search breadth used for a top-k
HNSW_M = 16
HNSW_EF_CONSTRUCTION = 64
MIN_EF_SEARCH = 100
# The most memory an HNSW build asks for (SET LOCAL maintenance_work_mem, this build only)
HNSW_BUILD_MEMORY_MB = 1024

SCHEMA_SQL = [
    f"CREATE SCHEMA IF NOT EXISTS {SCHEMA}",
    "CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT)",
    "CREATE TABLE documents (id BIGSERIAL PRIMARY KEY, path TEXT NOT NULL UNIQUE, root TEXT, sha256 TEXT, "
    "mtime DOUBLE PRECISION, size BIGINT, format TEXT, encoding TEXT, status TEXT, error TEXT, n_chunks INTEGER, "
    "indexed_at TEXT, parent TEXT, access TEXT)",
    # BIGSERIAL: a chunk id is never reused, as in the SQLite store
    "CREATE TABLE chunks (id BIGSERIAL PRIMARY KEY, doc_id BIGINT NOT NULL REFERENCES documents(id), ord INTEGER, "
    "text TEXT, page INTEGER, heading TEXT, start INTEGER, \"end\" INTEGER, text_sha TEXT, location TEXT)",
    "CREATE INDEX chunks_doc_id ON chunks (doc_id)",
    "CREATE INDEX chunks_text_sha ON chunks (text_sha)",
    # no dimension on the column: each model's HNSW index casts to its own vector(dim)
    "CREATE TABLE embeddings (model TEXT NOT NULL, chunk_id BIGINT NOT NULL REFERENCES chunks(id), "
    "vector public.vector NOT NULL, PRIMARY KEY (model, chunk_id))",
    "CREATE INDEX embeddings_chunk_id ON embeddings (chunk_id)",
    "CREATE TABLE models (name TEXT PRIMARY KEY, path TEXT, sha256 TEXT, dim INTEGER, layers INTEGER, "
    "total_layers INTEGER, added_at TEXT, info TEXT)",
    "CREATE TABLE runs (id BIGSERIAL PRIMARY KEY, started TEXT, ended TEXT, model TEXT, roots TEXT, status TEXT, "
    "added INTEGER, updated INTEGER, removed INTEGER, unchanged INTEGER, failed INTEGER, chunks_embedded INTEGER, "
    "seconds DOUBLE PRECISION, error TEXT)",
    "CREATE TABLE compares (id BIGSERIAL PRIMARY KEY, created TEXT, model_a TEXT, model_b TEXT, result TEXT)",
    "CREATE TABLE pending_vectors (model TEXT NOT NULL, text_sha TEXT NOT NULL, vector BYTEA, "
    "PRIMARY KEY (model, text_sha))",
    # ntok: the row's tokens, all columns (BM25's document length, as FTS5 counts it)
    "CREATE TABLE lexical (chunk_id BIGINT PRIMARY KEY REFERENCES chunks(id), tsv TSVECTOR NOT NULL, "
    "ntok INTEGER NOT NULL)",
    "CREATE INDEX lexical_tsv ON lexical USING gin (tsv)",
    # in how many chunks each lexeme occurs: the inverse document frequency of BM25, kept in the
    # same transactions as `lexical` (meta keeps the rows and their total length)
    "CREATE TABLE lexical_df (lexeme TEXT PRIMARY KEY, ndoc BIGINT NOT NULL)",
    "CREATE INDEX documents_access_null ON documents (id) WHERE access IS NULL",
    "CREATE TABLE users (name TEXT PRIMARY KEY, password_hash TEXT, groups TEXT, created TEXT, session_key TEXT)",
    "CREATE TABLE tokens (id TEXT PRIMARY KEY, \"user\" TEXT, label TEXT, token_hash TEXT, created TEXT, "
    "last_used TEXT)",
    "CREATE TABLE login_failures (key TEXT PRIMARY KEY, failures INTEGER, first_at DOUBLE PRECISION)",
]

# A document's path relative to the folder that was indexed, in SQL (documents d)
RELPATH = ("(CASE WHEN d.root IS NOT NULL AND d.root <> '' AND left(d.path, length(d.root) + 1) = d.root || '/' "
           "THEN substr(d.path, length(d.root) + 2) ELSE d.path END)")

# The weight label of each column of a lexical row (body, heading, name) in its tsvector, and the
# BM25 weight it stands for (LEXICAL_WEIGHTS, as the SQLite store gives FTS5's bm25())
COLUMN_LABELS = ("D", "B", "C")
# BM25 exactly as FTS5's bm25() computes it: k1 = 1.2, b = 0.75; a phrase's idf is
# ln((N - n + 0.5) / (n + 0.5)), at least 1e-6, n the rows holding the phrase (from lexical_df for
# one token, else counted through the GIN index); its frequency in a row is the column-weighted count
# of its occurrences; a row's length is its token count (ntok). The idfs and the mean row length are
# computed first (lexical_search), the ranking in one statement: the rows matching any phrase
# (through the GIN index), the positions of the query's tokens in them, the phrases' occurrences.
BM25_K1, BM25_B = 1.2, 0.75
WEIGHT_SQL = (f"max(CASE o.w WHEN 'B' THEN {LEXICAL_WEIGHTS[1]} WHEN 'C' THEN {LEXICAL_WEIGHTS[2]} "
              f"ELSE {LEXICAL_WEIGHTS[0]} END)")
BM25_SQL = (
    "WITH p AS MATERIALIZED (SELECT x.i, x.toks, x.prefix, x.idf "
    "FROM jsonb_to_recordset(%s::jsonb) AS x(i int, toks text[], prefix boolean, idf float8)), "
    "k AS MATERIALIZED (SELECT p.i, t.tok, t.j, cardinality(p.toks) AS len, p.prefix AND t.j = cardinality(p.toks) AS pre "
    "FROM p CROSS JOIN LATERAL unnest(p.toks) WITH ORDINALITY t(tok, j)), "
    # the query's tokens in each row that matches (through the GIN index): without prefixes, the
    # row's tsvector less every other lexeme (ts_delete, in C: a row's other lexemes never become
    # SQL rows), else every lexeme, filtered
    "occ AS MATERIALIZED (SELECT l.chunk_id, l.ntok, u.lexeme, pw.pos, pw.w FROM lexical l {join} CROSS JOIN LATERAL "
    "(SELECT v.lexeme, v.positions, v.weights FROM unnest(CASE WHEN cardinality(%s::text[]) = 0 "
    "THEN ts_delete(l.tsv, tsvector_to_array(ts_delete(l.tsv, %s::text[]))) ELSE l.tsv END) v "
    "WHERE v.lexeme = ANY(%s::text[]) OR v.lexeme LIKE ANY(%s::text[])) u "
    "CROSS JOIN LATERAL unnest(u.positions, u.weights) pw(pos, w) WHERE l.tsv @@ %s::tsquery {where}), "
    # an occurrence of a phrase: a start position from which each of its tokens follows the one before
    f"hits AS (SELECT o.chunk_id, o.ntok, k.i, {WEIGHT_SQL} AS f FROM k JOIN occ o "
    "ON o.lexeme = k.tok OR (k.pre AND starts_with(o.lexeme, k.tok)) "
    "GROUP BY o.chunk_id, o.ntok, k.i, k.len, o.pos - k.j HAVING count(DISTINCT k.j) = k.len), "
    "tf AS (SELECT h.chunk_id, h.ntok, h.i, sum(h.f) AS tf FROM hits h GROUP BY h.chunk_id, h.ntok, h.i) "
    f"SELECT tf.chunk_id, sum(p.idf * tf.tf * {BM25_K1 + 1} / (tf.tf + {BM25_K1} * "
    f"(1 - {BM25_B} + {BM25_B} * tf.ntok / %s::float8))) AS r FROM tf JOIN p ON p.i = tf.i "
    "GROUP BY tf.chunk_id ORDER BY r DESC, tf.chunk_id LIMIT %s")


def _lexeme(token: str) -> str:
    return "'" + token.replace("\\", "\\\\").replace("'", "''") + "'"


def tsvector_literal(columns: list[list[str]]) -> tuple[str, int]:
    """A lexical row as a tsvector literal (each token at its position, labelled by its column; a
    gap between columns, so that no phrase spans two) and its token count."""
    positions: dict[str, list[str]] = {}
    base = 0
    for tokens, label in zip(columns, COLUMN_LABELS):
        for i, token in enumerate(tokens):
            if len(token.encode()) <= MAX_LEXEME_BYTES:
                positions.setdefault(token, []).append(f"{min(base + i + 1, MAX_POSITION)}{label}")
        base += len(tokens) + 1
    return " ".join(f"{_lexeme(t)}:{','.join(p)}" for t, p in positions.items()), sum(len(c) for c in columns)


def lexical_rows(rows: list[tuple[int, str | None, str | None, str]]) -> list[tuple[int, str, int]]:
    """(chunk id, tsvector literal, token count) of (chunk id, text, heading, file name) rows."""
    tokens = lexical_tokens([(index_text(text), index_text(heading), name) for _, text, heading, name in rows])
    return [(row[0], *tsvector_literal(columns)) for row, columns in zip(rows, tokens)]


def display_url(url: str) -> str:
    """The URL without its password, for messages and `status`."""
    return re.sub(r"^(postgres(?:ql)?://[^:/@]*):[^@]*@", r"\1:***@", url)


def glob_regex(glob: str) -> str:
    """A SQLite GLOB (* any text, ? one character, [...] a class) as an anchored POSIX regex."""
    out, i = ["^"], 0
    while i < len(glob):
        ch = glob[i]
        if ch == "*":
            out.append(".*")
        elif ch == "?":
            out.append(".")
        elif ch == "[" and "]" in glob[i + 2:] + glob[i + 1:i + 2]:
            end = glob.index("]", i + 2) if glob[i + 1:i + 2] in ("]", "^", "!") else glob.index("]", i + 1)
            body = glob[i + 1:end]
            out.append("[" + ("^" + body[1:] if body.startswith(("^", "!")) else body).replace("\\", "\\\\") + "]")
            i = end
        else:
            out.append(re.sub(r"([.^$+(){}|\\\[\]])", r"\\\1", ch))
        i += 1
    return "".join(out) + "$"


def filter_sql(doc_filter: DocumentFilter | None) -> tuple[str, list]:
    """A WHERE condition over documents d (and its parameters) for a DocumentFilter; "TRUE" when none."""
    return filter_where(doc_filter, RELPATH, "%s", "~", glob_regex, _groups_sql, "TRUE")


def _groups_sql(groups: list[str]) -> tuple[str, list]:
    return ("(d.access IS NULL OR EXISTS (SELECT 1 FROM jsonb_array_elements_text(d.access::jsonb) j "
            "WHERE j = ANY(%s)))", [groups])


_FTS_TERM = re.compile(r'"((?:[^"]|"")*)"(\*?)')


def query_phrases(match: str) -> list[dict]:
    """The phrases of an FTS5 match expression of sbsearch.lexical (quoted phrases joined by OR, a
    phrase of one CJK character searched as a prefix), each with its FTS5 tokens and tsquery."""
    phrases = [(p.replace('""', '"'), bool(prefix)) for p, prefix in _FTS_TERM.findall(match)]
    tokens = lexical_tokens([(p, None, None) for p, _ in phrases])
    out = []
    for (_, prefix), (toks, _, _) in zip(phrases, tokens):
        toks = [t for t in toks if len(t.encode()) <= MAX_LEXEME_BYTES]
        if toks:
            q = " <-> ".join(map(_lexeme, toks)) + (":*" if prefix else "")
            out.append({"i": len(out), "q": q, "toks": toks, "prefix": prefix})
    return out


def _array(vector) -> np.ndarray:
    """A pgvector value as float32 (newer pgvector-python returns a Vector, older a numpy array)."""
    return np.asarray(vector.to_numpy() if hasattr(vector, "to_numpy") else vector, dtype=np.float32)


def _hnsw_name(model: str) -> str:
    return "embeddings_hnsw_" + hashlib.sha1(model.encode()).hexdigest()[:16]


class PgStore(StoreBase):
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

    # ---------------------------------------------------------------- connection and schema
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
            self.conn.execute("INSERT INTO meta (key, value) VALUES ('schema_version', %s), ('lexical_format', %s)",
                              [SCHEMA_VERSION, LEXICAL_FORMAT])

    def upgrade_schema(self) -> None:
        """What was added since a store was made (as the SQLite store's migration m006): users.session_key
        and the partial index of documents without access rules."""
        has = self._value("SELECT count(*) FROM information_schema.columns WHERE table_schema = %s "
                          "AND table_name = 'users' AND column_name = 'session_key'", [SCHEMA])
        if not has:
            with self.atomic():
                self.conn.execute("ALTER TABLE users ADD COLUMN IF NOT EXISTS session_key TEXT")
                self.conn.execute("CREATE INDEX IF NOT EXISTS documents_access_null ON documents (id) WHERE access IS NULL")

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

    # ---------------------------------------------------------------- health (sbsearch check)
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

    # ---------------------------------------------------------------- meta
    def get_meta(self, key: str, default: str | None = None) -> str | None:
        row = self.conn.execute("SELECT value FROM meta WHERE key = %s", [key]).fetchone()
        return row["value"] if row else default

    def set_meta(self, key: str, value: str) -> None:
        self.conn.execute("INSERT INTO meta (key, value) VALUES (%s, %s) "
                          "ON CONFLICT (key) DO UPDATE SET value = EXCLUDED.value", [key, value])

    # ---------------------------------------------------------------- documents and chunks
    def documents(self) -> dict[str, DocumentRow]:
        return {r["path"]: DocumentRow(r["id"], r["path"], r["sha256"], r["mtime"], r["size"], r["status"],
                                       r["error"], r["parent"])
                for r in self._rows("SELECT id, path, sha256, mtime, size, status, error, parent FROM documents")}

    def chunk_rows(self, ids: Iterable[int]) -> dict[int, dict]:
        return {r["id"]: r for r in self._rows(
            "SELECT c.id, c.text, c.page, c.heading, c.location, c.start, c.\"end\", d.path, d.root, d.id AS doc_id "
            "FROM chunks c JOIN documents d ON d.id = c.doc_id WHERE c.id = ANY(%s)", [[int(i) for i in ids]])}

    def chunk_texts(self) -> list[tuple[int, str, str]]:
        return [(r["id"], r["text"], r["path"]) for r in self._rows(
            "SELECT c.id, c.text, d.path FROM chunks c JOIN documents d ON d.id = c.doc_id ORDER BY c.id")]

    def chunk_count(self) -> int:
        return self._value("SELECT count(*) FROM chunks")

    def chunk_texts_with_headings(self) -> list[tuple[int, str, str | None]]:
        return [(r["id"], r["text"], r["heading"]) for r in self._rows("SELECT id, text, heading FROM chunks ORDER BY id")]

    def headings(self, limit: int, min_length: int = 8, max_length: int = 120) -> list[str]:
        return [r["heading"] for r in self._rows(
            "SELECT DISTINCT heading FROM chunks WHERE heading IS NOT NULL AND length(heading) BETWEEN %s AND %s "
            "ORDER BY heading LIMIT %s", [min_length, max_length, limit])]

    # ---------------------------------------------------------------- comparisons and estimates
    def add_compare(self, model_a: str, model_b: str, result: dict) -> None:
        self.conn.execute("INSERT INTO compares (created, model_a, model_b, result) VALUES (%s, %s, %s, %s)",
                          [result.get("created") or now(), model_a, model_b, json.dumps(result)])

    def latest_compare(self, model: str) -> dict | None:
        row = self.conn.execute("SELECT * FROM compares WHERE model_a = %s OR model_b = %s ORDER BY id DESC LIMIT 1",
                                [model, model]).fetchone()
        if row is None:
            return None
        row["result"] = json.loads(row["result"])
        return row

    def chunks_without_vectors(self, model: str) -> list[tuple[int, str, str | None]]:
        return [(r["id"], r["text"], r["heading"]) for r in self._rows(
            "SELECT c.id, c.text, c.heading FROM chunks c LEFT JOIN embeddings e ON e.chunk_id = c.id "
            "AND e.model = %s WHERE e.chunk_id IS NULL ORDER BY c.id", [model])]

    # ---------------------------------------------------------------- vectors
    def vectors(self, model: str, batch: int = 20000) -> Iterator[tuple[np.ndarray, np.ndarray]]:
        last = -1
        while True:
            rows = self._rows("SELECT chunk_id, vector FROM embeddings WHERE model = %s AND chunk_id > %s "
                              "ORDER BY chunk_id LIMIT %s", [model, last, batch])
            if not rows:
                return
            ids = np.fromiter((r["chunk_id"] for r in rows), dtype=np.int64, count=len(rows))
            last = int(ids[-1])
            yield ids, np.vstack([_array(r["vector"]) for r in rows])

    def vector_count(self, model: str) -> int:
        return self._value("SELECT count(*) FROM embeddings WHERE model = %s", [model])

    def vector_ids(self, model: str) -> set[int]:
        return {r["chunk_id"] for r in self._rows("SELECT chunk_id FROM embeddings WHERE model = %s", [model])}

    def vector_counts(self) -> dict[str, int]:
        return {r["model"]: r["n"] for r in self._rows("SELECT model, count(*) AS n FROM embeddings GROUP BY model")}

    def vectors_for_ids(self, model: str, ids: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        rows = self._rows("SELECT chunk_id, vector FROM embeddings WHERE model = %s AND chunk_id = ANY(%s) "
                          "ORDER BY chunk_id", [model, [int(i) for i in ids]])
        if not rows:
            return np.zeros(0, dtype=np.int64), np.zeros((0, 0), dtype=np.float32)
        return (np.asarray([r["chunk_id"] for r in rows], dtype=np.int64),
                np.vstack([_array(r["vector"]) for r in rows]))

    # ---------------------------------------------------------------- pgvector: the vector index in the store
    def hnsw_index(self, model: str) -> dict | None:
        """The model's HNSW index: its name, size, parameters and whether it is valid; None when
        there is none."""
        row = self.conn.execute(
            "SELECT c.relname AS name, i.indisvalid AS valid, pg_relation_size(c.oid) AS size_bytes FROM pg_class c "
            "JOIN pg_index i ON i.indexrelid = c.oid JOIN pg_namespace n ON n.oid = c.relnamespace "
            "WHERE n.nspname = %s AND c.relname = %s", [SCHEMA, _hnsw_name(model)]).fetchone()
        if row is not None:
            row["params"] = {"m": HNSW_M, "ef_construction": HNSW_EF_CONSTRUCTION, "ef_search": MIN_EF_SEARCH}
        return row

    def build_hnsw(self, model: str, dim: int, rebuild: bool = False) -> None:
        """Create the model's HNSW index (cosine) over its vectors; after that PostgreSQL keeps it
        current in the same transactions as the vectors."""
        from psycopg import sql

        name = sql.Identifier(_hnsw_name(model))
        with self.conn.transaction():
            # pgvector builds fast while the graph fits in maintenance_work_mem and many times slower
            # once it does not (64 MB by default: ~30k vectors of 384-d): raise it for this build
            # only, to what the graph needs, at most HNSW_BUILD_MEMORY_MB
            rows = self._value("SELECT count(*) FROM embeddings WHERE model = %s", [model])
            need_mb = min(HNSW_BUILD_MEMORY_MB, 64 + rows * (4 * int(dim) + 8 * 3 * HNSW_M + 64) * 3 // 2 // 2**20)
            if need_mb > self._value("SELECT setting::bigint / 1024 FROM pg_settings WHERE name = 'maintenance_work_mem'"):
                self.conn.execute(f"SET LOCAL maintenance_work_mem = '{int(need_mb)}MB'")
            if rebuild:
                self.conn.execute(sql.SQL("DROP INDEX IF EXISTS {}").format(name))
            self.conn.execute(sql.SQL(
                "CREATE INDEX IF NOT EXISTS {} ON embeddings USING hnsw ((vector::public.vector({})) "
                "public.vector_cosine_ops) WITH (m = {}, ef_construction = {}) WHERE model = {}").format(
                name, sql.Literal(int(dim)), sql.Literal(HNSW_M), sql.Literal(HNSW_EF_CONSTRUCTION), sql.Literal(model)))

    def drop_hnsw(self, model: str) -> None:
        from psycopg import sql

        self.conn.execute(sql.SQL("DROP INDEX IF EXISTS {}").format(sql.Identifier(_hnsw_name(model))))

    def nearest(self, model: str, dim: int, vecs: np.ndarray, k: int,
                allowed: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
        """Top-k (cosine similarities, chunk ids) per query vector, padded with id -1. Without
        `allowed` the HNSW index answers; with it, the allowed chunks are ranked exactly, so a narrow
        filter still gives up to k results."""
        from psycopg import sql

        # HNSW returns at most ef_search rows: keep it well above k
        self.conn.execute(f"SET hnsw.ef_search = {int(max(MIN_EF_SEARCH, 2 * k))}")
        # model and dimension as literals: the planner matches the partial index only against them
        cast = sql.SQL("vector::public.vector({})").format(sql.Literal(int(dim)))
        if allowed is None:
            query = sql.SQL("SELECT chunk_id, {cast} <=> %s AS d FROM embeddings WHERE model = {model} "
                            "ORDER BY {cast} <=> %s LIMIT %s").format(cast=cast, model=sql.Literal(model))
        else:
            query = sql.SQL("WITH c AS MATERIALIZED (SELECT chunk_id, vector FROM embeddings WHERE model = {model} "
                            "AND chunk_id = ANY(%s)) SELECT chunk_id, {cast} <=> %s AS d FROM c ORDER BY d LIMIT %s"
                            ).format(cast=cast, model=sql.Literal(model))
            ids_param = [int(i) for i in allowed]
        scores = np.full((len(vecs), k), -np.inf, dtype=np.float32)
        ids = np.full((len(vecs), k), -1, dtype=np.int64)
        for q, vec in enumerate(np.asarray(vecs, dtype=np.float32)):
            params = [vec, vec, k] if allowed is None else [ids_param, vec, k]
            for j, r in enumerate(self.conn.execute(query, params).fetchall()):
                ids[q, j] = r["chunk_id"]
                scores[q, j] = 1.0 - r["d"]
        return scores, ids

    # ---------------------------------------------------------------- models
    def model_row(self, name: str) -> dict | None:
        return self.conn.execute("SELECT * FROM models WHERE name = %s", [name]).fetchone()

    def models(self) -> list[dict]:
        return self._rows("SELECT * FROM models ORDER BY added_at, name")

    def _insert_model(self, row: dict) -> None:
        self.conn.execute("INSERT INTO models (name, path, sha256, dim, layers, total_layers, added_at, info) "
                          "VALUES (%(name)s, %(path)s, %(sha256)s, %(dim)s, %(layers)s, %(total_layers)s, "
                          "%(added_at)s, %(info)s)", row)

    def drop_model_vectors(self, name: str) -> None:
        with self.atomic():
            self.drop_hnsw(name)
            self.conn.execute("DELETE FROM embeddings WHERE model = %s", [name])
            self.conn.execute("DELETE FROM models WHERE name = %s", [name])
            self._bump_generation()

    # ---------------------------------------------------------------- runs
    def start_run(self, model: str, roots: list[str]) -> int:
        if not self.has_lexical():  # lexical rows of an older format: rebuilt by the writer, first
            self.rebuild_lexical()
        return self._value("INSERT INTO runs (started, model, roots, status) VALUES (%s, %s, %s, 'running') "
                           "RETURNING id", [now(), model, json.dumps(roots)])

    def finish_run(self, run_id: int, **fields) -> None:
        fields = {"ended": now(), **fields}
        cols = ", ".join(f"{_column(k)} = %s" for k in fields)
        self.conn.execute(f"UPDATE runs SET {cols} WHERE id = %s", [*fields.values(), run_id])

    def mark_running_runs_interrupted(self) -> None:
        self.conn.execute("UPDATE runs SET status = 'interrupted' WHERE status = 'running'")

    def runs(self, limit: int = 10) -> list[dict]:
        return self._rows("SELECT * FROM runs ORDER BY id DESC LIMIT %s", [limit])

    # ---------------------------------------------------------------- publish
    def vectors_by_text(self, text_shas: Iterable[str]) -> dict[str, dict[str, bytes]]:
        out: dict[str, dict[str, bytes]] = {}
        shas = list(set(text_shas))
        for r in self._rows("SELECT text_sha, model, vector FROM pending_vectors WHERE text_sha = ANY(%s)", [shas]):
            out.setdefault(r["model"], {})[r["text_sha"]] = bytes(r["vector"])
        for r in self._rows("SELECT c.text_sha, e.model, e.vector FROM chunks c JOIN embeddings e ON e.chunk_id = c.id "
                            "WHERE c.text_sha = ANY(%s)", [shas]):
            out.setdefault(r["model"], {})[r["text_sha"]] = _array(r["vector"]).tobytes()
        return out

    def pending_count(self) -> int:
        return self._value("SELECT count(*) FROM pending_vectors")

    def save_pending(self, model: str, vectors: dict[str, bytes]) -> None:
        with self.atomic(), self.conn.cursor() as cur:
            cur.executemany("INSERT INTO pending_vectors (model, text_sha, vector) VALUES (%s, %s, %s) "
                            "ON CONFLICT (model, text_sha) DO UPDATE SET vector = EXCLUDED.vector",
                            [(model, sha, v) for sha, v in vectors.items()])

    def _new_ids(self, table: str, n: int) -> list[int]:
        return [r["id"] for r in self._rows(f"SELECT nextval('{table}_id_seq') AS id FROM generate_series(1, %s)", [n])]

    def publish(self, new_docs: list[dict], removed_paths: list[str], vectors: dict[str, dict[str, bytes]],
                touched: dict[str, float] | None = None) -> tuple[int, list[int], list[tuple[int, str]]]:
        """Apply one indexing run in a single transaction (see store.Store.publish)."""
        added: list[tuple[int, str]] = []
        with self.atomic(), self.conn.cursor() as cur:
            paths = removed_paths + [d["path"] for d in new_docs]
            doc_ids = [r["id"] for r in self._rows("SELECT id FROM documents WHERE path = ANY(%s)", [paths])]
            removed_ids = [r["id"] for r in self._rows("SELECT id FROM chunks WHERE doc_id = ANY(%s) ORDER BY id",
                                                       [doc_ids])]
            self._count_lexical(removed_ids, -1)
            for table, column in (("lexical", "chunk_id"), ("embeddings", "chunk_id"), ("chunks", "id")):
                self.conn.execute(f"DELETE FROM {table} WHERE {column} = ANY(%s)", [removed_ids])
            self.conn.execute("DELETE FROM documents WHERE id = ANY(%s)", [doc_ids])
            doc_rows, chunk_rows, lexical_input, embedding_rows = [], [], [], []
            new_doc_ids = self._new_ids("documents", len(new_docs))
            chunk_ids = iter(self._new_ids("chunks", sum(len(d["chunks"]) for d in new_docs)))
            for doc, doc_id in zip(new_docs, new_doc_ids):
                chunks = doc["chunks"]
                doc_rows.append([doc_id, doc["path"], doc.get("root"), doc.get("sha256"), doc.get("mtime"),
                                 doc.get("size"), doc.get("format"), doc.get("encoding"), doc.get("status"),
                                 doc.get("error"), len(chunks), now(), doc.get("parent"), doc.get("access")])
                name = name_text(relpath_of(doc["path"], doc.get("root")))
                for ord_, ch in enumerate(chunks):
                    chunk_id = next(chunk_ids)
                    added.append((chunk_id, ch["text_sha"]))
                    chunk_rows.append([chunk_id, doc_id, ord_, ch["text"], ch.get("page"), ch.get("heading"),
                                       ch.get("start"), ch.get("end"), ch["text_sha"], ch.get("location")])
                    lexical_input.append((chunk_id, ch["text"], ch.get("heading"), name))
                    for model, by_sha in vectors.items():
                        vec = by_sha.get(ch["text_sha"])
                        if vec is not None:
                            embedding_rows.append([model, chunk_id, np.frombuffer(vec, dtype=np.float32)])
            cur.executemany("INSERT INTO documents (id, path, root, sha256, mtime, size, format, encoding, status, "
                            "error, n_chunks, indexed_at, parent, access) VALUES "
                            "(%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s)", doc_rows)
            cur.executemany("INSERT INTO chunks (id, doc_id, ord, text, page, heading, start, \"end\", text_sha, "
                            "location) VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s)", chunk_rows)
            cur.executemany("INSERT INTO lexical (chunk_id, tsv, ntok) VALUES (%s, %s::tsvector, %s)",
                            lexical_rows(lexical_input))
            self._count_lexical([row[0] for row in lexical_input], 1)
            cur.executemany("INSERT INTO embeddings (model, chunk_id, vector) VALUES (%s, %s, %s)", embedding_rows)
            self.touch_documents(touched or {})
            self.conn.execute("DELETE FROM pending_vectors")  # published now, or text no longer present
            gen = self._bump_generation()
        return gen, removed_ids, added

    def touch_documents(self, touched: dict[str, float]) -> None:
        if touched:
            with self.atomic(), self.conn.cursor() as cur:
                cur.executemany("UPDATE documents SET mtime = %s WHERE path = %s",
                                [(mtime, path) for path, mtime in touched.items()])

    def add_vectors(self, model: str, vectors: dict[int, np.ndarray]) -> int:
        """Back-fill vectors of existing chunks for a model; one transaction."""
        with self.atomic(), self.conn.cursor() as cur:
            cur.executemany("INSERT INTO embeddings (model, chunk_id, vector) VALUES (%s, %s, %s) "
                            "ON CONFLICT (model, chunk_id) DO UPDATE SET vector = EXCLUDED.vector",
                            [(model, int(cid), np.asarray(v, dtype=np.float32)) for cid, v in vectors.items()])
            return self._bump_generation()

    # ---------------------------------------------------------------- filters and lexical search
    def filtered_chunk_ids(self, doc_filter: DocumentFilter) -> np.ndarray:
        where, params = filter_sql(doc_filter)
        rows = self._rows(f"SELECT c.id FROM chunks c JOIN documents d ON d.id = c.doc_id WHERE {where} ORDER BY c.id",
                          params)
        return np.fromiter((r["id"] for r in rows), dtype=np.int64, count=len(rows))

    def has_lexical(self) -> bool:
        """False for an index whose lexical rows are of an older format (the next `sbsearch index`
        or `sbsearch check --repair` rebuilds them)."""
        return self.get_meta("lexical_format") == LEXICAL_FORMAT

    def lexical_search(self, match: str, limit: int, doc_filter: DocumentFilter | None = None) -> list[tuple[int, float]]:
        """(chunk id, BM25 score, higher is better) of the best `limit` chunks matching an FTS5
        expression of sbsearch.lexical, among the chunks of documents that pass the filter."""
        phrases = query_phrases(match)
        if not phrases:
            return []
        # BM25's statistics: those of the chunks the filter's reader may read (all chunks when it
        # names no reader), so that documents a reader cannot read never move their scores
        reader = DocumentFilter(groups=doc_filter.groups) if doc_filter is not None and doc_filter.groups is not None else None
        rows, length = self.lexical_collection(reader)
        n = max(float(rows), 1.0)
        mean_length = max(float(length), 1.0) / n
        singles = [p["toks"][0] for p in phrases if len(p["toks"]) == 1 and not p["prefix"]]
        df = self.token_row_counts(singles) if singles and reader is None else {}
        scope, scope_params = filter_sql(reader)
        for p in phrases:
            if reader is None and len(p["toks"]) == 1 and not p["prefix"]:
                hits = df.get(p["toks"][0], 0)
            elif reader is None:  # a phrase of several tokens, or a prefix: the rows that hold it
                hits = self._value("SELECT count(*) FROM lexical WHERE tsv @@ %s::tsquery", [p["q"]])
            else:
                hits = self._value("SELECT count(*) FROM lexical l JOIN chunks c ON c.id = l.chunk_id JOIN documents d "
                                   f"ON d.id = c.doc_id WHERE l.tsv @@ %s::tsquery AND {scope}", [p["q"], *scope_params])
            p["idf"] = max(math.log((n - hits + 0.5) / (hits + 0.5)), 1e-6)
        where, params = filter_sql(doc_filter)
        join = "" if where == "TRUE" else "JOIN chunks c ON c.id = l.chunk_id JOIN documents d ON d.id = c.doc_id"
        sql = BM25_SQL.format(join=join, where="" if where == "TRUE" else f"AND {where}")
        any_phrase = " | ".join(f"({p['q']})" for p in phrases)
        exact = sorted({t for p in phrases for t in (p["toks"][:-1] if p["prefix"] else p["toks"])})
        prefixes = [re.sub(r"([%_\\])", r"\\\1", p["toks"][-1]) + "%" for p in phrases if p["prefix"]]
        return [(int(r["chunk_id"]), float(r["r"])) for r in self._rows(
            sql, [json.dumps(phrases), prefixes, exact, exact, prefixes, any_phrase, *params, mean_length, limit])]

    def lexical_collection(self, reader: DocumentFilter | None) -> tuple[int, int]:
        """(lexical rows, their tokens together) of the chunks a reader may read (reader: a filter
        of groups alone; None: every chunk), kept per generation and group set."""
        if reader is None:
            stats = {r["key"]: int(r["value"]) for r in self._rows(
                "SELECT key, value FROM meta WHERE key IN ('lexical_rows', 'lexical_length')")}
            return stats.get("lexical_rows", 0), stats.get("lexical_length", 0)
        cache = self.__dict__.setdefault("_collections", {})
        key = (self.state, tuple(sorted(set(reader.groups))))
        if key not in cache:
            if len(cache) >= 32:
                cache.clear()
            where, params = filter_sql(reader)
            row = self._rows("SELECT count(*) AS n, coalesce(sum(l.ntok), 0) AS total FROM lexical l JOIN chunks c "
                             f"ON c.id = l.chunk_id JOIN documents d ON d.id = c.doc_id WHERE {where}", params)[0]
            cache[key] = (int(row["n"]), int(row["total"]))
        return cache[key]

    def token_row_counts(self, tokens: Iterable[str], reader: DocumentFilter | None = None) -> dict[str, int]:
        """How many chunks hold each index token (its document frequency, kept in lexical_df): the
        same FTS5 tokens as the SQLite store's. reader: only the chunks a reader may read
        (a filter of groups alone), counted through the GIN index."""
        if reader is None:
            return {r["lexeme"]: r["ndoc"] for r in self._rows(
                "SELECT lexeme, ndoc FROM lexical_df WHERE lexeme = ANY(%s)", [list(set(tokens))])}
        where, params = filter_sql(reader)
        return {token: self._value("SELECT count(*) FROM lexical l JOIN chunks c ON c.id = l.chunk_id JOIN documents d "
                                   f"ON d.id = c.doc_id WHERE l.tsv @@ %s::tsquery AND {where}", [_lexeme(token), *params])
                for token in set(tokens)}

    def _count_lexical(self, chunk_ids: list[int], sign: int) -> None:
        """Add (sign 1) or take away (-1, before they are deleted) these chunks' lexical rows in the
        BM25 statistics: document frequencies, rows, total length."""
        self.conn.execute(
            "INSERT INTO lexical_df (lexeme, ndoc) SELECT u.lexeme, %s * count(*) FROM lexical l, unnest(l.tsv) u "
            "WHERE l.chunk_id = ANY(%s) GROUP BY u.lexeme "
            "ON CONFLICT (lexeme) DO UPDATE SET ndoc = lexical_df.ndoc + EXCLUDED.ndoc", [sign, chunk_ids])
        if sign < 0:
            self.conn.execute("DELETE FROM lexical_df WHERE ndoc <= 0")
        row = self.conn.execute("SELECT count(*) AS n, coalesce(sum(ntok), 0) AS total FROM lexical "
                                "WHERE chunk_id = ANY(%s)", [chunk_ids]).fetchone()
        self.set_meta("lexical_rows", str(int(self.get_meta("lexical_rows", "0")) + sign * row["n"]))
        self.set_meta("lexical_length", str(int(self.get_meta("lexical_length", "0")) + sign * int(row["total"])))

    def lexical_summary(self) -> dict | None:
        return {"rows": self._value("SELECT count(*) FROM lexical"),
                "size_bytes": self._value("SELECT pg_total_relation_size('lexical')"),
                "engine": "PostgreSQL full text"}

    def lexical_problems(self) -> list[str]:
        if not self.has_lexical():
            return ["the lexical index is of an older format (made by an older sbsearch)"]
        missing = self._value("SELECT count(*) FROM chunks WHERE id NOT IN (SELECT chunk_id FROM lexical)")
        extra = self._value("SELECT count(*) FROM lexical WHERE chunk_id NOT IN (SELECT id FROM chunks)")
        return lexical_disagreements(missing, extra)

    def rebuild_lexical(self, batch: int = 2000) -> int:
        """Write the lexical index anew from the chunks, in one transaction; returns its rows."""
        added, last = 0, -1
        with self.atomic(), self.conn.cursor() as cur:
            self.conn.execute("ALTER TABLE lexical ADD COLUMN IF NOT EXISTS ntok INTEGER NOT NULL DEFAULT 0")
            self.conn.execute("DELETE FROM lexical")
            self.conn.execute("DELETE FROM lexical_df")
            self.set_meta("lexical_rows", "0")
            self.set_meta("lexical_length", "0")
            while True:
                rows = self._rows("SELECT c.id, c.text, c.heading, d.path, d.root FROM chunks c JOIN documents d "
                                  "ON d.id = c.doc_id WHERE c.id > %s ORDER BY c.id LIMIT %s", [last, batch])
                if not rows:
                    self.set_meta("lexical_format", LEXICAL_FORMAT)
                    return added
                cur.executemany("INSERT INTO lexical (chunk_id, tsv, ntok) VALUES (%s, %s::tsvector, %s)",
                                lexical_rows([(r["id"], r["text"], r["heading"], name_text(relpath_of(r["path"], r["root"])))
                                              for r in rows]))
                self._count_lexical([r["id"] for r in rows], 1)
                added += len(rows)
                last = rows[-1]["id"]

    # ---------------------------------------------------------------- access: documents, users, tokens
    def document_access(self) -> dict[str, tuple[str, str | None, str | None]]:
        return {r["path"]: (r["root"], r["access"], r["parent"])
                for r in self._rows("SELECT path, root, access, parent FROM documents")}

    def set_document_access(self, access: dict[str, str | None]) -> None:
        with self.atomic(), self.conn.cursor() as cur:
            cur.executemany("UPDATE documents SET access = %s WHERE path = %s", [(a, p) for p, a in access.items()])
            self.set_meta("access_version", str(self.access_version + 1))

    def document(self, doc_id: int, doc_filter: DocumentFilter | None = None) -> dict | None:
        where, params = filter_sql(doc_filter)
        return self.conn.execute(f"SELECT d.* FROM documents d WHERE d.id = %s AND {where}", [doc_id, *params]).fetchone()

    def visible_counts(self, doc_filter: DocumentFilter | None) -> dict:
        where, params = filter_sql(doc_filter)
        row = self.conn.execute(f"SELECT count(*) AS docs, count(*) FILTER (WHERE d.status = 'failed') AS failed "
                                f"FROM documents d WHERE {where}", params).fetchone()
        chunks = self._value(f"SELECT count(*) FROM chunks c JOIN documents d ON d.id = c.doc_id WHERE {where}", params)
        return {"documents": row["docs"] or 0, "documents_failed": row["failed"] or 0, "chunks": chunks}

    def user(self, name: str) -> dict | None:
        row = self.conn.execute("SELECT * FROM users WHERE name = %s", [name]).fetchone()
        if row is not None:
            row["groups"] = json.loads(row["groups"] or "[]")
        return row

    def users(self) -> list[dict]:
        rows = self._rows("SELECT name, groups, created FROM users ORDER BY name")
        for r in rows:
            r["groups"] = json.loads(r["groups"] or "[]")
        return rows

    def put_user(self, name: str, password_hash: str | None, groups: list[str]) -> None:
        groups_json = json.dumps(sorted(set(groups)))
        # a new user or a new password: a new session key (every earlier session ends)
        key = new_session_key() if password_hash is not None else None
        with self.atomic():
            if self._value("SELECT count(*) FROM users WHERE name = %s", [name]):
                self.conn.execute("UPDATE users SET groups = %s, password_hash = coalesce(%s, password_hash), "
                                  "session_key = coalesce(%s, session_key) WHERE name = %s",
                                  [groups_json, password_hash, key, name])
            else:
                self.conn.execute("INSERT INTO users (name, password_hash, groups, created, session_key) "
                                  "VALUES (%s, %s, %s, %s, %s)", [name, password_hash, groups_json, now(), key])

    def reset_session_key(self, name: str) -> str | None:
        key = new_session_key()
        changed = self.conn.execute("UPDATE users SET session_key = %s WHERE name = %s", [key, name]).rowcount
        return key if changed else None

    def documents_without_access(self) -> int:
        return int(self._value("SELECT count(*) FROM documents WHERE access IS NULL"))

    def any_document_without_access(self) -> bool:
        return self._value("SELECT 1 FROM documents WHERE access IS NULL LIMIT 1") is not None

    def remove_user(self, name: str) -> bool:
        with self.atomic():
            self.conn.execute("DELETE FROM tokens WHERE \"user\" = %s", [name])
            return self.conn.execute("DELETE FROM users WHERE name = %s", [name]).rowcount > 0

    def add_token(self, token_id: str, user: str, label: str, token_hash: str) -> None:
        self.conn.execute("INSERT INTO tokens (id, \"user\", label, token_hash, created, last_used) "
                          "VALUES (%s, %s, %s, %s, %s, NULL)", [token_id, user, label, token_hash, now()])

    def token(self, token_id: str) -> dict | None:
        return self.conn.execute("SELECT * FROM tokens WHERE id = %s", [token_id]).fetchone()

    def tokens(self, user: str | None = None) -> list[dict]:
        sql = "SELECT id, \"user\", label, created, last_used FROM tokens"
        if user:
            return self._rows(sql + " WHERE \"user\" = %s ORDER BY id", [user])
        return self._rows(sql + " ORDER BY \"user\", id")

    def remove_token(self, token_id: str) -> bool:
        return self.conn.execute("DELETE FROM tokens WHERE id = %s", [token_id]).rowcount > 0

    def login_failures(self, key: str, window_s: float) -> int:
        row = self.conn.execute("SELECT failures, first_at FROM login_failures WHERE key = %s", [key]).fetchone()
        if row is None or time.time() - row["first_at"] > window_s:
            return 0
        return row["failures"]

    def record_login_failure(self, key: str, window_s: float) -> None:
        t = time.time()
        # a window that has passed starts again at one failure
        self.conn.execute(
            "INSERT INTO login_failures (key, failures, first_at) VALUES (%s, 1, %s) ON CONFLICT (key) DO UPDATE SET "
            "failures = CASE WHEN %s - login_failures.first_at > %s THEN 1 ELSE login_failures.failures + 1 END, "
            "first_at = CASE WHEN %s - login_failures.first_at > %s THEN EXCLUDED.first_at ELSE login_failures.first_at END",
            [key, t, t, window_s, t, window_s])

    def clear_login_failures(self, key: str) -> None:
        self.conn.execute("DELETE FROM login_failures WHERE key = %s", [key])

    def checkpoint(self, truncate: bool = False) -> None:
        """Nothing to do: PostgreSQL checkpoints by itself, and readers never replay a log."""

    # ---------------------------------------------------------------- import (sbsearch migrate)
    IMPORTED = {
        "meta": ("key", "value"),
        "models": ("name", "path", "sha256", "dim", "layers", "total_layers", "added_at", "info"),
        "documents": ("id", "path", "root", "sha256", "mtime", "size", "format", "encoding", "status", "error",
                      "n_chunks", "indexed_at", "parent", "access"),
        "chunks": ("id", "doc_id", "ord", "text", "page", "heading", "start", "end", "text_sha", "location"),
        "embeddings": ("model", "chunk_id", "vector"),
        "runs": ("id", "started", "ended", "model", "roots", "status", "added", "updated", "removed", "unchanged",
                 "failed", "chunks_embedded", "seconds", "error"),
        "compares": ("id", "created", "model_a", "model_b", "result"),
        "users": ("name", "password_hash", "groups", "created", "session_key"),
        "tokens": ("id", "user", "label", "token_hash", "created", "last_used"),
    }

    def is_empty(self) -> bool:
        return not self._value("SELECT count(*) FROM documents") and not self._value("SELECT count(*) FROM models")

    def import_rows(self, table: str, rows: list[dict]) -> None:
        """Rows of another store's table as they are (ids kept; vectors as float32 bytes); call
        inside atomic(), then finish_import()."""
        from psycopg import sql

        columns = self.IMPORTED[table]
        statement = sql.SQL("INSERT INTO {} ({}) VALUES ({})").format(
            sql.Identifier(table), sql.SQL(", ").join(map(sql.Identifier, columns)),
            sql.SQL(", ").join(sql.Placeholder() * len(columns)))
        if table == "meta":  # the schema's own keys stay
            statement += sql.SQL(" ON CONFLICT (key) DO UPDATE SET value = EXCLUDED.value")
        values = [[np.frombuffer(r[c], dtype=np.float32) if c == "vector" else r.get(c) for c in columns]
                  for r in rows if not (table == "meta" and r["key"] == "schema_version")]
        with self.conn.cursor() as cur:
            cur.executemany(statement, values)

    def finish_import(self) -> None:
        """After import_rows: new ids continue after the imported ones; the lexical index and each
        model's HNSW index are built from the imported rows."""
        for table in ("documents", "chunks", "runs", "compares"):
            self.conn.execute(f"SELECT setval('{table}_id_seq', coalesce((SELECT max(id) FROM {table}), 0) + 1, false)")
        self.rebuild_lexical()
        for m in self.models():
            self.build_hnsw(m["name"], m["dim"], rebuild=True)

    # ---------------------------------------------------------------- summary
    def disk_bytes(self) -> int:
        """Tables, their indexes (the HNSW and GIN ones too) and their out-of-line values."""
        return int(self._value(
            "SELECT coalesce(sum(pg_total_relation_size(c.oid)), 0) FROM pg_class c JOIN pg_namespace n "
            "ON n.oid = c.relnamespace WHERE n.nspname = %s AND c.relkind = 'r'", [SCHEMA]))

    def _document_totals(self) -> dict:
        docs = self.conn.execute(
            "SELECT count(*) AS n, count(*) FILTER (WHERE status = 'ok') AS ok, "
            "count(*) FILTER (WHERE status = 'failed') AS failed, sum(size) AS size FROM documents").fetchone()
        return {"documents": docs["n"] or 0, "documents_ok": docs["ok"] or 0, "documents_failed": docs["failed"] or 0,
                "source_bytes": int(docs["size"] or 0)}

    def _document_lists(self) -> dict:
        return {"failed_files": self._rows("SELECT path, error FROM documents WHERE status = 'failed' ORDER BY path"),
                "partly_read_files": self._rows("SELECT path, error AS warning FROM documents WHERE status = 'ok' "
                                                "AND error IS NOT NULL ORDER BY path")}


_RUN_COLUMNS = {"ended", "status", "error", "seconds", "added", "updated", "removed", "unchanged", "failed",
                "chunks_embedded", "model"}


def _column(name: str) -> str:
    if name not in _RUN_COLUMNS:
        raise ValueError(f"no run column {name!r}")
    return name
