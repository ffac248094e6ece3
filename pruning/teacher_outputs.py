"""The teacher's outputs kept between hidden-state recoveries that share a teacher and a text.

`sbsearch tune` recovers several cuts of one model on one index's chunks, one after another, in the
same batches (the same seed). Inside `with sharing_teacher_outputs():` the first recovery keeps the
teacher's hidden states of each batch and the next ones read them back: the teacher's forward
passes are 40-50% of a step's arithmetic. pruning.train's hidden-state loop asks `active()`.
"""

from __future__ import annotations

import os

class TeacherOutputs:
    """The teacher's outputs of each batch of a hidden-state stage, kept between recoveries that share
    a teacher and a text: `sbsearch tune` recovers several cuts of one model on one index's chunks, in
    the same batches (the same seed), and from the second cut on the teacher's forward passes (40-50%
    of a step's arithmetic) are read back instead of recomputed. The values are those a recomputation
    gives, bit for bit. Bounded: past max_bytes, batches are recomputed."""

    def __init__(self, max_bytes: int = 2 << 30):
        self.max_bytes = max_bytes
        self.bytes = 0
        self.hits = self.misses = 0
        self._outputs: dict = {}

    def get(self, key, compute):
        if key in self._outputs:
            self.hits += 1
            return self._outputs[key]
        self.misses += 1
        out = compute()
        kept = {"all_layer_embeddings": tuple(out["all_layer_embeddings"]),
                "sentence_embedding": out["sentence_embedding"]}
        size = sum(t.numel() * t.element_size() for t in kept["all_layer_embeddings"])
        if self.bytes + size <= self.max_bytes:
            self._outputs[key] = kept
            self.bytes += size
        return kept


_teacher_outputs: TeacherOutputs | None = None


def _default_share_bytes() -> int:
    """A quarter of the machine's memory, at most 4 GiB: the teacher's hidden states of sample_docs'
    140 batches take ~2.5 GiB (7 layers of 384 floats per token); 2 GiB held 116 of them."""
    try:
        ram = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (ValueError, OSError, AttributeError):
        ram = 8 << 30
    return min(4 << 30, ram // 4)


class sharing_teacher_outputs:
    """`with sharing_teacher_outputs() as shared:` every hidden-state stage inside reuses the teacher
    outputs of the batches an earlier one computed (TeacherOutputs)."""

    def __init__(self, max_bytes: int | None = None):
        self.shared = TeacherOutputs(_default_share_bytes() if max_bytes is None else max_bytes)

    def __enter__(self) -> TeacherOutputs:
        global _teacher_outputs
        self._previous, _teacher_outputs = _teacher_outputs, self.shared
        return self.shared

    def __exit__(self, *exc) -> None:
        global _teacher_outputs
        _teacher_outputs = self._previous


def fingerprint(t_hf) -> tuple:
    """Which teacher: its name and a checksum of weights of its first and last layer."""
    import torch

    with torch.no_grad():
        sums = tuple(float(p.double().sum()) for p in (next(t_hf.parameters()), list(t_hf.parameters())[-1]))
    return (getattr(t_hf.config, "_name_or_path", ""), t_hf.config.num_hidden_layers, sums)


def active() -> TeacherOutputs | None:
    """The outputs being shared, inside sharing_teacher_outputs(); None outside."""
    return _teacher_outputs
