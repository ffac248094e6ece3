import math

import pytest

from sbsearch.quality.metrics import dedupe, mrr_at_k, ndcg_at_k, overlap_at_k, recall_at_k, summarize


def test_mrr_first_relevant_rank():
    assert mrr_at_k(["x", "y", "a"], {"a"}, 10) == pytest.approx(1 / 3)
    assert mrr_at_k(["a", "b"], {"b", "a"}, 10) == 1.0


def test_mrr_and_recall_zero_when_nothing_relevant_retrieved():
    assert mrr_at_k(["x", "y"], {"a"}, 10) == 0.0
    assert recall_at_k(["x", "y"], {"a"}, 10) == 0.0
    assert ndcg_at_k(["x", "y"], {"a"}, 10) == 0.0


def test_cutoff_is_respected():
    ranking = [str(i) for i in range(20)]
    assert mrr_at_k(ranking, {"10"}, 10) == 0.0
    assert mrr_at_k(ranking, {"9"}, 10) == pytest.approx(0.1)
    assert recall_at_k(ranking, {"0", "5", "15"}, 5) == pytest.approx(1 / 3)
    assert recall_at_k(ranking, {"0", "5", "15"}, 10) == pytest.approx(2 / 3)


def test_ndcg_binary_hand_computed():
    # relevant at ranks 2 and 4 of 2 relevant: DCG = 1/log2(3) + 1/log2(5); IDCG = 1 + 1/log2(3)
    got = ndcg_at_k(["x", "a", "y", "b"], {"a", "b"}, 10)
    want = (1 / math.log2(3) + 1 / math.log2(5)) / (1 + 1 / math.log2(3))
    assert got == pytest.approx(want)


def test_ndcg_graded_hand_computed():
    # grades a=3, b=1; ranking b, a: DCG = 1 + 3/log2(3); IDCG = 3 + 1/log2(3)
    got = ndcg_at_k(["b", "a"], {"a": 3, "b": 1}, 10)
    assert got == pytest.approx((1 + 3 / math.log2(3)) / (3 + 1 / math.log2(3)))
    assert ndcg_at_k(["a", "b"], {"a": 3, "b": 1}, 10) == pytest.approx(1.0)


def test_ties_collapse_to_best_chunk_of_a_document():
    # two chunks of the same document: the document counts once, at its best rank
    ranking = dedupe(["doc1", "doc1", "doc2", "doc3"])
    assert ranking == ["doc1", "doc2", "doc3"]
    assert mrr_at_k(ranking, {"doc2"}, 10) == 0.5


def test_summarize_means_and_skips_unjudged_queries():
    rankings = {"q1": ["a", "b"], "q2": ["c", "d"], "q3": ["z"]}
    qrels = {"q1": {"a"}, "q2": {"d"}}
    s = summarize(rankings, qrels)
    assert s["queries"] == 2
    assert s["mrr@10"] == pytest.approx((1 + 0.5) / 2)
    assert s["recall@1"] == pytest.approx(0.5)


def test_overlap():
    assert overlap_at_k(["a", "b", "c"], ["c", "a", "x"], 3) == pytest.approx(2 / 3)
    assert overlap_at_k([], [], 10) == 0.0
