"""FAISS indexes derived from the vectors in SQLite: built, updated, loaded, always replaceable.

Each FAISS file holds one generation of the index and is never modified once written
(`<model-key>-g<generation>.faiss`); a small JSON file, replaced atomically, names the current one.
A reader therefore never pairs the metadata of one generation with the vectors of another. A file
that is missing, unreadable or stale is rebuilt from SQLite without touching the model.
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


def _meta_path(store: Store, model: str) -> Path:
    return store.faiss_dir / f"{model_key(model)}.json"


def _index_path(store: Store, model: str, generation: int) -> Path:
    return store.faiss_dir / f"{model_key(model)}-g{generation}.faiss"


def current_file(store: Store, model: str) -> Path | None:
    meta = _read_meta(store, model)
    return store.faiss_dir / meta["file"] if meta and meta.get("file") else None


def _new_index(dim: int):
    faiss = _faiss()
    # Inner product on L2-normalised vectors is cosine similarity; exact search. Approximate
    # index types are chosen by measurement at larger sizes (see docs/BENCHMARKS.md).
    return faiss.IndexIDMap2(faiss.IndexFlatIP(dim))


def _write(store: Store, model: str, index, generation: int) -> None:
    faiss = _faiss()
    index_file, meta_file = _index_path(store, model, generation), _meta_path(store, model)
    index_file.parent.mkdir(parents=True, exist_ok=True)
    previous = current_file(store, model)
    tmp = index_file.with_suffix(f".tmp{os.getpid()}")
    faiss.write_index(index, str(tmp))
    os.replace(tmp, index_file)
    meta = {"model": model, "generation": generation, "file": index_file.name, "count": int(index.ntotal),
            "dim": int(index.d), "type": "IndexIDMap2(IndexFlatIP)"}
    tmp_meta = meta_file.with_suffix(f".tmp{os.getpid()}")
    tmp_meta.write_text(json.dumps(meta))
    os.replace(tmp_meta, meta_file)
    # Keep the current and the previous file (a reader may be about to open it); older ones go.
    # A reader that already opened a removed file keeps reading it: Linux frees it on close.
    keep = {index_file.name, previous.name if previous else None}
    for old in store.faiss_dir.glob(f"{model_key(model)}-g*.faiss"):
        if old.name not in keep:
            old.unlink(missing_ok=True)


def _read_meta(store: Store, model: str) -> dict | None:
    meta_file = _meta_path(store, model)
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
            index = _faiss().read_index(str(current_file(store, model)))
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
    index = load_generation(store, model, dim, store.generation)
    return index if index is not None else build(store, model, dim)


def load_generation(store: Store, model: str, dim: int, generation: int):
    """The FAISS index of exactly `generation`, or None if the current file is of another one."""
    meta = _read_meta(store, model)
    if meta and meta.get("generation") == generation and meta.get("dim") == dim and meta.get("file"):
        try:
            return _faiss().read_index(str(store.faiss_dir / meta["file"]), _faiss().IO_FLAG_MMAP)
        except RuntimeError:
            return None
    return None


def newer_than(store: Store, model: str, generation: int) -> bool:
    meta = _read_meta(store, model)
    return bool(meta) and int(meta.get("generation", -1)) > generation


def remove_files(store: Store, model: str) -> None:
    _meta_path(store, model).unlink(missing_ok=True)
    for p in store.faiss_dir.glob(f"{model_key(model)}-g*.faiss"):
        p.unlink(missing_ok=True)
