"""nli: the paper's embedding-based NLI probe (a logistic regression on frozen features)."""

from __future__ import annotations

from .. import data, measures
from .base import Suite, SuiteContext


class NliSuite(Suite):
    name = "nli"
    primary_metric = "nli_acc"

    def __call__(self, model, ctx: SuiteContext) -> dict | None:
        ed = ctx.ed
        ftr, fte = ed.file("nli/snli_dev_test.tsv"), ed.file("nli/xnli_test_en.tsv")
        if ftr is None or fte is None:
            return None
        ctx.say("NLI probe")
        acc = measures.nli_probe(model, ctx.once("snli", lambda: data.read_nli(ftr)),
                                 ctx.once("xnli", lambda: data.read_nli(fte)), ed.nli_train_limit)
        return {"nli_acc": round(acc, 4)}
