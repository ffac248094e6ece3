"""stsb, sick and the Japanese jsts: Spearman correlation of cosine similarity with the gold scores."""

from __future__ import annotations

from .. import data, measures
from .base import Suite, SuiteContext


class StsbSuite(Suite):
    name = "stsb"
    primary_metric = "stsb_test"

    def __call__(self, model, ctx: SuiteContext) -> dict | None:
        f = ctx.ed.file("stsb/sts-test.csv")
        if f is None:
            return None
        ctx.say("STS-B test")
        return {"stsb_test": round(measures.sts_spearman(model, ctx.once("stsb", lambda: data.read_sts(f))), 4)}


class SickSuite(Suite):
    name = "sick"
    primary_metric = "sick_r"

    def __call__(self, model, ctx: SuiteContext) -> dict | None:
        f = ctx.ed.file("sick/SICK_train.txt")
        if f is None:
            return None
        ctx.say("SICK-R")
        trial = ctx.ed.file("sick/SICK_trial.txt")
        pairs = ctx.once("sick", lambda: data.read_sts(f) + (data.read_sts(trial) if trial else []))
        return {"sick_r": round(measures.sts_spearman(model, pairs), 4)}


def jsts_pairs(ctx: SuiteContext) -> list | None:
    """JSTS valid's scored pairs, read once per evaluation; None when the file is missing."""
    f = ctx.ed.file("jglue/jsts-valid.jsonl")
    return None if f is None else ctx.once("jsts", lambda: data.read_sts(f))


class JstsSuite(Suite):
    """JGLUE's JSTS valid (Japanese STS, scores 0-5): the Japanese figure the paper's method reports."""
    name = "jsts"
    primary_metric = "jsts_valid"

    def __call__(self, model, ctx: SuiteContext) -> dict | None:
        pairs = jsts_pairs(ctx)
        if pairs is None:
            return None
        ctx.say("JSTS valid")
        return {"jsts_valid": round(measures.sts_spearman(model, pairs), 4)}
