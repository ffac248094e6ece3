"""int8: the model exported to int8 ONNX the way sbsearch serves it; its retrieval and encode speed."""

from __future__ import annotations

import tempfile
from pathlib import Path

from .. import measures
from .base import Suite, SuiteContext


class Int8Suite(Suite):
    name = "int8"
    primary_metric = "int8_stackfaq_mrr10"

    def __call__(self, model, ctx: SuiteContext) -> dict | None:
        out: dict = {}
        ctx.say("int8 export")
        with tempfile.TemporaryDirectory(prefix="eval-int8-") as tmp:
            int8 = measures.Int8Model.export(model, Path(tmp))
            for name in ("stackfaq", "sample_docs"):
                rs = ctx.retrieval_set(name)
                if rs is None:
                    continue
                ctx.say(f"int8 {name} retrieval")
                r = measures.retrieval(int8, rs)
                out[f"int8_{name}_mrr10"] = round(r["mrr@10"], 4)
                out[f"int8_{name}_ndcg10"] = round(r["ndcg@10"], 4)
            ctx.say("int8 encode speed")
            out["int8_sentences_per_s"] = round(measures.speed(int8, measures.speed_sentences(ctx.ed, ctx.once)), 1)
        return out
