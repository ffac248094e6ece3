"""size (parameters, MB on disk) and speed (sentences per second encoded, on all cores)."""

from __future__ import annotations

from .. import measures
from .base import Suite, SuiteContext


class SizeSuite(Suite):
    name = "size"
    primary_metric = "params"

    def __call__(self, model, ctx: SuiteContext) -> dict | None:
        return measures.size(model)


class SpeedSuite(Suite):
    name = "speed"
    primary_metric = "sentences_per_s"

    def __call__(self, model, ctx: SuiteContext) -> dict | None:
        ctx.say("encode speed")
        return {"sentences_per_s": round(measures.speed(model, measures.speed_sentences(ctx.ed, ctx.once)), 1)}
