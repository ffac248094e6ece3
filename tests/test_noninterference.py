"""Non-interference, the access-control property: what a reader gets — the results, their order and
every score shown — depends only on the documents that reader may read. Checked as a property: the
same index with and without documents outside the reader's groups gives that reader identical
answers, in lexical, vector and hybrid mode (hypothesis draws the corpora, the rules and the
queries; real files, real SQLite FTS5, real FAISS, the fake embedder).

And BM25 as sbsearch computes it over a reader's documents equals FTS5's own bm25() bit for bit
when the reader may read everything: the reimplementation is FTS5's arithmetic, not an
approximation of it."""

from __future__ import annotations

import sqlite3
import tempfile
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from sbsearch import app
from sbsearch.embed.fake import FakeEmbedder
from sbsearch.index.filters import DocumentFilter
from sbsearch.index.indexer import Indexer
from sbsearch.index.store import LEXICAL_TABLE, LEXICAL_WEIGHTS, lexical_tokens
from sbsearch.index.store.sqlite.reader_lexical import ReaderLexicalSearch
from sbsearch.lexical import match_expression, query_terms
from sbsearch.search import Searcher

WORDS = ["travel", "receipt", "salary", "merger", "laptop", "printer", "vpn", "password", "budget", "policy",
         "E-4012", "HX-220L", "FIN-203", "通勤手当", "給与", "会議", "通", "running", "runs", "the"]
RULES = """
default = "deny"
[[rule]]
folders = ["board"]
groups = ["board"]
[[rule]]
folders = ["hr"]
groups = ["hr"]
[[rule]]
folders = ["staff"]
groups = ["staff"]
[[rule]]
folders = ["everyone"]
groups = ["*"]
"""
READER = ("staff",)  # may read staff/ and everyone/, never board/ or hr/
MODES = ("lexical", "vector", "hybrid")

texts = st.lists(st.sampled_from(WORDS), min_size=1, max_size=25).map(" ".join)
document = st.tuples(st.sampled_from(WORDS), texts)  # (heading word, body)
queries = st.lists(st.lists(st.sampled_from(WORDS), min_size=1, max_size=3).map(" ".join), min_size=1, max_size=4)


def write_docs(root: Path, folder: str, docs: list[tuple[str, str]], start: int = 0) -> None:
    (root / folder).mkdir(parents=True, exist_ok=True)
    for n, (heading, body) in enumerate(docs, start=start):
        (root / folder / f"doc-{n:03d}.md").write_text(f"# {heading}\n\n{body}\n", encoding="utf-8")


def answers(index: Path, embedder, qs: list[str], reader: tuple[str, ...]) -> list:
    """Everything a reader is shown for each query and mode (what /api/search and the page carry)."""
    searcher = Searcher(index, embedder=embedder)
    shown = []
    for q in qs:
        for mode in MODES:
            try:
                ans = app.answer(searcher, q, 10, mode, DocumentFilter().for_reader(reader))
            except Exception as exc:  # a query of stop words alone: the same refusal both times
                shown.append((q, mode, "error", str(exc)))
                continue
            shown.append((q, mode, [(r.relpath, r.doc_id, r.chunk_id, r.fields()) for r in ans.results],
                          ans.quality))
    return shown


@settings(max_examples=20, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(visible=st.lists(st.tuples(st.sampled_from(["staff", "everyone"]), document), min_size=1, max_size=6),
       hidden_before=st.lists(st.tuples(st.sampled_from(["board", "hr"]), document), max_size=3),
       hidden_added=st.lists(st.tuples(st.sampled_from(["board", "hr"]), document), min_size=1, max_size=6),
       qs=queries)
def test_a_readers_answers_do_not_change_when_documents_they_cannot_read_are_added(
        isolated_home, visible, hidden_before, hidden_added, qs):
    embedder = FakeEmbedder("fake")
    with tempfile.TemporaryDirectory() as tmp:
        root, index, rules = Path(tmp) / "share", Path(tmp) / "idx", Path(tmp) / "access.toml"
        rules.write_text(RULES)
        for n, (folder, doc) in enumerate(visible + hidden_before):
            write_docs(root, folder, [doc], start=n)
        Indexer(index, embedder=embedder, access_rules=rules).run([root])
        before = answers(index, embedder, qs, READER)
        for n, (folder, doc) in enumerate(hidden_added, start=100):
            write_docs(root, folder, [doc], start=n)
        summary = Indexer(index, embedder=embedder).run([root])
        assert summary.added == len(hidden_added)
        after = answers(index, embedder, qs, READER)
    assert after == before


def test_two_words_of_one_public_chunk_keep_equal_scores_when_a_board_document_holds_one(isolated_home, tmp_path):
    """The attack of the issue: BM25's document frequencies told a staff reader which words a
    board-only document holds."""
    embedder = FakeEmbedder("fake")
    root, index, rules = tmp_path / "share", tmp_path / "idx", tmp_path / "access.toml"
    rules.write_text(RULES)
    write_docs(root, "everyone", [("Notes", "The quarterly zanzibar report mentions kilimanjaro once.")])
    write_docs(root, "staff", [("Other", "Printers and laptops are ordered through the desk.")], start=1)
    Indexer(index, embedder=embedder, access_rules=rules).run([root])

    def scores() -> list[float]:
        searcher = Searcher(index, embedder=embedder)
        reader = DocumentFilter().for_reader(READER)
        return [searcher.search(word, 5, mode="lexical", doc_filter=reader)[0].score
                for word in ("zanzibar", "kilimanjaro")]

    first = scores()
    assert first[0] == first[1]
    write_docs(root, "board", [("Merger", "Project kilimanjaro: the board approves the merger.")], start=2)
    Indexer(index, embedder=embedder).run([root])
    assert scores() == first
    # the index's admin (no reader) sees the whole index, and there the board document counts
    admin = Searcher(index, embedder=embedder)
    assert admin.search("zanzibar", 5, mode="lexical")[0].score != admin.search("kilimanjaro", 5, mode="lexical")[0].score


def test_common_words_are_counted_among_the_readers_documents(isolated_home, tmp_path, monkeypatch):
    """Large indexes drop the words most chunks hold from the lexical query; which words are
    dropped for a reader must not depend on what the reader cannot read."""
    import sbsearch.search.searcher as searcher_module

    monkeypatch.setattr(searcher_module, "COMMON_TERMS_FROM", 1)
    monkeypatch.setattr(searcher_module, "COMMON_SHARE", 0.5)
    embedder = FakeEmbedder("fake")
    root, index, rules = tmp_path / "share", tmp_path / "idx", tmp_path / "access.toml"
    rules.write_text(RULES)
    write_docs(root, "staff", [("A", "budget travel"), ("B", "printer laptop"), ("C", "printer vpn")])
    Indexer(index, embedder=embedder, access_rules=rules).run([root])
    reader = DocumentFilter().for_reader(READER)

    def shown():
        return [(r.relpath, r.score) for r in Searcher(index, embedder=embedder).search(
            "budget printer", 5, mode="lexical", doc_filter=reader)]

    before = shown()
    assert [p for p, _ in before] == ["staff/doc-000.md"]  # "printer" is held by 2 of the 3: dropped
    # "budget" in every board document: over the whole index it is the common word, yet not for staff
    write_docs(root, "board", [("M", "budget budget merger")] * 6, start=10)
    Indexer(index, embedder=embedder).run([root])
    assert shown() == before


def test_a_rules_change_reaches_a_running_searcher_in_every_mode(isolated_home, tmp_path):
    """A rules change publishes nothing (no generation): the readers' caches must see it anyway."""
    embedder = FakeEmbedder("fake")
    root, index, rules = tmp_path / "share", tmp_path / "idx", tmp_path / "access.toml"
    rules.write_text(RULES)
    write_docs(root, "staff", [("Travel", "travel receipt laptop"), ("Budget", "budget policy printer")])
    write_docs(root, "board", [("Merger", "merger travel budget")], start=2)
    Indexer(index, embedder=embedder, access_rules=rules).run([root])
    searcher = Searcher(index, embedder=embedder)  # kept, as a server keeps it
    reader = DocumentFilter().for_reader(READER)

    def seen(mode: str) -> set[str]:
        return {r.relpath for r in searcher.search("travel budget merger", 10, mode=mode, doc_filter=reader)}

    assert all("board/doc-002.md" not in seen(mode) for mode in MODES)
    rules.write_text(RULES.replace('groups = ["board"]', 'groups = ["board", "staff"]'))
    summary = Indexer(index, embedder=embedder).run([root])
    assert summary.chunks_embedded == 0
    assert all("board/doc-002.md" in seen(mode) for mode in MODES)
    rules.write_text(RULES)
    Indexer(index, embedder=embedder).run([root])
    assert all("board/doc-002.md" not in seen(mode) for mode in MODES)


# ------------------------------------------------------------------------------------ BM25 = FTS5

column = st.lists(st.sampled_from(WORDS + ["e 4012", "a a a", "通勤 勤手 手当"]), max_size=12).map(" ".join)


@settings(max_examples=200, deadline=None)
@given(rows=st.lists(st.tuples(column, column, column), min_size=1, max_size=25), q=st.lists(
    st.sampled_from(WORDS + ["通勤手当 給与", "a a", "running dogs"]), min_size=1, max_size=4).map(" ".join))
def test_bm25_over_every_row_equals_fts5_bm25_bit_for_bit(rows, q):
    from sbsearch.lexical import index_text

    db = sqlite3.connect(":memory:")
    db.execute(LEXICAL_TABLE)
    db.executemany("INSERT INTO lexical (rowid, body, heading, name) VALUES (?, ?, ?, ?)",
                   [(n + 1, *(index_text(c) for c in row)) for n, row in enumerate(rows)])
    terms = query_terms(q)
    if not terms:
        return
    match = match_expression(terms)
    weights = ", ".join(str(w) for w in LEXICAL_WEIGHTS)
    fts5 = sorted(((rowid, -score) for rowid, score in db.execute(
        f"SELECT rowid, bm25(lexical, {weights}) FROM lexical WHERE lexical MATCH ?", [match])),
        key=lambda hit: (-hit[1], hit[0]))
    from sbsearch.index.store.tokens import match_phrases

    phrases = match_phrases(match)
    tokens = lexical_tokens([(text, None, None) for text, _ in phrases])
    ours = ReaderLexicalSearch(db, None, LEXICAL_WEIGHTS, ("body", "heading", "name")).search(
        [(toks[0], prefix) for toks, (_, prefix) in zip(tokens, phrases)], 1000, None, (0, 0, 0))
    assert ours == fts5


@pytest.mark.parametrize("blob,total", [(b"\x06\x01\x02", 9), (b"\x81\x00\x05", 133), (b"", 0), (b"\x00\x00\x00", 0)])
def test_docsize_varints(blob, total):
    from sbsearch.index.store.sqlite.reader_lexical import decode_sizes

    assert decode_sizes(blob) == total


# ------------------------------------------------------------------------------------ PostgreSQL

def test_postgresql_readers_answers_do_not_change_when_documents_they_cannot_read_are_added(isolated_home, tmp_path,
                                                                                            pg_url):
    embedder = FakeEmbedder("fake")
    root, rules = tmp_path / "share", tmp_path / "access.toml"
    rules.write_text(RULES)
    write_docs(root, "staff", [("travel", "travel receipt laptop E-4012"), ("vpn", "vpn password printer 通勤手当"),
                               ("budget", "budget policy salary")])
    write_docs(root, "everyone", [("policy", "policy travel travel HX-220L 給与")], start=3)
    write_docs(root, "hr", [("salary", "salary salary budget")], start=4)
    Indexer(pg_url, embedder=embedder, access_rules=rules).run([root])
    qs = ["travel laptop", "salary budget", "E-4012", "通勤手当", "policy printer HX-220L"]
    before = answers(pg_url, embedder, qs, READER)
    write_docs(root, "board", [("merger", "merger travel salary budget policy E-4012 通勤手当")] * 3, start=10)
    assert Indexer(pg_url, embedder=embedder).run([root]).added == 3
    assert answers(pg_url, embedder, qs, READER) == before
    # and the board sees its documents: the added text is searchable, just not by staff
    board = answers(pg_url, embedder, ["merger"], ("board",))
    assert any("board/" in hit[0] for hit in board[0][2])


# ------------------------------------------------------------------------------------ real server, real model

@pytest.mark.slow
def test_a_staff_users_http_answers_are_byte_identical_after_board_documents_are_added(tmp_path):
    """Through a real `sbsearch serve` process and real HTTP, on the int8 MiniLM: the JSON a staff
    user receives is the same, byte for byte, before and after board-only documents that share
    their words are indexed (the server keeps running and serves the new state)."""
    from click.testing import CliRunner
    from test_serve import Server

    from sbsearch.cli import cli

    def invoke(*args, input=None):
        result = CliRunner().invoke(cli, [str(a) for a in args], input=input)
        assert result.exit_code == 0, result.output
        return result

    root, rules, index = tmp_path / "share", tmp_path / "access.toml", tmp_path / "idx"
    rules.write_text(RULES)
    write_docs(root, "staff", [
        ("Travel", "Book trains through the travel desk and file receipts within thirty days."),
        ("Laptops", "A new laptop is ordered through the IT desk; error E-4012 means the update failed."),
        ("Printers", "The printer on the second floor needs a badge. Toner is in the supply room.")])
    write_docs(root, "everyone", [("Holidays", "The office is closed on public holidays and between the years.")],
               start=3)
    invoke("index", root, "-i", index, "-m", "minilm-int8", "-q", "--access", rules)
    invoke("users", "add", "sam", "-i", index, "--groups", "staff", "--password-stdin", input="battery staple\n")
    invoke("users", "add", "bea", "-i", index, "--groups", "board", "--password-stdin", input="board pass\n")
    tokens = {u: invoke("tokens", "add", u, "-i", index).output.strip().splitlines()[-1] for u in ("sam", "bea")}
    server = Server(index)
    try:
        def shown(user: str) -> list[bytes]:
            with server.client(headers={"Authorization": f"Bearer {tokens[user]}"}) as c:
                out = []
                for q in ("travel receipts", "laptop error E-4012", "printer toner", "when is the office closed"):
                    for mode in MODES:
                        r = c.get("/api/search", params={"q": q, "mode": mode, "k": 10})
                        assert r.status_code == 200, r.text
                        out.append(r.content)
                return out

        before, board_before = shown("sam"), shown("bea")
        write_docs(root, "board", [
            ("Merger", "Travel receipts of the merger team: the laptop fleet and every printer are sold."),
            ("Minutes", "Error E-4012 was discussed. The office closes on holidays; travel is frozen.")], start=10)
        invoke("index", root, "-i", index, "-q")
        assert shown("sam") == before
        assert shown("bea") != board_before  # the new documents are served, to those who may read them
    finally:
        server.stop()


def test_stemming_is_safe_from_several_threads():
    """A server searches on several threads; the Porter stemmer keeps its word in itself."""
    from concurrent.futures import ThreadPoolExecutor

    from sbsearch.lexical.analysis import stem

    words = ["running", "generalizations", "connection", "relational", "hopefulness", "electricity"] * 400
    expected = [stem(w) for w in words]
    with ThreadPoolExecutor(8) as pool:
        for _ in range(5):
            assert list(pool.map(stem, words)) == expected
