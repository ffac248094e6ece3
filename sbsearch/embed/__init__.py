"""Embedders: the protocol every runtime implements; torch and ONNX backends live in
sbsearch.embedder / sbsearch.onnx_backend for now."""

from __future__ import annotations

from typing import Callable, Protocol, runtime_checkable

import numpy as np

from ..models import ModelInfo


@runtime_checkable
class EmbedderProtocol(Protocol):
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
