"""The SQLite store's vectors: a model's stored vectors, the model registry, and the pending
vectors a run commits in batches before it publishes."""

from __future__ import annotations

from typing import Iterable, Iterator

import numpy as np


class VectorsMixin:
    """Vectors, models and pending vectors, over self.db."""

    def vectors(self, model: str, batch: int = 20000) -> Iterator[tuple[np.ndarray, np.ndarray]]:
        """Yield (ids, matrix) batches of a model's stored vectors, in chunk-id order."""
        last = -1
        while True:
            rows = list(self.db.query(
                "SELECT chunk_id, vector FROM embeddings WHERE model = ? AND chunk_id > ? "
                "ORDER BY chunk_id LIMIT ?", [model, last, batch]
            ))
            if not rows:
                return
            ids = np.fromiter((r["chunk_id"] for r in rows), dtype=np.int64, count=len(rows))
            mat = np.vstack([np.frombuffer(r["vector"], dtype=np.float32) for r in rows])
            last = int(ids[-1])
            yield ids, mat

    def vector_count(self, model: str) -> int:
        return self.db.execute("SELECT count(*) FROM embeddings WHERE model = ?", [model]).fetchone()[0]

    def vector_ids(self, model: str) -> set[int]:
        return {r["chunk_id"] for r in self.db.query("SELECT chunk_id FROM embeddings WHERE model = ?", [model])}

    def vector_counts(self) -> dict[str, int]:
        return {r["model"]: r["n"] for r in self.db.query(
            "SELECT model, count(*) AS n FROM embeddings GROUP BY model")}

    def vectors_for_ids(self, model: str, ids: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(ids, matrix) of a model's stored vectors for these chunk ids (those that have one)."""
        got_ids, rows = [], []
        for r in self._query_in("SELECT chunk_id, vector FROM embeddings WHERE model = ? AND chunk_id IN ({marks})",
                                (int(i) for i in ids), [model]):
            got_ids.append(r["chunk_id"])
            rows.append(np.frombuffer(r["vector"], dtype=np.float32))
        if not rows:
            return np.zeros(0, dtype=np.int64), np.zeros((0, 0), dtype=np.float32)
        return np.asarray(got_ids, dtype=np.int64), np.vstack(rows)

    def chunks_without_vectors(self, model: str) -> list[tuple[int, str, str | None]]:
        """(chunk id, text, heading) of every chunk that has no vector for `model` yet."""
        return [
            (r["id"], r["text"], r["heading"])
            for r in self.db.query(
                "SELECT c.id, c.text, c.heading FROM chunks c "
                "LEFT JOIN embeddings e ON e.chunk_id = c.id AND e.model = ? "
                "WHERE e.chunk_id IS NULL ORDER BY c.id", [model]
            )
        ]

    def model_row(self, name: str) -> dict | None:
        rows = list(self.db.query("SELECT * FROM models WHERE name = ?", [name]))
        return rows[0] if rows else None

    def models(self) -> list[dict]:
        return list(self.db.query("SELECT * FROM models ORDER BY added_at"))

    def _insert_model(self, row: dict) -> None:
        self.db["models"].insert(row)

    def drop_model_vectors(self, name: str) -> None:
        with self.db.atomic():
            self.db.execute("DELETE FROM embeddings WHERE model = ?", [name])
            self.db.execute("DELETE FROM models WHERE name = ?", [name])
            self._bump_generation()

    def vectors_by_text(self, text_shas: Iterable[str]) -> dict[str, dict[str, bytes]]:
        """model -> {text_sha: vector bytes} for stored chunks with these texts (any document)."""
        out: dict[str, dict[str, bytes]] = {}
        shas = set(text_shas)
        for r in self._query_in("SELECT text_sha, model, vector FROM pending_vectors WHERE text_sha IN ({marks})", shas):
            out.setdefault(r["model"], {})[r["text_sha"]] = r["vector"]
        for r in self._query_in("SELECT c.text_sha, e.model, e.vector FROM chunks c JOIN embeddings e "
                                "ON e.chunk_id = c.id WHERE c.text_sha IN ({marks})", shas):
            out.setdefault(r["model"], {})[r["text_sha"]] = r["vector"]
        return out

    def pending_count(self) -> int:
        """Vectors embedded by a run that has not published (yet, or ever: it was stopped)."""
        return self.db.execute("SELECT count(*) FROM pending_vectors").fetchone()[0]

    def save_pending(self, model: str, vectors: dict[str, bytes]) -> None:
        with self.db.atomic():
            self.db["pending_vectors"].upsert_all(
                ({"model": model, "text_sha": sha, "vector": v} for sha, v in vectors.items()),
                pk=("model", "text_sha"))

    def _clear_pending(self) -> None:
        self.db.execute("DELETE FROM pending_vectors")

    def add_vectors(self, model: str, vectors: dict[int, np.ndarray]) -> int:
        """Back-fill vectors of existing chunks for a model; one transaction."""
        with self.db.atomic():
            self.db["embeddings"].upsert_all(
                ({"chunk_id": cid, "model": model, "vector": np.asarray(v, dtype=np.float32).tobytes()}
                 for cid, v in vectors.items()), pk=("model", "chunk_id"))
            return self._bump_generation()
