"""The label-free estimate and the frontier: pure numpy/Python, no model."""

from __future__ import annotations

import numpy as np
import pytest

from sbsearch.quality import labelfree
from sbsearch.model_choice.frontier import pareto


def _corpus(n_docs: int = 30, per_doc: int = 3):
    passages, docs = [], []
    for d in range(n_docs):
        for p in range(per_doc):
            passages.append(f"Document {d} part {p} explains topic {d % 7} in plain words for readers. "
                            f"A second sentence of part {p} about subject {d % 5} and more words follows.")
            docs.append(f"doc{d}.md")
    return passages, docs


def _vectors(texts: list[str], dim: int = 64, noise: float = 0.0, seed: int = 0) -> np.ndarray:
    """Hashed bag of words (deterministic across processes), plus optional noise: a weaker 'model'."""
    import hashlib

    rng = np.random.default_rng(seed)
    out = np.zeros((len(texts), dim), dtype=np.float32)
    for i, t in enumerate(texts):
        for w in t.lower().split():
            out[i, int(hashlib.md5(w.encode()).hexdigest(), 16) % dim] += 1.0
    out += noise * rng.standard_normal(out.shape).astype(np.float32)
    return out / np.linalg.norm(out, axis=1, keepdims=True)


def test_pseudo_queries_are_deterministic_and_spread_over_documents():
    passages, docs = _corpus()
    a = labelfree.pseudo_queries(passages, docs, n=30, seed=1)
    b = labelfree.pseudo_queries(passages, docs, n=30, seed=1)
    assert [q.text for q in a] == [q.text for q in b]
    assert len({q.source for q in a}) == 30  # round robin: one query per document first
    assert all(len(q.text.split()) <= 16 for q in a)
    assert len(labelfree.pseudo_queries(passages, docs, n=30, seed=2)) == 30


def test_partial_query_drops_every_other_word():
    q = labelfree.PseudoQuery("one two three four five six seven", "d")
    assert q.partial == "one three five seven"
    assert labelfree.PseudoQuery("too short here", "d").partial == "too short here"


def test_reference_graded_ndcg():
    ref = [f"d{i}" for i in range(10)]
    assert labelfree.reference_graded_ndcg(ref, ref) == pytest.approx(1.0)
    assert labelfree.reference_graded_ndcg(list(reversed(ref)), ref) < 1.0
    assert labelfree.reference_graded_ndcg(["x", "y"], ref) == 0.0


def test_rank_documents_excludes_the_source_document():
    pv = np.eye(4, dtype=np.float32)
    docs = ["a", "a", "b", "c"]
    ranks = labelfree.rank_documents(np.array([[1, 0.5, 0.2, 0]], dtype=np.float32), pv, docs, ["a"], k=3)
    assert ranks == [["b", "c"]]
    ranks = labelfree.rank_documents(np.array([[1, 0.5, 0.2, 0]], dtype=np.float32), pv, docs, [None], k=3)
    assert ranks == [["a", "b", "c"]]


def test_estimate_is_100_for_the_reference_and_falls_with_a_weaker_model():
    passages, docs = _corpus()
    ref = lambda t: _vectors(t)  # noqa: E731
    same = labelfree.estimate_from_encoders(ref, ref, passages, docs, known_item=True)
    assert same["agreement_pct"] == same["estimate_pct"] == pytest.approx(100.0)
    assert same["known_item_pct"] == pytest.approx(100.0)
    slightly = labelfree.estimate_from_encoders(ref, lambda t: _vectors(t, noise=0.05, seed=3), passages, docs,
                                                      known_item=True)
    badly = labelfree.estimate_from_encoders(ref, lambda t: _vectors(t, noise=2.0, seed=3), passages, docs,
                                                   known_item=True)
    assert badly["agreement_pct"] < slightly["agreement_pct"] < 100.0
    assert badly["estimate_pct"] < slightly["estimate_pct"] <= 100.0
    assert badly["known_item_pct"] < slightly["known_item_pct"]


def test_calibration_is_monotone_and_fit_recovers_its_curve():
    values = [labelfree.calibrated_pct(a) for a in range(0, 101, 5)]
    assert values == sorted(values) and values[-1] == 100.0 and values[0] >= 0.0
    truth = {"c": 1.2, "p": 3.0}
    points = [(a, 100 * (1 - truth["c"] * (1 - a / 100) ** truth["p"])) for a in (40, 55, 70, 85, 95)]
    fit = labelfree.fit_calibration(points)
    assert fit["c"] == pytest.approx(1.2, rel=0.01) and fit["p"] == pytest.approx(3.0, rel=0.01)
    assert fit["mean_abs_error_pct"] < 0.1
    with pytest.raises(ValueError):
        labelfree.fit_calibration([(100, 100), (50, 90)])


def test_pareto_frontier():
    pts = {"slow-good": (0.95, 10.0), "fast-ok": (0.90, 40.0), "dominated": (0.85, 30.0), "fastest": (0.70, 80.0)}
    assert sorted(pareto(pts)) == ["fast-ok", "fastest", "slow-good"]
    assert pareto({"a": (1.0, 1.0), "b": (1.0, 1.0)}) == ["a", "b"]  # ties dominate nobody


def test_known_item_view_only_when_asked_and_small_corpora_are_refused():
    passages, docs = _corpus()
    est = labelfree.estimate_from_encoders(_vectors, _vectors, passages, docs)
    assert "known_item_pct" not in est and est["estimate_pct"] == pytest.approx(100.0)
    labelfree.require_enough_documents(docs)  # 30 documents: enough
    from sbsearch.errors import SbsearchError

    with pytest.raises(SbsearchError, match="holds 29 documents"):
        labelfree.require_enough_documents(docs[:-3])


def test_bootstrap_interval_brackets_the_estimate_and_narrows_with_more_queries():
    rng = np.random.default_rng(1)
    few = rng.uniform(0.4, 1.0, 50)
    many = rng.uniform(0.4, 1.0, 2000)
    lo, hi = labelfree.bootstrap_mean_interval(few)
    assert lo < few.mean() < hi
    lo2, hi2 = labelfree.bootstrap_mean_interval(many)
    assert (hi2 - lo2) < (hi - lo) / 3  # ~1/sqrt(40) as wide
    assert labelfree.bootstrap_mean_interval(few) == (lo, hi)  # seeded: the same interval every time
    fields = labelfree.interval_fields(few)
    a_lo, a_hi = fields["agreement_interval_pct"]
    assert fields["interval_pct"] == [labelfree.calibrated_pct(100 * lo), labelfree.calibrated_pct(100 * hi)]
    assert a_lo <= round(100 * few.mean(), 1) <= a_hi and fields["interval_level"] == 90
    assert labelfree.interval_fields([1.0] * 20)["interval_pct"] == [100.0, 100.0]


def test_japanese_pseudo_queries_are_sentences_the_length_of_a_question():
    # Japanese ends a sentence with 。 and no space and has no spaces between words: cut as English,
    # this paragraph was one pseudo-query of 120+ characters, and a one-sentence document none at all
    sentence = "経費の精算は月末までに所定の申請書を上長に提出し、承認を受けてから経理部へ回してください。"
    paragraph = "出張の前には旅費の見積もりを作成します。" + sentence + "「領収書は。」と聞かれたら原本を添付します。"
    short = ["会議室の予約は総務部のシステムから行います。", "新しい社員証は受付で受け取れます。"]
    passages = [paragraph] * 2 + short
    docs = ["a.md", "b.md", "c.md", "d.md"]
    queries = labelfree.pseudo_queries(passages, docs, n=40)
    texts = {q.text for q in queries}
    assert "出張の前には旅費の見積もりを作成します。" in texts  # split after 。 with no space
    assert "「領収書は。」と聞かれたら原本を添付します。" in texts  # not inside a quotation
    assert {q.source for q in queries} == set(docs)  # one-sentence documents yield their sentence
    cut = next(t for t in texts if sentence.startswith(t[:10]))
    assert sentence.startswith(cut) and 30 <= len(cut) < len(sentence)  # 16 units of two letters (、 ends one)
    assert all(len(q.text) <= 34 for q in queries)  # 32 letters and a bracket or two
    # an English text is cut exactly as before
    english = labelfree.pseudo_queries(["One two three four five six. Seven eight nine ten eleven."], ["e"], n=5)
    assert sorted(q.text for q in english) == ["One two three four five six.", "Seven eight nine ten eleven."]
    assert labelfree.PseudoQuery(sentence[:24], "a").partial == "経費算はまで定の書をに提"  # every other unit
