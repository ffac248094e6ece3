"""int8 models: a sentence-transformers model exported to ONNX and dynamically quantized, for
onnx_backend.OnnxEmbedder.

Before quantisation, ONNX Runtime's transformer optimizer fuses each layer's attention, GELU and
layer norms into single operators (the export traces eager attention, the pattern it recognises);
quantize_dynamic then turns the fused attention into QAttention, whose projections run in int8
too. Unfused, only the MatMuls were int8 and documents encoded ~1.3x slower (benchmarks/indexing.py).
Architectures the optimizer does not know are exported unfused.

Why not sentence-transformers' ONNX backend: it needs optimum-onnx, which today pins
transformers < 5 and sentence-transformers < 6 (pip would downgrade the whole stack). The export
here is torch.onnx (TorchScript exporter) + onnxruntime.quantization.quantize_dynamic with
per-channel int8 weights: per-tensor int8 measured cosine 0.93 to fp32 on MiniLM, per-channel 0.987+.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import tempfile
import warnings
from pathlib import Path

from ..errors import SbsearchError
from ..hashing import sha256_file
from .onnx_backend import DATA_FILE, META_FILE, ONNX_FILE


def _pooling_mode(model_dir: Path) -> str:
    try:
        cfg = json.loads((model_dir / "1_Pooling" / "config.json").read_text())
    except (OSError, ValueError):
        return "mean"
    if cfg.get("pooling_mode_cls_token"):
        return "cls"
    if cfg.get("pooling_mode_mean_tokens", True):
        return "mean"
    raise SbsearchError(f"{model_dir}: only mean or CLS pooling can be exported to int8")


VERIFY_TEXTS = ["How do I claim travel expenses after a business trip?",
                "The VPN client disconnects every few minutes on home Wi-Fi.",
                "Pool cars must be returned with a full tank.", "Two."]
MIN_COSINE = 0.95
MIN_COSINE_FP32 = 0.9999  # an fp32 export computes what torch computes, up to rounding


def _verify(model, info, export_dir: Path, quantized: bool = True) -> None:
    """Refuse an export that does not reproduce its model. Dynamic int8 quantisation of
    all-mpnet-base-v2 with onnxruntime 1.32 gives cosine ~0.1 to fp32 (per-tensor ~0.7): a model
    that answers at random must never be saved and served as if it were the model."""
    import numpy as np

    from .model_info import ModelInfo
    from .onnx_backend import OnnxEmbedder

    # documents on both sides: the fp32 model with its document prompt, as OnnxEmbedder.encode
    fp32 = np.asarray(model.encode_document(VERIFY_TEXTS, normalize_embeddings=True, convert_to_numpy=True))
    exported = OnnxEmbedder(ModelInfo(info.name + "-export", export_dir, "int8" if quantized else "onnx"))
    cos = float((fp32 * exported.encode(VERIFY_TEXTS)).sum(1).min())
    floor, what = (MIN_COSINE, "int8") if quantized else (MIN_COSINE_FP32, "fp32 ONNX")
    if cos < floor:
        raise SbsearchError(f"the {what} export of {info.name!r} does not reproduce the model (cosine to torch "
                            f"{cos:.4f} < {floor}); not saved: use {info.name!r}")


# Part of the cache key of an export (models._resolve_export): raised when the export itself changes,
# so existing caches are rebuilt rather than served as they were.
EXPORT_VERSION = 2
FUSED_MODEL_TYPES = {"bert": "bert"}  # Hugging Face model_type -> onnxruntime.transformers model type


def _fuse(fp32: Path, config, out: Path) -> int:
    """Write the optimizer's fused graph of fp32 to out; returns how many attention blocks were
    fused (0: the caller keeps the unfused graph)."""
    from onnxruntime.transformers import optimizer

    kind = FUSED_MODEL_TYPES.get(getattr(config, "model_type", ""))
    if kind is None:
        return 0
    fused = optimizer.optimize_model(str(fp32), model_type=kind, num_heads=config.num_attention_heads,
                                     hidden_size=config.hidden_size, opt_level=1)
    n = int(fused.get_fused_operator_statistics().get("Attention", 0))
    if n:
        fused.save_model_to_file(str(out))
    return n


def _weights_beside_graph(path: Path) -> None:
    """Move the weights out of the graph file into DATA_FILE next to it. ONNX Runtime then reads them
    as raw bytes instead of parsing them out of one protobuf: e5-small-int8's session (181 MB) opened
    in ~0.07 s instead of ~0.3 s, the largest part of a cold query. The outputs are identical."""
    import onnx

    model = onnx.load(str(path))
    onnx.save_model(model, str(path), save_as_external_data=True, all_tensors_to_one_file=True,
                    location=DATA_FILE, size_threshold=1024)
    os.chmod(path.with_name(DATA_FILE), 0o644)  # onnx writes it 0600; the other files of a model are 0644


# What dynamic int8 quantises: "all" (every MatMul, the fused attention and the embedding table) or
# "embeddings" (the word-embedding table only; the transformer layers stay fp32).
QUANTIZE_OPS = {"all": None, "embeddings": ["EmbedLayerNormalization", "Gather"]}
QUANTIZE_NOTES = {"all": "dynamic int8, per-channel weights",
                  "embeddings": "int8 word-embedding table; transformer layers fp32"}


def export_int8(model, info, out_dir: Path, fuse: bool = True, quantize: bool = True, scope: str = "all") -> Path:
    """Export a loaded SentenceTransformer `model` (from models.load_model, with its ModelInfo) to an
    int8 ONNX directory at out_dir (atomically). fuse=False and quantize=False write the variants
    that benchmarks/indexing.py compares (the unfused int8 graph; fp32 on ONNX Runtime)."""
    import torch
    from onnxruntime.quantization import QuantType, quantize_dynamic

    hf = model[0].auto_model.eval()
    tokenizer_json = info.path / "tokenizer.json"
    if not tokenizer_json.exists():
        raise SbsearchError(f"{info.path} has no tokenizer.json (a fast tokenizer is needed for int8)")
    sample = model.tokenizer(["An example sentence for tracing.", "Two."], padding=True, return_tensors="pt")

    class LastHidden(torch.nn.Module):
        def __init__(self, inner):
            super().__init__()
            self.inner = inner

        def forward(self, input_ids, attention_mask):
            return self.inner(input_ids=input_ids, attention_mask=attention_mask).last_hidden_state

    out_dir.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=out_dir.parent, prefix=".int8-") as tmp, warnings.catch_warnings():
        # The tracer warns about Python-side branches on shapes (padding, causal masks) that are
        # constant for an encoder; onnxruntime's quantizer suggests optional pre-processing.
        warnings.simplefilter("ignore")
        logging.getLogger().setLevel(logging.ERROR)
        tmp = Path(tmp)
        fp32 = tmp / "model.onnx"
        axes = {0: "batch", 1: "sequence"}
        attention = hf.config._attn_implementation
        try:
            hf.set_attn_implementation("eager")  # SDPA traces to a graph the optimizer cannot fuse
        except (AttributeError, ValueError):
            pass
        with torch.no_grad():
            torch.onnx.export(LastHidden(hf), (sample["input_ids"], sample["attention_mask"]), str(fp32),
                              input_names=["input_ids", "attention_mask"], output_names=["last_hidden_state"],
                              dynamic_axes={"input_ids": axes, "attention_mask": axes, "last_hidden_state": axes},
                              opset_version=17, dynamo=False)
        if attention != hf.config._attn_implementation:
            hf.set_attn_implementation(attention)
        fused = tmp / "fused.onnx"
        n_fused = _fuse(fp32, hf.config, fused) if fuse else 0
        graph = fused if n_fused else fp32
        if quantize:
            # DefaultTensorType: shape inference cannot type the outputs of the fused contrib operators
            quantize_dynamic(str(graph), str(tmp / ONNX_FILE), weight_type=QuantType.QInt8,
                             per_channel=scope == "all", op_types_to_quantize=QUANTIZE_OPS[scope],
                             extra_options={"DefaultTensorType": 1})
        else:
            os.replace(graph, tmp / ONNX_FILE)
        _weights_beside_graph(tmp / ONNX_FILE)
        for f in (fp32, fused):
            f.unlink(missing_ok=True)
        for name in ("tokenizer.json", "config.json", "pruning.json", "sentence_bert_config.json"):
            if (info.path / name).exists():
                shutil.copy(info.path / name, tmp / name)
        meta = {
            "base": info.name, "base_path": str(info.path), "base_sha256": info.weights_sha256(),
            "pooling": _pooling_mode(info.path), "normalize": True,
            "max_seq_length": int(model.max_seq_length), "dim": int(model.get_embedding_dimension()),
            "onnx_sha256": sha256_file(tmp / ONNX_FILE), "onnx_data_sha256": sha256_file(tmp / DATA_FILE),
            "quantization": QUANTIZE_NOTES[scope] if quantize else "none (fp32)",
            "fused_attention_layers": n_fused, "export_version": EXPORT_VERSION,
            # the prompts the fp32 model applies (E5's "query: " / "passage: "), applied by OnnxEmbedder
            "prompts": {k: v for k, v in (getattr(model, "prompts", None) or {}).items()
                        if k in ("query", "document") and v},
        }
        (tmp / META_FILE).write_text(json.dumps(meta, indent=2))
        _verify(model, info, tmp, quantized=quantize)
        if out_dir.exists():
            shutil.rmtree(out_dir)
        os.replace(tmp, out_dir)
        tmp.mkdir()  # TemporaryDirectory wants something to clean up
    return out_dir
