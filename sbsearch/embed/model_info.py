"""What the application knows of one model: where its files are, what it is, how to verify it."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

from ..errors import SbsearchError
from ..hashing import cached_sha256

# What a model reads, as ModelInfo.languages holds it: ISO 639-1 codes, or MULTILINGUAL for a model
# trained on many languages (multilingual-e5 reads about 100, Japanese, Chinese and Korean among them).
MULTILINGUAL = "multilingual"
CJK_LANGUAGES = frozenset({"ja", "zh", "ko"})
ONNX_KINDS = frozenset({"int8", "onnx"})  # ModelInfo.kind of the exports that ONNX Runtime encodes


def reads_cjk(languages) -> bool:
    """Whether a model of these languages reads Japanese, Chinese or Korean text."""
    langs = set(languages or ())
    return MULTILINGUAL in langs or bool(langs & CJK_LANGUAGES)


@dataclass
class ModelInfo:
    name: str
    path: Path
    kind: str  # builtin | local | path; int8 | onnx (ONNX Runtime exports); fake
    description: str = ""
    expected_sha256: str | None = None
    card: dict = field(default_factory=dict)  # pruning.json, when the model was made by `sbsearch prune`
    # the languages its vectors mean something for (see MULTILINGUAL); () when not known, which
    # counts as English only
    languages: tuple[str, ...] = ()

    @property
    def on_onnx_runtime(self) -> bool:
        """An ONNX export (NAME-int8, NAME-onnx): encoded by ONNX Runtime, never by torch."""
        return self.kind in ONNX_KINDS

    @property
    def reads_cjk(self) -> bool:
        """Its vectors of a Japanese (Chinese, Korean) question rank passages by meaning."""
        return reads_cjk(self.languages)

    @property
    def weights_file(self) -> Path | None:
        for candidate in ("model.safetensors", "pytorch_model.bin", "model_quantized.onnx.data", "model_quantized.onnx"):
            p = self.path / candidate
            if p.exists():
                return p
        return None

    def hf_config(self) -> dict:
        try:
            return json.loads((self.path / "config.json").read_text())
        except (OSError, ValueError):
            return {}

    @property
    def layers(self) -> int | None:
        return self.hf_config().get("num_hidden_layers")

    @property
    def total_layers(self) -> int | None:
        """Layers of the model this one was cut from (equal to `layers` for an uncut model)."""
        return self.card.get("base_layers", self.layers)

    @property
    def dim(self) -> int | None:
        return self.hf_config().get("hidden_size")

    @property
    def max_seq_length(self) -> int:
        try:
            return int(json.loads((self.path / "sentence_bert_config.json").read_text())["max_seq_length"])
        except (OSError, ValueError, KeyError):
            return 256

    def weights_sha256(self) -> str | None:
        wf = self.weights_file
        return cached_sha256(wf) if wf else None

    def verify(self) -> None:
        """Refuse weights whose sha256 differs from the one we know for this name."""
        if self.expected_sha256 is None:
            return
        wf = self.weights_file
        if wf is None:
            raise SbsearchError(f"model {self.name!r}: no weights file in {self.path}")
        got = cached_sha256(wf)
        if got != self.expected_sha256:
            raise SbsearchError(
                f"model {self.name!r}: weights sha256 {got[:12]}… does not match the expected "
                f"{self.expected_sha256[:12]}…; refusing to load {wf}"
            )
