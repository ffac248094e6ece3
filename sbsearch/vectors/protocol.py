"""What a vector index is to the rest of the application, whatever engine is behind it."""

from __future__ import annotations

from pathlib import Path
from typing import Iterator, Protocol

import numpy as np


class VectorSource(Protocol):
    """What a vector index reads from the store (sbsearch.index.store.Store is one)."""

    path: Path

    @property
    def generation(self) -> int: ...

    def vectors(self, model: str) -> Iterator[tuple[np.ndarray, np.ndarray]]: ...

    def vector_count(self, model: str) -> int: ...

    def vectors_for_ids(self, model: str, ids: np.ndarray) -> tuple[np.ndarray, np.ndarray]: ...


class VectorIndex(Protocol):
    """The vector index of one model of one index (model name, dimension)."""

    def build(self) -> object:
        """Rebuild from every vector stored for the model."""

    def update(self, previous_generation: int, generation: int, removed_ids: list[int], added_ids: list[int],
               added_vectors: np.ndarray | None) -> None:
        """Apply one indexing run's changes if the index reflects previous_generation, else rebuild;
        either way it ends at `generation`."""

    def load(self) -> object:
        """The index at the store's current generation, rebuilt if stale."""

    def search(self, vecs: np.ndarray, k: int, generation: int, allowed: np.ndarray | None = None,
               recall_depth: int | None = None) -> tuple[np.ndarray, np.ndarray] | None:
        """Top-k (scores, chunk ids) per query vector from the index of exactly `generation`, or None
        when the index already reflects a newer generation (the caller's snapshot is behind).
        With `allowed` (sorted chunk ids), only those chunks are ranked: up to k of them come back
        however few there are. recall_depth < k: only the best recall_depth must be found as a
        search for that many would find them; an index may rank the rest of the k among the
        candidates it read for those (a quantised index rescores fewer stored vectors)."""

    def verify(self, chunk_ids: set[int]) -> str:
        """"ok", or what disagrees with the chunk ids stored for the model."""

    def describe(self) -> dict | None:
        """Type, parameters and measured recall, for `sbsearch status` (cheap: no index is loaded)."""

    def remove(self) -> None:
        """Delete the model's index files."""
