"""The one door from pruning to sbsearch: everything pruning uses of it, named here.

pruning is a library that turns texts and data files into a pruned model ("text in, model out").
It needs from sbsearch only what a model *is* there and where its files live, so that a pruned model
loads in sbsearch like any other, plus the two measures its evaluation shares with sbsearch's own:

  sbsearch.errors          the error type every face reports in one line
  sbsearch.config          where models, caches and the shared data sets live
  sbsearch.embed.models    resolve a model name, load it, the offline switches (cut, teacher, export)
  sbsearch.embed.int8_export, sbsearch.embed.onnx_backend   the int8 suite measures sbsearch's int8 export
  sbsearch.quality.metrics, sbsearch.quality.labelfree      retrieval measures, the label-free estimate

No other pruning module imports sbsearch (tests/test_architecture.py checks it); where the text comes
from (an index, a store, a folder of documents) is sbsearch's business: it hands pruning the texts.
Heavy modules are imported inside the functions, so importing pruning does not import torch.
"""

from __future__ import annotations

from pathlib import Path

from sbsearch import config as _config
from sbsearch.errors import SbsearchError  # noqa: F401  (re-exported: pruning's errors are sbsearch's)


def models_dir() -> Path:
    return _config.models_dir()


def cache_dir() -> Path:
    return _config.cache_dir()


def shared_data_dir() -> Path:
    return _config.shared_data_dir()


def repo_sample_docs() -> Path:
    """The sample_docs folder beside the package (the retrieval suite's second data set)."""
    return _config.PACKAGE_DIR.parent / "sample_docs"


def resolve_model(spec):
    from sbsearch.embed.models import resolve

    return resolve(spec)


def load_model(spec):
    """(SentenceTransformer, ModelInfo) for a name, a directory or a ModelInfo."""
    from sbsearch.embed.models import load_model as _load

    return _load(spec)


def offline_environment() -> None:
    from sbsearch.embed.models import offline_environment as _offline

    _offline()


def int8_embedder(model, tmp: Path):
    """`model` saved, exported to int8 ONNX by sbsearch, and loaded as sbsearch serves it."""
    from sbsearch.embed.int8_export import export_int8
    from sbsearch.embed.models import ModelInfo, load_model as _load
    from sbsearch.embed.onnx_backend import OnnxEmbedder

    model.save(str(tmp / "fp32"))
    out = export_int8(*_load(ModelInfo("eval", tmp / "fp32", "path")), tmp / "int8")
    return OnnxEmbedder(ModelInfo("eval-int8", out, "int8"))


def summarize(rankings, qrels) -> dict:
    from sbsearch.quality.metrics import summarize as _summarize

    return _summarize(rankings, qrels)


def dedupe(ranking) -> list[str]:
    from sbsearch.quality.metrics import dedupe as _dedupe

    return _dedupe(ranking)


def labelfree():
    """sbsearch.quality.labelfree (pseudo_queries, estimate_from_encoders)."""
    from sbsearch.quality import labelfree as _labelfree

    return _labelfree
