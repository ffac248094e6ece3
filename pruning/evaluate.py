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
from sbsearch.metrics import dedupe, summarize

from . import data

SUITES = ("stsb", "sick", "nli", "stackfaq", "sample_docs", "size", "speed")
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
        elif suite == "stackfaq":
            f = ed.file("stackfaq/stackExchange-FAQ.json")
            if f is None:
                skipped.append(suite); continue
            say("StackFAQ retrieval")
            rs = once("stackfaq", lambda: data.read_stackfaq(f))
            r = retrieval(model, rs)
            out["stackfaq_mrr10"] = round(r["mrr@10"], 4)
            out["stackfaq_recall10"] = round(r["recall@10"], 4)
            if doc_model is not None:
                pv = once("stackfaq_docvec", lambda: _doc_vectors(doc_model, rs.passages))
                out["stackfaq_asym_mrr10"] = round(retrieval(model, rs, passage_vectors=pv)["mrr@10"], 4)
        elif suite == "sample_docs":
            if ed.sample_docs is None:
                skipped.append(suite); continue
            say("sample_docs retrieval")
            rs = once("sample_docs", lambda: data.read_sample_docs(ed.sample_docs))
            r = retrieval(model, rs)
            out["sample_docs_mrr10"] = round(r["mrr@10"], 4)
            if doc_model is not None:
                pv = once("sample_docs_docvec", lambda: _doc_vectors(doc_model, rs.passages))
                out["sample_docs_asym_mrr10"] = round(retrieval(model, rs, passage_vectors=pv)["mrr@10"], 4)
            out["sample_docs_recall10"] = round(r["recall@10"], 4)
            out["sample_docs_ndcg10"] = round(r["ndcg@10"], 4)
        elif suite == "size":
            out.update(size(model))
        elif suite == "speed":
            f = ed.file("stsb/sts-test.csv")
            sents = once("speed_sents", lambda: [a for a, _, _ in data.read_sts(f)][:512] if f else
                         [f"a sentence of moderate length number {i} about search" for i in range(512)])
            say("encode speed")
            out["sentences_per_s"] = round(speed(model, sents), 1)
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
