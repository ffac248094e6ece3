"""The PostgreSQL + pgvector store on a real server (pgserver, tests/conftest.py): migration from an
index folder (equal vector, lexical and hybrid results), access trimming, searches that never wait
for the writer, bad URLs and passwords, serve. The indexer, hybrid and filter tests run on both
stores in test_indexer.py and test_hybrid.py, the one-writer and kill -9 tests in test_reliability.py."""

from __future__ import annotations

import json
import random
import re
import threading
import time
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from crash_harness import mutate
from sbsearch.cli import cli
from sbsearch.errors import SbsearchError
from sbsearch.index import Indexer
from sbsearch.index.filters import DocumentFilter
from sbsearch.index.location import open_store
from sbsearch.index.store.pg import display_url
from sbsearch.search import Searcher

SAMPLE_DOCS = Path(__file__).resolve().parents[1] / "sample_docs"
QUERIES = ["vpn password reset", "travel expenses hotel", "printer toner", "E-4012", "通勤手当", "parking badge"]


def invoke(*args, ok: bool = True):
    result = CliRunner(env={"COLUMNS": "200"}).invoke(cli, [str(a) for a in args])
    if ok:
        assert result.exit_code == 0, result.output
    return result


def hits(searcher: Searcher, mode: str) -> list[list[tuple[int, str, float]]]:
    return [[(r.chunk_id, r.path, round(r.score, 4)) for r in results]
            for results in searcher.search_many(QUERIES, k=8, mode=mode)]


def test_migrate_copies_the_index_and_searches_give_equal_results(tmp_path, pg_url):
    folder = tmp_path / "idx"
    invoke("index", SAMPLE_DOCS, "-i", folder, "-m", "fake", "-q")
    out = json.loads(invoke("migrate", "-i", folder, "--to", pg_url, "--json").output)
    sqlite, pg = open_store(folder), open_store(pg_url)
    assert out["rows"]["chunks"] == sqlite.chunk_count() == pg.chunk_count() > 100
    assert sqlite.chunk_texts() == pg.chunk_texts()  # same ids, same text
    ids = np.array([cid for cid, _, _ in sqlite.chunk_texts()])
    for a, b in zip(sqlite.vectors_for_ids("fake", ids), pg.vectors_for_ids("fake", ids)):
        assert np.array_equal(a, b)  # copied, not re-embedded
    # vector search: the same chunks in the same order with the same scores (exact at this size)
    assert hits(Searcher(folder, "fake"), "vector") == hits(Searcher(pg_url, "fake"), "vector")
    # lexical and hybrid: PostgreSQL holds FTS5's own tokens and ranks by FTS5's BM25, so words,
    # codes (phrases of several tokens), Japanese (bigram phrases, one-character prefixes), file
    # names and headings give the same chunks in the same order with the same scores
    for mode in ("lexical", "hybrid"):
        a, b = hits(Searcher(folder, "fake"), mode), hits(Searcher(pg_url, "fake"), mode)
        assert [[h[:2] for h in q] for q in a] == [[h[:2] for h in q] for q in b], mode
        np.testing.assert_allclose([h[2] for q in a for h in q], [h[2] for q in b for h in q], rtol=1e-3)
    sq, pq = open_store(folder), open_store(pg_url)
    for match in ('"e 4012"', '"通勤 勤手 手当"', '"通"*', '"handbook" OR "travel"', '"vpn" OR "md"', '"zzz"'):
        a, b = sq.lexical_search(match, 20), pq.lexical_search(match, 20)
        assert [c for c, _ in a] == [c for c, _ in b], match
        np.testing.assert_allclose([s for _, s in a], [s for _, s in b], rtol=1e-9)
    assert sq.lexical_search('"e 4012"', 5)  # the phrases above find something
    # the document frequencies the searcher asks for to leave common words out, from either engine
    assert pg.token_row_counts(["vpn", "printer"]) == sqlite.token_row_counts(["vpn", "printer"])
    # the migrated store is incremental from there: nothing to read or embed again
    s = Indexer(pg_url, "fake").run([SAMPLE_DOCS])
    assert s.added == s.updated == s.removed == s.chunks_embedded == 0 and s.unchanged > 50
    assert json.loads(invoke("check", "--store", pg_url, "--json").output)["ok"]
    again = invoke("migrate", "-i", folder, "--to", pg_url, ok=False)
    assert again.exit_code == 1 and "already holds an index" in again.output


def test_access_trimming_and_filters_on_postgres(tmp_path, pg_url):
    docs = tmp_path / "docs"
    for folder, text in [("hr", "Salary bands and the payroll calendar."), ("public", "The canteen opens at noon."),
                         ("odd", "Parking spaces for visitors.")]:
        (docs / folder).mkdir(parents=True)
        (docs / folder / "note.md").write_text(f"# {folder}\n\n{text}\n")
    rules = tmp_path / "access.toml"
    rules.write_text('default = "deny"\n[[rule]]\nfolders = ["hr"]\ngroups = ["hr"]\n'
                     '[[rule]]\nfolders = ["public"]\ngroups = ["*"]\n')
    invoke("index", docs, "--store", pg_url, "-m", "fake", "--access", rules, "-q")
    searcher = Searcher(pg_url)
    seen = {mode: {Path(r.path).parent.name for r in searcher.search(
        "salary canteen parking", 10, mode=mode, doc_filter=DocumentFilter().for_reader(["staff"]))}
        for mode in ("vector", "lexical", "hybrid")}
    assert seen == {"vector": {"public"}, "lexical": {"public"}, "hybrid": {"public"}}
    hr = {Path(r.path).parent.name for r in searcher.search("salary canteen parking", 10,
                                                            doc_filter=DocumentFilter().for_reader(["hr"]))}
    assert hr == {"hr", "public"}
    store = open_store(pg_url)
    assert store.visible_counts(DocumentFilter().for_reader(["staff"]))["documents"] == 1
    hr_doc = next(d for p, d in store.documents().items() if "/hr/" in p)
    assert store.document(hr_doc.id, DocumentFilter().for_reader(["staff"])) is None
    assert store.document(hr_doc.id, DocumentFilter().for_reader(["hr"]))["path"].endswith("hr/note.md")
    globbed = searcher.search("parking canteen", 10, mode="vector", doc_filter=DocumentFilter.build(paths=["p*/*.md"]))
    assert {Path(r.path).parent.name for r in globbed} == {"public"}


def test_a_search_never_waits_for_the_writer_and_sees_the_last_published_state(tmp_path, pg_url):
    import psycopg

    invoke("index", SAMPLE_DOCS, "--store", pg_url, "-m", "fake", "-q")
    before = hits(Searcher(pg_url, "fake"), "hybrid")
    writer = psycopg.connect(pg_url)  # a publish in progress: rows deleted, locked, not committed
    writer.execute("SET search_path = sbsearch, public")
    for table in ("lexical", "embeddings"):
        writer.execute(f"DELETE FROM {table}")
    writer.execute("DELETE FROM chunks")
    writer.execute("UPDATE meta SET value = '999' WHERE key = 'generation'")
    try:
        t0 = time.perf_counter()
        during = hits(Searcher(pg_url, "fake"), "hybrid")
        assert time.perf_counter() - t0 < 10
        assert during == before
    finally:
        writer.rollback()
        writer.close()


@pytest.mark.parametrize("url, message", [
    ("postgresql://sb:pw@/nodb?host=/nonexistent-socket-dir", "cannot connect to postgresql://sb:***@"),
    ("postgresql://sb:pw@127.0.0.1:1/db", "cannot connect to"),
])
def test_unreachable_database_is_one_clear_line(url, message):
    result = invoke("status", "--store", url, ok=False)
    assert result.exit_code == 1 and message in result.output and "Traceback" not in result.output
    assert "pw@" not in result.output  # the password is never shown
    assert len(result.output.strip().splitlines()) == 1


def test_missing_database_missing_pgvector_and_a_bad_url_are_one_clear_line(pg_server, pg_url):
    import psycopg

    missing_db = re.sub(r"(://[^/?]*/)[^?]*", r"\1no_such_db", pg_server, count=1)
    result = invoke("status", "--store", missing_db, ok=False)
    assert result.exit_code == 1 and 'database "no_such_db" does not exist' in result.output
    # a role that may not create the extension, in a database without it
    with psycopg.connect(pg_url, autocommit=True) as conn:
        conn.execute("CREATE ROLE reader LOGIN")
    as_reader = re.sub(r"://[^:@/]*(:[^@]*)?@", "://reader@", pg_url, count=1)
    result = invoke("index", SAMPLE_DOCS / "it", "--store", as_reader, "-m", "fake", ok=False)
    assert result.exit_code == 1 and "Traceback" not in result.output
    assert "has no pgvector extension" in result.output and "CREATE EXTENSION vector" in result.output
    result = invoke("status", "--store", "mysql://x@y/z", ok=False)
    assert result.exit_code == 2 and "is not a postgresql:// URL" in result.output
    with pytest.raises(SbsearchError, match="no index in"):
        Searcher(pg_url)


def test_a_wrong_password_is_one_clear_line(pg_server, pg_url):
    """A role that signs in by password (scram-sha-256 for that role alone, in the test server's
    pg_hba.conf): the wrong one is refused in one line that never shows it; the right one works."""
    import psycopg

    with psycopg.connect(pg_server, autocommit=True) as conn:
        hba = Path(conn.execute("SHOW hba_file").fetchone()[0])
        if not hba.is_file():
            pytest.skip("the test server's pg_hba.conf is not on this machine (SBSEARCH_TEST_PG)")
        conn.execute("CREATE ROLE pw_user LOGIN PASSWORD 'right-one'")
        database = re.search(r"://[^/?]*/([^?]*)", pg_url).group(1)
        conn.execute(f"GRANT ALL ON DATABASE {database} TO pw_user")
        before = hba.read_text()
        rules = "local all pw_user scram-sha-256\nhost all pw_user 127.0.0.1/32 scram-sha-256\n"
        hba.write_text(rules + before)
        conn.execute("SELECT pg_reload_conf()")
    try:
        as_user = re.sub(r"://[^:@/]*(:[^@]*)?@", "://pw_user:not-the-one@", pg_url, count=1)
        result = invoke("status", "--store", as_user, ok=False)
        assert result.exit_code == 1 and "Traceback" not in result.output
        assert len(result.output.strip().splitlines()) == 1
        assert "cannot connect to postgresql://pw_user:***@" in result.output
        assert 'password authentication failed for user "pw_user"' in result.output
        assert "not-the-one" not in result.output
        result = invoke("index", SAMPLE_DOCS / "it", "--store", as_user, "-m", "fake", ok=False)
        assert result.exit_code == 1 and "password authentication failed" in result.output
        assert "Traceback" not in result.output
        right = as_user.replace("not-the-one", "right-one")
        with psycopg.connect(pg_url, autocommit=True) as conn:  # the index's owner lets pw_user write
            conn.execute("CREATE EXTENSION IF NOT EXISTS vector")
            conn.execute("GRANT CREATE ON SCHEMA public TO pw_user")
        invoke("index", SAMPLE_DOCS / "it", "--store", right, "-m", "fake", "-q")
        assert Searcher(right, "fake").search("vpn", 1)
    finally:
        hba.write_text(before)
        with psycopg.connect(pg_server, autocommit=True) as conn:
            conn.execute("SELECT pg_reload_conf()")


def test_many_readers_share_one_store_while_it_is_reindexed(tmp_path, pg_url):
    """Several search processes read one database: here threads with their own connections."""
    docs = tmp_path / "docs"
    rng = random.Random(5)
    mutate(docs, rng, n_files=30)
    invoke("index", docs, "--store", pg_url, "-m", "fake", "-q")
    errors: list[BaseException] = []
    stop = threading.Event()

    def reader():
        try:
            searcher = Searcher(pg_url, "fake")
            while not stop.is_set():
                results = searcher.search("travel expense", 3)
                assert len(results) == 3 and all(r.text for r in results)
        except BaseException as exc:  # noqa: BLE001 - reported by the test below
            errors.append(exc)

    threads = [threading.Thread(target=reader) for _ in range(3)]
    for t in threads:
        t.start()
    try:
        for _ in range(3):
            mutate(docs, rng, n_files=30)
            Indexer(pg_url, "fake").run([docs])
    finally:
        stop.set()
        for t in threads:
            t.join()
    assert errors == []


def test_serve_on_a_postgres_store_trims_by_group(tmp_path, pg_url):
    from test_serve import ACCESS, Server, api_paths, sign_in

    docs = tmp_path / "share"
    for folder, text in [("hr", "Salary bands for 2025."), ("public", "The canteen menu."), ("odd", "Odd notes.")]:
        (docs / folder).mkdir(parents=True)
        (docs / folder / "a.md").write_text(f"# {folder}\n\n{text}\n")
    rules = tmp_path / "access.toml"
    rules.write_text(ACCESS)
    invoke("index", docs, "--store", pg_url, "-m", "fake", "-q", "--access", rules)
    for user, groups in [("harriet", "hr,staff"), ("sam", "staff")]:
        result = CliRunner().invoke(cli, ["users", "add", user, "--store", pg_url, "--groups", groups,
                                          "--password-stdin"], input="password-" + user + "\n")
        assert result.exit_code == 0, result.output
    server = Server(pg_url)
    try:
        sam = api_paths(sign_in(server, "sam", "password-sam"), "salary canteen")
        harriet = api_paths(sign_in(server, "harriet", "password-harriet"), "salary canteen")
        assert sorted(sam) == ["odd/a.md", "public/a.md"]
        assert sorted(harriet) == ["hr/a.md", "odd/a.md", "public/a.md"]
    finally:
        err = server.stop()
    assert "password-" not in err and "Traceback" not in err


def test_check_repairs_the_lexical_and_vector_indexes_of_a_postgres_store(pg_url):
    import psycopg

    invoke("index", SAMPLE_DOCS / "it", "--store", pg_url, "-m", "fake", "-q")
    with psycopg.connect(pg_url, autocommit=True) as conn:
        conn.execute("SET search_path = sbsearch, public")
        conn.execute("DELETE FROM lexical WHERE chunk_id IN (SELECT chunk_id FROM lexical LIMIT 3)")
    open_store(pg_url).drop_hnsw("fake")
    report = json.loads(invoke("check", "--store", pg_url, "--json", ok=False).output)
    assert not report["ok"] and any("3 chunks are missing from the lexical index" in p for p in report["problems"])
    assert report["models"][0]["faiss"] == "missing"
    repaired = json.loads(invoke("check", "--store", pg_url, "--repair", "--json", ok=False).output)
    assert len(repaired["repaired"]) == 2
    assert json.loads(invoke("check", "--store", pg_url, "--json").output)["ok"]
    assert Searcher(pg_url).search("vpn", 3)


def test_a_lexical_index_of_the_older_format_is_rebuilt_by_the_next_run(pg_url):
    """Rows written by PostgreSQL's own parser (no token count, no format mark) are not searched as
    if they were FTS5's tokens: the store says so, and the next `index` rebuilds them."""
    import psycopg

    invoke("index", SAMPLE_DOCS / "it", "--store", pg_url, "-m", "fake", "-q")
    want = hits(Searcher(pg_url, "fake"), "lexical")
    with psycopg.connect(pg_url, autocommit=True) as conn:
        conn.execute("SET search_path = sbsearch, public")
        conn.execute("ALTER TABLE lexical DROP COLUMN ntok")
        conn.execute("UPDATE lexical SET tsv = to_tsvector('english', 'something else')")
        conn.execute("DELETE FROM meta WHERE key = 'lexical_format'")
    assert Searcher(pg_url, "fake").notice.startswith("vector only")
    report = json.loads(invoke("check", "--store", pg_url, "--json", ok=False).output)
    assert any("older format" in p for p in report["problems"])
    s = Indexer(pg_url, "fake").run([SAMPLE_DOCS / "it"])
    assert s.added == s.chunks_embedded == 0
    assert hits(Searcher(pg_url, "fake"), "lexical") == want
    assert json.loads(invoke("check", "--store", pg_url, "--json").output)["ok"]


@pytest.mark.slow  # two models measured for speed and quality, a minute
def test_compare_and_frontier_on_a_postgres_store(pg_url, tmp_path):
    """The model-choice commands read a store URL like a folder (they checked for index.db before),
    and their reports name the store without its password."""
    invoke("index", SAMPLE_DOCS, "--store", pg_url, "-m", "fake", "-q")
    chart = tmp_path / "f.png"
    out = json.loads(invoke("frontier", "--store", pg_url, "--models", "fake,fake-b", "--reference", "fake",
                            "--chart", chart, "--json", "-q").stdout)
    assert set(out["models"]) == {"fake", "fake-b"} and out["frontier"]
    assert out["models"]["fake"]["quality"] == pytest.approx(100.0)
    assert chart.stat().st_size > 10_000
    assert out["index"] == display_url(pg_url)
    out = json.loads(invoke("compare", "--store", pg_url, "--a", "fake", "--b", "fake-b", "--no-memory",
                            "--latency-queries", "3", "--throughput-chunks", "16", "--json", "-q").stdout)
    assert out["index"] == display_url(pg_url) and out["chunks"] > 100
    missing = invoke("frontier", "--store", pg_url.replace("/t", "/none_t", 1), "--models", "fake,fake-b", ok=False)
    assert missing.exit_code == 1 and "Traceback" not in missing.output


def test_postgres_answers_from_memory_agree_with_its_sql_and_follow_every_change(tmp_path, pg_url):
    """The postings kept in memory (store.postings) serve a PostgreSQL store too: once a query's
    phrases are kept, its answers are those of the BM25 statement (the same rows in the same
    order, scores to 1e-12: the statement adds the same terms in its own order), and a run that
    changes the words or a rebuilt lexical index is never answered from what was kept before."""
    from test_lexical_cache import QUERIES as WORD_QUERIES, write_corpus

    from sbsearch.index.store.postings import POSTINGS
    from sbsearch.lexical import match_expression, query_terms

    POSTINGS.clear()
    root = tmp_path / "docs"
    write_corpus(root, seed=1)
    Indexer(pg_url, "fake").run([root])
    store = open_store(pg_url)
    assert store.get_meta("index_id")
    matches = [match_expression(query_terms(q)) for q in WORD_QUERIES]

    def answers(from_sql: bool) -> list:
        if from_sql:
            store._search_kept = lambda phrases, limit: None
        try:
            with store.snapshot():
                return [[(cid, round(score, 12)) for cid, score in store.lexical_search(m, limit)]
                        for m in matches for limit in (3, 50)]
        finally:
            store.__dict__.pop("_search_kept", None)

    def kept() -> bool:
        from sbsearch.index.store.pg.lexical import query_phrases

        with store.snapshot():
            state = store._lexical_state
            return all(store._kept.answerable_from_memory([(tuple(p["toks"]), p["prefix"]) for p in query_phrases(m)],
                                                          state) for m in matches)

    sql = answers(from_sql=True)
    assert any(sql)
    for _ in range(2):
        assert answers(from_sql=False) == sql
    assert kept(), "every phrase was asked for twice: it should be kept"
    assert answers(from_sql=False) == sql
    write_corpus(root, seed=2)  # a run that changes the words
    Indexer(pg_url, "fake").run([root])
    assert not kept()
    assert answers(from_sql=False) == answers(from_sql=True) != sql
    before = store._lexical_state
    store.rebuild_lexical()  # check --repair: nothing published, the lexical version moves
    assert store._lexical_state[2] == before[2] + 1 and store._lexical_state[:2] == before[:2]
    assert not kept()


def test_postgres_postings_rank_as_the_tsvectors_through_every_change(tmp_path, pg_url):
    """One-token phrases are ranked from lexical_postings; everything else, and an index made before
    the postings existed, from the rows' tsvectors. Both give the same rows in the same order with
    the same scores (to 1e-9: the two add the same terms in their own order), with and without a
    narrowing filter, after a run that deletes and adds documents, after an index without postings
    is upgraded, and after damaged postings are repaired by `check --repair`."""
    from test_lexical_cache import QUERIES as WORD_QUERIES, write_corpus

    from sbsearch.index.store.postings import POSTINGS
    from sbsearch.lexical import match_expression, query_terms

    POSTINGS.clear()
    POSTINGS.budget, budget = 0, POSTINGS.budget  # every search through SQL
    root = tmp_path / "docs"
    write_corpus(root, seed=1)
    matches = [match_expression(query_terms(q)) for q in WORD_QUERIES] + ['"e 4012"', '"通"*', '"budget" OR "通勤 勤手"']
    narrowing = DocumentFilter(paths=("doc-1*",))

    def answers(store) -> list:
        with store.snapshot():
            return [store.lexical_search(m, limit, f) for m in matches for limit in (3, 50) for f in (None, narrowing)]

    def same(a: list, b: list) -> None:
        assert [[cid for cid, _ in q] for q in a] == [[cid for cid, _ in q] for q in b]
        np.testing.assert_allclose([s for q in a for _, s in q], [s for q in b for _, s in q], rtol=1e-9)

    def both(url):
        posted, read = open_store(url), open_store(url)
        read.__dict__["_has_postings"] = False  # as an index without them is searched
        assert posted._has_postings and not posted.lexical_problems()
        return answers(posted), answers(read)

    try:
        Indexer(pg_url, "fake").run([root])
        first, first_read = both(pg_url)
        same(first, first_read)
        assert sum(map(len, first)) > 100
        for path in sorted(root.glob("doc-1*"))[:6] + sorted(root.glob("doc-3*"))[:3]:
            path.unlink()  # some of a batch's chunks leave its postings; the rest stay
        write_corpus(root / "more", seed=3, n=12)
        Indexer(pg_url, "fake").run([root])
        posted, read = both(pg_url)
        same(posted, read)
        assert posted != first
        # an index made before the postings: searched from its tsvectors until a writer upgrades it
        store = open_store(pg_url)
        with store.atomic():
            store.conn.execute("DROP TABLE lexical_postings")
            store.conn.execute("DELETE FROM meta WHERE key = 'lexical_postings'")
        old = open_store(pg_url)
        assert not old._has_postings and not old.lexical_problems()
        same(answers(old), read)
        upgraded = open_store(pg_url, create=True)  # what `sbsearch index` opens
        assert upgraded._has_postings and not upgraded.lexical_problems()
        same(answers(upgraded), read)
        # damaged postings: `check` says so, `check --repair` rebuilds them
        with store.atomic():
            store.conn.execute("UPDATE lexical_postings SET chunk_ids = chunk_ids[2:], tfs = tfs[2:], "
                               "ntoks = ntoks[2:] WHERE lexeme = 'budget'")
        report = json.loads(invoke("check", "--store", pg_url, "--json", ok=False).output)
        assert not report["ok"] and any("postings" in p for p in report["problems"])
        invoke("check", "--store", pg_url, "--repair")
        repaired = open_store(pg_url)
        assert not repaired.lexical_problems()
        same(answers(repaired), read)
    finally:
        POSTINGS.budget = budget
