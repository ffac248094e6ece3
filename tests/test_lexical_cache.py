"""The lexical postings kept in memory (store.postings.POSTINGS): a search answered from them equals
FTS5's own bm25() ranking, scores to the last bit, and nothing kept survives a change of what it was
read from (a run that publishes, a rebuilt lexical index, another index at the same path). Real
files, real SQLite FTS5, the fake embedder."""

from __future__ import annotations

import shutil

import numpy as np
import pytest

from sbsearch.index.indexer import Indexer
from sbsearch.index.store import Store
from sbsearch.index.store.tokens import match_phrases, phrase_tokens
from sbsearch.index.store import postings
from sbsearch.index.store.postings import POSTINGS, Occurrences, PostingsCache
from sbsearch.lexical.bm25 import Collection, phrase_scores, rank, rank_sparse
from sbsearch.lexical import match_expression, query_terms

WORDS = ["travel", "receipt", "salary", "laptop", "printer", "vpn", "password", "budget", "policy", "E-4012",
         "通勤手当", "給与", "running", "the", "to"]
QUERIES = ["travel receipt", "salary budget policy", "E-4012 laptop", "通勤手当 給与", "running to the printer",
           "vpn password", "budget", "policy travel the"]


def write_corpus(root, seed: int, n: int = 40) -> None:
    rng = np.random.default_rng(seed)
    root.mkdir(parents=True, exist_ok=True)
    for i in range(n):
        words = rng.choice(WORDS, size=int(rng.integers(3, 30)))
        (root / f"doc-{i:02d}.md").write_text(f"# {rng.choice(WORDS)}\n\n{' '.join(words)}\n", encoding="utf-8")


def answers(store: Store) -> tuple[list, list, bool]:
    """Per query: (the store's answer, FTS5's own bm25() answer), and whether every query was
    answered from memory."""
    mine, fts5, from_memory = [], [], True
    with store.snapshot():
        state = store._lexical_state
        for q in QUERIES:
            match = match_expression(query_terms(q))
            phrases = [(phrase_tokens(text), prefix) for text, prefix in match_phrases(match)]
            from_memory &= store._lexical.answerable_from_memory(phrases, state)
            for limit in (3, 50):  # 3: fewer than the matches, so only the best are ranked (ties included)
                mine.append(store.lexical_search(match, limit))
                fts5.append(store._whole_table_bm25(match, limit, None))
    return mine, fts5, from_memory


@pytest.mark.parametrize("lengths_by_id", [True, False], ids=["lengths by row id", "lengths searched"])
def test_answers_from_memory_equal_fts5_and_follow_every_change(tmp_path, isolated_home, monkeypatch, lengths_by_id):
    if not lengths_by_id:  # as for an index whose row ids have grown sparse
        monkeypatch.setattr(postings, "DENSE_IDS_PER_ROW", 0)
        monkeypatch.setattr(postings, "DENSE_IDS_SLACK", 0)
    POSTINGS.clear()
    root, index = tmp_path / "docs", tmp_path / "idx"
    write_corpus(root, seed=1)
    Indexer(index, "fake").run([root])
    store = Store(index)
    for _ in range(3):
        mine, fts5, from_memory = answers(store)
        assert mine == fts5 and any(fts5)
    assert from_memory, "the third round should have been answered from memory"
    # a run that changes the words: the next answers are the new index's, never the kept ones
    write_corpus(root, seed=2)
    Indexer(index, "fake").run([root])
    mine, fts5, from_memory = answers(store)
    assert mine == fts5 and not from_memory
    # a lexical index rebuilt in place (check --repair) publishes nothing, and still counts
    before = store._lexical_state
    store.rebuild_lexical()
    assert store._lexical_state[2] == before[2] + 1 and store._lexical_state[:2] == before[:2]
    assert not answers(store)[2]


def test_a_copy_or_a_new_index_at_the_same_path_never_gets_anothers_postings(tmp_path, isolated_home):
    POSTINGS.clear()
    root, index = tmp_path / "docs", tmp_path / "idx"
    write_corpus(root, seed=3)
    Indexer(index, "fake").run([root])
    for _ in range(3):
        answers(Store(index))
    assert answers(Store(index))[2]
    # the same generation number, other words: a new index where the old one was
    shutil.rmtree(index)
    shutil.rmtree(root)
    write_corpus(root, seed=4)
    Indexer(index, "fake").run([root])
    mine, fts5, from_memory = answers(Store(index))
    assert mine == fts5 and not from_memory
    # a copy: its own file, so its own postings
    shutil.copytree(index, tmp_path / "copy")
    assert not answers(Store(tmp_path / "copy"))[2]


def test_summing_by_row_id_ranks_as_the_union_does():
    """rank_sparse (each phrase's rows and terms, summed in a buffer by row id) gives rank()'s
    answer, scores to the bit, at limits below, at and above the rows matched, ties included."""
    rng = np.random.default_rng(0)
    collection = Collection(500, 500 * 40)
    buffer = np.zeros(600)
    for trial in range(200):
        phrases = int(rng.integers(1, 6))
        rows = [np.unique(rng.integers(1, 600, size=int(rng.integers(0, 80)))) for _ in range(phrases)]
        # few distinct counts and lengths: many equal scores, so ties are tested
        counts = [rng.integers(1, 3, size=len(r)).astype(np.float64) for r in rows]
        length_of = rng.integers(20, 23, size=600)
        terms = [phrase_scores(c, length_of[r], len(r), collection) for r, c in zip(rows, counts)]
        union = np.unique(np.concatenate(rows))
        freqs = []
        for r, c in zip(rows, counts):
            f = np.zeros(len(union))
            f[np.searchsorted(union, r)] = c
            freqs.append(f)
        for limit in (1, 3, 10, 50, 400):
            expected = rank(union, length_of[union], freqs, [len(r) for r in rows], collection, limit)
            assert rank_sparse(rows, terms, limit, buffer) == expected, (trial, limit)
        assert not buffer.any()  # left zeros for the next search


def test_the_cache_keeps_within_its_budget_and_drops_the_least_recently_used():
    occ = lambda n: Occurrences(np.arange(n, dtype=np.int64), np.ones(n))  # noqa: E731
    cache = PostingsCache(budget_bytes=4 * occ(100).nbytes)
    for i in range(10):
        cache.put(("k", i), occ(100))
        cache.get(("k", 0))  # the first one is used all along
        assert cache.used <= cache.budget
    assert cache.get(("k", 0)) is not None and cache.get(("k", 9)) is not None and cache.get(("k", 1)) is None
    cache.put(("big",), occ(10_000))  # more than a quarter of the budget: not kept
    assert cache.get(("big",)) is None and cache.used <= cache.budget
    assert [cache.ask(("q",)) for _ in range(3)] == [1, 2, 3]


def test_without_a_budget_every_answer_is_fts5s(tmp_path, isolated_home, monkeypatch):
    monkeypatch.setattr(POSTINGS, "budget", 0)
    POSTINGS.clear()
    root, index = tmp_path / "docs", tmp_path / "idx"
    write_corpus(root, seed=5)
    Indexer(index, "fake").run([root])
    for _ in range(3):
        mine, fts5, from_memory = answers(Store(index))
        assert mine == fts5 and not from_memory


def test_a_narrowing_filter_is_answered_from_memory_as_fts5_answers_it(tmp_path, isolated_home, monkeypatch):
    """A folder or path filter with no reader: once a query's phrases are kept, the answer comes
    from memory with the filter's allowed chunk ids (as the searcher passes them), equal to FTS5's
    bm25() joined to the filter, scores to the bit; without the ids, SQLite is asked as before."""
    from sbsearch.index.filters import DocumentFilter

    POSTINGS.clear()
    root, index = tmp_path / "docs", tmp_path / "idx"
    write_corpus(root, seed=5)
    Indexer(index, "fake").run([root])
    store = Store(index)
    narrowing = DocumentFilter(paths=("doc-1*", "doc-3*"))
    allowed = store.filtered_chunk_ids(narrowing)
    assert 0 < len(allowed) < store.chunk_count()
    matches = [match_expression(query_terms(q)) for q in QUERIES]
    with store.snapshot():
        fts5 = [store._whole_table_bm25(m, limit, narrowing) for m in matches for limit in (3, 50)]
        for _ in range(2):  # asked twice: kept
            assert [store.lexical_search(m, limit, narrowing, allowed) for m in matches for limit in (3, 50)] == fts5
    monkeypatch.setattr(store, "_whole_table_bm25", lambda *a: pytest.fail("FTS5 asked for kept phrases"))
    with store.snapshot():
        assert [store.lexical_search(m, limit, narrowing, allowed) for m in matches for limit in (3, 50)] == fts5
        # every answer inside the filter
        assert {cid for answer in fts5 for cid, _ in answer} <= set(allowed.tolist()) and any(fts5)
