"""The SQLite store's lexical index: FTS5's BM25 over the whole table, or the reader's own BM25
(reader_lexical) when a filter names a reader; its summary, its checks and its rebuild."""

from __future__ import annotations

import sqlite3
from functools import cached_property
from typing import Iterable

import numpy as np

from ...filters import DocumentFilter
from ..tokens import LEXICAL_WEIGHTS, lexical_disagreements, match_phrases, phrase_tokens
from .access import filter_sql
from .reader_lexical import ReaderLexicalSearch
from .schema import LEXICAL_TABLE, _fill_lexical


class LexicalMixin:
    """Lexical search and its upkeep, over self.db."""

    def has_lexical(self) -> bool:
        """False for an index made before the lexical index existed and not yet migrated (the next
        `sbsearch index` or `sbsearch check --repair` adds it)."""
        return self.db["lexical"].exists()

    def lexical_search(self, match: str, limit: int, doc_filter: DocumentFilter | None = None,
                       allowed: np.ndarray | None = None) -> list[tuple[int, float]]:
        """(chunk id, BM25 score, higher is better) of the best `limit` chunks matching an FTS5
        expression of sbsearch.lexical, among the chunks of documents that pass the filter, ties
        by chunk id. The BM25 statistics are those of the chunks the filter's reader may read (all
        chunks when it names no reader): documents a reader cannot read never move their scores.

        Without a reader, FTS5's own bm25() has exactly those statistics, and it is used unless
        every phrase's occurrences are already in memory (reader_lexical's cache): the reader's
        BM25 equals it bit for bit there (tests/test_noninterference.py), so which of the two
        answered tells a reader nothing, and the one from memory skips FTS5's scoring of every
        matching row.

        allowed: the chunk ids the filter allows, ascending, when the caller has them (the
        searcher keeps them per state of the index). With them, a narrowing filter whose phrases
        are in memory is answered from memory too, the candidates kept by a look-up among them;
        without them FTS5 ranks every matching row and SQLite joins each to its document (at 1M
        chunks a folder of 0.1% took a hybrid search 97 ms)."""
        phrases = [(phrase_tokens(text), prefix) for text, prefix in match_phrases(match)]
        state = self._lexical_state
        if doc_filter is None or doc_filter.groups is None:
            unfiltered = doc_filter is None or not doc_filter.narrows
            if (unfiltered or allowed is not None) and self._lexical.answerable_from_memory(phrases, state):
                return self._lexical.search(phrases, limit, None if unfiltered else doc_filter, state, allowed)
            return self._whole_table_bm25(match, limit, doc_filter)
        return self._lexical.search(phrases, limit, doc_filter, state, allowed)

    @property
    def _lexical_state(self) -> tuple[int, int, int]:
        """(generation, access version, lexical version): what the reader's BM25 keeps is keyed by
        it. The lexical version counts rebuilds of the lexical index that publish nothing
        (`check --repair`)."""
        generation, access_version = self.state
        return generation, access_version, int(self.get_meta("lexical_version", "0"))

    def _whole_table_bm25(self, match: str, limit: int, doc_filter: DocumentFilter | None) -> list[tuple[int, float]]:
        where, params = filter_sql(doc_filter)
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
        return ReaderLexicalSearch(self.db, filter_sql, LEXICAL_WEIGHTS, ("body", "heading", "name"),
                                   index_id=lambda: self.get_meta("index_id"))

    def lexical_collection(self, reader: DocumentFilter | None) -> tuple[int, int]:
        """(lexical rows, their tokens together) of the chunks a reader may read (reader: a filter
        of groups alone; None: every chunk), kept per generation and group set."""
        collection = self._lexical.scope(self._lexical_state, reader.groups if reader is not None else None)[1]
        return collection.rows, collection.tokens

    def token_row_counts(self, tokens: Iterable[str], reader: DocumentFilter | None = None) -> dict[str, int]:
        """How many chunks hold each index token (FTS5's own vocabulary, no scan of the text);
        reader: only the chunks a reader may read (a filter of groups alone)."""
        if reader is not None:
            return self._lexical.readable_row_counts(set(tokens), reader.groups, self._lexical_state)
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
            rows = _fill_lexical(self.db)
            self.set_meta("lexical_version", str(self._lexical_state[2] + 1))  # what searchers keep of it is old
            return rows
