"""Quantised FAISS indexes whose candidates are rescored exactly with the stored vectors.

A quantised index keeps a small code per vector in memory instead of its float32 vector
(384-d: 1,536 bytes): "ivf-sq8" one byte per dimension (IndexIVFScalarQuantizer, 8-bit, per
dimension ranges: 384 bytes), "ivf-binary" one bit per dimension (IndexBinaryIVF over the signs of
the vector minus the collection's mean: 48 bytes). Its own ranking is approximate, so a search asks
it for `factor` times as many candidates as wanted and ranks those again by their exact inner
product with the query, reading their float32 vectors from the store (`vectors_for_ids`): the
scores returned are always the true cosine similarities, and the recall measured at build time
(faiss_index._build_approx) is that of the rescored results. nprobe and factor are both tuned there.

Why the mean is taken off before the signs: sentence embeddings share a direction (the mean of the
minilm-int8 embeddings of the shared STS-B and SNLI sentences has norm 0.18), so a few dimensions
(1.8% there) have the same sign in over 70% of the vectors and say little; centred, none does.
On those 40,887 sentences, exact Hamming search rescored from 4x the candidates found 0.9465 of
the cosine top 10 with centred signs against 0.936 with raw ones (10x: 0.9875 against 0.9835).
"""

from __future__ import annotations

import numpy as np

from .protocol import VectorSource

SQ8 = "ivf-sq8"
BINARY = "ivf-binary"
QUANTISED = (SQ8, BINARY)
# Candidates per wanted result, tried in this order at build time until the recall target is met
# with nprobe within the allowed fraction of the lists (a larger factor costs more vectors read for
# rescoring; a larger nprobe costs more codes scanned).
RESCORE_FACTORS = {SQ8: (2, 4, 8, 16), BINARY: (4, 8, 16, 32, 64)}
QUERY_BLOCK = 64  # queries rescored together (bounds the candidate vectors held at once)
MIN_DEPTH = 10  # a search for fewer results still rescores factor x this many candidates


def _faiss():
    import faiss

    return faiss


def new_index(kind: str, dim: int, nlist: int):
    """An untrained quantised IVF index of `kind` with `nlist` lists (inner product for SQ8)."""
    faiss = _faiss()
    if kind == SQ8:
        quantizer = faiss.IndexFlatIP(dim)
        return faiss.IndexIVFScalarQuantizer(quantizer, dim, nlist, faiss.ScalarQuantizer.QT_8bit,
                                             faiss.METRIC_INNER_PRODUCT)
    return faiss.IndexBinaryIVF(faiss.IndexBinaryFlat(dim), dim, nlist)


def kind_of_inner(index) -> str | None:
    """"ivf-sq8" / "ivf-binary" for a raw FAISS object of one of those types, else None."""
    faiss = _faiss()
    if isinstance(index, faiss.IndexBinaryIVF):
        return BINARY
    ivf = faiss.try_extract_index_ivf(index)
    if ivf is not None and isinstance(faiss.downcast_index(ivf), faiss.IndexIVFScalarQuantizer):
        return SQ8
    return None


class RescoredIndex:
    """A quantised index (`inner`) and the store its candidates are rescored from. It answers
    search / add_with_ids / remove_ids / ntotal / d like a FAISS index, so the rest of faiss_index
    handles it like the float types."""

    def __init__(self, kind: str, inner, source: VectorSource, model: str, centre: np.ndarray | None = None,
                 factor: int = 4):
        self.kind, self.inner, self.source, self.model = kind, inner, source, model
        self.d = int(inner.d)
        self.centre = None if centre is None else np.asarray(centre, dtype=np.float32)
        self.factor = int(factor)

    @property
    def ntotal(self) -> int:
        return int(self.inner.ntotal)

    @property
    def nprobe(self) -> int:
        return int(self.inner.nprobe)

    @nprobe.setter
    def nprobe(self, value: int) -> None:
        self.inner.nprobe = int(value)

    def train(self, mat: np.ndarray) -> None:
        if self.kind == BINARY and self.centre is None:
            self.centre = mat.mean(axis=0).astype(np.float32)
        self.inner.train(self.encode(mat))

    def encode(self, mat: np.ndarray) -> np.ndarray:
        """What the inner index takes: float32 rows (SQ8 quantises them itself), or packed signs."""
        mat = np.ascontiguousarray(mat, dtype=np.float32)
        if self.kind != BINARY:
            return mat
        return np.packbits(mat > self.centre, axis=1)

    def add_with_ids(self, mat: np.ndarray, ids: np.ndarray) -> None:
        self.inner.add_with_ids(self.encode(mat), np.ascontiguousarray(ids, dtype=np.int64))

    def remove_ids(self, ids: np.ndarray) -> int:
        return self.inner.remove_ids(np.ascontiguousarray(ids, dtype=np.int64))

    def candidates(self, vecs: np.ndarray, n: int, allowed: np.ndarray | None = None) -> np.ndarray:
        """The inner index's top-n ids per query (-1 where it has fewer), among `allowed` (sorted
        ids) if given: SQ8 through an IDSelector; IndexBinaryIVF takes none, so it is asked for as
        many more candidates as the filter leaves out, and those not allowed are dropped."""
        if allowed is None:
            return self.inner.search(self.encode(vecs), n)[1]
        faiss = _faiss()
        if self.kind == SQ8:
            params = faiss.SearchParametersIVF(sel=faiss.IDSelectorBatch(allowed), nprobe=self.nprobe)
            return self.inner.search(self.encode(vecs), n, params=params)[1]
        wider = min(self.ntotal, n * max(1, -(-self.ntotal // max(1, len(allowed)))))
        cand = self.inner.search(self.encode(vecs), wider)[1]
        return np.where(np.isin(cand, allowed), cand, -1)

    def search(self, vecs: np.ndarray, k: int, allowed: np.ndarray | None = None,
               recall_depth: int | None = None) -> tuple[np.ndarray, np.ndarray]:
        """Top-k (scores, ids): max(k, MIN_DEPTH) x factor candidates (the depth the recall was
        measured at, even for a small k), rescored exactly; -1 / -inf where fewer were found.
        recall_depth < k: only the best recall_depth need that recall, so only max(recall_depth,
        MIN_DEPTH) x factor candidates are read and rescored, and the rest of the k are the best
        of those (hybrid search's fusion candidates: benchmarks/hybrid_candidates.py)."""
        vecs = np.ascontiguousarray(vecs, dtype=np.float32)
        k = min(k, self.ntotal)
        wanted = k if recall_depth is None else min(k, recall_depth)
        n = min(self.ntotal, max(k, max(wanted, MIN_DEPTH) * self.factor))
        scores = np.full((len(vecs), k), -np.inf, dtype=np.float32)
        ids = np.full((len(vecs), k), -1, dtype=np.int64)
        for s in range(0, len(vecs), QUERY_BLOCK):
            block = vecs[s:s + QUERY_BLOCK]
            scores[s:s + len(block)], ids[s:s + len(block)] = self.rescore(block, self.candidates(block, n, allowed), k)
        return scores, ids

    def rescore(self, vecs: np.ndarray, cand: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        """Top-k of each query's candidates by exact inner product with the stored vectors. A
        candidate the store has no vector for (it cannot happen for a file that agrees with the
        store) is dropped rather than ranked by its code."""
        wanted = np.unique(cand[cand >= 0])
        got_ids, mat = self.source.vectors_for_ids(self.model, wanted) if len(wanted) else (wanted, None)
        scores = np.full((len(vecs), k), -np.inf, dtype=np.float32)
        ids = np.full((len(vecs), k), -1, dtype=np.int64)
        if not len(got_ids):
            return scores, ids
        order = np.argsort(got_ids)
        got_ids, mat = got_ids[order], mat[order]
        exact = vecs @ mat.T  # (queries, distinct candidates)
        pos = np.clip(np.searchsorted(got_ids, cand), 0, len(got_ids) - 1)
        known = (cand >= 0) & (got_ids[pos] == cand)
        cand_scores = np.where(known, np.take_along_axis(exact, pos, 1), -np.inf)
        for j in range(len(vecs)):
            row_ids, row_scores = cand[j][known[j]], cand_scores[j][known[j]]
            first = np.unique(row_ids, return_index=True)[1]  # a duplicate id counts once
            row_ids, row_scores = row_ids[first], row_scores[first]
            top = np.argsort(-row_scores, kind="stable")[:k]
            scores[j, :len(top)], ids[j, :len(top)] = row_scores[top], row_ids[top]
        return scores, ids
