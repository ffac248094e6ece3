"""Measure a model the way the paper does (STS, SICK-R, NLI probe) and the way a search product
needs (retrieval MRR@10 on StackFAQ and sample_docs), plus size and encode speed.

The suites are pruning.suites (one module each, a registry by name), made of the measures in
pruning.measures; `evaluate_model` runs the requested suites whose data is present,
`evaluate_many` runs them for several models (cut model, its base, the untrained cut) in one run.
"""

from __future__ import annotations

from .measures import EvalData, nli_probe, retrieval, size, speed, speed_sentences, sts_spearman  # noqa: F401
from .suites import DEFAULT_SUITES, SuiteContext, suite_for  # noqa: F401  (DEFAULT_SUITES: its old home)


def evaluate_model(model, suites=DEFAULT_SUITES, ed: EvalData | None = None, cache: dict | None = None,
                   progress=None, doc_model=None) -> dict:
    """Run the requested suites whose data exists; returns {metric: value} plus 'skipped'.
    With doc_model, retrieval is also measured asymmetrically (*_asym_mrr10): passages embedded by
    doc_model (e.g. the full model, once at indexing time), queries by `model`."""
    ctx = SuiteContext(ed or EvalData.default(), cache if cache is not None else {}, progress, doc_model,
                       requested=tuple(suites))
    out: dict = {}
    skipped = []
    for spec in suites:
        metrics = suite_for(spec)(model, ctx)
        if metrics is None:
            skipped.append(spec)
        else:
            out.update(metrics)
    if skipped:
        out["skipped"] = skipped
    return out


def evaluate_many(models: dict, suites=DEFAULT_SUITES, ed: EvalData | None = None, progress=None) -> dict:
    """{label: model} -> {label: metrics}, sharing the data reads."""
    cache: dict = {}
    return {label: evaluate_model(m, suites, ed, cache, progress=(lambda s, l=label: progress(f"{l}: {s}"))
                                  if progress else None)
            for label, m in models.items()}
