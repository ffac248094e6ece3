"""What sbsearch hands pruning (sbsearch.model_choice.prune_inputs): an index's chunks, from a
folder's SQLite file or a PostgreSQL store alike, and a folder of documents read by sbsearch's own
scanner, readers and chunker. Real indexes on the fake embedder; no torch (quick)."""

from __future__ import annotations

from urllib.parse import urlsplit

import pytest

from pruning.data import Texts, read_sentences
from sbsearch.errors import SbsearchError
from sbsearch.index.indexer import Indexer
from sbsearch.index.location import open_store
from sbsearch.ingest.folder import folder_chunks
from sbsearch.model_choice.prune_inputs import text_source, text_sources


@pytest.fixture
def docs(tmp_path):
    root = tmp_path / "docs"
    (root / "sub").mkdir(parents=True)
    (root / "a.md").write_text("# Printers\n\nThe printer in room four jams on thick paper.\n")
    (root / "sub" / "b.txt").write_text("Invoices go to the finance team every Monday morning.\n")
    (root / ".hidden.txt").write_text("a hidden note that is never read\n")
    (root / "skip.txt").write_text("an ignored file that is never read\n")
    (root / ".sbsearchignore").write_text("skip.txt\n")
    (root / "queries.jsonl").write_text('{"id": "q1", "query": "printer", "relevant": ["a.md"]}\n')
    return root


def test_a_folder_is_read_like_the_indexer_reads_it(docs):
    chunks = folder_chunks(docs)
    assert [path for _, path in chunks] == ["a.md", "sub/b.txt"]  # hidden, ignored and the queries left out
    assert chunks[0][0].startswith("Printers\n") and "room four" in chunks[0][0]  # the heading gives context
    source = text_source(str(docs))
    assert isinstance(source, Texts) and source.name == str(docs)
    assert list(source.texts) == [text for text, _ in chunks]


def test_an_index_gives_its_chunks_as_the_model_saw_them(docs, tmp_path, fake_embedder):
    index = tmp_path / "idx"
    Indexer(index, embedder=fake_embedder).run([docs])
    source = text_source(str(index))
    assert source == text_source(str(index / "index.db"))
    store = open_store(index)
    assert len(source.texts) == store.chunk_count() == 2
    assert any(t.startswith("Printers\n") for t in source.texts)
    assert read_sentences([source]) == [" ".join(t.split()) for t in source.texts]  # whitespace evened, as for files
    assert source.sha256 == text_source(str(index)).sha256  # the card and resume key see the same text


def test_a_postgresql_store_gives_the_same_text_as_an_index_folder(docs, tmp_path, fake_embedder, pg_url):
    folder = tmp_path / "idx"
    Indexer(folder, embedder=fake_embedder).run([docs])
    Indexer(pg_url, embedder=fake_embedder).run([docs])
    from_pg, from_folder = text_source(pg_url), text_source(str(folder))
    assert from_pg.texts == from_folder.texts
    password = urlsplit(pg_url).password
    assert from_pg.name.startswith("postgresql://") and not (password and password in from_pg.name)  # on the card


def test_files_pass_through_and_other_databases_are_refused(tmp_path):
    f = tmp_path / "t.txt"
    f.write_text("one line\n")
    assert text_sources([str(f), "hf:some/set"]) == [str(f), "hf:some/set"]
    (tmp_path / "other.db").write_bytes(b"")
    with pytest.raises(SbsearchError, match="not an sbsearch index"):
        text_source(str(tmp_path / "other.db"))
    with pytest.raises(SbsearchError, match="no index at"):
        text_source(str(tmp_path / "nothing" / "index.db"))


def test_sbsearch_adds_its_own_suites_to_prunings():
    """int8 and labelfree measure sbsearch's export and estimate: sbsearch registers them, in the
    order `--eval all` always listed them."""
    from sbsearch import app

    assert app.prune_suites("all") == ("stsb", "sick", "nli", "stackfaq", "sample_docs", "size", "speed",
                                       "jsts", "jsquad", "sample_docs_ja", "int8", "labelfree")
    assert app.prune_suites("stackfaq,int8") == ("stackfaq", "int8") and app.prune_suites("none") == ()
    with pytest.raises(SbsearchError, match="unknown evaluation suite 'bogus'"):
        app.prune_suites("stsb,bogus")
