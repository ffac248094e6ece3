"""Two ways to make one ranking of the vector and the lexical (BM25) candidates.

Reciprocal-rank fusion (Cormack, Clarke & Büttcher 2009) uses ranks alone: BM25 scores and cosine
similarities live on different scales, ranks do not. Relative score fusion scales each side's scores
to [0, 1] over its candidates and adds them with weights: a side whose top hit stands far above the
rest keeps that margin, which rank fusion throws away. Distribution-based score fusion scales each
side by its own mean and spread instead of its extremes, so one outlying candidate does not squash
the rest. benchmarks/hybrid.py and benchmarks/fusion.py measure them."""

from __future__ import annotations

RRF_K = 60  # the constant of the original paper; benchmarks/hybrid.py measures others


def reciprocal_rank_fusion(rankings: list[list[int]], k: int = RRF_K,
                           weights: list[float] | None = None) -> list[tuple[int, float]]:
    """(id, fused score) best first: each ranking adds weight / (k + rank) for the ids it holds
    (rank 1 is its first). Ties keep the order in which ids were first seen."""
    weights = weights or [1.0] * len(rankings)
    scores: dict[int, float] = {}
    for ranking, weight in zip(rankings, weights):
        for rank, item in enumerate(ranking, start=1):
            scores[item] = scores.get(item, 0.0) + weight / (k + rank)
    return sorted(scores.items(), key=lambda kv: -kv[1])


def relative_score_fusion(rankings: list[list[tuple[int, float]]], weights: list[float]) -> list[tuple[int, float]]:
    """(id, fused score) best first: each list's scores min-max scaled to [0, 1] over its own
    candidates (an id a list lacks scores 0 there), then summed with the weights. Unlike rank
    fusion, a side that separates its top hit clearly from the rest keeps that margin."""
    scores: dict[int, float] = {}
    for ranking, weight in zip(rankings, weights):
        if not ranking:
            continue
        values = [s for _, s in ranking]
        low, high = min(values), max(values)
        span = high - low
        for item, s in ranking:
            scaled = (s - low) / span if span > 0 else 1.0
            scores[item] = scores.get(item, 0.0) + weight * scaled
        for item, _ in ranking:
            scores.setdefault(item, 0.0)
    return sorted(scores.items(), key=lambda kv: -kv[1])


def distribution_score_fusion(rankings: list[list[tuple[int, float]]], weights: list[float]) -> list[tuple[int, float]]:
    """(id, fused score) best first: each list's scores mapped from [mean - 3 sd, mean + 3 sd] over its
    own candidates to [0, 1] (not clipped), then summed with the weights; an id a list lacks scores 0
    there. A list of one candidate, or of equal scores, gives each 1."""
    scores: dict[int, float] = {}
    for ranking, weight in zip(rankings, weights):
        if not ranking:
            continue
        values = [s for _, s in ranking]
        mean = sum(values) / len(values)
        sd = (sum((v - mean) ** 2 for v in values) / len(values)) ** 0.5
        for item, s in ranking:
            scaled = (s - mean + 3 * sd) / (6 * sd) if sd > 0 else 1.0
            scores[item] = scores.get(item, 0.0) + weight * scaled
    return sorted(scores.items(), key=lambda kv: -kv[1])
