"""What both stores' lexical indexes are made of, once: the tokens of a (body, heading, file name)
row as FTS5 makes them, the columns' BM25 weights, the phrases of a match expression, and a
document's name as the lexical index sees it."""

from __future__ import annotations

import functools
import re
import sqlite3
import threading

from ...lexical import name_text

# FTS5's tokenizer: Porter stems over unicode61 (CJK arrives as bigrams from sbsearch.lexical)
LEXICAL_TOKENIZER = "porter unicode61 remove_diacritics 2"
# BM25 weight of each column: a word in a heading or file name says more about a chunk than one
# in its body (measured by benchmarks/hybrid.py)
LEXICAL_WEIGHTS = (1.0, 2.0, 1.0)
_analyser = threading.local()
_FTS_TERM = re.compile(r'"((?:[^"]|"")*)"(\*?)')


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


@functools.lru_cache(maxsize=1 << 16)
def phrase_tokens(text: str) -> tuple[str, ...]:
    """The FTS5 tokens of one phrase of a query, kept per text: a server sees the same words query
    after query, and FTS5 makes them in a table of its own (~50 us a phrase)."""
    return tuple(lexical_tokens([(text, None, None)])[0][0])


def match_phrases(match: str) -> list[tuple[str, bool]]:
    """The quoted phrases of a match expression of sbsearch.lexical ("a" OR "b c" OR "d"*), each
    with whether it is a prefix."""
    return [(p.replace('""', '"'), bool(prefix)) for p, prefix in _FTS_TERM.findall(match)]


def relpath_of(path: str, root: str | None) -> str:
    root = (root or "").rstrip("/")
    return path[len(root) + 1:] if root and path.startswith(root + "/") else path


def lexical_name(path: str, root: str | None) -> str:
    """The `name` column of a document's lexical rows: its path below the indexed folder, as words."""
    return name_text(relpath_of(path, root))


def lexical_disagreements(missing: int, extra: int) -> list[str]:
    """`check`'s lines for lexical rows missing (chunks without one) and extra (rows of no chunk)."""
    problems = []
    if missing:
        problems.append(f"{missing} chunks are missing from the lexical index")
    if extra:
        problems.append(f"the lexical index holds {extra} rows of chunks that no longer exist")
    return problems
