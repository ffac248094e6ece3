"""The SQLite store's lexical search: BM25 over the rows the reader may read (sbsearch.lexical.bm25).

FTS5 keeps what BM25 needs, and this module reads it without FTS5's whole-table statistics:
- where each query token occurs: the `fts5vocab` instance table (term, row, column, offset), which
  FTS5 answers from its own posting lists for one term (or a range of terms, for a prefix);
- how long each row is: FTS5's `lexical_docsize` table (one varint per column), read once per
  state of the index and kept;
- which rows the reader may read: the documents' access, once per state of the index and reader.
A phrase occurs where its tokens follow each other in one column; a prefix matches every token
that starts with it (sbsearch.lexical makes prefixes only of single CJK characters).

Where a phrase occurs is kept, in the cache the process's searchers share (store.postings), for the
state of the lexical index it was read in. A search whose phrases are all kept is ranked from
memory, even when it names no reader: the same arithmetic on the same statistics gives FTS5's own
bm25() bit for bit, and it skips what FTS5 spends most of a search on at 100k chunks, scoring
every matching row from its posting lists and sizes anew (benchmarks/hybrid.py).
"""

from __future__ import annotations

import os

import numpy as np

from ....lexical.bm25 import Collection, rank
from ...filters import DocumentFilter
from .. import postings
from ..postings import KeptPhrases, Occurrences, members

# Different readers (group sets) whose statistics a store keeps at once
SCOPES_KEPT = 32


def decode_sizes(blob: bytes) -> int:
    """The total of the SQLite varints in an FTS5 docsize blob (a row's tokens, all columns)."""
    total, value, i = 0, 0, 0
    n = len(blob)
    while i < n:
        value, count = 0, 0
        while True:
            byte = blob[i]
            i += 1
            count += 1
            if count == 9:
                value = (value << 8) | byte
                break
            value = (value << 7) | (byte & 0x7F)
            if byte < 0x80:
                break
        total += value
    return total


class ReaderLexicalSearch:
    """Lexical search of one SQLite store's FTS5 table `lexical`, scored over the reader's rows.

    filter_sql: the store's DocumentFilter -> (WHERE over documents d, parameters)."""

    def __init__(self, db, filter_sql, weights: tuple[float, ...], columns: tuple[str, ...], index_id=None):
        self.db = db
        self.filter_sql = filter_sql
        self.weight_of = dict(zip(columns, weights))
        self._ready = False
        # ((generation, lexical version), row ids ascending, their lengths in tokens, the total)
        self._lengths: tuple[tuple[int, int], np.ndarray, np.ndarray, int] | None = None
        # every `state` below is the store's (generation, access version, lexical version)
        self._scopes: dict[tuple, tuple[np.ndarray, Collection]] = {}
        self._index_id = index_id  # () -> the index's meta `index_id` (None: nothing is kept)
        self._identity: tuple | None = None
        self.kept = KeptPhrases(self.identity, self.occurrences)

    def identity(self) -> tuple | None:
        """(index id, device, inode) of the database: what tells two indexes apart in the shared
        cache, a copy of a folder and an index made anew at a deleted one's path included. None
        (an index no writer has migrated yet, an in-memory database): nothing is kept."""
        if self._identity is None:
            index_id = self._index_id() if self._index_id else None
            path = next((r[2] for r in self.db.execute("PRAGMA database_list") if r[1] == "main"), "")
            if not index_id or not path:
                return None
            st = os.stat(path)
            self._identity = (index_id, st.st_dev, st.st_ino)
        return self._identity

    def _vocab(self) -> None:
        if not self._ready:
            self.db.execute("CREATE VIRTUAL TABLE IF NOT EXISTS temp.lexical_instances "
                            "USING fts5vocab(main, 'lexical', 'instance')")
            self._ready = True

    def answerable_from_memory(self, phrases, state: tuple[int, int, int]) -> bool:
        """Whether every phrase's occurrences are kept (postings.KeptPhrases; asking counts)."""
        return self.kept.answerable_from_memory(phrases, state)

    # ---------------------------------------------------------------- statistics
    def lengths(self, state: tuple[int, int, int]) -> tuple[np.ndarray, np.ndarray, int]:
        """(row ids ascending, each row's length in tokens (all columns), their total); read
        once per generation and lexical version of the index."""
        version = (state[0], state[2])
        if self._lengths is None or self._lengths[0] != version:
            rows = self.db.execute("SELECT id, sz FROM lexical_docsize ORDER BY id").fetchall()
            ids = np.fromiter((r[0] for r in rows), dtype=np.int64, count=len(rows))
            sizes = np.fromiter((decode_sizes(r[1]) for r in rows), dtype=np.int64, count=len(rows))
            # by row id too, when the ids are dense enough (they only grow: rows replaced by
            # re-indexing leave gaps): a lookup instead of a binary search per row
            by_id = None
            if len(ids) and int(ids[-1]) < postings.DENSE_IDS_PER_ROW * len(ids) + postings.DENSE_IDS_SLACK:
                by_id = np.zeros(int(ids[-1]) + 1, dtype=np.int64)
                by_id[ids] = sizes
            self._lengths = (version, ids, sizes, int(sizes.sum()), by_id)
        return self._lengths[1:4]

    def sizes_of(self, rows: np.ndarray, state: tuple[int, int, int]) -> np.ndarray:
        """Each row's length in tokens (0 for a row FTS5 has no size for)."""
        ids, sizes, _ = self.lengths(state)
        by_id = self._lengths[4]
        if by_id is not None:
            inside = rows < len(by_id)
            return by_id[rows] if inside.all() else np.where(inside, by_id[np.where(inside, rows, 0)], 0)
        if not len(ids):
            return np.zeros(len(rows), np.int64)
        at = np.minimum(np.searchsorted(ids, rows), len(ids) - 1)
        return np.where(ids[at] == rows, sizes[at], 0)

    def scope(self, state: tuple[int, int, int], groups: tuple[str, ...] | None) -> tuple[np.ndarray | None, Collection]:
        """The rows a reader of these groups may read (ascending; None: every row) and their
        statistics; kept per state of the index and group set."""
        ids, sizes, total = self.lengths(state)
        if groups is None:
            return None, Collection(len(ids), total)
        key = (state, tuple(sorted(set(groups))))
        if key not in self._scopes:
            if len(self._scopes) >= SCOPES_KEPT:
                self._scopes.clear()
            where, params = self.filter_sql(DocumentFilter(groups=key[1]))
            allowed = np.fromiter((r[0] for r in self.db.execute(
                f"SELECT c.id FROM chunks c JOIN documents d ON d.id = c.doc_id WHERE {where} ORDER BY c.id", params)),
                dtype=np.int64)
            keep = members(ids, allowed)
            self._scopes[key] = (ids[keep], Collection(int(keep.sum()), int(sizes[keep].sum())))
        return self._scopes[key]

    # ---------------------------------------------------------------- occurrences
    def _term_where(self, token: str, prefix: bool) -> tuple[str, list]:
        if prefix:
            return "term >= ? AND term < ?", [token, token[:-1] + chr(ord(token[-1]) + 1)]
        return "term = ?", [token]

    def _instances(self, token: str, prefix: bool):
        where, params = self._term_where(token, prefix)
        return self.db.execute(f"SELECT doc, col, offset FROM temp.lexical_instances WHERE {where}", params)

    def occurrences(self, tokens: list[str], prefix: bool) -> Occurrences:
        """Where the phrase occurs, over the whole table (the caller keeps the rows it may use):
        rows ascending, each with the phrase's column-weighted occurrences. The last token is a
        prefix when `prefix`."""
        self._vocab()
        weight_of = self.weight_of
        if len(tokens) == 1:  # one token: FTS5's posting list, summed per row in SQL
            where, params = self._term_where(tokens[0], prefix)
            weight = "CASE col " + " ".join(f"WHEN '{c}' THEN {w!r}" for c, w in weight_of.items()) + " END"
            rows = self.db.execute(f"SELECT doc, sum({weight}) FROM temp.lexical_instances WHERE {where} "
                                   "GROUP BY doc ORDER BY doc", params).fetchall()
            return Occurrences(np.fromiter((r[0] for r in rows), dtype=np.int64, count=len(rows)),
                               np.fromiter((r[1] for r in rows), dtype=np.float64, count=len(rows)))
        # several tokens: each following token must sit j places after the first, in one row and column
        last = len(tokens) - 1
        following = [{(doc, col, off) for doc, col, off in self._instances(tok, prefix and j == last)}
                     for j, tok in enumerate(tokens) if j]
        found: dict[int, float] = {}
        if all(following):
            for doc, col, off in self._instances(tokens[0], False):
                if all((doc, col, off + j) in positions for j, positions in enumerate(following, start=1)):
                    found[doc] = found.get(doc, 0.0) + weight_of[col]
        rows = np.fromiter(sorted(found), dtype=np.int64, count=len(found))
        return Occurrences(rows, np.fromiter((found[int(r)] for r in rows), dtype=np.float64, count=len(rows)))

    def rows_holding(self, token: str) -> np.ndarray:
        """The rows that hold a token, ascending."""
        self._vocab()
        return np.fromiter((r[0] for r in self.db.execute(
            "SELECT DISTINCT doc FROM temp.lexical_instances WHERE term = ? ORDER BY doc", [token])), dtype=np.int64)

    def readable_row_counts(self, tokens: set[str], groups: tuple[str, ...], state: tuple[int, int, int]) -> dict[str, int]:
        """How many rows a reader of these groups may read hold each token."""
        readable, _ = self.scope(state, groups)
        return {token: int(members(self.rows_holding(token), readable).sum()) for token in tokens}

    # ---------------------------------------------------------------- search
    def search(self, phrases: list[tuple[list[str], bool]], limit: int, doc_filter: DocumentFilter | None,
               state: tuple[int, int, int], allowed: np.ndarray | None = None) -> list[tuple[int, float]]:
        """(row id, BM25 score) of the best `limit` rows that pass the filter; the statistics are
        those of the rows the filter's reader may read (all rows when it names no reader).
        allowed: the rows the filter allows, ascending, if the caller has them (else SQLite is
        asked which candidates pass)."""
        phrases = [(tokens, prefix) for tokens, prefix in phrases if tokens]
        if not phrases:
            return []
        readable, collection = self.scope(state, doc_filter.groups if doc_filter else None)
        occurrences = [self.kept.occurrences(tokens, prefix, state) for tokens, prefix in phrases]
        if readable is None and not (doc_filter is not None and doc_filter.narrows):
            return self.kept.rank_whole_table(occurrences, collection, lambda rows: self.sizes_of(rows, state), limit)
        if readable is not None:
            occurrences = [occ.among(readable) for occ in occurrences]
        hits = [len(occ.rows) for occ in occurrences]
        # every row holding a phrase, once; where each phrase's rows sit among them (each phrase
        # holds a row once: its occurrences scatter without sums, the same values as searching)
        candidates, at_candidate = np.unique(np.concatenate([occ.rows for occ in occurrences]), return_inverse=True)
        freqs, start = [], 0
        for occ in occurrences:
            f = np.zeros(len(candidates), dtype=np.float64)
            f[at_candidate[start:start + len(occ.rows)]] = occ.counts
            freqs.append(f)
            start += len(occ.rows)
        if doc_filter is not None and doc_filter.narrows and len(candidates):
            passing = members(candidates, allowed if allowed is not None else self._passing(candidates, doc_filter))
            candidates, freqs = candidates[passing], [f[passing] for f in freqs]
        return rank(candidates, self.sizes_of(candidates, state), freqs, hits, collection, limit)

    def _passing(self, rows: np.ndarray, doc_filter: DocumentFilter) -> np.ndarray:
        where, params = self.filter_sql(doc_filter)
        found: list[int] = []
        for i in range(0, len(rows), 500):
            part = [int(r) for r in rows[i:i + 500]]
            found += [r[0] for r in self.db.execute(
                f"SELECT c.id FROM chunks c JOIN documents d ON d.id = c.doc_id WHERE c.id IN "
                f"({','.join('?' * len(part))}) AND {where}", [*part, *params])]
        return np.unique(np.asarray(found, dtype=np.int64))
