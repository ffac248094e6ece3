"""Ranking metrics, implemented once and unit-tested against hand-computed cases.

A ranking is a list of document ids, best first (duplicates already collapsed). Relevance is a
dict id -> grade (binary judgements use grade 1). Pure Python: no numpy, no torch.
"""

from __future__ import annotations

import math
from typing import Iterable, Mapping, Sequence


def dedupe(ranking: Iterable[str]) -> list[str]:
    """Keep the first occurrence of each id: several chunks of one document count once, at the
    rank of its best chunk."""
    seen: set[str] = set()
    out = []
    for doc in ranking:
        if doc not in seen:
            seen.add(doc)
            out.append(doc)
    return out


def _grades(relevant: Mapping[str, float] | Iterable[str]) -> dict[str, float]:
    if isinstance(relevant, Mapping):
        return {k: float(v) for k, v in relevant.items() if v > 0}
    return {k: 1.0 for k in relevant}


def recall_at_k(ranking: Sequence[str], relevant, k: int) -> float:
    rel = _grades(relevant)
    if not rel:
        return 0.0
    return sum(1 for d in ranking[:k] if d in rel) / len(rel)


def mrr_at_k(ranking: Sequence[str], relevant, k: int) -> float:
    rel = _grades(relevant)
    for i, d in enumerate(ranking[:k], start=1):
        if d in rel:
            return 1.0 / i
    return 0.0


def ndcg_at_k(ranking: Sequence[str], relevant, k: int) -> float:
    """nDCG with gain = grade (linear gain, log2 discount), as in trec_eval/BEIR."""
    rel = _grades(relevant)
    if not rel:
        return 0.0
    dcg = sum(rel.get(d, 0.0) / math.log2(i + 1) for i, d in enumerate(ranking[:k], start=1))
    ideal = sorted(rel.values(), reverse=True)[:k]
    idcg = sum(g / math.log2(i + 1) for i, g in enumerate(ideal, start=1))
    return dcg / idcg if idcg else 0.0


def summarize(rankings: Mapping[str, Sequence[str]], qrels: Mapping[str, Mapping[str, float] | Iterable[str]]) -> dict:
    """Mean recall@1/5/10, MRR@10 and nDCG@10 over the queries that have judgements."""
    qids = [q for q in qrels if q in rankings]
    if not qids:
        return {"queries": 0}
    out = {"queries": len(qids)}
    for name, fn, k in [("recall@1", recall_at_k, 1), ("recall@5", recall_at_k, 5),
                        ("recall@10", recall_at_k, 10), ("mrr@10", mrr_at_k, 10), ("ndcg@10", ndcg_at_k, 10)]:
        out[name] = sum(fn(rankings[q], qrels[q], k) for q in qids) / len(qids)
    return out


def overlap_at_k(a: Sequence[str], b: Sequence[str], k: int = 10) -> float:
    """Share of B's top-k that A also has in its top-k (agreement without labels)."""
    top_b = list(b[:k])
    if not top_b:
        return 0.0
    return len(set(a[:k]) & set(top_b)) / len(top_b)
