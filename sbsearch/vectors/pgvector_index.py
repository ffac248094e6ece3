"""The VectorIndex of a PostgreSQL store: pgvector's HNSW index (cosine) inside the database.

The vectors and their index are written in the indexer's own publish transaction, so there is
nothing derived to update, rebuild lazily or keep in step by generation: every search reads the
index of its own snapshot. The SQL is the store's (index/store/pg/); this module only asks it.
"""

from __future__ import annotations

import numpy as np

from .protocol import VectorSource


class PgVectorIndex:
    def __init__(self, store: VectorSource, model: str, dim: int | None = None):
        self.store = store
        self.model = model
        self.dim = dim

    def _dim(self) -> int | None:
        if self.dim is None:
            row = self.store.model_row(self.model)
            self.dim = row["dim"] if row else None
        return self.dim

    def build(self) -> object:
        if self._dim() is not None:
            self.store.build_hnsw(self.model, self._dim(), rebuild=True)
        return self

    def update(self, previous_generation: int, generation: int, removed_ids: list[int], added_ids: list[int],
               added_vectors: np.ndarray | None) -> None:
        # the rows are already in (same transaction as the chunks); PostgreSQL maintains the index
        self.load()

    def load(self) -> object:
        if self._dim() is not None and self.store.hnsw_index(self.model) is None:
            self.store.build_hnsw(self.model, self._dim())
        return self

    def search(self, vecs: np.ndarray, k: int, generation: int, allowed: np.ndarray | None = None,
               recall_depth: int | None = None) -> tuple[np.ndarray, np.ndarray] | None:
        if self._dim() is None:
            return (np.zeros((len(vecs), 0), dtype=np.float32), np.zeros((len(vecs), 0), dtype=np.int64))
        return self.store.nearest(self.model, self._dim(), vecs, k, allowed)

    def verify(self, chunk_ids: set[int]) -> str:
        """Vectors and index are one database: only a missing or invalid (interrupted build) index
        can disagree."""
        index = self.store.hnsw_index(self.model)
        if index is None:
            return "missing"
        return "ok" if index["valid"] else "damaged: the HNSW index is marked invalid (an interrupted build)"

    def describe(self) -> dict | None:
        index = self.store.hnsw_index(self.model)
        if index is None:
            return None
        return {"type": "hnsw (pgvector)", "params": index["params"],
                "recall_at_10": None, "measured_at_count": None, "count": self.store.vector_count(self.model),
                "generation": self.store.generation, "current": True, "size_bytes": index["size_bytes"]}

    def remove(self) -> None:
        self.store.drop_hnsw(self.model)
