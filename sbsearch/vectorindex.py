"""FAISS indexes derived from the vectors in SQLite: built, updated, loaded, always replaceable.

A FAISS file is tagged (sidecar JSON) with the index generation and vector count it reflects. A file
that is missing, unreadable or stale is rebuilt from SQLite without touching the model. Files are
written to a temporary name and moved into place with os.replace, so a reader sees either the old
complete file or the new complete one.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np

from .store import Store, model_key


def _faiss():
    import faiss

    return faiss


def _paths(store: Store, model: str) -> tuple[Path, Path]:
    key = model_key(model)
    return store.faiss_dir / f"{key}.faiss", store.faiss_dir / f"{key}.json"


def _new_index(dim: int):
    faiss = _faiss()
    # Inner product on L2-normalised vectors is cosine similarity; exact search. Approximate
    # index types are chosen by measurement at larger sizes (see docs/BENCHMARKS.md).
    return faiss.IndexIDMap2(faiss.IndexFlatIP(dim))


def _write(store: Store, model: str, index, generation: int) -> None:
    faiss = _faiss()
    index_file, meta_file = _paths(store, model)
    index_file.parent.mkdir(parents=True, exist_ok=True)
    tmp = index_file.with_suffix(f".tmp{os.getpid()}")
    faiss.write_index(index, str(tmp))
    os.replace(tmp, index_file)
    meta = {"model": model, "generation": generation, "count": int(index.ntotal), "dim": int(index.d),
            "type": "IndexIDMap2(IndexFlatIP)"}
    tmp_meta = meta_file.with_suffix(f".tmp{os.getpid()}")
    tmp_meta.write_text(json.dumps(meta))
    os.replace(tmp_meta, meta_file)


def _read_meta(store: Store, model: str) -> dict | None:
    _, meta_file = _paths(store, model)
    try:
        return json.loads(meta_file.read_text())
    except (OSError, ValueError):
        return None


def build(store: Store, model: str, dim: int) -> object:
    """Rebuild a model's FAISS index from every vector stored for it."""
    generation = store.generation
    index = _new_index(dim)
    for ids, mat in store.vectors(model):
        index.add_with_ids(mat, ids)
    _write(store, model, index, generation)
    return index


def update(store: Store, model: str, dim: int, previous_generation: int, generation: int,
           removed_ids: list[int], added_ids: list[int], added_vectors: np.ndarray | None) -> None:
    """Apply one run's changes to the FAISS file if it reflects the state before the run;
    otherwise rebuild it. Either way the file ends at `generation`."""
    meta = _read_meta(store, model)
    index = None
    if meta and meta.get("generation") == previous_generation and meta.get("dim") == dim:
        try:
            index = _faiss().read_index(str(_paths(store, model)[0]))
        except RuntimeError:
            index = None
    if index is None:
        build(store, model, dim)
        return
    if removed_ids:
        index.remove_ids(np.asarray(removed_ids, dtype=np.int64))
    if added_ids:
        index.add_with_ids(np.asarray(added_vectors, dtype=np.float32), np.asarray(added_ids, dtype=np.int64))
    if index.ntotal != store.vector_count(model):
        build(store, model, dim)  # disagreement with SQLite: trust SQLite
        return
    _write(store, model, index, generation)


def load(store: Store, model: str, dim: int):
    """The model's FAISS index at the store's current generation (rebuilt if stale)."""
    meta = _read_meta(store, model)
    if meta and meta.get("generation") == store.generation and meta.get("dim") == dim:
        try:
            return _faiss().read_index(str(_paths(store, model)[0]), _faiss().IO_FLAG_MMAP)
        except RuntimeError:
            pass
    return build(store, model, dim)


def remove_files(store: Store, model: str) -> None:
    for p in _paths(store, model):
        p.unlink(missing_ok=True)
