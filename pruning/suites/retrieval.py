"""stackfaq, sample_docs, and the Japanese jsquad and sample_docs_ja: retrieval (MRR, recall, nDCG at 10), documents ranked at their best
passage; with a document model, also asymmetrically (documents by it, queries by the model)."""

from __future__ import annotations

from .. import measures
from .base import Suite, SuiteContext


class RetrievalSuite(Suite):
    def __call__(self, model, ctx: SuiteContext) -> dict | None:
        name = self.name
        rs = ctx.retrieval_set(name)
        if rs is None:
            return None
        ctx.say(f"{name} retrieval")
        r = measures.retrieval(model, rs, passage_vectors=ctx.own_passages(model, name, rs))
        out = {f"{name}_mrr10": round(r["mrr@10"], 4), f"{name}_recall10": round(r["recall@10"], 4),
               f"{name}_ndcg10": round(r["ndcg@10"], 4)}
        if ctx.doc_model is not None:
            pv = ctx.once(f"{name}_docvec", lambda: measures.doc_vectors(ctx.doc_model, rs.passages))
            out[f"{name}_asym_mrr10"] = round(measures.retrieval(model, rs, passage_vectors=pv)["mrr@10"], 4)
        return out


class StackFaqSuite(RetrievalSuite):
    name = "stackfaq"
    primary_metric = "stackfaq_mrr10"


class SampleDocsSuite(RetrievalSuite):
    name = "sample_docs"
    primary_metric = "sample_docs_mrr10"


class JsquadSuite(RetrievalSuite):
    """JSQuAD valid: 1,000 Japanese Wikipedia questions over its 1,145 paragraphs."""
    name = "jsquad"
    primary_metric = "jsquad_ndcg10"


class SampleDocsJaSuite(RetrievalSuite):
    """sample_docs' Japanese paraphrased questions, over all of sample_docs (English too)."""
    name = "sample_docs_ja"
    primary_metric = "sample_docs_ja_ndcg10"
