"""labelfree: agreement with a reference model's ranking, judged by that model
(sbsearch.quality.labelfree): "labelfree" against the full model, "labelfree:NAME" against NAME."""

from __future__ import annotations

from .. import measures
from .base import Suite, SuiteContext


class LabelfreeSuite(Suite):
    name = "labelfree"
    primary_metric = "stackfaq_labelfree_estimate"

    def __call__(self, model, ctx: SuiteContext) -> dict | None:
        ref = self.argument or "full"
        tag = "" if ref == "full" else f"_{ref}"
        out: dict = {}
        for name in ("stackfaq", "sample_docs"):
            rs = ctx.retrieval_set(name)
            if rs is None:
                continue
            ctx.say(f"label-free estimate on {name} against {ref}")
            est = measures.labelfree_estimate(model, rs, ctx.once, ctx.own_passages(model, name, rs), reference=ref)
            out[f"{name}_labelfree{tag}_pct"] = est["agreement_pct"]
            # what tune shows: the calibrated estimate and its 90% bootstrap interval over the pseudo-queries
            out[f"{name}_labelfree{tag}_estimate"] = est["estimate_pct"]
            out[f"{name}_labelfree{tag}_interval"] = est["interval_pct"]
            out[f"{name}_labelfree{tag}_overlap10"] = est["overlap@10"]
            out[f"{name}_knownitem{tag}_pct"] = est.get("known_item_pct")
        return out
