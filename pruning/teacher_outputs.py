"""The teacher's outputs of hidden-state distillation, kept per text and read back instead of recomputed.

The teacher's forward passes are 40-50% of a step's arithmetic, and the same texts come back:
- in the next epoch of one recovery, in other batches (pruning.train keeps a private TeacherOutputs
  for every run of more than one epoch);
- in the next recovery on the same text: `sbsearch tune` recovers several cuts of one model on one
  index's chunks, one after another; inside `with sharing_teacher_outputs():` every hidden-state
  stage reads the outputs an earlier one kept. pruning.train's hidden-state loop asks `active()`.
"""

from __future__ import annotations

import os

class TeacherOutputs:
    """The teacher's outputs (hidden states of `layers`, None: all; the sentence embedding) of each text
    of a hidden-state stage, kept without their padding, so that a batch of kept texts is rebuilt
    whatever texts it was computed beside.

    A batch rebuilt is what recomputing it gives on its real tokens: bit for bit when its texts were
    computed in the same batch (tune's next cut, same seed), within float rounding when the
    padding differs (the next epoch's batches); padding positions are zeros, which the loss masks.
    Bounded: past max_bytes, texts are not kept and their batches are recomputed."""

    def __init__(self, max_bytes: int = 2 << 30, layers=None):
        self.max_bytes = max_bytes
        self.layers = None if layers is None else sorted(set(layers))
        self.bytes = 0
        self.hits = self.misses = 0  # batches read back / computed
        self._outputs: dict = {}  # (key, text) -> ({layer: [tokens, hidden]}, [hidden])

    def get(self, key, texts: list[str], mask, compute) -> dict:
        """The teacher's outputs for `texts` padded as `mask` ([batch, tokens], 1 on real tokens), as
        {"all_layer_embeddings": indexable by layer, "sentence_embedding"}: read back when every text
        is kept, else compute() (and each text kept, within the bound)."""
        kept = [self._outputs.get((key, t)) for t in texts]
        real = mask.bool()
        if all(k is not None for k in kept):
            self.hits += 1
            return _rebuilt(kept, real)
        self.misses += 1
        out = compute()
        states, embeddings = out["all_layer_embeddings"], out["sentence_embedding"]
        layers = range(len(states)) if self.layers is None else self.layers
        for i, text in enumerate(texts):
            if kept[i] is not None:
                continue
            own = {j: states[j][i][real[i]] for j in layers}  # boolean indexing copies: the batch can go
            size = sum(t.numel() * t.element_size() for t in (*own.values(), embeddings[i]))
            if self.bytes + size > self.max_bytes:
                continue
            self._outputs[(key, text)] = (own, embeddings[i].clone())
            self.bytes += size
        return {"all_layer_embeddings": tuple(states), "sentence_embedding": embeddings}


def _rebuilt(kept: list, real) -> dict:
    """A padded batch from each text's kept outputs: `real[real]` runs row by row, as the texts do."""
    import torch

    batch, tokens = real.shape
    layers = {}
    for j in kept[0][0]:
        first = kept[0][0][j]
        padded = torch.zeros(batch, tokens, first.shape[-1], dtype=first.dtype)
        padded[real] = torch.cat([own[j] for own, _ in kept])
        layers[j] = padded
    return {"all_layer_embeddings": layers, "sentence_embedding": torch.stack([emb for _, emb in kept])}


_teacher_outputs: TeacherOutputs | None = None


def default_max_bytes() -> int:
    """A quarter of the machine's memory, at most 4 GiB: kept padded, the teacher's hidden states of
    sample_docs' 140 batches took ~2.5 GiB (7 layers of 384 floats per token); 2 GiB held 116 of them."""
    try:
        ram = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (ValueError, OSError, AttributeError):
        ram = 8 << 30
    return min(4 << 30, ram // 4)


class sharing_teacher_outputs:
    """`with sharing_teacher_outputs() as shared:` every hidden-state stage inside reuses the teacher's
    outputs of the texts an earlier one computed (TeacherOutputs)."""

    def __init__(self, max_bytes: int | None = None):
        self.shared = TeacherOutputs(default_max_bytes() if max_bytes is None else max_bytes)

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
