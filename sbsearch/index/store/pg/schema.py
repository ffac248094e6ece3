"""The PostgreSQL store's schema `sbsearch`, made in one step (no migrations yet beyond
PgStore.upgrade_schema), and the constants of its lock and its HNSW indexes."""

from __future__ import annotations

from ....config import display_url  # noqa: F401 (part of this package's interface)

SCHEMA = "sbsearch"
SCHEMA_VERSION = "1"

# Any constant: the advisory lock that makes one writer per database
WRITER_LOCK_KEY = 0x5B5EA2C1

# What the lexical rows hold (meta `lexical_format`): FTS5's tokens, written as tsvector literals.
# An index whose rows were made otherwise (PostgreSQL's 'english' parser, before) has no usable
# lexical index until `check --repair` or the next `index` rebuilds it.
LEXICAL_FORMAT = "fts5-tokens"

# HNSW build parameters (pgvector's defaults) and the search breadth used for a top-k
HNSW_M = 16
HNSW_EF_CONSTRUCTION = 64
MIN_EF_SEARCH = 100

# The most memory an HNSW build asks for (SET LOCAL maintenance_work_mem, this build only)
HNSW_BUILD_MEMORY_MB = 1024

# A lexeme's postings, one row per batch of chunks written at once (pg/lexical.py, `_POST_SQL`)
POSTINGS_TABLE_SQL = ("CREATE TABLE lexical_postings (lexeme TEXT NOT NULL, first_chunk BIGINT NOT NULL, "
                      "chunk_ids BIGINT[] NOT NULL, tfs REAL[] NOT NULL, ntoks INTEGER[] NOT NULL, "
                      "PRIMARY KEY (lexeme, first_chunk))")

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
    POSTINGS_TABLE_SQL,
    "CREATE INDEX documents_access_null ON documents (id) WHERE access IS NULL",
    "CREATE TABLE users (name TEXT PRIMARY KEY, password_hash TEXT, groups TEXT, created TEXT, session_key TEXT)",
    "CREATE TABLE tokens (id TEXT PRIMARY KEY, \"user\" TEXT, label TEXT, token_hash TEXT, created TEXT, "
    "last_used TEXT)",
    "CREATE TABLE login_failures (key TEXT PRIMARY KEY, failures INTEGER, first_at DOUBLE PRECISION)",
]
