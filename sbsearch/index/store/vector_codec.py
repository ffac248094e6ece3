"""How a store keeps a vector: the bytes of one stored vector and back to float32.

Everything outside the store sees float32 (numpy arrays, or float32 bytes where the protocol
passes bytes): the encoding is the store's own business, recorded per index (meta key
`vector_encoding`; absent: float32, the format of every index made before it existed).

    float32  4·d bytes: the vector as it was embedded
    int8     4 + d bytes: a float32 scale, then d int8 values; value = q · scale, with
             scale = max|x| / 127 per vector. For a unit vector of 384 dimensions the largest
             error of one component is scale / 2 (≈ 0.0008) and a cosine moves by ~1e-4:
             nDCG@10 within 0.002 of float32 on three sets (docs/SCALING.md, "What an index
             folder holds, per chunk"; benchmarks/storage.py).
    float16  2·d bytes (measured beside int8, not written by the stores)

Encoding an int8 vector decoded from int8 gives the same bytes (the scale comes back from its
largest value), so vectors that travel through pending_vectors and back are not worn down.
"""

from __future__ import annotations

from typing import Sequence

import numpy as np

from ...errors import SbsearchError

ENCODING_KEY = "vector_encoding"
FLOAT32 = "float32"
INT8 = "int8"
FLOAT16 = "float16"
ENCODINGS = (FLOAT32, INT8, FLOAT16)
# What a store writes now (a new index, and an old one once migrated)
STORED_ENCODING = INT8

_SCALE = np.dtype("<f4")
_STEPS, _ONE = np.float32(127.0), np.float32(1.0)


def check_encoding(encoding: str | None) -> str:
    """The encoding a meta value names (None: an index from before encodings, float32)."""
    encoding = encoding or FLOAT32
    if encoding not in ENCODINGS:
        raise SbsearchError(f"this index stores its vectors as {encoding!r}, which this sbsearch cannot read "
                            "(made by a newer version?)")
    return encoding


def blob_length(dim: int, encoding: str) -> int:
    """The bytes of one stored dim-d vector."""
    return {FLOAT32: 4 * dim, FLOAT16: 2 * dim, INT8: dim + 4}[encoding]


def encode_matrix(mat: np.ndarray, encoding: str) -> list[bytes]:
    """One blob per row of a float32 matrix."""
    mat = np.ascontiguousarray(mat, dtype=np.float32)
    if mat.ndim == 1:
        mat = mat[None, :]
    if encoding == FLOAT32:
        return [row.tobytes() for row in mat]
    if encoding == FLOAT16:
        return [row.tobytes() for row in mat.astype("<f2")]
    peak = np.abs(mat).max(axis=1) if mat.shape[1] else np.zeros(len(mat), np.float32)
    scale = np.where(peak > 0, peak / _STEPS, _ONE).astype(_SCALE)
    q = np.clip(np.rint(mat / scale[:, None]), -127, 127).astype(np.int8)
    return [s.tobytes() + row.tobytes() for s, row in zip(scale, q)]


def encode(vector: np.ndarray, encoding: str) -> bytes:
    """One vector's blob: the same bytes as its row in encode_matrix, without a matrix's overhead
    (a run encodes every vector twice, into pending_vectors and at publish)."""
    v = np.asarray(vector, dtype=np.float32).ravel()
    if encoding != INT8 or not v.size:
        return encode_matrix(v[None, :], encoding)[0]
    peak = np.abs(v).max()
    scale = peak / _STEPS if peak > 0 else _ONE  # float32 / float32: as encode_matrix divides
    q = np.rint(v / scale).clip(-127, 127).astype(np.int8)
    return scale.astype(_SCALE).tobytes() + q.tobytes()


def decode_matrix(blobs: Sequence[bytes], encoding: str) -> np.ndarray:
    """A float32 matrix of blobs of one length (one model's vectors)."""
    if not blobs:
        return np.zeros((0, 0), dtype=np.float32)
    buf = b"".join(blobs)
    n = len(blobs)
    if encoding == FLOAT32:  # a copy: callers may write into it, as into every decoded matrix
        return np.frombuffer(buf, dtype=np.float32).reshape(n, -1).copy()
    if encoding == FLOAT16:
        return np.frombuffer(buf, dtype="<f2").reshape(n, -1).astype(np.float32)
    raw = np.frombuffer(buf, dtype=np.uint8).reshape(n, -1)
    scale = raw[:, :4].copy().view(_SCALE)
    return raw[:, 4:].view(np.int8).astype(np.float32) * scale


def decode(blob: bytes, encoding: str) -> np.ndarray:
    return decode_matrix([blob], encoding)[0]


def recode(blob: bytes, source: str, target: str) -> bytes:
    """A stored vector in another encoding (float32 bytes, the protocol's form, with target FLOAT32)."""
    return blob if source == target else encode(decode(blob, source), target)
