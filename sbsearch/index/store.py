"""The index's source of truth: SQLite. Every SQL statement of the application is in this module.

Layout of an index directory:
    index.db                            documents, chunks, embeddings per (chunk, model), models,
                                        runs, compares, and `lexical`: the FTS5 (BM25) index of
                                        the chunks, written in the same transactions (SQLite)
    faiss/<model-key>-g<generation>.faiss  a model's vector index of one generation, derived from
                                        index.db (sbsearch.vectors.faiss_index) and rebuilt when stale
    faiss/<model-key>.json              names the current file: its generation, type, measured recall
    writer.lock, writer.json            the writer lock and its holder (locking.py)

SQLite runs in WAL mode so that searches read the last committed state while a re-index writes.
This module imports neither torch nor faiss.
"""

from __future__ import annotations

import datetime as dt
import json
import sqlite3
import threading
from contextlib import contextmanager
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import Iterable, Iterator

import numpy as np


def _import_sqlite_utils():
    """sqlite-utils imports pandas (if installed) only to map pd.Timestamp to TEXT; we never store
    pandas objects, and that import costs ~0.2 s of every cold `sbsearch query`. Hide pandas while
    sqlite-utils loads, then let anyone else import it normally."""
    import sys

    hidden = "pandas" not in sys.modules
    if hidden:
        sys.modules["pandas"] = None  # makes `import pandas` raise ImportError
    try:
        import sqlite_utils
        from sqlite_utils.migrations import Migrations
    finally:
        if hidden:
            del sys.modules["pandas"]
    return sqlite_utils, Migrations


sqlite_utils, Migrations = _import_sqlite_utils()

from ..errors import SbsearchError
from ..lexical import index_text, name_text
from .filters import DocumentFilter
from .sqlite_lexical import ReaderLexicalSearch, match_phrases

DB_NAME = "index.db"
migrations = Migrations("sbsearch")


@migrations()
def m001_initial(db: sqlite_utils.Database) -> None:
    db["meta"].create({"key": str, "value": str}, pk="key")
    db["documents"].create(
        {
            "id": int, "path": str, "root": str, "sha256": str, "mtime": float, "size": int,
            "format": str, "encoding": str, "status": str, "error": str, "n_chunks": int,
            "indexed_at": str,
        },
        pk="id",
    )
    db["documents"].create_index(["path"], unique=True)
    # AUTOINCREMENT: a chunk id is never reused, so a stale FAISS file can never point at new text.
    db.execute(
        "CREATE TABLE chunks (id INTEGER PRIMARY KEY AUTOINCREMENT, doc_id INTEGER NOT NULL "
        "REFERENCES documents(id), ord INTEGER, text TEXT, page INTEGER, heading TEXT, "
        "start INTEGER, end INTEGER, text_sha TEXT)"
    )
    db["chunks"].create_index(["doc_id"])
    # text_sha (of the text a model embeds) lets a run reuse vectors of identical text: renamed,
    # swapped or partly edited files cost model work only for passages that really changed.
    db["chunks"].create_index(["text_sha"])
    db["embeddings"].create(
        {"chunk_id": int, "model": str, "vector": bytes}, pk=("model", "chunk_id"),
        foreign_keys=[("chunk_id", "chunks", "id")],
    )
    db["models"].create(
        {"name": str, "path": str, "sha256": str, "dim": int, "layers": int, "total_layers": int,
         "added_at": str, "info": str},
        pk="name",
    )
    db["runs"].create(
        {"id": int, "started": str, "ended": str, "model": str, "roots": str, "status": str,
         "added": int, "updated": int, "removed": int, "unchanged": int, "failed": int,
         "chunks_embedded": int, "seconds": float, "error": str},
        pk="id",
    )
    db["compares"].create(
        {"id": int, "created": str, "model_a": str, "model_b": str, "result": str}, pk="id"
    )


@migrations()
def m002_pending_vectors(db: sqlite_utils.Database) -> None:
    # Vectors computed by a run that has not published yet, committed in small batches: a run
    # killed after an hour of embedding loses one batch, not the hour. Searches never read them.
    db["pending_vectors"].create({"model": str, "text_sha": str, "vector": bytes}, pk=("model", "text_sha"))


# The lexical index: chunk text, section heading and file name, tokenised by FTS5 (Porter stems
# over unicode61; CJK arrives as bigrams from sbsearch.lexical), rowid = chunk id. It stores its
# own (analysed) copy of the text, so it can be checked and rebuilt from `chunks` alone.
LEXICAL_TOKENIZER = "porter unicode61 remove_diacritics 2"
LEXICAL_TABLE = (
    "CREATE VIRTUAL TABLE IF NOT EXISTS lexical USING fts5(body, heading, name, "
    f"tokenize = '{LEXICAL_TOKENIZER}')"
)
_analyser = threading.local()


def lexical_tokens(rows: list[tuple[str | None, str | None, str | None]]) -> list[list[list[str]]]:
    """The tokens FTS5 stores for each (body, heading, name) row: per column, in order (Porter
    stems of unicode61 words, diacritics removed). PostgreSQL's store writes exactly these into its
    tsvectors, so that both stores find and rank the same words. FTS5 itself does the work, in a
    contentless table in memory (one per thread): no second implementation to drift apart."""
    db = getattr(_analyser, "db", None)
    if db is None:
        db = _analyser.db = sqlite3.connect(":memory:")
        db.execute(f"CREATE VIRTUAL TABLE t USING fts5(body, heading, name, content='', tokenize='{LEXICAL_TOKENIZER}')")
        db.execute("CREATE VIRTUAL TABLE v USING fts5vocab(t, 'instance')")
    out: list[list[list[str]]] = [[[], [], []] for _ in rows]
    if not rows:
        return out
    column = {"body": 0, "heading": 1, "name": 2}
    try:
        db.executemany("INSERT INTO t (rowid, body, heading, name) VALUES (?, ?, ?, ?)",
                       [(i, *row) for i, row in enumerate(rows)])
        for doc, col, _, term in db.execute("SELECT doc, col, offset, term FROM v ORDER BY doc, col, offset"):
            out[doc][column[col]].append(term)
    finally:
        db.execute("INSERT INTO t (t) VALUES ('delete-all')")
    return out


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


# BM25 weight of each column: a word in a heading or file name says more about a chunk than one
# in its body (measured by benchmarks/hybrid.py)
LEXICAL_WEIGHTS = (1.0, 2.0, 1.0)

# A document's path relative to the folder that was indexed, in SQL (documents d)
RELPATH = ("(CASE WHEN d.root IS NOT NULL AND d.root != '' AND substr(d.path, 1, length(d.root) + 1) = d.root || '/' "
           "THEN substr(d.path, length(d.root) + 2) ELSE d.path END)")


def relpath_of(path: str, root: str | None) -> str:
    root = (root or "").rstrip("/")
    return path[len(root) + 1:] if root and path.startswith(root + "/") else path


def _lexical_row(chunk_id: int, text: str, heading: str | None, path: str, root: str | None) -> tuple:
    return (chunk_id, index_text(text), index_text(heading), name_text(relpath_of(path, root)))


def _fill_lexical(db: sqlite_utils.Database, batch: int = 2000) -> int:
    """Add the lexical rows of every chunk that has none (all of them in a new table)."""
    added, last = 0, -1
    while True:
        rows = list(db.query(
            "SELECT c.id, c.text, c.heading, d.path, d.root FROM chunks c JOIN documents d ON d.id = c.doc_id "
            "WHERE c.id > ? AND c.id NOT IN (SELECT rowid FROM lexical) ORDER BY c.id LIMIT ?", [last, batch]))
        if not rows:
            return added
        db.conn.executemany("INSERT INTO lexical (rowid, body, heading, name) VALUES (?, ?, ?, ?)",
                            [_lexical_row(r["id"], r["text"], r["heading"], r["path"], r["root"]) for r in rows])
        added += len(rows)
        last = rows[-1]["id"]


@migrations()
def m003_lexical_index(db: sqlite_utils.Database) -> None:
    # Existing indexes get their lexical index from the chunks they hold: no file is read again
    # and nothing is re-embedded.
    db.execute(LEXICAL_TABLE)
    _fill_lexical(db)


@migrations()
def m004_chunk_locations(db: sqlite_utils.Database) -> None:
    # Where a chunk sits when a page number does not say it: "slide 7", "sheet Prices", "mail"
    # (NULL: "p.N" when it has a page). And where a document sits when it is no file of its own:
    # documents.parent is the path of the e-mail an attachment came in, so that the attachment
    # lives and dies with its message. Existing rows keep NULL in both: nothing is re-read.
    db["chunks"].add_column("location", str)
    db["documents"].add_column("parent", str)


@migrations()
def m005_access(db: sqlite_utils.Database) -> None:
    # documents.access: JSON list of the groups that may read a document (resolved from the access
    # rules at index time; "*" = everyone who may search); NULL = no rules configured, readable by all.
    db.execute("ALTER TABLE documents ADD COLUMN access TEXT")
    db["users"].create({"name": str, "password_hash": str, "groups": str, "created": str}, pk="name")
    db["tokens"].create({"id": str, "user": str, "label": str, "token_hash": str, "created": str,
                         "last_used": str}, pk="id")
    # failed sign-ins per key (user name and client address), for rate limiting across workers
    db["login_failures"].create({"key": str, "failures": int, "first_at": float}, pk="key")


@migrations()
def m006_session_keys(db: sqlite_utils.Database) -> None:
    # users.session_key: a random value that every session cookie of the user must match; sign-out,
    # a new password or re-creating the user replaces it. Existing users get one at their next sign-in.
    db["users"].add_column("session_key", str)
    # documents without access rules (readable by every reader): found at once on every request, so
    # that a server run without --all-may-read-everything refuses to answer while there are any
    db.execute("CREATE INDEX documents_access_null ON documents (id) WHERE access IS NULL")


def new_session_key() -> str:
    import secrets

    return secrets.token_urlsafe(24)


def filter_where(doc_filter: DocumentFilter | None, relpath: str, mark: str, glob_op: str, glob_value,
                 groups_sql, none: str) -> tuple[str, list]:
    """A WHERE condition over documents d (and its parameters) for a DocumentFilter, in either
    store's dialect: relpath (SQL of the path below its root), mark (a parameter's placeholder),
    glob_op and glob_value (how a path matches a glob), groups_sql (groups -> SQL, parameters of the
    reader-trimming clause), none (the condition that keeps everything)."""
    if doc_filter is None or not doc_filter.active:
        return none, []
    clauses, params = [], []
    if doc_filter.paths:
        clauses.append("(" + " OR ".join(f"{relpath} {glob_op} {mark} OR d.path {glob_op} {mark}"
                                         for _ in doc_filter.paths) + ")")
        for glob in doc_filter.paths:
            params += [glob_value(glob)] * 2
    if doc_filter.types:
        clauses.append("(" + " OR ".join(f"lower(d.path) LIKE {mark}" for _ in doc_filter.types) + ")")
        params += [f"%.{t}" for t in doc_filter.types]
    if doc_filter.folders:
        clauses.append("(" + " OR ".join(
            f"substr({relpath}, 1, length({mark}) + 1) = {mark} || '/' OR substr(d.path, 1, length({mark}) + 1) = {mark} || '/'"
            for _ in doc_filter.folders) + ")")
        for folder in doc_filter.folders:
            params += [folder] * 4
    if doc_filter.modified_after is not None:
        clauses.append(f"d.mtime > {mark}")
        params.append(doc_filter.modified_after)
    if doc_filter.groups is not None:  # the reader's groups; "*" marks documents for everyone
        clause, group_params = groups_sql(sorted({*doc_filter.groups, "*"}))
        clauses.append(clause)
        params += group_params
    return " AND ".join(clauses), params


def _groups_sql(groups: list[str]) -> tuple[str, list]:
    return (f"(d.access IS NULL OR EXISTS (SELECT 1 FROM json_each(d.access) j "
            f"WHERE j.value IN ({','.join('?' * len(groups))})))", groups)


def _filter_sql(doc_filter: DocumentFilter | None) -> tuple[str, list]:
    """A WHERE condition over documents d (and its parameters) for a DocumentFilter; "1" when none."""
    return filter_where(doc_filter, RELPATH, "?", "GLOB", str, _groups_sql, "1")


def now() -> str:
    return dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds")


@dataclass
class DocumentRow:
    id: int
    path: str
    sha256: str
    mtime: float
    size: int
    status: str
    error: str | None  # the reason of a failure; for an "ok" document, what was read only in part
    parent: str | None = None  # the message an attachment came in


def lexical_disagreements(missing: int, extra: int) -> list[str]:
    """`check`'s lines for lexical rows missing (chunks without one) and extra (rows of no chunk)."""
    problems = []
    if missing:
        problems.append(f"{missing} chunks are missing from the lexical index")
    if extra:
        problems.append(f"the lexical index holds {extra} rows of chunks that no longer exist")
    return problems


class StoreBase:
    """What both stores do alike over their own SQL: the generation, the model registry's refusals,
    the summary `status` shows. A store provides get_meta/set_meta, model_row, models, chunk_count,
    vector_counts, lexical_summary, disk_bytes, runs, _insert_model and _document_totals."""

    @property
    def generation(self) -> int:
        return int(self.get_meta("generation", "0"))

    def _bump_generation(self) -> int:
        gen = self.generation + 1
        self.set_meta("generation", str(gen))
        return gen

    @property
    def access_version(self) -> int:
        """Counts changes of documents' readers that published nothing (a rules change): what a
        reader may read is a function of (generation, access_version), and caches of it are keyed
        by both."""
        return int(self.get_meta("access_version", "0"))

    @property
    def state(self) -> tuple[int, int]:
        """(generation, access_version): the state of the index as a reader sees it."""
        return self.generation, self.access_version

    def register_model(self, name: str, path: str, sha256: str | None, dim: int, layers: int | None,
                       total_layers: int | None, info: dict | None = None) -> None:
        """Remember which weights produced a model's vectors; refuse a silent change of model."""
        row = self.model_row(name)
        if row is not None:
            if row["dim"] != dim:
                raise SbsearchError(
                    f"model {name!r} gives {dim}-d vectors but this index holds {row['dim']}-d vectors "
                    f"for it; use another --index or `sbsearch index --reembed`"
                )
            if sha256 and row["sha256"] and row["sha256"] != sha256:
                raise SbsearchError(
                    f"model {name!r} has changed since it indexed these documents (weights sha256 "
                    f"{sha256[:12]}… vs {row['sha256'][:12]}…); re-embed with `sbsearch index --reembed`"
                )
            return
        self._insert_model({"name": name, "path": path, "sha256": sha256, "dim": dim, "layers": layers,
                            "total_layers": total_layers, "added_at": now(), "info": json.dumps(info or {})})

    def summary(self, runs: int = 5) -> dict:
        totals = self._document_totals()
        counts = self.vector_counts()
        return {
            "index": str(self.path),
            "generation": self.generation,
            **totals,
            "chunks": self.chunk_count(),
            "models": [
                {"name": m["name"], "dim": m["dim"], "layers": m["layers"], "total_layers": m["total_layers"],
                 "vectors": counts.get(m["name"], 0)}
                for m in self.models()
            ],
            "default_model": self.get_meta("default_model"),
            "model_reason": self.get_meta("model_reason"),  # why a new index got it (index/language.py)
            "lexical": self.lexical_summary(),
            "size_bytes": self.disk_bytes(),  # of the store (FAISS files are not the SQLite store's)
            "last_runs": self.runs(runs),
            **self._document_lists(),
        }


class Store(StoreBase):
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
        from .locking import writer_lock

        return writer_lock(self.path, wait)

    @contextmanager
    def snapshot(self):
        """One read transaction: in WAL mode every read inside sees the same committed state."""
        self.db.execute("BEGIN")
        try:
            yield
        finally:
            self.db.execute("COMMIT")

    # ---------------------------------------------------------------- health (sbsearch check)
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

    # ---------------------------------------------------------------- meta
    def get_meta(self, key: str, default: str | None = None) -> str | None:
        rows = list(self.db.query("SELECT value FROM meta WHERE key = ?", [key]))
        return rows[0]["value"] if rows else default

    def set_meta(self, key: str, value: str) -> None:
        self.db["meta"].upsert({"key": key, "value": value}, pk="key")

    # ---------------------------------------------------------------- documents
    def documents(self) -> dict[str, DocumentRow]:
        return {
            r["path"]: DocumentRow(r["id"], r["path"], r["sha256"], r["mtime"], r["size"], r["status"], r["error"],
                                   r["parent"])
            for r in self.db.query("SELECT id, path, sha256, mtime, size, status, error, parent FROM documents")
        }

    def _query_in(self, sql: str, values: Iterable, params: list | None = None) -> Iterator[dict]:
        """Run `sql` (with one "{marks}" placeholder for an IN list) over values in batches, so a
        long list never exceeds SQLite's limit on bound parameters."""
        values = list(values)
        for i in range(0, len(values), 500):
            part = values[i:i + 500]
            yield from self.db.query(sql.format(marks=",".join("?" * len(part))), [*(params or []), *part])

    def chunk_rows(self, ids: Iterable[int]) -> dict[int, dict]:
        return {r["id"]: r for r in self._query_in(
            "SELECT c.id, c.text, c.page, c.heading, c.location, c.start, c.end, d.path, d.root, d.id AS doc_id FROM chunks c "
            "JOIN documents d ON d.id = c.doc_id WHERE c.id IN ({marks})", ids)}

    def chunk_texts(self) -> list[tuple[int, str, str]]:
        """(chunk id, text, document path) of every chunk, in id order."""
        return [(r["id"], r["text"], r["path"]) for r in self.db.query(
            "SELECT c.id, c.text, d.path FROM chunks c JOIN documents d ON d.id = c.doc_id ORDER BY c.id")]

    def chunk_count(self) -> int:
        return self.db.execute("SELECT count(*) FROM chunks").fetchone()[0]

    def chunk_texts_with_headings(self) -> list[tuple[int, str, str | None]]:
        """(chunk id, text, heading) of every chunk, in id order."""
        return [(r["id"], r["text"], r["heading"])
                for r in self.db.query("SELECT id, text, heading FROM chunks ORDER BY id")]

    def headings(self, limit: int, min_length: int = 8, max_length: int = 120) -> list[str]:
        """Distinct section headings (heading paths "A > B") of a readable length, alphabetically."""
        return [r["heading"] for r in self.db.query(
            "SELECT DISTINCT heading FROM chunks WHERE heading IS NOT NULL AND length(heading) BETWEEN ? AND ? "
            "ORDER BY heading LIMIT ?", [min_length, max_length, limit])]

    # ---------------------------------------------------------------- comparisons and estimates
    def add_compare(self, model_a: str, model_b: str, result: dict) -> None:
        """A measurement of model A against reference B (a `compare`, or the label-free estimate of
        `tune`); the newest one naming a model feeds that model's query footer."""
        self.db["compares"].insert({"created": result.get("created") or now(), "model_a": model_a,
                                    "model_b": model_b, "result": json.dumps(result)})

    def latest_compare(self, model: str) -> dict | None:
        rows = list(self.db.query(
            "SELECT * FROM compares WHERE model_a = ? OR model_b = ? ORDER BY id DESC LIMIT 1", [model, model]))
        if not rows:
            return None
        row = rows[0]
        row["result"] = json.loads(row["result"])
        return row

    def chunks_without_vectors(self, model: str) -> list[tuple[int, str, str | None]]:
        """(chunk id, text, heading) of every chunk that has no vector for `model` yet."""
        return [
            (r["id"], r["text"], r["heading"])
            for r in self.db.query(
                "SELECT c.id, c.text, c.heading FROM chunks c "
                "LEFT JOIN embeddings e ON e.chunk_id = c.id AND e.model = ? "
                "WHERE e.chunk_id IS NULL ORDER BY c.id", [model]
            )
        ]

    # ---------------------------------------------------------------- vectors
    def vectors(self, model: str, batch: int = 20000) -> Iterator[tuple[np.ndarray, np.ndarray]]:
        """Yield (ids, matrix) batches of a model's stored vectors, in chunk-id order."""
        last = -1
        while True:
            rows = list(self.db.query(
                "SELECT chunk_id, vector FROM embeddings WHERE model = ? AND chunk_id > ? "
                "ORDER BY chunk_id LIMIT ?", [model, last, batch]
            ))
            if not rows:
                return
            ids = np.fromiter((r["chunk_id"] for r in rows), dtype=np.int64, count=len(rows))
            mat = np.vstack([np.frombuffer(r["vector"], dtype=np.float32) for r in rows])
            last = int(ids[-1])
            yield ids, mat

    def vector_count(self, model: str) -> int:
        return self.db.execute("SELECT count(*) FROM embeddings WHERE model = ?", [model]).fetchone()[0]

    def vector_ids(self, model: str) -> set[int]:
        return {r["chunk_id"] for r in self.db.query("SELECT chunk_id FROM embeddings WHERE model = ?", [model])}

    def vector_counts(self) -> dict[str, int]:
        return {r["model"]: r["n"] for r in self.db.query(
            "SELECT model, count(*) AS n FROM embeddings GROUP BY model")}

    # ---------------------------------------------------------------- models
    def model_row(self, name: str) -> dict | None:
        rows = list(self.db.query("SELECT * FROM models WHERE name = ?", [name]))
        return rows[0] if rows else None

    def models(self) -> list[dict]:
        return list(self.db.query("SELECT * FROM models ORDER BY added_at"))

    def _insert_model(self, row: dict) -> None:
        self.db["models"].insert(row)

    def drop_model_vectors(self, name: str) -> None:
        with self.db.atomic():
            self.db.execute("DELETE FROM embeddings WHERE model = ?", [name])
            self.db.execute("DELETE FROM models WHERE name = ?", [name])
            self._bump_generation()

    # ---------------------------------------------------------------- runs
    def start_run(self, model: str, roots: list[str]) -> int:
        return self.db["runs"].insert(
            {"started": now(), "model": model, "roots": json.dumps(roots), "status": "running"}
        ).last_pk

    def finish_run(self, run_id: int, **fields) -> None:
        self.db["runs"].update(run_id, {"ended": now(), **fields})

    def mark_running_runs_interrupted(self) -> None:
        """Call while holding the writer lock: a run still marked "running" belongs to a writer that died."""
        self.db.execute("UPDATE runs SET status = 'interrupted' WHERE status = 'running'")

    def runs(self, limit: int = 10) -> list[dict]:
        return list(self.db.query("SELECT * FROM runs ORDER BY id DESC LIMIT ?", [limit]))

    # ---------------------------------------------------------------- publish
    def vectors_by_text(self, text_shas: Iterable[str]) -> dict[str, dict[str, bytes]]:
        """model -> {text_sha: vector bytes} for stored chunks with these texts (any document)."""
        out: dict[str, dict[str, bytes]] = {}
        shas = set(text_shas)
        for r in self._query_in("SELECT text_sha, model, vector FROM pending_vectors WHERE text_sha IN ({marks})", shas):
            out.setdefault(r["model"], {})[r["text_sha"]] = r["vector"]
        for r in self._query_in("SELECT c.text_sha, e.model, e.vector FROM chunks c JOIN embeddings e "
                                "ON e.chunk_id = c.id WHERE c.text_sha IN ({marks})", shas):
            out.setdefault(r["model"], {})[r["text_sha"]] = r["vector"]
        return out

    def pending_count(self) -> int:
        """Vectors embedded by a run that has not published (yet, or ever: it was stopped)."""
        return self.db.execute("SELECT count(*) FROM pending_vectors").fetchone()[0]

    def save_pending(self, model: str, vectors: dict[str, bytes]) -> None:
        with self.db.atomic():
            self.db["pending_vectors"].upsert_all(
                ({"model": model, "text_sha": sha, "vector": v} for sha, v in vectors.items()),
                pk=("model", "text_sha"))

    def publish(self, new_docs: list[dict], removed_paths: list[str], vectors: dict[str, dict[str, bytes]],
                touched: dict[str, float] | None = None) -> tuple[int, list[int], list[tuple[int, str]]]:
        """Apply one indexing run in a single transaction.

        new_docs: rows for added/changed documents, each with a "chunks" list (empty for failed
        files); a document's old chunks and vectors are replaced. vectors: model -> {text_sha:
        float32 bytes}; every inserted chunk gets the vectors found for its text_sha. touched: path ->
        new mtime of unchanged documents whose file was touched.
        Returns (generation, removed chunk ids, [(added chunk id, text_sha)]).
        """
        removed_ids: list[int] = []
        added: list[tuple[int, str]] = []
        with self.db.atomic():
            for path in removed_paths + [d["path"] for d in new_docs]:
                row = list(self.db.query("SELECT id FROM documents WHERE path = ?", [path]))
                if not row:
                    continue
                doc_id = row[0]["id"]
                removed_ids += [r["id"] for r in self.db.query("SELECT id FROM chunks WHERE doc_id = ?", [doc_id])]
                self.db.execute("DELETE FROM lexical WHERE rowid IN (SELECT id FROM chunks WHERE doc_id = ?)", [doc_id])
                self.db.execute(
                    "DELETE FROM embeddings WHERE chunk_id IN (SELECT id FROM chunks WHERE doc_id = ?)", [doc_id])
                self.db.execute("DELETE FROM chunks WHERE doc_id = ?", [doc_id])
                self.db.execute("DELETE FROM documents WHERE id = ?", [doc_id])
            for doc in new_docs:
                chunks = doc["chunks"]
                row = {k: v for k, v in doc.items() if k != "chunks"}
                doc_id = self.db["documents"].insert({**row, "n_chunks": len(chunks), "indexed_at": now()}).last_pk
                for ord_, ch in enumerate(chunks):
                    chunk_id = self.db["chunks"].insert({"doc_id": doc_id, "ord": ord_, **ch}).last_pk
                    added.append((chunk_id, ch["text_sha"]))
                    self.db.execute("INSERT INTO lexical (rowid, body, heading, name) VALUES (?, ?, ?, ?)",
                                    _lexical_row(chunk_id, ch["text"], ch.get("heading"), doc["path"], doc.get("root")))
                    for model, by_sha in vectors.items():
                        vec = by_sha.get(ch["text_sha"])
                        if vec is not None:
                            self.db["embeddings"].insert({"chunk_id": chunk_id, "model": model, "vector": vec})
            self.touch_documents(touched or {})
            self.db.execute("DELETE FROM pending_vectors")  # published now, or text no longer present
            gen = self._bump_generation()
        return gen, removed_ids, added

    def touch_documents(self, touched: dict[str, float]) -> None:
        """New modification times of documents whose content did not change (what date filters read)."""
        with self.db.atomic():
            self.db.conn.executemany("UPDATE documents SET mtime = ? WHERE path = ?",
                                     [(mtime, path) for path, mtime in touched.items()])

    def add_vectors(self, model: str, vectors: dict[int, np.ndarray]) -> int:
        """Back-fill vectors of existing chunks for a model; one transaction."""
        with self.db.atomic():
            self.db["embeddings"].upsert_all(
                ({"chunk_id": cid, "model": model, "vector": np.asarray(v, dtype=np.float32).tobytes()}
                 for cid, v in vectors.items()), pk=("model", "chunk_id"))
            return self._bump_generation()

    # ---------------------------------------------------------------- filters and lexical search
    def filtered_chunk_ids(self, doc_filter: DocumentFilter) -> np.ndarray:
        """Ids of the chunks of documents that pass the filter, ascending."""
        where, params = _filter_sql(doc_filter)
        rows = self.db.execute(
            f"SELECT c.id FROM chunks c JOIN documents d ON d.id = c.doc_id WHERE {where} ORDER BY c.id", params)
        return np.fromiter((r[0] for r in rows), dtype=np.int64)

    def has_lexical(self) -> bool:
        """False for an index made before the lexical index existed and not yet migrated (the next
        `sbsearch index` or `sbsearch check --repair` adds it)."""
        return self.db["lexical"].exists()

    def lexical_search(self, match: str, limit: int, doc_filter: DocumentFilter | None = None) -> list[tuple[int, float]]:
        """(chunk id, BM25 score, higher is better) of the best `limit` chunks matching an FTS5
        expression of sbsearch.lexical, among the chunks of documents that pass the filter, ties
        by chunk id. The BM25 statistics are those of the chunks the filter's reader may read (all
        chunks when it names no reader): documents a reader cannot read never move their scores.

        Without a reader, FTS5's own bm25() has exactly those statistics, and it is used: the
        reader's BM25 (sqlite_lexical) equals it bit for bit there (tests/test_noninterference.py),
        so which of the two answered tells a reader nothing."""
        if doc_filter is None or doc_filter.groups is None:
            return self._whole_table_bm25(match, limit, doc_filter)
        phrases = match_phrases(match)
        tokens = lexical_tokens([(text, None, None) for text, _ in phrases])
        return self._lexical.search([(toks[0], prefix) for toks, (_, prefix) in zip(tokens, phrases)], limit,
                                    doc_filter, self.state)

    def _whole_table_bm25(self, match: str, limit: int, doc_filter: DocumentFilter | None) -> list[tuple[int, float]]:
        where, params = _filter_sql(doc_filter)
        weights = ", ".join(str(w) for w in LEXICAL_WEIGHTS)
        if where == "1":
            sql = (f"SELECT rowid, bm25(lexical, {weights}) FROM lexical WHERE lexical MATCH ? "
                   f"ORDER BY bm25(lexical, {weights}), rowid LIMIT ?")
            args = [match, limit]
        else:
            sql = (f"SELECT l.rowid, bm25(lexical, {weights}) FROM lexical l JOIN chunks c ON c.id = l.rowid "
                   f"JOIN documents d ON d.id = c.doc_id WHERE lexical MATCH ? AND {where} "
                   f"ORDER BY bm25(lexical, {weights}), l.rowid LIMIT ?")
            args = [match, *params, limit]
        return [(int(r[0]), -float(r[1])) for r in self.db.execute(sql, args)]

    @cached_property
    def _lexical(self) -> ReaderLexicalSearch:
        return ReaderLexicalSearch(self.db, _filter_sql, LEXICAL_WEIGHTS, ("body", "heading", "name"))

    def lexical_collection(self, reader: DocumentFilter | None) -> tuple[int, int]:
        """(lexical rows, their tokens together) of the chunks a reader may read (reader: a filter
        of groups alone; None: every chunk), kept per generation and group set."""
        collection = self._lexical.scope(self.state, reader.groups if reader is not None else None)[1]
        return collection.rows, collection.tokens

    def token_row_counts(self, tokens: Iterable[str], reader: DocumentFilter | None = None) -> dict[str, int]:
        """How many chunks hold each index token (FTS5's own vocabulary, no scan of the text);
        reader: only the chunks a reader may read (a filter of groups alone)."""
        if reader is not None:
            return self._lexical.readable_row_counts(set(tokens), reader.groups, self.state)
        if not getattr(self, "_vocab_ready", False):
            self.db.execute("CREATE VIRTUAL TABLE IF NOT EXISTS temp.lexical_vocab USING fts5vocab(main, 'lexical', 'row')")
            self._vocab_ready = True
        return {r["term"]: r["doc"] for r in self._query_in(
            "SELECT term, doc FROM temp.lexical_vocab WHERE term IN ({marks})", set(tokens))}

    def lexical_summary(self) -> dict | None:
        """Rows and bytes of the lexical index (None when this index has none yet)."""
        if not self.has_lexical():
            return None
        rows = self.db.execute("SELECT count(*) FROM lexical").fetchone()[0]
        try:
            size = self.db.execute(
                "SELECT sum(pgsize) FROM dbstat WHERE name = 'lexical' OR name LIKE 'lexical\\_%' ESCAPE '\\'").fetchone()[0]
        except sqlite3.OperationalError:  # SQLite built without the dbstat table
            size = None
        return {"rows": rows, "size_bytes": size, "engine": "FTS5, BM25"}

    def lexical_problems(self) -> list[str]:
        """What disagrees between the lexical index and the chunks (empty when they agree)."""
        if not self.has_lexical():
            return ["the lexical index is missing (an index made by an older sbsearch)"]
        problems = []
        try:
            self.db.execute("INSERT INTO lexical (lexical, rank) VALUES ('integrity-check', 1)")
        except sqlite3.DatabaseError as exc:
            problems.append(f"lexical index damaged: {exc}")
        missing = self.db.execute(
            "SELECT count(*) FROM chunks WHERE id NOT IN (SELECT rowid FROM lexical)").fetchone()[0]
        extra = self.db.execute(
            "SELECT count(*) FROM lexical WHERE rowid NOT IN (SELECT id FROM chunks)").fetchone()[0]
        return problems + lexical_disagreements(missing, extra)

    def rebuild_lexical(self) -> int:
        """Write the lexical index anew from the chunks, in one transaction; returns its rows."""
        with self.db.atomic():
            self.db.execute("DROP TABLE IF EXISTS lexical")
            self.db.execute(LEXICAL_TABLE)
            return _fill_lexical(self.db)

    def vectors_for_ids(self, model: str, ids: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(ids, matrix) of a model's stored vectors for these chunk ids (those that have one)."""
        got_ids, rows = [], []
        for r in self._query_in("SELECT chunk_id, vector FROM embeddings WHERE model = ? AND chunk_id IN ({marks})",
                                (int(i) for i in ids), [model]):
            got_ids.append(r["chunk_id"])
            rows.append(np.frombuffer(r["vector"], dtype=np.float32))
        if not rows:
            return np.zeros(0, dtype=np.int64), np.zeros((0, 0), dtype=np.float32)
        return np.asarray(got_ids, dtype=np.int64), np.vstack(rows)

    # ---------------------------------------------------------------- access: documents, users, tokens
    def document_access(self) -> dict[str, tuple[str, str | None, str | None]]:
        """path -> (root, access JSON or None, parent message or None) of every document."""
        return {r["path"]: (r["root"], r["access"], r["parent"])
                for r in self.db.query("SELECT path, root, access, parent FROM documents")}

    def set_document_access(self, access: dict[str, str | None]) -> None:
        """New access (JSON group lists, None = readable by all) of existing documents, one transaction:
        a rules change never needs the documents read or embedded again."""
        with self.db.atomic():
            self.db.conn.executemany("UPDATE documents SET access = ? WHERE path = ?",
                                     [(a, path) for path, a in access.items()])
            self.set_meta("access_version", str(self.access_version + 1))

    def document(self, doc_id: int, doc_filter: DocumentFilter | None = None) -> dict | None:
        """One document row, only if it passes the filter (e.g. the reader's groups)."""
        where, params = _filter_sql(doc_filter)
        rows = list(self.db.query(f"SELECT d.* FROM documents d WHERE d.id = ? AND {where}", [doc_id, *params]))
        return rows[0] if rows else None

    def visible_counts(self, doc_filter: DocumentFilter | None) -> dict:
        """Documents and chunks a reader may see (what a status page may tell them)."""
        where, params = _filter_sql(doc_filter)
        docs, failed = self.db.execute(
            f"SELECT count(*), sum(d.status = 'failed') FROM documents d WHERE {where}", params).fetchone()
        chunks = self.db.execute(
            f"SELECT count(*) FROM chunks c JOIN documents d ON d.id = c.doc_id WHERE {where}", params).fetchone()[0]
        return {"documents": docs or 0, "documents_failed": failed or 0, "chunks": chunks}

    def user(self, name: str) -> dict | None:
        rows = list(self.db.query("SELECT * FROM users WHERE name = ?", [name]))
        if not rows:
            return None
        row = rows[0]
        row["groups"] = json.loads(row["groups"] or "[]")
        return row

    def users(self) -> list[dict]:
        out = []
        for r in self.db.query("SELECT name, groups, created FROM users ORDER BY name"):
            r["groups"] = json.loads(r["groups"] or "[]")
            out.append(r)
        return out

    def put_user(self, name: str, password_hash: str | None, groups: list[str]) -> None:
        """Add a user, or change an existing one's groups (and password when given). A new user or
        a new password gets a new session key: every session signed in before ends."""
        row = {"name": name, "groups": json.dumps(sorted(set(groups)))}
        if password_hash is not None:
            row["password_hash"] = password_hash
            row["session_key"] = new_session_key()
        with self.db.atomic():
            if self.db.execute("SELECT 1 FROM users WHERE name = ?", [name]).fetchone():
                self.db["users"].update(name, row)
            else:
                self.db["users"].insert({**row, "created": now()})

    def reset_session_key(self, name: str) -> str | None:
        """A new session key for a user (sign-out: all the user's sessions end); None: no such user."""
        key = new_session_key()
        changed = self.db.execute("UPDATE users SET session_key = ? WHERE name = ?", [key, name]).rowcount
        return key if changed else None

    def documents_without_access(self) -> int:
        """Documents indexed without access rules (access NULL: readable by every reader)."""
        return self.db.execute("SELECT count(*) FROM documents WHERE access IS NULL").fetchone()[0]

    def any_document_without_access(self) -> bool:
        """documents_without_access() > 0, through a partial index: cheap enough for every request."""
        return self.db.execute("SELECT 1 FROM documents WHERE access IS NULL LIMIT 1").fetchone() is not None

    def upgrade_schema(self) -> None:
        """Apply the migrations an existing index lacks (e.g. before serving it)."""
        migrations.apply(self.db)

    def remove_user(self, name: str) -> bool:
        with self.db.atomic():
            self.db.execute("DELETE FROM tokens WHERE user = ?", [name])
            return self.db.execute("DELETE FROM users WHERE name = ?", [name]).rowcount > 0

    def add_token(self, token_id: str, user: str, label: str, token_hash: str) -> None:
        self.db["tokens"].insert({"id": token_id, "user": user, "label": label, "token_hash": token_hash,
                                  "created": now(), "last_used": None})

    def token(self, token_id: str) -> dict | None:
        rows = list(self.db.query("SELECT * FROM tokens WHERE id = ?", [token_id]))
        return rows[0] if rows else None

    def tokens(self, user: str | None = None) -> list[dict]:
        sql = "SELECT id, user, label, created, last_used FROM tokens"
        return list(self.db.query(sql + (" WHERE user = ? ORDER BY id" if user else " ORDER BY user, id"),
                                  [user] if user else []))

    def remove_token(self, token_id: str) -> bool:
        return self.db.execute("DELETE FROM tokens WHERE id = ?", [token_id]).rowcount > 0

    def login_failures(self, key: str, window_s: float) -> int:
        """Failed sign-ins for key within the last window_s seconds."""
        import time

        row = self.db.execute("SELECT failures, first_at FROM login_failures WHERE key = ?", [key]).fetchone()
        if row is None or time.time() - row[1] > window_s:
            return 0
        return row[0]

    def record_login_failure(self, key: str, window_s: float) -> None:
        import time

        t = time.time()
        with self.db.atomic():
            row = self.db.execute("SELECT failures, first_at FROM login_failures WHERE key = ?", [key]).fetchone()
            if row is None or t - row[1] > window_s:
                self.db["login_failures"].upsert({"key": key, "failures": 1, "first_at": t}, pk="key")
            else:
                self.db.execute("UPDATE login_failures SET failures = failures + 1 WHERE key = ?", [key])

    def clear_login_failures(self, key: str) -> None:
        self.db.execute("DELETE FROM login_failures WHERE key = ?", [key])

    def checkpoint(self, truncate: bool = False) -> None:
        """Copy the write-ahead log into the database file. After a large run, readers otherwise
        look every page up in a long WAL first (measured: lexical search ~15x slower at 100k chunks
        right after the run that wrote them). truncate also empties the log; it waits for readers."""
        self.db.execute(f"PRAGMA wal_checkpoint({'TRUNCATE' if truncate else 'PASSIVE'})")

    # ---------------------------------------------------------------- export (sbsearch migrate)
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

    # ---------------------------------------------------------------- summary
    def disk_bytes(self) -> int:
        return sum(p.stat().st_size for p in self.path.glob(DB_NAME + "*"))

    def _document_totals(self) -> dict:
        docs = self.db.execute(
            "SELECT count(*), sum(status = 'ok'), sum(status = 'failed'), sum(size) FROM documents").fetchone()
        return {"documents": docs[0] or 0, "documents_ok": docs[1] or 0, "documents_failed": docs[2] or 0,
                "source_bytes": docs[3] or 0}

    def _document_lists(self) -> dict:
        return {
            "failed_files": list(self.db.query(
                "SELECT path, error FROM documents WHERE status = 'failed' ORDER BY path")),
            # indexed, but with pages or rows left out (their reason)
            "partly_read_files": list(self.db.query(
                "SELECT path, error AS warning FROM documents WHERE status = 'ok' AND error IS NOT NULL ORDER BY path")),
        }
