"""Query an index: embed the query, FAISS top-k, join the chunk rows from SQLite."""

from __future__ import annotations

import os
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from . import vectorindex
from .errors import SbsearchError
from .models import split_spec
from .store import Store


@dataclass
class Result:
    rank: int
    score: float
    chunk_id: int
    path: str
    root: str
    page: int | None
    heading: str | None
    text: str

    @property
    def relpath(self) -> str:
        """Path relative to the folder that was indexed (what query files name)."""
        if self.root and self.path.startswith(self.root.rstrip("/") + "/"):
            return self.path[len(self.root.rstrip("/")) + 1:]
        return self.path

    def display_path(self) -> str:
        """Relative to the working directory when under it, else `<indexed folder name>/<relpath>`."""
        cwd = os.getcwd().rstrip("/") + "/"
        if self.path.startswith(cwd):
            return self.path[len(cwd):]
        if self.root and self.relpath != self.path:
            return f"{Path(self.root).name}/{self.relpath}"
        return self.path


def model_for_index(store: Store, model: str | None) -> str:
    """--model / $SBSEARCH_MODEL, else the index's default model, else the global default."""
    if model or store.get_meta("default_model"):
        return model or store.get_meta("default_model")
    from .models import default_model

    return default_model()


class Searcher:
    def __init__(self, index_path: Path, model: str | None = None, embedder=None):
        self.store = Store(index_path)
        # model_name is what the user asked for ('Q@D' in the asymmetric mode); doc_model names
        # the stored vectors searched, the embedder encodes the queries.
        self.model_name = embedder.name if embedder is not None else model_for_index(self.store, model)
        self.query_model, self.doc_model = split_spec(self.model_name)
        row = self.store.model_row(self.doc_model)
        if row is None or self.store.vector_count(self.doc_model) == 0:
            have = ", ".join(m["name"] for m in self.store.models()) or "none"
            raise SbsearchError(
                f"index {index_path} has no vectors for model {self.doc_model!r} (has: {have}); "
                f"run `sbsearch index DIR --model {self.doc_model}`"
            )
        self.dim = row["dim"]
        self.model_row = row
        self._embedder = embedder
        self._faiss = None
        self._faiss_gen: int | None = None

    @property
    def embedder(self):
        if self._embedder is None:
            from .embedder import make_embedder

            self._embedder = make_embedder(self.model_name)
        if self._embedder.dim != self.dim:
            raise SbsearchError(
                f"model {self.model_name!r} gives {self._embedder.dim}-d vectors but the index holds "
                f"{self.dim}-d vectors for it"
            )
        return self._embedder

    @property
    def faiss_index(self):
        """The FAISS index of the store's current generation (for callers outside a search)."""
        if self._faiss is None or self._faiss_gen != self.store.generation:
            self._faiss_gen = self.store.generation
            self._faiss = vectorindex.load(self.store, self.doc_model, self.dim)
        return self._faiss

    def _index_for(self, generation: int):
        """The FAISS index of exactly `generation` (the SQLite snapshot being read), or None when
        the FAISS file already reflects a newer generation than the snapshot."""
        if self._faiss is not None and self._faiss_gen == generation:
            return self._faiss
        index = vectorindex.load_generation(self.store, self.doc_model, self.dim, generation)
        if index is None:
            if vectorindex.newer_than(self.store, self.doc_model, generation):
                return None
            index = vectorindex.build(self.store, self.doc_model, self.dim)  # reads this same snapshot
        self._faiss, self._faiss_gen = index, generation
        return index

    def missing_vectors(self) -> int:
        chunks = self.store.db.execute("SELECT count(*) FROM chunks").fetchone()[0]
        return chunks - self.store.vector_count(self.doc_model)

    def search(self, query: str, k: int = 10) -> list[Result]:
        return self.search_many([query], k)[0]

    def search_many(self, queries: list[str], k: int = 10) -> list[list[Result]]:
        for q in queries:
            if not q or not q.strip():
                raise SbsearchError("empty query")
        vecs = self.embedder.encode_query(queries)
        return self.search_vectors(vecs, k)

    def search_vectors(self, vecs: np.ndarray, k: int = 10) -> list[list[Result]]:
        """FAISS ids and the chunk rows they point to come from one SQLite snapshot (a read
        transaction in WAL mode) and the FAISS file of that snapshot's generation, so a search
        during a re-index sees the previous complete state or the new one, never a mix."""
        db = self.store.db
        for _ in range(20):
            db.execute("BEGIN")
            try:
                generation = self.store.generation  # the first read fixes the snapshot
                index = self._index_for(generation)
                if index is not None:
                    return self._search_snapshot(index, vecs, k)
            finally:
                db.execute("COMMIT")
            time.sleep(0.05)  # the FAISS file is ahead of our snapshot: a writer just published
        raise SbsearchError("the index kept changing during the search; try again")

    def _search_snapshot(self, index, vecs: np.ndarray, k: int) -> list[list[Result]]:
        k_eff = min(k, index.ntotal)
        if k_eff <= 0:
            return [[] for _ in range(len(vecs))]
        scores, ids = _search_faiss(index, np.asarray(vecs, dtype=np.float32), k_eff)
        rows = self.store.chunk_rows({int(i) for i in ids.ravel() if i >= 0})
        out = []
        for qscores, qids in zip(scores, ids):
            results = []
            for s, i in zip(qscores, qids):
                row = rows.get(int(i))
                if row is None:
                    continue  # cannot happen within one snapshot; never show a ghost anyway
                results.append(Result(len(results) + 1, float(s), int(i), row["path"], row["root"] or "",
                                      row["page"], row["heading"], row["text"]))
            out.append(results)
        return out


def _search_faiss(index, vecs: np.ndarray, k: int):
    """FAISS search; a few queries run on one thread. FAISS splits even a single query of an exact
    index over its OpenMP threads, and on a small, shared CPU the hand-off costs more than it saves
    (measured by benchmarks/ann.py: exact search 2.5-8x slower on two threads than on one)."""
    import faiss

    if len(vecs) >= 16:
        return index.search(vecs, k)
    before = faiss.omp_get_max_threads()
    faiss.omp_set_num_threads(1)
    try:
        return index.search(vecs, k)
    finally:
        faiss.omp_set_num_threads(before)
