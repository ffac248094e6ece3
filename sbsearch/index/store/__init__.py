"""The index's stores: SQLite in an index folder (the default) and PostgreSQL + pgvector (shared
by many search servers), the only code that writes SQL.

Both implement `IndexStore` (protocol.py; tests/test_store_protocol.py checks it); what they do
alike is written once: publish's walk (publish.py), a DocumentFilter's WHERE condition and the
model registry (base.py), the lexical tokens (tokens.py), the rows passed in and out (rows.py).
Each store is a package of one module per concern (documents and chunks, vectors, lexical, access,
runs and compares, accounts, schema, export/import).

`Store` is the SQLite store (what `Store(path)` has always opened); the PostgreSQL one is
`store.pg.PgStore`, imported only when a postgresql:// location is opened (location.open_store).
"""

from .base import now
from .protocol import IndexStore
from .rows import DocumentRow, NewChunk, NewDocument
from .sqlite import SqliteStore
from .sqlite.schema import DB_NAME, LEXICAL_TABLE
from .tokens import LEXICAL_WEIGHTS, lexical_tokens, relpath_of

Store = SqliteStore

__all__ = ["DB_NAME", "LEXICAL_TABLE", "LEXICAL_WEIGHTS", "DocumentRow", "IndexStore", "NewChunk", "NewDocument",
           "SqliteStore", "Store", "lexical_tokens", "now", "relpath_of"]
