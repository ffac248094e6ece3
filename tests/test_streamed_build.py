"""A build reads the stored vectors batch by batch and never holds all of them at once (10M 384-d
vectors are 15 GB of float32): real FAISS and a real SQLite store behind a store that hands its
vectors out in small batches and watches how many of the rows it handed out are still alive.

Every type goes through it: the IVF types are trained on a sample and filled as the batches come,
the recall queries' exact top-k accumulated over the same batches; the exact type fills its own
array; an automatic build that falls back from type to type reads each pass anew."""

from __future__ import annotations

import weakref

import numpy as np
import pytest

from sbsearch.vectors import faiss_index
from sbsearch.vectors.quantised import BINARY, SQ8
from test_vectorindex_types import MODEL, clustered, make_store, uniform

DIM = 128
N = 4000
BATCH = 250  # rows per batch handed out: N / 16


class BatchWatchingStore:
    """A store whose vectors() yields copies of its batches, BATCH rows each, and records the most
    rows of them alive at once (counted each time it is about to yield another) and how many passes
    were made over them. Everything else is the real store's."""

    def __init__(self, store):
        self._store = store
        self.passes = 0
        self.most_rows_alive = 0
        self._handed_out: list[weakref.ref] = []

    def __getattr__(self, name):
        return getattr(self._store, name)

    def _rows_alive(self) -> int:
        alive = [r() for r in self._handed_out]
        return sum(len(m) for m in alive if m is not None)

    def vectors(self, model: str):
        self.passes += 1
        for ids, mat in self._store.vectors(model, batch=BATCH):
            mat = mat.copy()  # a batch of its own, which only the build can keep alive
            self._handed_out.append(weakref.ref(mat))
            self.most_rows_alive = max(self.most_rows_alive, self._rows_alive())
            yield ids, mat


def build_watched(tmp_path, vecs: np.ndarray) -> tuple[BatchWatchingStore, dict]:
    watched = BatchWatchingStore(make_store(tmp_path / "idx", vecs))
    faiss_index.build(watched, MODEL, vecs.shape[1])
    return watched, faiss_index._read_meta(watched, MODEL)


@pytest.fixture
def low_threshold(monkeypatch):
    monkeypatch.setattr(faiss_index, "EXACT_UP_TO", 2000)
    monkeypatch.delenv(faiss_index.ENV_TYPE, raising=False)


@pytest.mark.parametrize("kind", ["ivf", SQ8, BINARY, "hnsw", "exact"])
def test_a_build_holds_no_more_than_two_batches_of_vectors(tmp_path, low_threshold, monkeypatch, kind):
    monkeypatch.setenv(faiss_index.ENV_TYPE, kind)
    watched, meta = build_watched(tmp_path, clustered(N, DIM, rank=48))
    assert meta["type"] == kind and meta["count"] == N
    # the batch being added and the one the store is reading: never the collection (N rows)
    assert watched.most_rows_alive <= 2 * BATCH, f"{watched.most_rows_alive} of {N} rows held at once"
    # an approximate type: one pass for its training sample and recall queries, one to fill it
    assert watched.passes == (1 if kind == "exact" else 2)


def test_a_fallback_from_type_to_type_streams_each_pass(tmp_path, low_threshold, monkeypatch):
    """Uniform noise past the float budget: binary, SQ8 and the float IVF miss the target in turn
    (or one of them reaches it); each reads the store anew, sharing the one sample."""
    monkeypatch.setattr(faiss_index, "FLOAT_INDEX_MAX_BYTES", 1000 * DIM * 4)
    watched, meta = build_watched(tmp_path, uniform(3000, DIM))
    assert meta["fallback"].startswith("ivf-binary reached recall@10")
    tried = meta["fallback"].count(";") + 1 + (meta["type"] != "exact")
    assert watched.passes == 1 + tried + (meta["type"] == "exact")
    assert watched.most_rows_alive <= 2 * BATCH


@pytest.mark.parametrize("kind", ["ivf", SQ8, BINARY])
def test_the_batches_do_not_change_the_index(tmp_path, low_threshold, monkeypatch, kind):
    """Small batches give the file that the store's own batches give, byte for byte: the same
    sample, the same training, the same vectors added in the same order."""
    monkeypatch.setenv(faiss_index.ENV_TYPE, kind)
    vecs = clustered(N, DIM, rank=48)
    _, small = build_watched(tmp_path / "small", vecs)
    whole = make_store(tmp_path / "whole" / "idx", vecs)
    faiss_index.build(whole, MODEL, DIM)
    big = faiss_index._read_meta(whole, MODEL)
    for field in ("type", "params", "recall_at_10", "count", "file_bytes", "file_crc32", "centre"):
        assert small.get(field) == big.get(field), field
