"""int8 models served by ONNX Runtime with the model's own fast tokenizer — no torch at query time.
The directories are written by int8_export.

Layout of an int8 model directory:
    model_quantized.onnx   the graph: int8 weights, fp32 activations (dynamic quantization); fp32 for NAME-onnx
    model_quantized.onnx.data  its weights, outside the graph so that a session opens fast
    tokenizer.json         the base model's fast tokenizer
    config.json            the base's Hugging Face config (layers, hidden size)
    pruning.json           the base's card, when it has one
    sbsearch-onnx.json     base name and sha256, pooling, max length, the ONNX file's sha256, and
                           the base's prompts ({"query": "query: ", "document": "passage: "} for E5;
                           absent or empty for models without prompts)
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Callable

import numpy as np

from ..config import cpu_threads
from ..errors import SbsearchError
from ..hashing import cached_sha256

ONNX_FILE = "model_quantized.onnx"
DATA_FILE = ONNX_FILE + ".data"  # its weights (exports made before this file existed hold them inline)
META_FILE = "sbsearch-onnx.json"
# Padded tokens a batch may hold: ~10 passages of 200 tokens, 32 short queries. In a quiet trial
# passages in batches of 8 encoded 1.2-1.3x faster than in batches of 32; the recorded sweep of
# benchmarks/indexing.py is flat within noise from 512 to 8,192 (docs/BENCHMARKS.md).
TOKENS_PER_BATCH = 2048


def load_tokenizer(model_dir, max_seq_length: int):
    """The export's tokenizer as the encoder uses it: truncated to the model's length, and unpadded
    (tokenizer.json may pad every text of a batch to the longest), so token counts are real. For a
    big Unigram vocabulary (e5-small's 250,002 pieces) a few short texts are tokenized from only the
    pieces they can use (subvocab_tokenizer.py): the same ids without the ~0.9 s load."""
    from .subvocab_tokenizer import load_tokenizer as load

    return load(Path(model_dir), max_seq_length)


def _sha256_or_none(path) -> str | None:
    try:
        return cached_sha256(path)
    except OSError:  # missing: reported like a changed file
        return None


def prompts(meta: dict) -> tuple[str, str]:
    """(query prompt, document prompt) of an export: prepended to each text as sentence-transformers
    does for the fp32 model (encode_query / encode_document), so both runtimes see the same tokens."""
    p = meta.get("prompts") or {}
    return p.get("query", ""), p.get("document", "")


def token_batches(lengths: list[int], tokens_per_batch: int, max_texts: int) -> list[list[int]]:
    """Indices of texts grouped into batches of similar length: sorted by token count, a batch
    is closed when one more text would take its padded size (texts x longest) over
    tokens_per_batch, or its count over max_texts. Every batch holds at least one text."""
    order = sorted(range(len(lengths)), key=lambda i: lengths[i])
    batches: list[list[int]] = []
    current: list[int] = []
    for i in order:
        # sorted ascending: the text being added is the longest of the batch
        if current and ((len(current) + 1) * lengths[i] > tokens_per_batch or len(current) >= max_texts):
            batches.append(current)
            current = []
        current.append(i)
    if current:
        batches.append(current)
    return batches


class OnnxEmbedder:
    """The Embedder protocol on ONNX Runtime."""

    def __init__(self, info, batch_size: int = 32, tokens_per_batch: int | None = None, threads: int | None = None):
        import onnxruntime as ort

        self.info = info
        meta = json.loads((info.path / META_FILE).read_text())
        for file, key in ((ONNX_FILE, "onnx_sha256"), (DATA_FILE, "onnx_data_sha256")):
            if key in meta and _sha256_or_none(info.path / file) != meta[key]:
                raise SbsearchError(f"model {info.name!r}: {file} sha256 does not match its export record; "
                                    f"delete {info.path} to rebuild it")
        self.meta = meta
        self.dim = int(meta["dim"])
        self.max_seq_length = int(meta["max_seq_length"])
        self.batch_size = batch_size  # at most this many texts a batch (short texts: queries)
        self.tokens_per_batch = tokens_per_batch or TOKENS_PER_BATCH
        self.tokenizer = load_tokenizer(info.path, self.max_seq_length)
        self.query_prompt, self.document_prompt = prompts(meta)
        opts = ort.SessionOptions()
        opts.intra_op_num_threads = self.threads = threads or cpu_threads()
        opts.inter_op_num_threads = 1
        self.session = ort.InferenceSession(str(info.path / ONNX_FILE), opts, providers=["CPUExecutionProvider"])

    @property
    def name(self) -> str:
        return self.info.name

    def parameter_count(self) -> int:
        import onnx

        model = onnx.load(str(self.info.path / ONNX_FILE), load_external_data=False)
        return int(sum(int(np.prod(t.dims)) for t in model.graph.initializer if len(t.dims) > 0))

    def _run(self, encs) -> np.ndarray:
        width = max(len(e.ids) for e in encs)
        ids = np.zeros((len(encs), width), dtype=np.int64)
        mask = np.zeros((len(encs), width), dtype=np.int64)
        for i, e in enumerate(encs):
            ids[i, :len(e.ids)] = e.ids
            mask[i, :len(e.ids)] = 1
        hidden = self.session.run(None, {"input_ids": ids, "attention_mask": mask})[0]
        if self.meta["pooling"] == "cls":
            vecs = hidden[:, 0]
        else:
            m = mask[..., None].astype(np.float32)
            vecs = (hidden * m).sum(1) / np.maximum(m.sum(1), 1e-9)
        vecs = vecs / np.maximum(np.linalg.norm(vecs, axis=1, keepdims=True), 1e-12)
        return vecs.astype(np.float32)

    def encode(self, texts: list[str], progress: Callable[[int], None] | None = None) -> np.ndarray:
        """Documents, with the model's document prompt (if any)."""
        return self._encode([self.document_prompt + t for t in texts] if self.document_prompt else texts, progress)

    def encode_query(self, texts: list[str]) -> np.ndarray:
        return self._encode([self.query_prompt + t for t in texts] if self.query_prompt else texts, None)

    def encode_as_given(self, texts: list[str]) -> np.ndarray:
        """Texts exactly as given, no prompt added (for a caller that adds the model's prompts itself)."""
        return self._encode(texts, None)

    def _encode(self, texts: list[str], progress: Callable[[int], None] | None) -> np.ndarray:
        if not texts:
            return np.zeros((0, self.dim), dtype=np.float32)
        encs = self.tokenizer.encode_batch(texts)
        out = np.zeros((len(texts), self.dim), dtype=np.float32)
        for idx in token_batches([len(e.ids) for e in encs], self.tokens_per_batch, self.batch_size):
            out[idx] = self._run([encs[i] for i in idx])
            if progress:
                progress(len(idx))
        return out
