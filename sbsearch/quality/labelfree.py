"""How much of a reference model's retrieval a candidate keeps, measured without labels.

A company has documents but no judged questions. So the reference model (e.g. the uncut model a
pruned one was made from) plays the judge: pseudo-queries are drawn from the documents
themselves, both models rank the documents for each, and the candidate's top-10 is scored with
the reference's own top-10 as graded relevance (the reference's first document is worth 10, its
tenth 1). That nDCG@10 is 1.0 for a candidate that ranks exactly like the reference.

Japanese (and Chinese) have no spaces between words and end sentences with "。" and no space: cut
as English is, a whole Japanese paragraph was one sentence of one "word", so every pseudo-query was
a paragraph (~170 characters on JSQuAD) and an index of short sentences yielded almost none. A
sentence with CJK letters is therefore split after 。！？ and measured in two-letter units (a Japanese
word is about two characters long), so a Japanese pseudo-query is, like an English one, a sentence
of at most `max_words` words: about 32 characters, the length of a JSQuAD question. It put tune's
estimate within 2 points of the labels on JSQuAD and JSTS, where it read 4-8 points high before
(benchmarks/tune_japanese.py).

The document a pseudo-query was cut from is left out of both rankings: any model finds the
passage that contains the query's exact words, so keeping it would flatter weak candidates.

A second view asks the task a labelled set asks, with the documents as their own labels
(known-item search): the query is the sentence with every other word dropped, the relevant
document is the one it came from, and the candidate's nDCG@10 is given as a share of the
reference's on the same queries. benchmarks/pruning_table.py reports how well each view tracks
labelled nDCG@10 over many models (docs/PRUNING.md).

Agreement is a stricter scale than quality: MiniLM-L6 keeps ~97% of the full model's labelled
nDCG@10 while agreeing with only ~70% of its ranking. `calibrated_pct` maps agreement to an
estimated share of the reference's nDCG@10 with a curve fitted over the pruning table's models,
where both are measured (benchmarks/pruning_table.py; the fit and its error are in docs/PRUNING.md).

Pure numpy over encode functions, so the same estimate serves `sbsearch tune` (sbsearch
embedders), the pruning benchmark (sentence-transformers models) and the int8 models.
"""

from __future__ import annotations

import random
import re
from dataclasses import dataclass
from typing import Callable, Sequence

import numpy as np

from ..errors import SbsearchError
from ..lexical.analysis import CJK_LETTERS, CJK_RUN
from .metrics import dedupe, ndcg_at_k, overlap_at_k

Encode = Callable[[list[str]], np.ndarray]

_SENTENCE = re.compile(r"(?<=[.!?。！？])\s+|(?<=[。！？])(?![」』）)])|\n+")
_WORD = re.compile(r"\w+", re.UNICODE)
# A unit of a sentence with CJK letters: two CJK letters, or a run of anything else but space
_CJK_UNIT = re.compile(f"[{CJK_LETTERS}]{{1,2}}|[^\\s{CJK_LETTERS}]+")


def _cjk_units(sentence: str) -> list[re.Match]:
    """The word-like units of a sentence with CJK letters, those with a letter or digit only."""
    return [m for m in _CJK_UNIT.finditer(sentence) if _WORD.search(m.group())]


@dataclass
class PseudoQuery:
    text: str
    source: str  # the document it was cut from (excluded from both rankings)

    @property
    def partial(self) -> str:
        """The known-item form: every other word, so that no passage holds the query verbatim."""
        if CJK_RUN.search(self.text):
            units = [m.group() for m in _cjk_units(self.text)]
            return "".join(units[::2]) if len(units) >= 6 else self.text
        words = self.text.split()
        return " ".join(words[::2]) if len(words) >= 6 else self.text


MIN_DOCUMENTS = 30  # three times the top-10: with fewer, any two rankings of the documents agree


def require_enough_documents(passage_doc: Sequence[str]) -> None:
    n = len(set(passage_doc))
    if n < MIN_DOCUMENTS:
        raise SbsearchError(f"the index holds {n} documents; the label-free estimate needs at least "
                            f"{MIN_DOCUMENTS} (with fewer, any two rankings of them agree)")


def pseudo_queries(passages: Sequence[str], passage_doc: Sequence[str], n: int = 200, seed: int = 0,
                   min_words: int = 5, max_words: int = 16) -> list[PseudoQuery]:
    """Up to n query-like texts cut from the passages, spread over the documents: a sentence, or
    the first `max_words` words of a longer one. Deterministic for a given seed."""
    by_doc: dict[str, list[str]] = {}
    for text, doc in zip(passages, passage_doc):
        for sent in _SENTENCE.split(text):
            # English keeps its own cut, byte for byte: the calibration curve was fitted on it
            if CJK_RUN.search(sent):
                units = _cjk_units(sent)
                if len(units) >= min_words:
                    whole = len(units) <= max_words
                    by_doc.setdefault(doc, []).append((sent if whole else sent[:units[max_words - 1].end()]).strip())
                continue
            words = sent.split()
            if len(_WORD.findall(sent)) >= min_words:
                by_doc.setdefault(doc, []).append(" ".join(words[:max_words]))
    rng = random.Random(seed)
    docs = sorted(by_doc)
    rng.shuffle(docs)
    pools = {d: rng.sample(by_doc[d], len(by_doc[d])) for d in docs}
    out: list[PseudoQuery] = []
    seen: set[str] = set()
    while len(out) < n and any(pools.values()):
        for d in docs:  # round robin: every document gets a query before any gets a second
            while pools[d] and len(out) < n:
                text = pools[d].pop()
                if text not in seen:  # each text once, whichever document had it first
                    seen.add(text)
                    out.append(PseudoQuery(text, d))
                    break
    return out


def rank_documents(qvecs: np.ndarray, pvecs: np.ndarray, passage_doc: Sequence[str],
                   exclude: Sequence[str | None], k: int = 10) -> list[list[str]]:
    """Top-k documents per query (a document at its best passage), `exclude[i]` left out."""
    sims = np.asarray(qvecs, dtype=np.float32) @ np.asarray(pvecs, dtype=np.float32).T
    depth = min(sims.shape[1], max(4 * k, 50))
    out = []
    for i in range(len(sims)):
        top = np.argpartition(-sims[i], depth - 1)[:depth] if depth < sims.shape[1] else np.arange(sims.shape[1])
        top = top[np.argsort(-sims[i][top])]
        docs = [d for d in dedupe(passage_doc[j] for j in top) if d != exclude[i]]
        out.append(docs[:k])
    return out


def reference_graded_ndcg(candidate: Sequence[str], reference: Sequence[str], k: int = 10) -> float:
    """nDCG@k of `candidate` when the reference's top-k are the relevant documents, graded k..1."""
    grades = {d: float(k - i) for i, d in enumerate(reference[:k])}
    return ndcg_at_k(list(candidate), grades, k) if grades else 0.0


# 1 - share = C * (1 - agreement) ** P, fitted by benchmarks/pruning_table.py on the first MiniLM-L6 rows
# of the pruning table measured against MiniLM-L6 (its untrained 3-layer cut, `best` and `best-long`
# 3-layer models; StackFAQ and sample_docs: 6 points, mean absolute error 4.3 points); docs/PRUNING.md
# shows how this shipped curve does on every row measured since.
CALIBRATION = {"c": 1.5529, "p": 2.5915}


def calibrated_pct(agreement_pct: float, calibration: dict | None = None) -> float:
    """Estimated nDCG@10 as a percentage of the reference's, from the agreement estimate."""
    cal = calibration or CALIBRATION
    gap = max(0.0, 1.0 - agreement_pct / 100.0)
    return round(100.0 * max(0.0, 1.0 - cal["c"] * gap ** cal["p"]), 1)


def fit_calibration(points: Sequence[tuple[float, float]]) -> dict:
    """Least squares of log(1 - share) on log(1 - agreement) over (agreement_pct, share_pct) points
    where both gaps are positive; returns c, p, the points used and the mean absolute error in points."""
    pts = [(a / 100.0, s / 100.0) for a, s in points if a < 100 and s < 100]
    if len(pts) < 3:
        raise ValueError("need at least 3 points below 100% to fit the calibration")
    x = np.log([1 - a for a, _ in pts])
    y = np.log([1 - s for _, s in pts])
    p, logc = np.polyfit(x, y, 1)
    cal = {"c": round(float(np.exp(logc)), 4), "p": round(float(p), 4), "points": len(pts)}
    errors = [abs(calibrated_pct(100 * a, cal) - 100 * s) for a, s in
              [(a / 100.0, s / 100.0) for a, s in points]]
    cal["mean_abs_error_pct"] = round(float(np.mean(errors)), 2)
    return cal


# The uncertainty of an estimate: a percentile bootstrap of the mean agreement over the pseudo-queries
# (each resample draws as many queries, with replacement), mapped through the calibration curve
# (monotone, so the ends map to the ends). It states how much the estimate would move with another
# draw of pseudo-queries from the same documents; it does not include the calibration's own error
# (the curve is fitted on other corpora; docs/PRUNING.md reports how often labels fall inside).
INTERVAL_LEVEL = 90
INTERVAL_RESAMPLES = 1000


def bootstrap_mean_interval(values: Sequence[float], level: float = INTERVAL_LEVEL,
                            resamples: int = INTERVAL_RESAMPLES, seed: int = 0) -> tuple[float, float]:
    """(low, high) percentile bootstrap interval of the mean of `values` at `level` percent."""
    x = np.asarray(values, dtype=np.float64)
    if len(x) == 0:
        return (float("nan"), float("nan"))
    rng = np.random.default_rng(seed)
    means = x[rng.integers(0, len(x), size=(resamples, len(x)))].mean(axis=1)
    tail = (100.0 - level) / 2
    lo, hi = np.percentile(means, [tail, 100.0 - tail])
    return float(lo), float(hi)


def interval_fields(per_query: Sequence[float], level: float = INTERVAL_LEVEL,
                    resamples: int = INTERVAL_RESAMPLES, calibration: dict | None = None) -> dict:
    """The interval of an estimate from its per-query reference-graded nDCG@10 values: on the
    agreement scale and on the estimate's (calibrated) scale."""
    lo, hi = bootstrap_mean_interval(per_query, level, resamples)
    return {"agreement_interval_pct": [round(100 * lo, 1), round(100 * hi, 1)],
            "interval_pct": [calibrated_pct(100 * lo, calibration), calibrated_pct(100 * hi, calibration)],
            "interval_level": level, "interval_resamples": resamples}


def estimate(reference_rankings: list[list[str]], candidate_rankings: list[list[str]], k: int = 10,
             known_item: tuple[list[list[str]], list[list[str]], list[str]] | None = None) -> dict:
    """The label-free estimate from two sets of rankings of the same pseudo-queries (source
    documents excluded); known_item = (reference rankings, candidate rankings, source documents)
    of the partial queries, source documents included."""
    pairs = [(c, r) for c, r in zip(candidate_rankings, reference_rankings) if r]
    if not pairs:
        return {"queries": 0, "estimate_pct": None}
    ndcg = [reference_graded_ndcg(c, r, k) for c, r in pairs]
    overlap = [overlap_at_k(c, r, k) for c, r in pairs]
    top1 = [1.0 if c[:1] == r[:1] else 0.0 for c, r in pairs]
    out = {
        "queries": len(pairs),
        "ref_ndcg@10": round(float(np.mean(ndcg)), 4),
        "overlap@10": round(float(np.mean(overlap)), 4),
        "top1_agreement": round(float(np.mean(top1)), 4),
        "agreement_pct": round(100 * float(np.mean(ndcg)), 1),
        # the headline: the share of the reference's nDCG@10 that this agreement predicts
        "estimate_pct": calibrated_pct(100 * float(np.mean(ndcg))),
        # a 90% bootstrap interval over the pseudo-queries (see INTERVAL_LEVEL)
        **interval_fields(ndcg),
    }
    if known_item is not None:
        ref_ki, cand_ki, sources = known_item
        r = float(np.mean([ndcg_at_k(x, {s: 1.0}, k) for x, s in zip(ref_ki, sources)]))
        c = float(np.mean([ndcg_at_k(x, {s: 1.0}, k) for x, s in zip(cand_ki, sources)]))
        out.update({"known_item_ndcg@10_reference": round(r, 4), "known_item_ndcg@10": round(c, 4),
                    "known_item_pct": round(100 * c / r, 1) if r else None})
    return out


def estimate_from_encoders(reference: Encode, candidate: Encode, passages: Sequence[str],
                           passage_doc: Sequence[str], queries: Sequence[PseudoQuery] | None = None,
                           reference_passage_vectors: np.ndarray | None = None,
                           candidate_passage_vectors: np.ndarray | None = None, k: int = 10,
                           known_item: bool = False) -> dict:
    """Encode (or take) passage vectors of both models, rank the pseudo-queries, estimate()."""
    queries = list(queries) if queries is not None else pseudo_queries(passages, passage_doc)
    rp = reference_passage_vectors if reference_passage_vectors is not None else reference(list(passages))
    cp = candidate_passage_vectors if candidate_passage_vectors is not None else candidate(list(passages))
    texts = query_texts(queries, known_item)
    return estimate_from_vectors(reference(texts), candidate(texts), rp, cp, passage_doc, queries, k)


def query_texts(queries: Sequence[PseudoQuery], known_item: bool = False) -> list[str]:
    """What to encode for the estimate: every query whole, then (for the known-item view, which
    the benchmark reports and nothing decides on) every query's partial form."""
    return [q.text for q in queries] + ([q.partial for q in queries] if known_item else [])


def estimate_from_vectors(reference_queries: np.ndarray, candidate_queries: np.ndarray,
                          reference_passages: np.ndarray, candidate_passages: np.ndarray,
                          passage_doc: Sequence[str], queries: Sequence[PseudoQuery], k: int = 10) -> dict:
    """estimate() from vectors of query_texts(queries, ...) and of the passages, for both models;
    the known-item view when the query vectors include the partial forms."""
    n = len(queries)
    sources = [q.source for q in queries]
    rq, cq = reference_queries, candidate_queries
    known = None
    if len(rq) == 2 * n:
        keep_all: list[str | None] = [None] * n
        known = (rank_documents(rq[n:], reference_passages, passage_doc, keep_all, k),
                 rank_documents(cq[n:], candidate_passages, passage_doc, keep_all, k), sources)
    return estimate(rank_documents(rq[:n], reference_passages, passage_doc, sources, k),
                    rank_documents(cq[:n], candidate_passages, passage_doc, sources, k), k, known)
