"""Two ways to make one ranking of the vector and the lexical (BM25) candidates.

Reciprocal-rank fusion (Cormack, Clarke & Büttcher 2009) uses ranks alone: BM25 scores and cosine
similarities live on different scales, ranks do not. Relative score fusion scales each side's scores
to [0, 1] over its candidates and adds them with weights: a side whose top hit stands far above the
rest keeps that margin, which rank fusion throws away. Distribution-based score fusion scales each
side by its own mean and spread instead of its extremes, so one outlying candidate does not squash
the rest. Adaptive fusion is relative score fusion whose lexical weight follows, question by
question, how far the best lexical hit stands above the next ones: a question that shares its rare
words with one passage (a JSQuAD question, a code) leans on the words, a paraphrase whose words
score many passages alike leans on the vectors. benchmarks/hybrid.py and benchmarks/fusion.py
measure them."""

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


PEAK_OF = 10  # lexical hits whose scores tell how far the best stands out


def lexical_peak(scores: list[float]) -> float:
    """(best - mean of the next PEAK_OF - 1) / best, in [0, 1]: 0 when the best lexical hit scores like
    the ones after it (or is alone), near 1 when it stands far above them. Scale-free, so a reader's
    BM25 (over the documents they may read) gives their own peak."""
    top = scores[:PEAK_OF]
    if len(top) < 2 or top[0] <= 0:
        return 0.0
    return (top[0] - sum(top[1:]) / (len(top) - 1)) / top[0]


def adaptive_score_fusion(vector: list[tuple[int, float]], lexical: list[tuple[int, float]], base: float,
                          per_peak: float, power: float = 1.0) -> list[tuple[int, float]]:
    """relative_score_fusion of the two sides with the lexical weight base + per_peak x the lexical
    peak to the given power (clipped to [0, 1]) and the vector weight the rest. A power above 1
    keeps the words' weight low for the middling peaks of paraphrases and raises it where one
    passage stands far above the rest."""
    weight = min(max(base + per_peak * lexical_peak([s for _, s in lexical]) ** power, 0.0), 1.0)
    return relative_score_fusion([vector, lexical], [1.0 - weight, weight])
