"""The measures the evaluation suites (pruning.suites) are made of: STS and NLI as the paper
measures them, retrieval as a search product needs it, size and encode speed; and EvalData, where
their data lives. Each measure is one small function taking a SentenceTransformer."""

from __future__ import annotations

import os
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from . import data, host
from .host import dedupe, summarize
from .prompts import prompt_of


@dataclass
class EvalData:
    """Where the evaluation data lives; missing pieces are skipped (and reported as skipped).
    read_folder reads the sample_docs folder into chunks (sbsearch's readers and chunker, given by
    sbsearch: pruning reads plain files only); without it the sample_docs suite is skipped."""
    shared: Path
    sample_docs: Path | None = None
    nli_train_limit: int = 5000
    read_folder: data.FolderReader | None = None

    @classmethod
    def default(cls, sample_docs: str | Path | None = None, read_folder: data.FolderReader | None = None) -> "EvalData":
        sd = Path(sample_docs) if sample_docs else host.repo_sample_docs()
        return cls(host.shared_data_dir(), sd if (sd / "queries.jsonl").exists() else None, read_folder=read_folder)

    def file(self, rel: str) -> Path | None:
        p = self.shared / rel
        return p if p.exists() else None


def encode(model, texts, batch_size=64, role: str | None = None):
    """Normalised vectors of texts, with the model's prompt for `role` ("query", "document") when it has
    one: an E5 model ranks as it was trained to only with them. STS pairs are symmetric and take the
    query prompt on both sides, as E5 does."""
    prompt = prompt_of(model, role) if role else ""
    return model.encode([prompt + t for t in texts] if prompt else list(texts), batch_size=batch_size,
                        convert_to_numpy=True, normalize_embeddings=True, show_progress_bar=False)


def doc_vectors(doc_model, texts):
    """Passages embedded by the document model, cached on disk (the full model's vectors of a fixed
    passage set never change)."""
    from .train import teacher_embeddings

    sha = getattr(doc_model, "_sbsearch_sha", None) or ""
    if not sha:
        return encode(doc_model, texts, role="document")
    prompt = prompt_of(doc_model, "document")
    vec = teacher_embeddings(doc_model, [prompt + t for t in texts], sha, doc_model.max_seq_length, progress=False,
                             subdir="pruning-docvectors")
    return vec / np.linalg.norm(vec, axis=1, keepdims=True)


def sts_spearman(model, pairs) -> float:
    """Spearman correlation between cosine similarity and the gold scores."""
    from scipy.stats import spearmanr

    s1, s2, gold = zip(*pairs)
    uniq = list(dict.fromkeys(list(s1) + list(s2)))
    vec = dict(zip(uniq, encode(model, uniq, role="query")))
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
        vec = dict(zip(uniq, encode(model, uniq, role="query")))
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
    pv = encode(model, rs.passages, role="document") if passage_vectors is None else passage_vectors
    qids = list(rs.queries)
    qv = encode(model, [rs.queries[q] for q in qids], role="query")
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
    encode(model, sentences[:batch_size], batch_size)
    t0 = time.perf_counter()
    encode(model, sentences, batch_size)
    return len(sentences) / (time.perf_counter() - t0)


# sample_docs' Japanese questions that share few characters with their answers (queries.jsonl's kind):
# where a model's Japanese semantics, not shared words, must find the document
SAMPLE_DOCS_JA_KIND = "japanese-paraphrase"


def retrieval_set(name: str, ed: EvalData, once) -> data.RetrievalSet | None:
    if name == "stackfaq":
        f = ed.file("stackfaq/stackExchange-FAQ.json")
        return once("stackfaq", lambda: data.read_stackfaq(f)) if f else None
    if name == "jsquad":
        f = ed.file("jglue/jsquad-valid.json")
        return once("jsquad", lambda: data.read_jsquad(f)) if f else None
    if ed.sample_docs is None or ed.read_folder is None:
        return None
    whole = once("sample_docs", lambda: data.read_sample_docs(ed.sample_docs, ed.read_folder))
    if name == "sample_docs_ja":
        return once(name, lambda: data.only_kind(whole, SAMPLE_DOCS_JA_KIND, name))
    return whole


def speed_sentences(ed: EvalData, once) -> list[str]:
    f = ed.file("stsb/sts-test.csv")
    return once("speed_sents", lambda: [a for a, _, _ in data.read_sts(f)][:512] if f else
                [f"a sentence of moderate length number {i} about search" for i in range(512)])
