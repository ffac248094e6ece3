"""The one door from pruning to sbsearch: everything pruning uses of it, named here.

pruning is a library that turns texts and data files into a pruned model ("text in, model out").
It needs from sbsearch only what a model *is* there and where its files live, so that a pruned model
loads in sbsearch like any other, and the retrieval arithmetic its evaluation shares with sbsearch's:

  sbsearch.errors          the error type every face reports in one line
  sbsearch.config          where models, caches and the shared data sets live
  sbsearch.embed.models    resolve a model name, load it, the offline switches (the base, the teacher,
                           an export that loads like any sbsearch model)
  sbsearch.quality.metrics MRR/recall/nDCG, so pruning's retrieval numbers are `sbsearch eval`'s
  sbsearch.lexical.analysis whether a text is mostly Japanese or Chinese (cutting it into sentences)

No other pruning module imports sbsearch (tests/test_architecture.py checks it). Where the text comes
from (an index, a store, a folder of documents) is sbsearch's business: it hands pruning the texts;
the suites that measure sbsearch's own machinery (int8 export, label-free estimate) are sbsearch's
too (sbsearch.model_choice.prune_suites), registered in pruning's suite registry when it evaluates.
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


def summarize(rankings, qrels) -> dict:
    from sbsearch.quality.metrics import summarize as _summarize

    return _summarize(rankings, qrels)


def dedupe(ranking) -> list[str]:
    from sbsearch.quality.metrics import dedupe as _dedupe

    return _dedupe(ranking)


def mostly_cjk(text: str) -> bool:
    """At least half of text's letters are CJK: sbsearch's own test (its lexical analysis), so that
    pruning cuts Japanese into sentences by the same rule the index reads it by."""
    from sbsearch.lexical.analysis import mostly_cjk as sbsearch_mostly_cjk

    return sbsearch_mostly_cjk(text)
