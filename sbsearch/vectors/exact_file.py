"""The file of an exact index, its vectors kept as int8 codes with a float32 scale each.

An exact index (IndexIDMap2(IndexFlatIP)) holds the vectors of the store as the store gives them:
from a SQLite index, int8 with a scale per vector, decoded (index/store/vector_codec.py). Written by
faiss.write_index they would take 4·d bytes each again (1,536 at 384-d: the largest part of an
index folder once the store is compact). This file keeps each in the int8 form it came from,
4 + d bytes and an 8-byte id, and `read` decodes it into an IndexFlatIP holding, bit for bit, the
vectors that were written: a search answers exactly as it would from a float32 file.

The form is used only where it loses nothing: `write` encodes every vector, decodes it again and
compares the result bit for bit with the vector the index holds. Vectors that are not of that form
(a store that keeps float32, an index patched with other vectors) make it write nothing and return
False; the caller then writes the float32 FAISS file, as before.

Layout, little-endian: MAGIC (8 bytes), dim (u32), 0 (u32), count (i64), count ids (i64), then
count rows of a scale (f32) and dim codes (i8): the rows are the blobs of vector_codec's int8.
The arithmetic is vector_codec's (scale = max|x| / 127, value = code · scale), repeated here because
the vectors layer does not reach into the store; only this module's own round trip has to be exact.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

SUFFIX = ".int8"
MAGIC = b"SBEXI8\x00\x01"
_HEADER = np.dtype([("magic", "S8"), ("dim", "<u4"), ("zero", "<u4"), ("count", "<i8")])
_STEPS, _ONE = np.float32(127.0), np.float32(1.0)
BLOCK = 16_384  # rows encoded or decoded at a time: memory stays near one copy of the vectors


def _faiss():
    import faiss

    return faiss


def row_bytes(dim: int) -> int:
    """Bytes of one vector in the file: its id, its scale, its codes."""
    return 8 + 4 + dim


def _encode(mat: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(scales, codes) of a block of vectors, as vector_codec encodes them. A vector that is not
    finite gets codes that decode to something else, which _rows then refuses: no warning wanted."""
    with np.errstate(invalid="ignore", divide="ignore", over="ignore"):
        peak = np.abs(mat).max(axis=1)
        scale = np.where(peak > 0, peak / _STEPS, _ONE).astype("<f4")
        return scale, np.clip(np.rint(mat / scale[:, None]), -127, 127).astype(np.int8)


def _decode(scale: np.ndarray, codes: np.ndarray, out: np.ndarray | None = None) -> np.ndarray:
    """code · scale in float32: the one product that both the check at write and a read compute."""
    return np.multiply(codes, scale[:, None], out=out, dtype=np.float32)


def _rows(mat: np.ndarray) -> bytes | None:
    """The file's rows for a block of vectors, or None if one of them is not an int8 vector's
    decoded form (compared as bits: -0.0 is not 0.0, a NaN is not itself)."""
    scale, codes = _encode(mat)
    if not np.array_equal(_decode(scale, codes).view(np.uint32), mat.view(np.uint32)):
        return None
    rows = np.empty((len(mat), 4 + mat.shape[1]), dtype=np.uint8)
    rows[:, :4] = scale.view(np.uint8).reshape(-1, 4)
    rows[:, 4:] = codes.view(np.uint8)
    return rows.tobytes()


def _flat_vectors(index) -> tuple[np.ndarray, np.ndarray] | None:
    """(ids, a view of the vectors) of an IndexIDMap2(IndexFlatIP), or None for any other index."""
    faiss = _faiss()
    if not hasattr(index, "id_map"):
        return None
    flat = faiss.downcast_index(index.index)
    if type(flat) is not faiss.IndexFlatIP:
        return None
    n, dim = int(flat.ntotal), int(flat.d)
    mat = faiss.rev_swig_ptr(flat.get_xb(), n * dim).reshape(n, dim) if n else np.zeros((0, dim), np.float32)
    return faiss.vector_to_array(index.id_map).astype("<i8"), mat


def write(index, path: Path) -> bool:
    """Write an exact index to `path` in this form; False (and no file) where it would lose bits."""
    found = _flat_vectors(index)
    if found is None:
        return False
    ids, mat = found
    header = np.array([(MAGIC, mat.shape[1], 0, len(ids))], dtype=_HEADER)
    lossless = True
    with open(path, "wb") as f:
        f.write(header.tobytes())
        f.write(ids.tobytes())
        for start in range(0, len(mat), BLOCK):
            rows = _rows(mat[start:start + BLOCK])
            if rows is None:
                lossless = False
                break
            f.write(rows)
    if not lossless:
        path.unlink()
    return lossless


def read(path: Path):
    """The IndexIDMap2(IndexFlatIP) in `path`. RuntimeError for a file that is not one whole file
    of this form (as FAISS raises for its own)."""
    faiss = _faiss()
    try:
        data = np.fromfile(path, dtype=np.uint8)
    except OSError as exc:
        raise RuntimeError(f"{path.name}: {exc.strerror or exc}") from exc
    if len(data) < _HEADER.itemsize:
        raise RuntimeError(f"{path.name}: shorter than its header")
    header = data[:_HEADER.itemsize].view(_HEADER)[0]
    dim, count = int(header["dim"]), int(header["count"])
    if header["magic"] != MAGIC or dim <= 0 or count < 0 or len(data) != _HEADER.itemsize + count * row_bytes(dim):
        raise RuntimeError(f"{path.name}: not an int8 exact index file of the size its header says")
    ids_end = _HEADER.itemsize + 8 * count
    rows = data[ids_end:].reshape(count, 4 + dim)
    flat = faiss.IndexFlatIP(dim)
    index = faiss.IndexIDMap2(flat)  # (FAISS wants it empty here)
    # decoded straight into the index's own array: no second float32 copy to add from
    flat.codes.resize(count * dim * 4)
    mat = faiss.rev_swig_ptr(flat.get_xb(), count * dim).reshape(count, dim) if count else None
    for start in range(0, count, BLOCK):
        block = rows[start:start + BLOCK]
        _decode(block[:, :4].copy().view("<f4").ravel(), block[:, 4:].view(np.int8), out=mat[start:start + BLOCK])
    faiss.copy_array_to_vector(data[_HEADER.itemsize:ids_end].view("<i8"), index.id_map)
    flat.ntotal = index.ntotal = count
    index.construct_rev_map()
    return index
