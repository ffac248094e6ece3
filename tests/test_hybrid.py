"""Hybrid search on real files, real SQLite FTS5 and real FAISS, through the CLI: identifiers,
filters before ranking, Japanese text, hostile FTS5 syntax, snippets, and the lexical index kept
consistent with the chunks (modify, delete, swap, migration of an old index, check --repair).
The model is the fake embedder: what is tested here is the words side and its fusion."""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from sbsearch.cli import cli
from sbsearch.errors import SbsearchError
from sbsearch.index.location import open_store
from sbsearch.index.store import Store
from sbsearch.lexical import make_snippet, query_terms
from sbsearch.search import Searcher
from sbsearch.search.fusion import reciprocal_rank_fusion

FILLER = ("Our offices follow the usual rules for travel, expenses, laptops and security. Employees book trips "
          "through the travel desk and file receipts within thirty days. ")


def invoke(*args, ok: bool = True):
    args = [str(a) for a in args]
    # `-i URL` in these tests means the PostgreSQL store: the CLI takes it as --store
    args = ["--store" if a == "-i" and i + 1 < len(args) and args[i + 1].startswith("postgresql://") else a
            for i, a in enumerate(args)]
    result = CliRunner(env={"COLUMNS": "200"}).invoke(cli, args)
    if ok:
        assert result.exit_code == 0, result.output
    return result


def json_lines(result) -> list[dict]:
    return [json.loads(line) for line in result.output.splitlines() if line.strip()]


@pytest.fixture
def docs(tmp_path) -> Path:
    root = tmp_path / "docs"
    (root / "support").mkdir(parents=True)
    (root / "general").mkdir()
    (root / "ja").mkdir()
    for i in range(30):
        (root / "general" / f"note-{i:02d}.md").write_text(
            f"# Note {i}\n\n" + FILLER * 3 + f"This note number {i} is about topic {i % 7}.\n", encoding="utf-8")
    (root / "support" / "error-codes.md").write_text(
        "# Device error codes\n\n## Update errors\n\n" + FILLER
        + "Error E-4012 means the update package does not fit this device. Ask the customer for the serial "
          "number of the HX-220L and send the matching package.\n", encoding="utf-8")
    (root / "support" / "parts.txt").write_text(
        "Service parts price list\n\nPart PX-7714 battery pack for HX-220L, 89 EUR.\n", encoding="utf-8")
    (root / "ja" / "commute-sjis.txt").write_bytes(
        "通勤手当について\n\n通勤手当は、自宅から事務所までの定期券代を毎月支給します。上限は月額五万円です。\n".encode("shift_jis"))
    (root / "ja" / "vpn-ja.md").write_text(
        "# VPN接続の手順\n\n社外から社内システムを使うときは、VPNに接続してください。パスワードを忘れた場合はヘルプデスクへ連絡してください。\n",
        encoding="utf-8")
    return root


@pytest.fixture(params=["sqlite", "postgres"])
def index(request, docs, tmp_path) -> Path | str:
    """The sample index in a folder (SQLite + FAISS) or in a fresh PostgreSQL database (pgvector)."""
    idx = tmp_path / "idx" if request.param == "sqlite" else request.getfixturevalue("pg_url")
    invoke("index", docs, "-i", idx, "-m", "fake", "-q")
    return idx


def sqlite_only(index) -> None:
    if not isinstance(index, Path):
        pytest.skip("about the SQLite store's own files")


def query(index, text, *args) -> list[dict]:
    return json_lines(invoke("query", text, "-i", index, "--json", *args))


@pytest.mark.parametrize("mode", ["hybrid", "lexical"])
def test_an_identifier_ranks_the_documents_containing_it_first(index, mode):
    hits = query(index, "E-4012", "--mode", mode, "-k", "5")
    assert hits[0]["path"].endswith("support/error-codes.md")
    both = query(index, "HX-220L", "--mode", mode, "-k", "5")
    assert {Path(h["path"]).name for h in both[:2]} == {"error-codes.md", "parts.txt"}


def test_identifiers_first_even_when_the_vectors_disagree(index):
    """The fake model's vectors know nothing; rank fusion alone could put a vector-only hit first.
    A chunk holding the code still comes first."""
    searcher = Searcher(index)
    for code, name in [("PX-7714", "parts.txt"), ("e-4012", "error-codes.md")]:
        top = searcher.search(code, 3, mode="hybrid")[0]
        assert Path(top.path).name == name and top.lexical_rank is not None


def test_japanese_query_finds_japanese_documents(index):
    hits = query(index, "通勤手当はいくらですか", "--mode", "lexical", "-k", "3")
    assert hits and hits[0]["path"].endswith("ja/commute-sjis.txt")  # stored as Shift_JIS
    snippet = hits[0]["snippet"]
    start, end = hits[0]["highlights"][0]
    assert snippet[start:end] == "通勤手当"
    hits = query(index, "VPNのパスワードを忘れました", "-k", "3")
    assert hits[0]["path"].endswith("ja/vpn-ja.md")


def test_stop_words_rank_but_are_neither_highlighted_nor_a_query_alone(tmp_path):
    """Both notes hold "letter" and "manager"; the query's stop words tell the one that says what it
    says. Without them BM25 prefers the shorter note."""
    root = tmp_path / "notes"
    root.mkdir()
    (root / "long.txt").write_text("A letter to the manager.\n", encoding="utf-8")
    (root / "short.txt").write_text("Manager letter.\n", encoding="utf-8")
    for i in range(8):
        (root / f"other-{i}.txt").write_text(f"Budget report number {i}.\n", encoding="utf-8")
    invoke("index", root, "-i", tmp_path / "idx", "-m", "fake", "-q")
    hits = query(tmp_path / "idx", "a letter to the manager", "--mode", "lexical")
    assert [Path(h["path"]).name for h in hits] == ["long.txt", "short.txt"]
    assert sorted(hits[0]["snippet"][a:b].lower() for a, b in hits[0]["highlights"]) == ["letter", "manager"]
    assert [t.text for t in query_terms("to be or not to be")] == []


@pytest.mark.parametrize("text", [
    'AND', 'OR', 'NOT vpn', '"unbalanced', 'a " b', '*', 'vpn*', 'col:umn', 'body: travel', '(travel',
    'travel)', 'NEAR(travel expenses)', 'NEAR', '^travel', 'travel + expenses', "o'neil", '-4012', '{body}: x',
    'travel AND OR NOT', '""', "E-4012 OR DROP TABLE chunks", '\\', 'über café', 'x' * 500,
])
def test_fts5_syntax_in_user_text_never_raises(index, text):
    result = invoke("query", "-i", index, "--json", "--mode", "lexical", "--", text, ok=False)
    if result.exit_code != 0:  # only the clear "no words" line is allowed
        assert "no words to search for" in result.output and "Traceback" not in result.output
    assert open_store(index).chunk_count() > 0  # nothing was dropped


@pytest.mark.parametrize("text", ["the of and", "???", "   "])
def test_stop_words_or_empty_query_is_one_clear_line(index, text):
    result = invoke("query", text, "-i", index, ok=False)
    assert result.exit_code != 0 and "Traceback" not in result.output
    assert len(result.output.strip().splitlines()) == 1
    assert "empty query" in result.output or "no words to search for" in result.output


def test_filter_with_few_matches_still_returns_k_results(index):
    for mode in ("vector", "hybrid", "lexical"):
        hits = query(index, "travel rules", "--mode", mode, "-k", "4", "--folder", "support")
        assert len(hits) == 2 if mode != "lexical" else len(hits) >= 1  # lexical: only chunks with the words
        assert all("/support/" in h["path"] for h in hits)
    hits = query(index, "travel rules", "--mode", "vector", "-k", "3", "--path", "general/note-0*.md")
    assert len(hits) == 3 and all(Path(h["path"]).name.startswith("note-0") for h in hits)
    assert {Path(h["path"]).suffix for h in query(index, "price", "-k", "5", "--type", "txt")} == {".txt"}
    assert query(index, "price", "--folder", "no-such-folder") == []


def test_modified_after_filter_and_bad_dates(index, docs):
    old = docs / "support" / "parts.txt"
    os.utime(old, (946684800, 946684800))  # 2000-01-01
    invoke("index", docs, "-i", index, "-q")
    hits = query(index, "PX-7714 battery", "-k", "10", "--modified-after", "2010-01-01")
    assert hits and all(not h["path"].endswith("parts.txt") for h in hits)
    assert any(h["path"].endswith("parts.txt") for h in query(index, "PX-7714", "--modified-after", "1999-12-31"))
    bad = invoke("query", "x1", "-i", index, "--modified-after", "last tuesday", ok=False)
    assert bad.exit_code != 0 and "cannot read the date 'last tuesday'" in bad.output
    bad = invoke("query", "x1", "-i", index, "--type", "exe", ok=False)
    assert bad.exit_code != 0 and "unknown --type 'exe'" in bad.output


def test_filtered_vector_search_at_scale_uses_the_id_selector(tmp_path, monkeypatch):
    """0.1% of 3,000 chunks in an IVF index: the id selector path, then the exact fallback when the
    probed lists hold too few allowed vectors; a wide filter stays on FAISS with k correct results."""
    from sbsearch.vectors import faiss_index
    from test_vectorindex_types import MODEL, clustered, make_store

    monkeypatch.setenv("SBSEARCH_INDEX_TYPE", "ivf")
    vecs = clustered(3000)
    store = make_store(tmp_path / "ivf", vecs)
    index = faiss_index.build(store, MODEL, vecs.shape[1])
    assert faiss_index.kind_of(index) == "ivf"
    ids = np.array(sorted(int(i) for i in store.vector_ids(MODEL)))
    q = vecs[:4]
    monkeypatch.setattr(faiss_index, "EXACT_FILTER_MAX", 0)
    for allowed in (ids[::1000], ids[::2]):  # 3 chunks; 1,500 chunks
        k = min(10, len(allowed))
        scores, got = faiss_index.search_allowed(store, MODEL, index, q, 10, allowed)
        assert got.shape == (4, k) and set(got.ravel()) <= set(allowed.tolist())
        exact = np.argsort(-(q @ vecs[np.searchsorted(ids, allowed)].T), axis=1)[:, :k]
        if len(allowed) < 10:
            assert (got == allowed[exact]).all()
        else:  # approximate: most of the exact top-k
            overlap = np.mean([len(set(g) & set(allowed[e])) / k for g, e in zip(got, exact)])
            assert overlap >= 0.8


def test_snippets_mark_the_query_words_and_vector_hits_get_an_opening():
    text = ("Intro sentence about nothing in particular. " * 20
            + "To rotate your password open PeopleHub and choose Passwords. " + "Closing words. " * 20)
    snip = make_snippet(text, query_terms("how do I rotate passwords"))
    marked = [snip.text[a:b].lower() for a, b in snip.highlights]
    assert "rotate" in marked and "passwords" in marked and len(snip.text) <= 260
    plain = make_snippet(text, query_terms("unrelated question tokens"))
    assert plain.text.startswith("Intro sentence") and plain.highlights == []


def test_rrf_prefers_items_both_lists_rank_well():
    fused = reciprocal_rank_fusion([[1, 2, 3], [3, 4, 1]])
    assert [i for i, _ in fused][:2] == [1, 3] and fused[0][1] == pytest.approx(1 / 61 + 1 / 63)


def test_score_fusions_scale_each_side_by_its_own_candidates():
    """Min-max scaling gives the last candidate of a list 0, as if that side had not found it;
    distribution-based scaling maps mean ± 3 sd to [0, 1], so it still counts (and a list without
    spread gives 1)."""
    from sbsearch.search.fusion import distribution_score_fusion, relative_score_fusion

    vectors, words = [(1, 3.0), (2, 1.0)], [(2, 5.0)]
    assert dict(relative_score_fusion([vectors, words], [0.5, 0.5])) == {1: 0.5, 2: 0.5}
    spread = dict(distribution_score_fusion([vectors, words], [0.5, 0.5]))  # mean 2, sd 1
    assert spread[1] == pytest.approx(0.5 * 4 / 6) and spread[2] == pytest.approx(0.5 * 2 / 6 + 0.5)
    assert [i for i, _ in distribution_score_fusion([vectors, words], [0.5, 0.5])] == [2, 1]


def test_adaptive_fusion_leans_on_the_words_only_when_one_hit_stands_out():
    """The lexical weight follows the lexical peak: a best lexical hit far above the next ones wins
    over the vectors' favourite; the same hit among equals does not; a lone hit or no hit leaves
    the base weight (no division by zero)."""
    from sbsearch.search.fusion import adaptive_score_fusion, lexical_peak

    assert lexical_peak([]) == lexical_peak([3.0]) == lexical_peak([0.0, 0.0]) == 0.0
    assert lexical_peak([10.0, 1.0, 1.0]) == pytest.approx(0.9) and lexical_peak([2.0, 2.0, 2.0]) == 0.0
    assert lexical_peak([9.0] + [1.0] * 20) == pytest.approx(8 / 9)  # only the best ten count
    vectors = [(1, 0.80), (2, 0.78)] + [(10 + i, 0.5) for i in range(8)]
    peaked = [(2, 12.0)] + [(20 + i, 1.0) for i in range(9)]  # chunk 2 alone shares the rare words
    flat = [(2, 12.0)] + [(20 + i, 11.9) for i in range(9)]  # chunk 2 among passages that share as many
    assert adaptive_score_fusion(vectors, peaked, 0.05, 0.3)[0][0] == 2
    assert adaptive_score_fusion(vectors, flat, 0.05, 0.3)[0][0] == 1
    assert [c for c, _ in adaptive_score_fusion(vectors, [], 0.05, 0.3)][:2] == [1, 2]
    # a middling peak (0.5): at power 1 the words' weight is 0.05 + 0.8 x 0.5 = 0.45 and their best
    # wins over a vector hit far ahead; squared, 0.25, and it does not
    far = [(1, 0.80), (2, 0.60)] + [(10 + i, 0.5) for i in range(8)]
    middling = [(2, 12.0)] + [(20 + i, 6.0) for i in range(9)]
    assert lexical_peak([s for _, s in middling]) == pytest.approx(0.5)
    assert adaptive_score_fusion(far, middling, 0.05, 0.8)[0][0] == 2
    assert adaptive_score_fusion(far, middling, 0.05, 0.8, 2)[0][0] == 1
    assert adaptive_score_fusion(far, peaked, 0.05, 0.8, 2)[0][0] == 2  # a high peak still leans on the words


def test_table_output_shows_snippet_and_mode(index):
    out = invoke("query", "E-4012", "-i", index).output
    assert "error-codes.md" in out and "E-4012" in out and "mode: hybrid" in out
    out = invoke("query", "E-4012", "-i", index, "--mode", "lexical").output
    assert "mode: lexical (BM25, no model)" in out


def lexical_ok(index) -> dict:
    report = json.loads(invoke("check", "-i", index, "--json", ok=False).output)
    assert report["ok"], report["problems"]
    return report


def test_lexical_index_follows_modify_delete_and_swap(index, docs):
    errors, parts = docs / "support" / "error-codes.md", docs / "support" / "parts.txt"
    errors.write_text(errors.read_text().replace("E-4012", "E-5099"))
    invoke("index", docs, "-i", index, "-q")
    assert not any("E-4012" in h["text"] for h in query(index, "E-4012", "--mode", "lexical"))
    assert query(index, "E-5099", "--mode", "lexical")[0]["path"].endswith("error-codes.md")
    lexical_ok(index)
    a, b = errors.read_text(), parts.read_text()
    errors.write_text(b)
    parts.write_text(a)
    invoke("index", docs, "-i", index, "-q")
    assert query(index, "E-5099", "--mode", "lexical")[0]["path"].endswith("parts.txt")
    assert query(index, "PX-7714", "--mode", "lexical")[0]["path"].endswith("error-codes.md")
    lexical_ok(index)
    parts.unlink()
    invoke("index", docs, "-i", index, "-q")
    assert query(index, "E-5099", "--mode", "lexical") == []
    report = lexical_ok(index)
    assert report["lexical"]["rows"] == report["chunks"]


def test_check_finds_and_repairs_a_damaged_lexical_index(index):
    sqlite_only(index)
    store = Store(index)
    store.db.execute("DELETE FROM lexical WHERE rowid IN (SELECT rowid FROM lexical LIMIT 3)")
    report = json.loads(invoke("check", "-i", index, "--json", ok=False).output)
    assert not report["ok"] and any("3 chunks are missing from the lexical index" in p for p in report["problems"])
    repaired = json.loads(invoke("check", "-i", index, "--repair", "--json", ok=False).output)
    assert any("lexical index rebuilt" in r for r in repaired["repaired"])
    lexical_ok(index)


def test_an_index_made_before_the_lexical_index_is_migrated_without_reembedding(index, docs):
    sqlite_only(index)
    store = Store(index)
    with store.db.atomic():
        store.db.execute("DROP TABLE lexical")
        store.db.execute("DELETE FROM _sqlite_migrations WHERE name = 'm003_lexical_index'")
    store.close()
    # readers still answer, by vectors, and say why
    out = invoke("query", "E-4012", "-i", index).output
    assert "vector only: this index has no lexical index yet" in out
    bad = invoke("query", "E-4012", "-i", index, "--mode", "lexical", ok=False)
    assert bad.exit_code != 0 and "no lexical index yet" in bad.output
    status = invoke("status", "-i", index).output
    assert "lexical index: missing" in status
    summary = json.loads(invoke("index", docs, "-i", index, "--json").output)
    assert summary["chunks_embedded"] == 0  # the migration re-embeds nothing
    assert query(index, "E-4012", "--mode", "lexical")[0]["path"].endswith("error-codes.md")
    lexical_ok(index)


def test_status_reports_the_lexical_index(index):
    status = json.loads(invoke("status", "-i", index, "--json").output)
    assert status["lexical"]["rows"] == status["chunks"] > 0
    assert status["lexical"]["size_bytes"] > 0
    engine = "FTS5, BM25" if isinstance(index, Path) else "PostgreSQL full text"
    assert f"lexical index ({engine})" in invoke("status", "-i", index).output


def test_eval_and_compare_take_modes(index, docs, tmp_path):
    qfile = tmp_path / "q.jsonl"
    qfile.write_text("\n".join(json.dumps(q) for q in [
        {"id": "a", "query": "E-4012", "relevant": ["support/error-codes.md"]},
        {"id": "b", "query": "PX-7714", "relevant": ["support/parts.txt"]},
        {"id": "c", "query": "通勤手当", "relevant": ["ja/commute-sjis.txt"]}]) + "\n")
    lexical = json.loads(invoke("eval", "--queries", qfile, "-i", index, "--mode", "lexical", "--json").output)
    assert lexical["mode"] == "lexical" and lexical["mrr@10"] == 1.0
    vector = json.loads(invoke("eval", "--queries", qfile, "-i", index, "-m", "fake:vector", "--json").output)
    assert vector["mode"] == "vector" and vector["mrr@10"] < 1.0  # random vectors know no codes
    result = json.loads(invoke("compare", "--a", "fake:hybrid", "--b", "fake:vector", "--queries", qfile, "-i", index,
                               "--no-memory", "--latency-queries", "2", "--throughput-chunks", "4", "--json").output)
    assert result["models"]["fake:hybrid"]["quality"]["mrr@10"] == 1.0
    assert result["ratios"]["mrr@10 % of B"] > 100


def test_python_api_modes_and_errors(index):
    from sbsearch.index.filters import DocumentFilter

    s = Searcher(index, "fake:lexical")
    assert s.mode == "lexical"
    hits = s.search("battery", 5, doc_filter=DocumentFilter.build(types=["txt"]))
    assert hits and all(h.path.endswith(".txt") for h in hits)
    with pytest.raises(SbsearchError, match="unknown search mode"):
        Searcher(index, mode="fuzzy")


def test_words_most_chunks_hold_leave_the_lexical_query_of_a_large_index(index, monkeypatch):
    import sbsearch.search.searcher as searcher_module

    s = Searcher(index)
    terms = query_terms("travel receipts E-4012")
    n = s.store.chunk_count()
    assert s._selective(terms, n) == terms  # a small index keeps every word
    monkeypatch.setattr(searcher_module, "COMMON_TERMS_FROM", 0)  # as if it were large
    kept = [t.text for t in s._selective(terms, n)]
    assert "travel" not in kept and "receipts" not in kept and "e-4012" in kept  # FILLER is in every note
    assert [t.text for t in s._selective(query_terms("travel receipts"), n)] in (["travel"], ["receipts"])
    assert Path(s.search("travel receipts E-4012", 3, mode="lexical")[0].path).name == "error-codes.md"


def test_a_snippet_marks_the_code_asked_for_not_its_neighbours():
    from sbsearch.lexical.analysis import query_terms
    from sbsearch.lexical.snippets import make_snippet

    rows = " ".join(f"| E-40{n:02d} | Device error number {n} with a long description of what to do |" for n in range(1, 14))
    snippet = make_snippet(rows, query_terms("E-4012"))
    marked = [snippet.text[a:b] for a, b in snippet.highlights]
    assert marked == ["E-4012"], marked
