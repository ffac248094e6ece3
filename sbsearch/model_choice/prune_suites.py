"""The evaluation suites that measure a pruned model with sbsearch's own machinery, registered in
pruning's suite registry (pruning.suites) by register(), which every sbsearch evaluation path calls
(prune_inputs.eval_data, app.prune_suites):

  int8       the model exported to int8 ONNX and run the way sbsearch serves int8 models: its
             retrieval, JSTS ρ (when jsts is measured too) and encode speed
  labelfree  agreement with a reference model's ranking, judged by that model (quality.labelfree):
             "labelfree" against the full model, "labelfree:NAME" against NAME

pruning itself measures with plain sentence-transformers models; these two need sbsearch's export
and estimate, so they live here and pruning stays text in, model out.
"""

from __future__ import annotations

import tempfile
from pathlib import Path

from pruning import measures
from pruning.suites import SUITES, Suite, SuiteContext
from pruning.suites.sts import jsts_pairs

from ..embed.models import ModelInfo, load_model
from ..quality import labelfree


class Int8Model:
    """A model's int8 ONNX export (embed.int8_export, embed.onnx_backend) with the encode() the
    measures call. The measures put the model's prompts (E5's "query: " / "passage: ") before the
    texts themselves, as for the fp32 model, so this encodes texts exactly as given."""

    def __init__(self, embedder, prompts: dict | None = None):
        self.embedder = embedder
        self.prompts = dict(prompts or {})

    @classmethod
    def export(cls, model, tmp: Path) -> "Int8Model":
        from ..embed.int8_export import export_int8
        from ..embed.onnx_backend import OnnxEmbedder

        model.save(str(tmp / "fp32"))
        out = export_int8(*load_model(ModelInfo("eval", tmp / "fp32", "path")), tmp / "int8")
        return cls(OnnxEmbedder(ModelInfo("eval-int8", out, "int8")), getattr(model, "prompts", None))

    def encode(self, texts, **_ignored):
        return self.embedder.encode_as_given(list(texts))  # the measures added the prompt


def labelfree_estimate(model, rs, once, passage_vectors=None, reference: str = "full") -> dict:
    """quality.labelfree's estimate of `model` against `reference` on the passages of `rs`, with
    pseudo-queries cut from those passages (never the set's real queries). The reference's
    vectors are cached on disk like the teacher's."""

    def ref_model():
        m, info = load_model(reference)
        m._sbsearch_sha = info.weights_sha256() or ""
        return m

    ref = once(f"labelfree_ref_{reference}", ref_model)
    queries = once(f"labelfree_queries_{rs.name}", lambda: labelfree.pseudo_queries(rs.passages, rs.passage_doc))
    ref_pv = once(f"labelfree_refvec_{reference}_{rs.name}", lambda: measures.doc_vectors(ref, rs.passages))
    return labelfree.estimate_from_encoders(
        lambda t: measures.doc_vectors(ref, t), lambda t: measures.encode(model, t), rs.passages, rs.passage_doc,
        queries, reference_passage_vectors=ref_pv, candidate_passage_vectors=passage_vectors, known_item=True)


class Int8Suite(Suite):
    name = "int8"
    primary_metric = "int8_stackfaq_mrr10"

    def __call__(self, model, ctx: SuiteContext) -> dict | None:
        out: dict = {}
        ctx.say("int8 export")
        with tempfile.TemporaryDirectory(prefix="eval-int8-") as tmp:
            int8 = Int8Model.export(model, Path(tmp))
            for name in ctx.retrieval_sets_measured:
                rs = ctx.retrieval_set(name)
                if rs is None:
                    continue
                ctx.say(f"int8 {name} retrieval")
                r = measures.retrieval(int8, rs)
                out[f"int8_{name}_mrr10"] = round(r["mrr@10"], 4)
                out[f"int8_{name}_ndcg10"] = round(r["ndcg@10"], 4)
            pairs = jsts_pairs(ctx) if "jsts" in {r.partition(":")[0] for r in ctx.requested} else None
            if pairs is not None:
                # the paper's Japanese figure, for the int8 export as served (#27's 97% is of int8 JSTS ρ too)
                ctx.say("int8 JSTS valid")
                out["int8_jsts_valid"] = round(measures.sts_spearman(int8, pairs), 4)
            ctx.say("int8 encode speed")
            out["int8_sentences_per_s"] = round(measures.speed(int8, measures.speed_sentences(ctx.ed, ctx.once)), 1)
        return out


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
            est = labelfree_estimate(model, rs, ctx.once, ctx.own_passages(model, name, rs), reference=ref)
            out[f"{name}_labelfree{tag}_pct"] = est["agreement_pct"]
            # what tune shows: the calibrated estimate and its 90% bootstrap interval over the pseudo-queries
            out[f"{name}_labelfree{tag}_estimate"] = est["estimate_pct"]
            out[f"{name}_labelfree{tag}_interval"] = est["interval_pct"]
            out[f"{name}_labelfree{tag}_overlap10"] = est["overlap@10"]
            out[f"{name}_knownitem{tag}_pct"] = est.get("known_item_pct")
        return out


def register() -> None:
    """Add sbsearch's suites to pruning's registry (again is harmless)."""
    for cls in (Int8Suite, LabelfreeSuite):
        SUITES.setdefault(cls.name, cls)
