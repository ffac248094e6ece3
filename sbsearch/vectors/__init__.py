"""Nearest-neighbour search over the vectors stored in SQLite: the VectorIndex protocol, and the
backend behind it (FAISS files derived from SQLite, faiss_index.py).

A vector index is derived data: SQLite stays the truth, and an index that is missing, stale or
damaged is rebuilt from it. A second backend implements VectorIndex beside faiss_index.py and is
chosen in open_vector_index(); nothing else names the backend.
"""

from __future__ import annotations

from .protocol import VectorIndex, VectorSource

__all__ = ["VectorIndex", "VectorSource", "open_vector_index", "disk_bytes"]


def open_vector_index(source: VectorSource, model: str, dim: int | None = None) -> VectorIndex:
    # a PostgreSQL store holds its vectors' index itself (pgvector); any other store gets FAISS files
    if getattr(source, "vector_backend", "faiss") == "pgvector":
        from .pgvector_index import PgVectorIndex

        return PgVectorIndex(source, model, dim)
    from .faiss_index import FaissVectorIndex

    return FaissVectorIndex(source, model, dim)


def disk_bytes(source: VectorSource) -> int:
    """Bytes the vector indexes of an index take on disk (beside the store's own)."""
    if getattr(source, "vector_backend", "faiss") == "pgvector":
        return 0  # inside the database: counted by the store
    from .faiss_index import disk_bytes as faiss_bytes

    return faiss_bytes(source)
