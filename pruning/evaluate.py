"""Measure a model the way the paper does (STS, SICK-R, NLI probe) and the way a search product
needs (retrieval MRR@10 on StackFAQ and sample_docs), plus size and encode speed.

Each metric is one small function taking a SentenceTransformer; `evaluate_model` runs the suites
whose data is present, `evaluate_many` runs them for several models (cut model, its base, the
untrained cut) in one run.
"""

from __future__ import annotations

import os
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from sbsearch import config
from sbsearch.quality.metrics import dedupe, summarize

from . import data

SUITES = ("stsb", "sick", "nli", "stackfaq", "sample_docs", "size", "speed", "int8", "labelfree")
DEFAULT_SUITES = ("stsb", "sick", "stackfaq", "sample_docs", "size", "speed")


@dataclass
class EvalData:
    """Where the evaluation data lives; missing pieces are skipped (and reported as skipped)."""
    shared: Path
    sample_docs: Path | None = None
    nli_train_limit: int = 5000

    @classmethod
    def default(cls, sample_docs: str | Path | None = None) -> "EvalData":
        sd = Path(sample_docs) if sample_docs else config.PACKAGE_DIR.parent / "sample_docs"
        return cls(config.shared_data_dir(), sd if (sd / "queries.jsonl").exists() else None)

    def file(self, rel: str) -> Path | None:
        p = self.shared / rel
        return p if p.exists() else None


def _encode(model, texts, batch_size=64):
    return model.encode(list(texts), batch_size=batch_size, convert_to_numpy=True, normalize_embeddings=True,
                        show_progress_bar=False)


def _doc_vectors(doc_model, texts):
    """Passages embedded by the document model, cached on disk (the full model's vectors of a fixed
    passage set never change)."""
    from .train import teacher_embeddings

    sha = getattr(doc_model, "_sbsearch_sha", None) or ""
    if not sha:
        return _encode(doc_model, texts)
    vec = teacher_embeddings(doc_model, texts, sha, doc_model.max_seq_length, progress=False,
                             subdir="pruning-docvectors")
    return vec / np.linalg.norm(vec, axis=1, keepdims=True)


def sts_spearman(model, pairs) -> float:
    """Spearman correlation between cosine similarity and the gold scores."""
    from scipy.stats import spearmanr

    s1, s2, gold = zip(*pairs)
    uniq = list(dict.fromkeys(list(s1) + list(s2)))
    vec = dict(zip(uniq, _encode(model, uniq)))
    cos = [float(np.dot(vec[a], vec[b])) for a, b in zip(s1, s2)]
    return float(spearmanr(cos, gold).correlation)


def nli_probe(model, train_pairs, test_pairs, limit: int | None = 5000, seed: int = 0) -> float:
    """The paper's embedding-based NLI: a logistic regression on frozen features [u, v, |u-v|, u*v]
    trained on (a sample of) SNLI, accuracy on the test pairs (XNLI-en test)."""
    from sklearn.linear_model import LogisticRegression

    rng = np.random.default_rng(seed)
    if limit and len(train_pairs) > limit:
        train_pairs = [train_pairs[i] for i in rng.choice(len(train_pairs), limit, replace=False)]

    def features(pairs):
        p, h, _ = zip(*pairs)
        uniq = list(dict.fromkeys(list(p) + list(h)))
        vec = dict(zip(uniq, _encode(model, uniq)))
        u = np.stack([vec[x] for x in p])
        v = np.stack([vec[x] for x in h])
        return np.hstack([u, v, np.abs(u - v), u * v])

    labels = {l: i for i, l in enumerate(data.LABELS)}
    xtr, ytr = features(train_pairs), [labels[l] for *_, l in train_pairs]
    xte, yte = features(test_pairs), [labels[l] for *_, l in test_pairs]
    clf = LogisticRegression(max_iter=2000, C=1.0)
    clf.fit(xtr, ytr)
    return float(clf.score(xte, yte))


def retrieval(model, rs: data.RetrievalSet, k: int = 100, passage_vectors=None) -> dict:
    """Embed passages and queries, rank documents (a document at its best passage), summarize().
    passage_vectors: already embedded passages (the asymmetric mode: documents by another model)."""
    pv = _encode(model, rs.passages) if passage_vectors is None else passage_vectors
    qids = list(rs.queries)
    qv = _encode(model, [rs.queries[q] for q in qids])
    sims = qv @ pv.T
    rankings = {}
    for i, q in enumerate(qids):
        order = np.argsort(-sims[i])[: max(k, 10) * 4]
        rankings[q] = dedupe(rs.passage_doc[j] for j in order)[:k]
    return summarize(rankings, rs.qrels)


def size(model) -> dict:
    params = sum(p.numel() for p in model.parameters())
    with tempfile.TemporaryDirectory() as tmp:
        model.save(tmp)
        mb = sum(f.stat().st_size for f in Path(tmp).rglob("*") if f.is_file()) / 1e6
    return {"params": int(params), "mb": round(mb, 1)}


def speed(model, sentences: list[str], batch_size: int = 32, seconds: float = 0.0) -> float:
    """Sentences per second encoding `sentences` (one warm-up batch first), on all cores."""
    import torch

    torch.set_num_threads(max(1, len(os.sched_getaffinity(0))))
    _encode(model, sentences[:batch_size], batch_size)
    t0 = time.perf_counter()
    _encode(model, sentences, batch_size)
    return len(sentences) / (time.perf_counter() - t0)


def _retrieval_set(name: str, ed: EvalData, once) -> data.RetrievalSet | None:
    if name == "stackfaq":
        f = ed.file("stackfaq/stackExchange-FAQ.json")
        return once("stackfaq", lambda: data.read_stackfaq(f)) if f else None
    if ed.sample_docs is None:
        return None
    return once("sample_docs", lambda: data.read_sample_docs(ed.sample_docs))


def speed_sentences(ed: EvalData, once) -> list[str]:
    f = ed.file("stsb/sts-test.csv")
    return once("speed_sents", lambda: [a for a, _, _ in data.read_sts(f)][:512] if f else
                [f"a sentence of moderate length number {i} about search" for i in range(512)])


def labelfree_estimate(model, rs: data.RetrievalSet, once, passage_vectors=None, reference: str = "full") -> dict:
    """sbsearch.quality.labelfree's estimate of `model` against `reference` on the passages of `rs`, with
    pseudo-queries cut from those passages (never the set's real queries). The reference's
    vectors are cached on disk like the teacher's."""
    from sbsearch.quality.labelfree import estimate_from_encoders, pseudo_queries
    from sbsearch.embed.models import load_model

    def ref_model():
        m, info = load_model(reference)
        m._sbsearch_sha = info.weights_sha256() or ""
        return m

    ref = once(f"labelfree_ref_{reference}", ref_model)
    queries = once(f"labelfree_queries_{rs.name}", lambda: pseudo_queries(rs.passages, rs.passage_doc))
    ref_pv = once(f"labelfree_refvec_{reference}_{rs.name}", lambda: _doc_vectors(ref, rs.passages))
    return estimate_from_encoders(lambda t: _doc_vectors(ref, t), lambda t: _encode(model, t), rs.passages,
                                  rs.passage_doc, queries, reference_passage_vectors=ref_pv,
                                  candidate_passage_vectors=passage_vectors, known_item=True)


class Int8Model:
    """A model's int8 ONNX export (sbsearch.embed.int8_export, sbsearch.embed.onnx_backend) with the encode() the suites call."""

    def __init__(self, embedder):
        self.embedder = embedder

    @classmethod
    def export(cls, model, tmp: Path) -> "Int8Model":
        from sbsearch.embed.int8_export import export_int8
        from sbsearch.embed.models import ModelInfo, load_model
        from sbsearch.embed.onnx_backend import OnnxEmbedder

        model.save(str(tmp / "fp32"))
        out = export_int8(*load_model(ModelInfo("eval", tmp / "fp32", "path")), tmp / "int8")
        return cls(OnnxEmbedder(ModelInfo("eval-int8", out, "int8")))

    def encode(self, texts, **_ignored):
        return self.embedder.encode(list(texts))


def evaluate_model(model, suites=DEFAULT_SUITES, ed: EvalData | None = None, cache: dict | None = None,
                   progress=None, doc_model=None) -> dict:
    """Run the requested suites whose data exists; returns {metric: value} plus 'skipped'.
    With doc_model, retrieval is also measured asymmetrically (*_asym_mrr10): passages embedded by
    doc_model (e.g. the full model, once at indexing time), queries by `model`."""
    ed = ed or EvalData.default()
    cache = cache if cache is not None else {}
    out: dict = {}
    skipped = []

    def once(key, fn):
        if key not in cache:
            cache[key] = fn()
        return cache[key]

    def say(msg):
        if progress:
            progress(msg)

    own: dict = {}

    def own_passages(name, rs):  # this model's passage vectors, shared by retrieval and the estimate
        if name not in own:
            own[name] = _encode(model, rs.passages)
        return own[name]

    for suite in suites:
        if suite == "stsb":
            f = ed.file("stsb/sts-test.csv")
            if f is None:
                skipped.append(suite); continue
            say("STS-B test")
            out["stsb_test"] = round(sts_spearman(model, once("stsb", lambda: data.read_sts(f))), 4)
        elif suite == "sick":
            f = ed.file("sick/SICK_train.txt")
            if f is None:
                skipped.append(suite); continue
            say("SICK-R")
            pairs = once("sick", lambda: data.read_sts(f) + (data.read_sts(ed.file("sick/SICK_trial.txt"))
                                                             if ed.file("sick/SICK_trial.txt") else []))
            out["sick_r"] = round(sts_spearman(model, pairs), 4)
        elif suite == "nli":
            ftr, fte = ed.file("nli/snli_dev_test.tsv"), ed.file("nli/xnli_test_en.tsv")
            if ftr is None or fte is None:
                skipped.append(suite); continue
            say("NLI probe")
            out["nli_acc"] = round(nli_probe(model, once("snli", lambda: data.read_nli(ftr)),
                                             once("xnli", lambda: data.read_nli(fte)), ed.nli_train_limit), 4)
        elif suite in ("stackfaq", "sample_docs"):
            rs = _retrieval_set(suite, ed, once)
            if rs is None:
                skipped.append(suite); continue
            say(f"{suite} retrieval")
            r = retrieval(model, rs, passage_vectors=own_passages(suite, rs))
            out[f"{suite}_mrr10"] = round(r["mrr@10"], 4)
            out[f"{suite}_recall10"] = round(r["recall@10"], 4)
            out[f"{suite}_ndcg10"] = round(r["ndcg@10"], 4)
            if doc_model is not None:
                pv = once(f"{suite}_docvec", lambda: _doc_vectors(doc_model, rs.passages))
                out[f"{suite}_asym_mrr10"] = round(retrieval(model, rs, passage_vectors=pv)["mrr@10"], 4)
        elif suite.startswith("labelfree"):
            # agreement with a reference model's ranking, judged by that model (sbsearch.quality.labelfree):
            # "labelfree" against the full model, "labelfree:NAME" against NAME
            ref = suite.partition(":")[2] or "full"
            tag = "" if ref == "full" else f"_{ref}"
            for name in ("stackfaq", "sample_docs"):
                rs = _retrieval_set(name, ed, once)
                if rs is None:
                    continue
                say(f"label-free estimate on {name} against {ref}")
                est = labelfree_estimate(model, rs, once, own_passages(name, rs), reference=ref)
                out[f"{name}_labelfree{tag}_pct"] = est["agreement_pct"]
                # what tune shows: the calibrated estimate and its 90% bootstrap interval over the pseudo-queries
                out[f"{name}_labelfree{tag}_estimate"] = est["estimate_pct"]
                out[f"{name}_labelfree{tag}_interval"] = est["interval_pct"]
                out[f"{name}_labelfree{tag}_overlap10"] = est["overlap@10"]
                out[f"{name}_knownitem{tag}_pct"] = est.get("known_item_pct")
        elif suite == "int8":
            say("int8 export")
            with tempfile.TemporaryDirectory(prefix="eval-int8-") as tmp:
                int8 = Int8Model.export(model, Path(tmp))
                for name in ("stackfaq", "sample_docs"):
                    rs = _retrieval_set(name, ed, once)
                    if rs is None:
                        continue
                    say(f"int8 {name} retrieval")
                    r = retrieval(int8, rs)
                    out[f"int8_{name}_mrr10"] = round(r["mrr@10"], 4)
                    out[f"int8_{name}_ndcg10"] = round(r["ndcg@10"], 4)
                say("int8 encode speed")
                out["int8_sentences_per_s"] = round(speed(int8, speed_sentences(ed, once)), 1)
        elif suite == "size":
            out.update(size(model))
        elif suite == "speed":
            say("encode speed")
            out["sentences_per_s"] = round(speed(model, speed_sentences(ed, once)), 1)
        else:
            raise ValueError(f"unknown suite {suite}")
    if skipped:
        out["skipped"] = skipped
    return out


def evaluate_many(models: dict, suites=DEFAULT_SUITES, ed: EvalData | None = None, progress=None) -> dict:
    """{label: model} -> {label: metrics}, sharing the data reads."""
    cache: dict = {}
    return {label: evaluate_model(m, suites, ed, cache, progress=(lambda s, l=label: progress(f"{l}: {s}"))
                                  if progress else None)
            for label, m in models.items()}
