"""The SQLite store's vectors: a model's stored vectors, the model registry, and the pending
vectors a run commits in batches before it publishes. Vectors are kept in the index's encoding
(vector_codec: int8 with a scale per vector, or float32 in an index not yet migrated) and leave
this module as float32."""

from __future__ import annotations

from typing import Iterable, Iterator

import numpy as np

from ..vector_codec import ENCODING_KEY, blob_length, check_encoding, decode, decode_matrix, encode, encode_matrix

# The encoding read in the same statement as the vectors: a migration committed between two
# statements can never make one decode with the other's encoding.
ENCODING_SQL = f"(SELECT value FROM meta WHERE key = '{ENCODING_KEY}')"


class VectorsMixin:
    """Vectors, models and pending vectors, over self.db."""

    def vectors(self, model: str, batch: int = 20000) -> Iterator[tuple[np.ndarray, np.ndarray]]:
        """Yield (ids, matrix) batches of a model's stored vectors, in chunk-id order."""
        last = -1
        while True:
            rows = list(self.db.query(
                f"SELECT chunk_id, vector, {ENCODING_SQL} AS encoding FROM embeddings WHERE model = ? AND chunk_id > ? "
                "ORDER BY chunk_id LIMIT ?", [model, last, batch]
            ))
            if not rows:
                return
            ids = np.fromiter((r["chunk_id"] for r in rows), dtype=np.int64, count=len(rows))
            mat = decode_matrix([r["vector"] for r in rows], check_encoding(rows[0]["encoding"]))
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
        """(ids, matrix) of a model's stored vectors for these chunk ids (those that have one).
        Plain tuples from the connection and one decode per statement: a hybrid search reads 50
        of them per query, and a dict and a decode per row took 1.2 ms of it against 0.16 ms so
        (100,000 chunks, one core)."""
        got_ids: list[int] = []
        parts: list[np.ndarray] = []
        for rows in self._tuples_in(f"SELECT chunk_id, vector, {ENCODING_SQL} FROM embeddings WHERE model = ? "
                                    "AND chunk_id IN ({marks})", (int(i) for i in ids), [model]):
            for encoding in {r[2] for r in rows}:  # one, but for a store caught between encodings
                same = [r for r in rows if r[2] == encoding]
                got_ids += [r[0] for r in same]
                parts.append(decode_matrix([r[1] for r in same], check_encoding(encoding)))
        if not parts:
            return np.zeros(0, dtype=np.int64), np.zeros((0, 0), dtype=np.float32)
        return np.asarray(got_ids, dtype=np.int64), parts[0] if len(parts) == 1 else np.vstack(parts)

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
        """model -> {text_sha: float32 vector bytes} for stored chunks with these texts (any document)."""
        out: dict[str, dict[str, bytes]] = {}
        shas = set(text_shas)
        for r in self._query_in(f"SELECT text_sha, model, vector, {ENCODING_SQL} AS encoding FROM pending_vectors "
                                "WHERE text_sha IN ({marks})", shas):
            out.setdefault(r["model"], {})[r["text_sha"]] = decode(r["vector"], check_encoding(r["encoding"])).tobytes()
        for r in self._query_in(f"SELECT c.text_sha, e.model, e.vector, {ENCODING_SQL} AS encoding FROM chunks c "
                                "JOIN embeddings e ON e.chunk_id = c.id WHERE c.text_sha IN ({marks})", shas):
            out.setdefault(r["model"], {})[r["text_sha"]] = decode(r["vector"], check_encoding(r["encoding"])).tobytes()
        return out

    def malformed_vector_count(self, model: str, dim: int) -> int:
        """A model's stored vectors whose bytes are no dim-d vector of this index's encoding."""
        return self.db.execute("SELECT count(*) FROM embeddings WHERE model = ? AND length(vector) != ?",
                               [model, blob_length(dim, self.vector_encoding())]).fetchone()[0]

    def vector_encoding(self) -> str:
        """How this index keeps its vectors (vector_codec); what its writes use."""
        return check_encoding(self.get_meta(ENCODING_KEY))

    def pending_count(self) -> int:
        """Vectors embedded by a run that has not published (yet, or ever: it was stopped)."""
        return self.db.execute("SELECT count(*) FROM pending_vectors").fetchone()[0]

    def save_pending(self, model: str, vectors: dict[str, bytes]) -> None:
        """Keep a run's vectors (float32 bytes) until it publishes."""
        with self.db.atomic():
            encoding = self.vector_encoding()
            self.db["pending_vectors"].upsert_all(
                ({"model": model, "text_sha": sha, "vector": encode(np.frombuffer(v, dtype=np.float32), encoding)}
                 for sha, v in vectors.items()), pk=("model", "text_sha"))

    def _clear_pending(self) -> None:
        self.db.execute("DELETE FROM pending_vectors")
        # The pending vectors were a second copy of the run's vectors: give their pages back to the
        # file system instead of leaving them free inside index.db (a no-op in an index whose
        # auto_vacuum is not INCREMENTAL, i.e. one not migrated yet; schema.m008_reclaim_space).
        # Python's sqlite3 steps this pragma once per call, and each step frees one page.
        for _ in range(self.db.execute("PRAGMA freelist_count").fetchone()[0]):
            self.db.execute("PRAGMA incremental_vacuum")

    def add_vectors(self, model: str, vectors: dict[int, np.ndarray]) -> int:
        """Back-fill vectors of existing chunks for a model; one transaction."""
        with self.db.atomic():
            ids = list(vectors)
            blobs = encode_matrix(np.vstack([vectors[i] for i in ids]), self.vector_encoding()) if ids else []
            self.db["embeddings"].upsert_all(
                ({"chunk_id": cid, "model": model, "vector": blob} for cid, blob in zip(ids, blobs)),
                pk=("model", "chunk_id"))
            return self._bump_generation()
