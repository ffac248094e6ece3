"""Where a query's phrases occur, kept in memory by both stores, and the BM25 ranking from it.

A store's lexical search without a reader ranks every row holding a phrase; FTS5 (SQLite) and the
BM25 statement (PostgreSQL) score them all anew on every search, which at 100k-1M chunks costs more
than the rest of a hybrid search (benchmarks/hybrid.py). A server sees the same words again and
again, so where a phrase occurs (its rows and column-weighted counts) is kept, once it has been
asked for twice, in a cache the process's searchers share (`POSTINGS`), for the state of the index
it was read in: the key names the index (a store's `identity`: what tells two indexes apart, a
copy and an index made anew at a deleted one's path included), its generation and its lexical
version (bumped by a rebuild of the lexical index that publishes nothing). Nothing kept outlives
the rows it was read from. A search whose phrases are all kept is ranked here (`KeptPhrases`).
"""

from __future__ import annotations

import os
import threading
from collections import OrderedDict
from typing import Callable

import numpy as np

from ...lexical.bm25 import Collection, best, phrase_scores, rank_sparse

# Memory for the phrases' occurrences kept by one process (24-32 bytes an occurrence row: its row,
# its weighted occurrences, its BM25 term over the whole table, and its length where a store reads
# the length with the occurrence)
POSTINGS_CACHE_MB = float(os.environ.get("SBSEARCH_POSTINGS_CACHE_MB", "64"))
# A search sums its phrases' terms in a buffer of one place per row id while the largest id is below
# this many per row of the index, plus a slack (ids only grow: replaced rows leave gaps); else it
# sorts the union of the phrases' rows
DENSE_IDS_PER_ROW = 4
DENSE_IDS_SLACK = 1024

Phrase = tuple[tuple[str, ...], bool]  # (tokens, the last one is a prefix)


class Occurrences:
    """Where a phrase occurs: rows ascending, its column-weighted occurrences in each, and (when the
    store reads them together) each row's length in tokens."""

    def __init__(self, rows: np.ndarray, counts: np.ndarray, lengths: np.ndarray | None = None):
        self.rows, self.counts, self.lengths = rows, counts, lengths
        self._whole: tuple[Collection, np.ndarray] | None = None

    @property
    def nbytes(self) -> int:
        # + its BM25 terms over the whole table once a search made them, + the objects themselves
        lengths = 0 if self.lengths is None else self.lengths.nbytes
        return int(self.rows.nbytes + 2 * self.counts.nbytes + lengths) + 200

    def whole_table_terms(self, collection: Collection, sizes_of: Callable[[np.ndarray], np.ndarray]) -> np.ndarray:
        """The phrase's BM25 term in each of its rows over every row of the table (`collection`;
        sizes_of: rows -> their lengths, unless the occurrences carry them), made once: the
        occurrences are kept per state of the index, and so is the table's collection."""
        kept = self._whole
        if kept is None or kept[0] != collection:
            lengths = self.lengths if self.lengths is not None else sizes_of(self.rows)
            kept = self._whole = (collection, phrase_scores(self.counts, lengths, len(self.rows), collection))
        return kept[1]

    def among(self, readable: np.ndarray) -> "Occurrences":
        keep = members(self.rows, readable)
        return Occurrences(self.rows[keep], self.counts[keep], None if self.lengths is None else self.lengths[keep])


class PostingsCache:
    """Where phrases occur, per state of an index, least recently used first out, within a budget
    of bytes; shared by the threads of a process (the server's searchers), hence the lock. Besides
    what it keeps, it counts the phrases asked for but not kept (a bounded count), so that a phrase
    is read into it on its second search, not on every one-off."""

    ASKED_KEPT = 100_000

    def __init__(self, budget_bytes: int):
        self.budget = budget_bytes
        self.used = 0
        self._kept: OrderedDict[tuple, Occurrences] = OrderedDict()
        self._asked: dict[tuple, int] = {}
        self._lock = threading.Lock()

    def get(self, key: tuple) -> Occurrences | None:
        with self._lock:
            found = self._kept.get(key)
            if found is not None:
                self._kept.move_to_end(key)
            return found

    def ask(self, key: tuple) -> int:
        """Count one more search for a phrase not kept; the count so far."""
        with self._lock:
            if len(self._asked) >= self.ASKED_KEPT:
                self._asked.clear()
            self._asked[key] = self._asked.get(key, 0) + 1
            return self._asked[key]

    def put(self, key: tuple, occurrences: Occurrences) -> None:
        size = occurrences.nbytes
        if size > self.budget // 4:  # one phrase may not empty the cache of every other
            return
        with self._lock:
            if key in self._kept:
                return
            self._kept[key] = occurrences
            self.used += size
            self._asked.pop(key, None)
            while self.used > self.budget:
                _, old = self._kept.popitem(last=False)
                self.used -= old.nbytes

    def clear(self) -> None:
        with self._lock:
            self._kept.clear()
            self._asked.clear()
            self.used = 0


POSTINGS = PostingsCache(int(POSTINGS_CACHE_MB * 2**20))


class KeptPhrases:
    """One store's use of POSTINGS. identity: () -> the index's identity, or None (nothing is kept:
    an index no writer has named yet, an in-memory database); read: (tokens, prefix) ->
    Occurrences over the whole table. Every `state` is the store's (generation, access version,
    lexical version)."""

    def __init__(self, identity: Callable[[], tuple | None], read: Callable[[tuple[str, ...], bool], Occurrences]):
        self.identity, self.read = identity, read
        self._buffers = threading.local()  # each thread's zeros to sum a search's terms in

    def _key(self, state: tuple[int, int, int], tokens: tuple[str, ...], prefix: bool) -> tuple:
        # the phrase's rows change with the generation and the lexical version, not with access
        return (self.identity(), state[0], state[2], tuple(tokens), prefix)

    def answerable_from_memory(self, phrases: list[Phrase], state: tuple[int, int, int]) -> bool:
        """Whether every phrase's occurrences are kept for this state of the index. Asking counts:
        a phrase not kept that was asked about before is read into the cache now, and serves this
        search too when nothing else is missing."""
        if self.identity() is None:
            return False
        answerable = True
        for tokens, prefix in phrases:
            key = self._key(state, tokens, prefix)
            if not tokens or POSTINGS.get(key) is not None:
                continue
            if POSTINGS.ask(key) >= 2:
                POSTINGS.put(key, self.read(tuple(tokens), prefix))
            answerable = answerable and POSTINGS.get(key) is not None
        return answerable

    def occurrences(self, tokens: tuple[str, ...], prefix: bool, state: tuple[int, int, int]) -> Occurrences:
        """The phrase's occurrences, from the cache when kept (and kept from now on)."""
        if self.identity() is None:
            return self.read(tuple(tokens), prefix)
        key = self._key(state, tokens, prefix)
        found = POSTINGS.get(key)
        if found is None:
            found = self.read(tuple(tokens), prefix)
            POSTINGS.put(key, found)
        return found

    def rank_whole_table(self, occurrences: list[Occurrences], collection: Collection,
                         sizes_of: Callable[[np.ndarray], np.ndarray], limit: int) -> list[tuple[int, float]]:
        """BM25 over every row, unfiltered, from the phrases' occurrences: each phrase's term per
        row is kept with its occurrences (it depends only on the state of the index), so a search
        only sums them, by row id in a buffer where the ids allow one."""
        terms = [occ.whole_table_terms(collection, sizes_of) for occ in occurrences]
        top = max((int(occ.rows[-1]) for occ in occurrences if len(occ.rows)), default=-1)
        if top < DENSE_IDS_PER_ROW * collection.rows + DENSE_IDS_SLACK:
            buffer = getattr(self._buffers, "zeros", None)
            if buffer is None or len(buffer) <= top:
                buffer = self._buffers.zeros = np.zeros(max(top + 1, 2 * len(buffer) if buffer is not None else 0))
            return rank_sparse([occ.rows for occ in occurrences], terms, limit, buffer)
        candidates, at = np.unique(np.concatenate([occ.rows for occ in occurrences]), return_inverse=True)
        score, start = np.zeros(len(candidates), dtype=np.float64), 0
        for occ, term in zip(occurrences, terms):
            score[at[start:start + len(occ.rows)]] += term
            start += len(occ.rows)
        return best(candidates, score, limit)


def members(sorted_ids: np.ndarray, values: np.ndarray) -> np.ndarray:
    """Which of sorted_ids are among values (ascending too): a boolean mask over sorted_ids."""
    if not len(values) or not len(sorted_ids):
        return np.zeros(len(sorted_ids), dtype=bool)
    at = np.minimum(np.searchsorted(values, sorted_ids), len(values) - 1)
    return values[at] == sorted_ids
