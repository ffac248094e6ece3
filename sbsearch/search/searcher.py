"""Query an index: embed the query, vector top-k, join the chunk rows from SQLite."""

from __future__ import annotations

import os
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..embed.models import default_model, split_spec
from ..errors import SbsearchError
from ..index.store import Store
from ..vectors import open_vector_index


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
        self.vector_index = open_vector_index(self.store, self.doc_model, self.dim)

    @property
    def embedder(self):
        if self._embedder is None:
            from ..embed import make_embedder

            self._embedder = make_embedder(self.model_name)
        if self._embedder.dim != self.dim:
            raise SbsearchError(
                f"model {self.model_name!r} gives {self._embedder.dim}-d vectors but the index holds "
                f"{self.dim}-d vectors for it"
            )
        return self._embedder

    def missing_vectors(self) -> int:
        return self.store.chunk_count() - self.store.vector_count(self.doc_model)

    def search(self, query: str, k: int = 10) -> list[Result]:
        return self.search_many([query], k)[0]

    def search_many(self, queries: list[str], k: int = 10) -> list[list[Result]]:
        for q in queries:
            if not q or not q.strip():
                raise SbsearchError("empty query")
        vecs = self.embedder.encode_query(queries)
        return self.search_vectors(vecs, k)

    def search_vectors(self, vecs: np.ndarray, k: int = 10) -> list[list[Result]]:
        """Vector ids and the chunk rows they point to come from one SQLite snapshot (a read
        transaction in WAL mode) and the vector index of that snapshot's generation, so a search
        during a re-index sees the previous complete state or the new one, never a mix."""
        for _ in range(20):
            with self.store.snapshot():
                generation = self.store.generation  # the first read fixes the snapshot
                found = self.vector_index.search(vecs, k, generation)
                if found is not None:
                    return self._results(*found)
            time.sleep(0.05)  # the vector index is ahead of our snapshot: a writer just published
        raise SbsearchError("the index kept changing during the search; try again")

    def _results(self, scores: np.ndarray, ids: np.ndarray) -> list[list[Result]]:
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
