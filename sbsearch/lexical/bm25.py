"""BM25 over the documents a reader may read, as FTS5's bm25() computes it over a whole table.

Why not FTS5's own bm25(): it takes its statistics (how many rows hold a phrase, how many rows
there are, their mean length) from the whole index. A reader who may not read a document would
still see its words move the scores of the documents they can read: two words that score alike
for a staff reader score apart once a board-only document with one of them is indexed. Scores
shown to a reader must be a function of what that reader may read (docs/SECURITY.md), so the
store finds the phrases' occurrences and the statistics of the reader's documents, and this
module ranks them.

The arithmetic is FTS5's (fts5_aux.c, fts5Bm25Function), term by term and in the same order, so
that for a reader who may read everything the scores equal FTS5's bm25() bit for bit (a test
holds the two together):

    idf(phrase) = ln((N - n + 0.5) / (n + 0.5)), at least 1e-6
    score(row)  = sum over phrases of idf * (f * (k1 + 1)) / (f + k1 * (1 - b + b * D / avgdl))

N: rows the reader may read; n: those of them holding the phrase; f: the phrase's column-weighted
occurrences in the row; D: the row's tokens, all columns; avgdl: the readable rows' mean D.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

K1 = 1.2
B = 0.75


@dataclass(frozen=True)
class Collection:
    """The statistics of the rows one reader may read: how many, and their tokens together."""

    rows: int
    tokens: int

    @property
    def mean_length(self) -> float:
        return float(self.tokens) / float(self.rows) if self.rows else 1.0


def idf(collection: Collection, hits: int) -> float:
    value = math.log((collection.rows - hits + 0.5) / (hits + 0.5)) if collection.rows else 0.0
    return value if value > 0.0 else 1e-6


def phrase_scores(freqs: np.ndarray, lengths: np.ndarray, hits: int, collection: Collection) -> np.ndarray:
    """One phrase's term of each row's score: rows holding it with `freqs` weighted occurrences and
    `lengths` tokens (a row without it adds 0.0, which leaves a float sum unchanged)."""
    norm = K1 * (1 - B + B * lengths.astype(np.float64) / collection.mean_length)
    return idf(collection, hits) * ((freqs * (K1 + 1.0)) / (freqs + norm))


def rank(rows: np.ndarray, lengths: np.ndarray, freqs: list[np.ndarray], hits: list[int], collection: Collection,
         limit: int) -> list[tuple[int, float]]:
    """(row id, score) of the best `limit` rows, highest score first, ties by row id.

    rows: the candidates (readable rows that pass the search's filter), lengths: their D;
    freqs: per phrase, its weighted occurrences in each candidate; hits: per phrase, how many
    readable rows hold it. Element-wise float64 operations round as C's do, one by one, in
    fts5Bm25Function's order: the sums are FTS5's to the last bit."""
    if not len(rows):
        return []
    score = np.zeros(len(rows), dtype=np.float64)
    for f, n in zip(freqs, hits):
        score += phrase_scores(f, lengths, n, collection)
    return best(rows, score, limit)


def rank_sparse(phrase_rows: list[np.ndarray], terms: list[np.ndarray], limit: int,
                buffer: np.ndarray) -> list[tuple[int, float]]:
    """rank() where each phrase comes as the rows holding it and its term there (phrase_scores),
    summed in phrase order in `buffer` (zeros, longer than the largest row id; left zeros): no
    union of the rows is sorted, and only the few that can be among the best are deduplicated.
    The same sums as rank(), bit for bit: each row adds its phrases' terms in the same order."""
    if not phrase_rows or not sum(len(r) for r in phrase_rows):
        return []
    every = np.concatenate(phrase_rows)  # a row once per phrase holding it
    try:
        for rows, term in zip(phrase_rows, terms):
            buffer[rows] += term  # a phrase holds a row once: no two writes to one place
        values = buffer[every]
    finally:
        buffer[every] = 0.0
    # A row is in `every` at most once per phrase, so fewer than limit rows score above the best
    # limit's last: at most (limit - 1) * phrases entries do, and any value ranked below those is
    # a safe lower bound for it.
    enough = (max(limit, 1) - 1) * len(phrase_rows) + 1
    if len(values) > enough:
        floor = np.partition(values, len(values) - enough)[len(values) - enough]
        keep = values >= floor
        every, values = every[keep], values[keep]
    rows, first = np.unique(every, return_index=True)
    return best(rows, values[first], limit)


def best(rows: np.ndarray, score: np.ndarray, limit: int) -> list[tuple[int, float]]:
    """The `limit` best (row, score) with a positive score, highest first, ties by row id."""
    keep = score > 0
    rows, score = rows[keep], score[keep]
    if len(score) > limit > 0:
        # only rows scoring at least the limit-th best can be among the best (ties included)
        kth = np.partition(score, len(score) - limit)[len(score) - limit]
        chosen = score >= kth
        rows, score = rows[chosen], score[chosen]
    order = np.lexsort((rows, -score))[:limit]
    return [(int(rows[i]), float(score[i])) for i in order]
