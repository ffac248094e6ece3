"""A stand-in model for tests: a deterministic hashed bag of words, pure numpy, no torch.

Each word gets a fixed pseudo-random direction derived with hashlib from (model name, word), and a
text is the normalised sum of its words' directions: texts sharing words score higher than texts
that do not, which is enough for indexing, search, store and crash tests, and costs microseconds.
Two names give unrelated vectors, so two "models" of one index can be told apart.

Names: `fake` (64-d), `fake-<anything>`; `fake-<digits>` sets the dimension (`fake-48` is 48-d);
`fake-multilingual` (any name holding "multilingual") counts as a model that reads Japanese.
sbsearch.embed.models.resolve() accepts these names only when SBSEARCH_FAKE_MODELS=1 (the tests set it),
so a typo in a real deployment never yields meaningless vectors.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import tempfile
from dataclasses import dataclass
from typing import Callable

import numpy as np

from .. import config
from ..errors import SbsearchError
from .model_info import MULTILINGUAL, ModelInfo

FAKE_MODELS_ENV = "SBSEARCH_FAKE_MODELS"
DEFAULT_DIM = 64
MAX_DIM = 4096
MAX_SEQ_LENGTH = 256
_WORD = re.compile(r"\w+")


def is_fake_name(name: str) -> bool:
    return name == "fake" or (name.startswith("fake-") and len(name) > len("fake-"))


def fake_models_enabled() -> bool:
    return os.environ.get(FAKE_MODELS_ENV) == "1"


def _dim_from_name(name: str) -> int:
    suffix = name[len("fake-"):] if name.startswith("fake-") else ""
    return int(suffix) if suffix.isdigit() else DEFAULT_DIM


@dataclass
class FakeModelInfo(ModelInfo):
    """A fake model has no weights file; its identity (what an index records to notice a changed
    model) is its name and dimension."""

    def weights_sha256(self) -> str | None:
        return hashlib.sha256(f"sbsearch-fake:{self.name}:{self.dim}".encode()).hexdigest()


def fake_model_info(name: str = "fake", dim: int | None = None) -> FakeModelInfo:
    """The ModelInfo of a fake model, with a directory holding a config.json so that `layers` and
    `dim` read as for a real model. Needs no environment variable: this is the explicit way in."""
    if not is_fake_name(name):
        raise SbsearchError(f"{name!r} is not a fake model name (use 'fake' or 'fake-<anything>')")
    dim = _dim_from_name(name) if dim is None else dim
    if not 2 <= dim <= MAX_DIM:
        raise SbsearchError(f"fake model {name!r}: dimension {dim} is outside 2..{MAX_DIM}")
    path = config.cache_dir() / "fake" / f"{config.model_key(name)}-{dim}d"
    cfg = path / "config.json"
    if not cfg.exists():
        path.mkdir(parents=True, exist_ok=True)
        # Written whole and renamed: processes of a crash test may create it at the same moment.
        fd, tmp = tempfile.mkstemp(dir=path, prefix=".config-")
        with os.fdopen(fd, "w") as f:
            json.dump({"num_hidden_layers": 1, "hidden_size": dim, "sbsearch_fake": True}, f)
        os.replace(tmp, cfg)
    # a name with "multilingual" in it stands in for a model that reads Japanese (ModelInfo.languages)
    languages = (MULTILINGUAL,) if MULTILINGUAL in name else ()
    return FakeModelInfo(name, path, "fake", f"fake {dim}-d hashed bag of words (tests only)", languages=languages)


class FakeEmbedder:
    """The Embedder protocol on a hashed bag of words."""

    def __init__(self, name: str | ModelInfo = "fake", dim: int | None = None, batch_size: int = 32):
        if isinstance(name, ModelInfo):
            if name.kind != "fake":
                raise SbsearchError(f"model {name.name!r} is not a fake model; FakeEmbedder would mislabel its vectors")
            self.info = name if dim is None or dim == name.dim else fake_model_info(name.name, dim)
        else:
            self.info = fake_model_info(name, dim)
        self.dim = int(self.info.dim)
        self.batch_size = batch_size
        self.max_seq_length = MAX_SEQ_LENGTH
        self._seed = hashlib.sha256(f"{self.info.name}\0{self.dim}".encode()).digest()
        self._word_vectors: dict[str, np.ndarray] = {}

    @property
    def name(self) -> str:
        return self.info.name

    def parameter_count(self) -> int:
        return 0

    def _word_vector(self, word: str) -> np.ndarray:
        vec = self._word_vectors.get(word)
        if vec is None:
            digest = hashlib.shake_256(self._seed + word.encode("utf-8")).digest(2 * self.dim)
            vec = np.frombuffer(digest, dtype="<i2").astype(np.float32) / 32768.0
            self._word_vectors[word] = vec
        return vec

    def _one(self, text: str) -> np.ndarray:
        # Like a real model, words past max_seq_length are not seen; a text without words
        # (punctuation only, empty) is hashed whole so it still gets a vector of its own.
        words = _WORD.findall(text.lower())[: self.max_seq_length] or [text]
        vec = np.sum([self._word_vector(w) for w in words], axis=0, dtype=np.float32)
        return vec / max(float(np.linalg.norm(vec)), 1e-12)

    def encode(self, texts: list[str], progress: Callable[[int], None] | None = None) -> np.ndarray:
        out = np.zeros((len(texts), self.dim), dtype=np.float32)
        for start in range(0, len(texts), self.batch_size):
            part = texts[start:start + self.batch_size]
            for i, text in enumerate(part):
                out[start + i] = self._one(text)
            if progress:
                progress(len(part))
        return out

    def encode_query(self, texts: list[str]) -> np.ndarray:
        return self.encode(texts)
