"""The PostgreSQL store's vectors (pgvector): a model's stored vectors and its partial HNSW index,
the nearest chunks to a query, the model registry, and the pending vectors of a run.

The stored vectors stay float32 (pgvector's `vector`): HNSW searches that column, and the
pgvector of pgserver (0.6) has no `halfvec` to index (0.7 added it); an HNSW index over a
decoded int8 column would hold float32 copies anyway. The pending vectors stay float32 too: a
vector that waited in int8 would be published a little off the one a clean run stores, and
this store keeps float32 (docs/SCALING.md, "What an index folder holds, per chunk")."""

from __future__ import annotations

import hashlib
from typing import Iterable, Iterator

import numpy as np

from ..vector_codec import FLOAT32
from .schema import HNSW_BUILD_MEMORY_MB, HNSW_EF_CONSTRUCTION, HNSW_M, MIN_EF_SEARCH, SCHEMA


def _array(vector) -> np.ndarray:
    """A pgvector value as float32 (newer pgvector-python returns a Vector, older a numpy array)."""
    return np.asarray(vector.to_numpy() if hasattr(vector, "to_numpy") else vector, dtype=np.float32)


def _hnsw_name(model: str) -> str:
    return "embeddings_hnsw_" + hashlib.sha1(model.encode()).hexdigest()[:16]


class VectorsMixin:
    """Vectors, their HNSW indexes, models and pending vectors, over self.conn."""

    def vectors(self, model: str, batch: int = 20000) -> Iterator[tuple[np.ndarray, np.ndarray]]:
        last = -1
        while True:
            rows = self._rows("SELECT chunk_id, vector FROM embeddings WHERE model = %s AND chunk_id > %s "
                              "ORDER BY chunk_id LIMIT %s", [model, last, batch])
            if not rows:
                return
            ids = np.fromiter((r["chunk_id"] for r in rows), dtype=np.int64, count=len(rows))
            last = int(ids[-1])
            yield ids, np.vstack([_array(r["vector"]) for r in rows])

    def vector_count(self, model: str) -> int:
        return self._value("SELECT count(*) FROM embeddings WHERE model = %s", [model])

    def vector_ids(self, model: str) -> set[int]:
        return {r["chunk_id"] for r in self._rows("SELECT chunk_id FROM embeddings WHERE model = %s", [model])}

    def vector_counts(self) -> dict[str, int]:
        return {r["model"]: r["n"] for r in self._rows("SELECT model, count(*) AS n FROM embeddings GROUP BY model")}

    def vectors_for_ids(self, model: str, ids: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        rows = self._rows("SELECT chunk_id, vector FROM embeddings WHERE model = %s AND chunk_id = ANY(%s) "
                          "ORDER BY chunk_id", [model, [int(i) for i in ids]])
        if not rows:
            return np.zeros(0, dtype=np.int64), np.zeros((0, 0), dtype=np.float32)
        return (np.asarray([r["chunk_id"] for r in rows], dtype=np.int64),
                np.vstack([_array(r["vector"]) for r in rows]))

    def chunks_without_vectors(self, model: str) -> list[tuple[int, str, str | None]]:
        return [(r["id"], r["text"], r["heading"]) for r in self._rows(
            "SELECT c.id, c.text, c.heading FROM chunks c LEFT JOIN embeddings e ON e.chunk_id = c.id "
            "AND e.model = %s WHERE e.chunk_id IS NULL ORDER BY c.id", [model])]

    def hnsw_index(self, model: str) -> dict | None:
        """The model's HNSW index: its name, size, parameters and whether it is valid; None when
        there is none."""
        row = self.conn.execute(
            "SELECT c.relname AS name, i.indisvalid AS valid, pg_relation_size(c.oid) AS size_bytes FROM pg_class c "
            "JOIN pg_index i ON i.indexrelid = c.oid JOIN pg_namespace n ON n.oid = c.relnamespace "
            "WHERE n.nspname = %s AND c.relname = %s", [SCHEMA, _hnsw_name(model)]).fetchone()
        if row is not None:
            row["params"] = {"m": HNSW_M, "ef_construction": HNSW_EF_CONSTRUCTION, "ef_search": MIN_EF_SEARCH}
        return row

    def build_hnsw(self, model: str, dim: int, rebuild: bool = False) -> None:
        """Create the model's HNSW index (cosine) over its vectors; after that PostgreSQL keeps it
        current in the same transactions as the vectors."""
        from psycopg import sql

        name = sql.Identifier(_hnsw_name(model))
        with self.conn.transaction():
            # pgvector builds fast while the graph fits in maintenance_work_mem and many times slower
            # once it does not (64 MB by default: ~30k vectors of 384-d): raise it for this build
            # only, to what the graph needs, at most HNSW_BUILD_MEMORY_MB
            rows = self._value("SELECT count(*) FROM embeddings WHERE model = %s", [model])
            need_mb = min(HNSW_BUILD_MEMORY_MB, 64 + rows * (4 * int(dim) + 8 * 3 * HNSW_M + 64) * 3 // 2 // 2**20)
            if need_mb > self._value("SELECT setting::bigint / 1024 FROM pg_settings WHERE name = 'maintenance_work_mem'"):
                self.conn.execute(f"SET LOCAL maintenance_work_mem = '{int(need_mb)}MB'")
            if rebuild:
                self.conn.execute(sql.SQL("DROP INDEX IF EXISTS {}").format(name))
            self.conn.execute(sql.SQL(
                "CREATE INDEX IF NOT EXISTS {} ON embeddings USING hnsw ((vector::public.vector({})) "
                "public.vector_cosine_ops) WITH (m = {}, ef_construction = {}) WHERE model = {}").format(
                name, sql.Literal(int(dim)), sql.Literal(HNSW_M), sql.Literal(HNSW_EF_CONSTRUCTION), sql.Literal(model)))

    def drop_hnsw(self, model: str) -> None:
        from psycopg import sql

        self.conn.execute(sql.SQL("DROP INDEX IF EXISTS {}").format(sql.Identifier(_hnsw_name(model))))

    def nearest(self, model: str, dim: int, vecs: np.ndarray, k: int,
                allowed: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
        """Top-k (cosine similarities, chunk ids) per query vector, padded with id -1. Without
        `allowed` the HNSW index answers; with it, the allowed chunks are ranked exactly, so a narrow
        filter still gives up to k results."""
        from psycopg import sql

        # HNSW returns at most ef_search rows: keep it well above k
        self.conn.execute(f"SET hnsw.ef_search = {int(max(MIN_EF_SEARCH, 2 * k))}")
        # model and dimension as literals: the planner matches the partial index only against them
        cast = sql.SQL("vector::public.vector({})").format(sql.Literal(int(dim)))
        if allowed is None:
            query = sql.SQL("SELECT chunk_id, {cast} <=> %s AS d FROM embeddings WHERE model = {model} "
                            "ORDER BY {cast} <=> %s LIMIT %s").format(cast=cast, model=sql.Literal(model))
        else:
            query = sql.SQL("WITH c AS MATERIALIZED (SELECT chunk_id, vector FROM embeddings WHERE model = {model} "
                            "AND chunk_id = ANY(%s)) SELECT chunk_id, {cast} <=> %s AS d FROM c ORDER BY d LIMIT %s"
                            ).format(cast=cast, model=sql.Literal(model))
            ids_param = [int(i) for i in allowed]
        scores = np.full((len(vecs), k), -np.inf, dtype=np.float32)
        ids = np.full((len(vecs), k), -1, dtype=np.int64)
        for q, vec in enumerate(np.asarray(vecs, dtype=np.float32)):
            params = [vec, vec, k] if allowed is None else [ids_param, vec, k]
            for j, r in enumerate(self.conn.execute(query, params).fetchall()):
                ids[q, j] = r["chunk_id"]
                scores[q, j] = 1.0 - r["d"]
        return scores, ids

    def model_row(self, name: str) -> dict | None:
        return self.conn.execute("SELECT * FROM models WHERE name = %s", [name]).fetchone()

    def models(self) -> list[dict]:
        return self._rows("SELECT * FROM models ORDER BY added_at, name")

    def _insert_model(self, row: dict) -> None:
        self.conn.execute("INSERT INTO models (name, path, sha256, dim, layers, total_layers, added_at, info) "
                          "VALUES (%(name)s, %(path)s, %(sha256)s, %(dim)s, %(layers)s, %(total_layers)s, "
                          "%(added_at)s, %(info)s)", row)

    def drop_model_vectors(self, name: str) -> None:
        with self.atomic():
            self.drop_hnsw(name)
            self.conn.execute("DELETE FROM embeddings WHERE model = %s", [name])
            self.conn.execute("DELETE FROM models WHERE name = %s", [name])
            self._bump_generation()

    def vectors_by_text(self, text_shas: Iterable[str]) -> dict[str, dict[str, bytes]]:
        out: dict[str, dict[str, bytes]] = {}
        shas = list(set(text_shas))
        for r in self._rows("SELECT text_sha, model, vector FROM pending_vectors WHERE text_sha = ANY(%s)", [shas]):
            out.setdefault(r["model"], {})[r["text_sha"]] = bytes(r["vector"])
        for r in self._rows("SELECT c.text_sha, e.model, e.vector FROM chunks c JOIN embeddings e ON e.chunk_id = c.id "
                            "WHERE c.text_sha = ANY(%s)", [shas]):
            out.setdefault(r["model"], {})[r["text_sha"]] = _array(r["vector"]).tobytes()
        return out

    def pending_count(self) -> int:
        return self._value("SELECT count(*) FROM pending_vectors")

    def malformed_vector_count(self, model: str, dim: int) -> int:
        return self._value("SELECT count(*) FROM embeddings WHERE model = %s AND public.vector_dims(vector) != %s",
                           [model, int(dim)])

    def vector_encoding(self) -> str:
        """The stored vectors are pgvector's float32 (see the module's docstring)."""
        return FLOAT32

    def save_pending(self, model: str, vectors: dict[str, bytes]) -> None:
        with self.atomic(), self.conn.cursor() as cur:
            cur.executemany("INSERT INTO pending_vectors (model, text_sha, vector) VALUES (%s, %s, %s) "
                            "ON CONFLICT (model, text_sha) DO UPDATE SET vector = EXCLUDED.vector",
                            [(model, sha, v) for sha, v in vectors.items()])

    def _clear_pending(self) -> None:
        self.conn.execute("DELETE FROM pending_vectors")

    def add_vectors(self, model: str, vectors: dict[int, np.ndarray]) -> int:
        """Back-fill vectors of existing chunks for a model; one transaction."""
        with self.atomic(), self.conn.cursor() as cur:
            cur.executemany("INSERT INTO embeddings (model, chunk_id, vector) VALUES (%s, %s, %s) "
                            "ON CONFLICT (model, chunk_id) DO UPDATE SET vector = EXCLUDED.vector",
                            [(model, int(cid), np.asarray(v, dtype=np.float32)) for cid, v in vectors.items()])
            return self._bump_generation()
