"""The Embedder protocol on torch: a loaded SentenceTransformer, so that the rest of the
application never imports torch directly."""

from __future__ import annotations

from typing import Callable

import numpy as np

from ..config import cpu_threads
from .models import ModelInfo, load_model, quiet_transformers, resolve


class TorchEmbedder:
    def __init__(self, name: str | ModelInfo, batch_size: int = 32):
        self.info = name if isinstance(name, ModelInfo) else resolve(name)
        quiet_transformers()
        import torch

        # Use every core we have (the target is a small CPU-only server), or those a Ray worker was given.
        self.threads = cpu_threads()
        torch.set_num_threads(self.threads)
        self.model, _ = load_model(self.info)
        self.batch_size = batch_size
        self.dim = int(self.model.get_embedding_dimension())

    @property
    def name(self) -> str:
        return self.info.name

    @property
    def max_seq_length(self) -> int:
        return int(self.model.max_seq_length)

    def encode(self, texts: list[str], progress: Callable[[int], None] | None = None) -> np.ndarray:
        """Documents. A model with prompts (E5: "passage: ") gets its "document" prompt."""
        return self._encode(texts, progress, self.model.encode_document)

    def encode_query(self, texts: list[str]) -> np.ndarray:
        """Queries: the model's "query" prompt (E5: "query: "); the same as encode for a model without prompts."""
        return self._encode(texts, None, self.model.encode_query)

    def _encode(self, texts: list[str], progress, method) -> np.ndarray:
        """Encode in slices so a progress bar can move; sentence-transformers sorts each slice by length."""
        if not texts:
            return np.zeros((0, self.dim), dtype=np.float32)
        out = []
        step = self.batch_size * 4
        for i in range(0, len(texts), step):
            part = texts[i:i + step]
            vecs = method(part, batch_size=self.batch_size, normalize_embeddings=True,
                          convert_to_numpy=True, show_progress_bar=False)
            out.append(np.asarray(vecs, dtype=np.float32))
            if progress:
                progress(len(part))
        return np.vstack(out)

    def parameter_count(self) -> int:
        return int(sum(p.numel() for p in self.model.parameters()))
