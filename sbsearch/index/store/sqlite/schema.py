"""The SQLite store's schema: its migrations (sqlite-utils records which an index has had, by
their function names: never rename one), the FTS5 table of the lexical index and how it is filled.

Layout of an index directory:
    index.db                            documents, chunks, embeddings per (chunk, model) in the
                                        encoding meta `vector_encoding` names (vector_codec), models,
                                        runs, compares, and `lexical`: the FTS5 (BM25) index of
                                        the chunks, written in the same transactions (SQLite)
    faiss/<model-key>-g<generation>.faiss  a model's vector index of one generation, derived from
                                        index.db (sbsearch.vectors.faiss_index) and rebuilt when stale
    faiss/<model-key>.json              names the current file: its generation, type, measured recall
    writer.lock, writer.json            the writer lock and its holder (locking.py)
"""

from __future__ import annotations

from ....lexical import index_text
from ..tokens import LEXICAL_TOKENIZER, lexical_name
from ..vector_codec import ENCODING_KEY, STORED_ENCODING, check_encoding, decode_matrix, encode_matrix


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
LEXICAL_TABLE = (
    "CREATE VIRTUAL TABLE IF NOT EXISTS lexical USING fts5(body, heading, name, "
    f"tokenize = '{LEXICAL_TOKENIZER}')"
)


def lexical_row(chunk_id: int, text: str, heading: str | None, name: str) -> tuple:
    """A chunk's row of the FTS5 table (rowid, body, heading, name)."""
    return (chunk_id, index_text(text), index_text(heading), name)


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
                            [lexical_row(r["id"], r["text"], r["heading"], lexical_name(r["path"], r["root"]))
                             for r in rows])
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


def _recode_table(db: sqlite_utils.Database, table: str, source: str, target: str, batch: int = 5000) -> int:
    """Rewrite every vector of a table from one encoding to another, in rowid order; how many."""
    done, last = 0, -1
    while True:
        rows = db.execute(f"SELECT rowid, vector FROM {table} WHERE rowid > ? ORDER BY rowid LIMIT ?",
                          [last, batch]).fetchall()
        if not rows:
            return done
        by_length: dict[int, list[tuple[int, bytes]]] = {}
        for rowid, blob in rows:
            by_length.setdefault(len(blob), []).append((rowid, blob))
        for same in by_length.values():  # one model's vectors: decoded and encoded as one matrix
            blobs = encode_matrix(decode_matrix([b for _, b in same], source), target)
            db.conn.executemany(f"UPDATE {table} SET vector = ? WHERE rowid = ?",
                                [(blob, rowid) for (rowid, _), blob in zip(same, blobs)])
        done += len(rows)
        last = rows[-1][0]


@migrations()
def m007_compact_vectors(db: sqlite_utils.Database) -> None:
    # Vectors kept once, compactly: int8 with a scale per vector (vector_codec), a quarter of
    # float32. Existing vectors are converted as they are (no model runs), stored and pending
    # alike, in this migration's one transaction: a kill leaves the float32 index as it was, and
    # the next open converts it again. A new index records the encoding and starts with it.
    row = db.execute("SELECT value FROM meta WHERE key = ?", [ENCODING_KEY]).fetchone()
    source = check_encoding(row[0] if row else None)
    if source != STORED_ENCODING:
        for table in ("embeddings", "pending_vectors"):
            _recode_table(db, table, source, STORED_ENCODING)
    db["meta"].upsert({"key": ENCODING_KEY, "value": STORED_ENCODING}, pk="key")


@migrations(transactional=False)
def m008_reclaim_space(db: sqlite_utils.Database) -> None:
    # Give free pages back (the float32 vectors just replaced; the pending vectors every run
    # deleted after publishing) and switch the file to incremental auto-vacuum, so that each
    # publish returns its pending vectors' pages from now on (SqliteStore._clear_pending).
    # VACUUM writes the whole database once (its size again in a temporary file and in the WAL,
    # until the checkpoint that follows); it is one transaction of its own: a kill leaves the
    # database as it was before it, and the next open runs it again.
    db.execute("PRAGMA auto_vacuum = INCREMENTAL")
    db.execute("VACUUM")
    db.execute("PRAGMA wal_checkpoint(TRUNCATE)")


@migrations()
def m009_index_identity(db: sqlite_utils.Database) -> None:
    # A random name for this index, made once: what a searcher keeps in memory of an index (the
    # lexical postings, reader_lexical.POSTINGS) is keyed by it with the file's device and inode,
    # so that nothing kept of one index is ever taken for another's, even of a copy or of a new
    # index whose file got a deleted one's inode.
    import uuid

    if not db.execute("SELECT 1 FROM meta WHERE key = 'index_id'").fetchone():
        db["meta"].insert({"key": "index_id", "value": uuid.uuid4().hex})
