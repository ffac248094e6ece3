"""Incremental indexing on real files, with the fake embedder (a hashed bag of words: no torch),
against both stores: SQLite + FAISS, and PostgreSQL + pgvector (a real server, tests/conftest.py)."""

import faiss
import numpy as np
import pytest

from sbsearch.vectors import faiss_index
from sbsearch.embed import Embedder
from sbsearch.embed.fake import FakeEmbedder
from sbsearch.errors import SbsearchError
from sbsearch.index import Indexer
from sbsearch.index.indexer import DEFAULT_CHUNK_OVERLAP
from sbsearch.embed.models import resolve
from sbsearch.search import Searcher
from sbsearch.index.location import open_store
from sbsearch.index.store import Store


def write_corpus(root):
    root.mkdir(parents=True, exist_ok=True)
    (root / "vpn.md").write_text("# VPN\n\n## Setup\n\nInstall the vpn client and login with your account.\n")
    (root / "travel.txt").write_text("Book the hotel through the travel portal. Claim expenses within 30 days.")
    (root / "faq.csv").write_text("question,answer\nHow do I reset my password?,Use the account portal.\n"
                                  "Where is the printer?,Next to the kitchen.\n")
    return root


def texts_of(store, path):
    return [text for _, text, p in store.chunk_texts() if p == str(path)]


def consistent(store, model):
    """The store and its vector index agree: every chunk has a vector and the index holds exactly
    those ids (FAISS: the file's id map; pgvector: the HNSW index is built and valid)."""
    chunk_ids = {cid for cid, _, _ in store.chunk_texts()}
    assert store.vector_count(model) == len(chunk_ids)
    assert store.vector_ids(model) == chunk_ids
    if store.vector_backend == "faiss":
        index = faiss_index.load(store, model, store.model_row(model)["dim"])
        assert set(faiss.vector_to_array(index.id_map).tolist()) == chunk_ids
    else:
        from sbsearch.vectors import open_vector_index

        assert open_vector_index(store, model).verify(chunk_ids) == "ok"


@pytest.fixture(params=["sqlite", "postgres"])
def idx(request, tmp_path):
    """Where the index lives: a folder (SQLite + FAISS) or a fresh PostgreSQL database (pgvector)."""
    if request.param == "sqlite":
        return tmp_path / "idx"
    return request.getfixturevalue("pg_url")


@pytest.fixture
def corpus(tmp_path):
    return write_corpus(tmp_path / "docs")


@pytest.fixture
def model():
    return "fake"


def run(index_path, model, *roots):
    ix = Indexer(index_path, model)
    summary = ix.run(list(roots))
    return ix, summary


def test_first_run_indexes_everything(tmp_path, corpus, model, idx):
    ix, s = run(idx, model, corpus)
    assert (s.added, s.updated, s.removed, s.failed) == (3, 0, 0, 0)
    assert s.chunks_embedded == s.chunks_total >= 4
    consistent(ix.store, model)


def test_unchanged_run_loads_no_model(tmp_path, corpus, model, idx):
    run(idx, model, corpus)
    gen = open_store(idx).generation
    ix, s = run(idx, model, corpus)
    assert s.unchanged == 3 and s.added == s.updated == s.removed == 0
    assert ix._embedder is None, "no model work when nothing changed"
    assert ix.store.generation == gen


def test_modified_file_is_reembedded_and_old_text_gone(tmp_path, corpus, model, idx):
    run(idx, model, corpus)
    (corpus / "travel.txt").write_text("Trains are preferred over flights under 500 km.")
    ix, s = run(idx, model, corpus)
    assert s.updated == 1 and s.unchanged == 2
    assert s.chunks_embedded == 1
    assert texts_of(ix.store, corpus / "travel.txt") == ["Trains are preferred over flights under 500 km."]
    consistent(ix.store, model)


def test_deleted_file_is_removed_from_sqlite_and_faiss(tmp_path, corpus, model, idx):
    run(idx, model, corpus)
    (corpus / "vpn.md").unlink()
    ix, s = run(idx, model, corpus)
    assert s.removed == 1
    assert str(corpus / "vpn.md") not in ix.store.documents()
    consistent(ix.store, model)
    for results in Searcher(idx, model).search_many(["vpn client"], k=10):
        assert all("vpn.md" not in r.path for r in results)


def test_rename_reuses_vectors(tmp_path, corpus, model, idx):
    run(idx, model, corpus)
    (corpus / "travel.txt").rename(corpus / "travel-policy.txt")
    ix, s = run(idx, model, corpus)
    assert (s.added, s.removed) == (1, 1)
    assert s.chunks_embedded == 0 and s.chunks_reused == 1
    assert ix._embedder is None
    consistent(ix.store, model)


def test_swapped_contents_follow_their_paths(tmp_path, corpus, model, idx):
    a, b = corpus / "a.txt", corpus / "b.txt"
    a.write_text("Alpha text about parking permits.")
    b.write_text("Beta text about kitchen rules.")
    run(idx, model, corpus)
    a.write_text("Beta text about kitchen rules.")
    b.write_text("Alpha text about parking permits.")
    ix, s = run(idx, model, corpus)
    assert s.updated == 2
    assert texts_of(ix.store, a) == ["Beta text about kitchen rules."]
    assert texts_of(ix.store, b) == ["Alpha text about parking permits."]
    consistent(ix.store, model)


def test_other_roots_are_not_touched(tmp_path, corpus, model, idx):
    other = write_corpus(tmp_path / "other")
    run(idx, model, corpus)
    ix, s = run(idx, model, other)
    assert s.added == 3 and s.removed == 0
    assert len(ix.store.documents()) == 6


def test_missing_root_changes_nothing(tmp_path, corpus, model, idx):
    run(idx, model, corpus)
    before = open_store(idx).documents()
    with pytest.raises(SbsearchError, match="no such file"):
        run(idx, model, corpus, tmp_path / "nope")
    assert open_store(idx).documents().keys() == before.keys()


def test_bad_files_are_reported_and_do_not_stop_the_run(tmp_path, corpus, model, idx):
    (corpus / "empty.txt").write_bytes(b"")
    (corpus / "binary.md").write_bytes(bytes(range(256)) * 8)
    (corpus / "drawing.svg").write_bytes(b"<svg/>")
    (corpus / ".hidden.txt").write_text("secret")
    (corpus / "queries.jsonl").write_text('{"query": "x"}\n')
    (corpus / ".sbsearchignore").write_text("# eval file\nqueries.jsonl\n")
    ix, s = run(idx, model, corpus)
    assert s.added == 3 and s.failed == 2 and s.skipped == 1
    errors = {f["path"].rsplit("/", 1)[-1]: f["error"] for f in ix.store.summary()["failed_files"]}
    assert errors == {"binary.md": "binary data, not text", "empty.txt": "empty file"}
    # failed files are not retried while unchanged
    _, s2 = run(idx, model, corpus)
    assert s2.unchanged == 5 and s2.failed == 0


def test_unreadable_file_keeps_previous_version(tmp_path, corpus, model, monkeypatch, idx):
    import sbsearch.index.indexer as indexer_mod

    run(idx, model, corpus)
    (corpus / "travel.txt").write_text("changed, but we cannot read it now")
    real_read = indexer_mod._read_checked

    def deny(real, st):
        # chmod 000 does not stop root (CI runs as root), so the permission error is injected
        if real.endswith("/travel.txt"):
            raise PermissionError(13, "Permission denied", real)
        return real_read(real, st)

    monkeypatch.setattr(indexer_mod, "_read_checked", deny)
    ix, s = run(idx, model, corpus)
    assert s.failed == 1 and "previous version kept" in s.failures[0]["error"]
    assert texts_of(ix.store, corpus / "travel.txt") == [
        "Book the hotel through the travel portal. Claim expenses within 30 days."]
    consistent(ix.store, model)


def test_second_model_backfills_same_chunks(tmp_path, corpus, model, idx):
    other = "fake-48"
    ix, _ = run(idx, model, corpus)
    chunks = ix.store.chunk_count()
    ix2, s = run(idx, other, corpus)
    assert s.unchanged == 3 and s.chunks_embedded == chunks
    assert ix2.store.vector_counts() == {model: chunks, other: chunks}
    consistent(ix2.store, other)


def test_model_with_other_dimension_is_refused(tmp_path, corpus, fake_embedder, idx):
    Indexer(idx, embedder=fake_embedder).run([corpus])
    # the same model name now giving 48-d vectors, as when a model directory is replaced
    wider = FakeEmbedder(fake_embedder.name, dim=48)
    with pytest.raises(SbsearchError, match="48-d"):
        Searcher(idx, embedder=wider).search("vpn")
    (corpus / "new.txt").write_text("A new file forces embedding.")
    with pytest.raises(SbsearchError, match="48-d"):
        Indexer(idx, embedder=wider).run([corpus])
    assert str(corpus / "new.txt") not in open_store(idx).documents()


def test_stale_faiss_file_is_rebuilt_from_sqlite(tmp_path, corpus, model):
    ix, _ = run(tmp_path / "idx", model, corpus)
    for f in (tmp_path / "idx" / "faiss").iterdir():
        f.unlink()
    results = Searcher(tmp_path / "idx", model).search("printer", k=3)
    assert len(results) == 3
    consistent(Store(tmp_path / "idx"), model)


def test_killed_run_keeps_its_finished_vector_batches(tmp_path, model, monkeypatch, idx):
    """Vectors are committed in batches while a run embeds; a run stopped half-way publishes
    nothing (searches see the previous state) and the next run embeds only what was left."""
    import sbsearch.index.indexer as indexer_mod

    monkeypatch.setattr(indexer_mod, "PENDING_BATCH", 10)
    docs = tmp_path / "docs"
    docs.mkdir()
    for i in range(25):
        (docs / f"note{i}.txt").write_text(f"Note {i}: the printer on floor {i} needs toner.")
    ix = Indexer(idx, model)
    emb = ix.embedder()
    real_encode = emb.encode
    calls = []

    def encode_then_die(texts, progress=None):
        if len(calls) == 2:
            raise KeyboardInterrupt  # as if Ctrl-C / SIGTERM arrived during the third batch
        calls.append(len(texts))
        return real_encode(texts, progress)

    monkeypatch.setattr(emb, "encode", encode_then_die)
    with pytest.raises(KeyboardInterrupt):
        ix.run([docs])
    store = open_store(idx)
    assert store.documents() == {}
    assert store.pending_count() == 20
    assert store.runs(1)[0]["status"] == "interrupted"
    monkeypatch.setattr(emb, "encode", real_encode)
    s = Indexer(idx, model, embedder=emb).run([docs])
    assert s.added == 25 and s.chunks_reused == 20 and s.chunks_embedded == 5
    assert store.pending_count() == 0
    consistent(store, model)


# ------------------------------------------------------------------------------------ the fake embedder

def test_fake_embedder_is_deterministic_normalised_and_keyed_by_name():
    texts = ["install the vpn client", "the vpn client drops", "hotel booking for travel", "", "?!"]
    a = FakeEmbedder("fake")
    seen = []
    vecs = FakeEmbedder("fake", batch_size=2).encode(texts, progress=seen.append)
    assert isinstance(a, Embedder)
    assert vecs.dtype == np.float32 and vecs.shape == (5, 64) and seen == [2, 2, 1]
    np.testing.assert_allclose(np.linalg.norm(vecs, axis=1), 1.0, rtol=1e-5)
    np.testing.assert_array_equal(a.encode(texts), vecs)  # a new instance gives the same vectors
    np.testing.assert_array_equal(a.encode_query(texts[:1]), vecs[:1])
    assert vecs[1] @ vecs[0] > vecs[2] @ vecs[0], "shared words make texts closer"
    assert abs(float(FakeEmbedder("fake-b").encode(texts[:1])[0] @ vecs[0])) < 0.5, "another name, other vectors"
    assert a.encode([]).shape == (0, 64) and a.parameter_count() == 0 and a.max_seq_length > 0


def test_fake_names_resolve_only_when_enabled(monkeypatch):
    info = resolve("fake-48")
    assert (info.kind, info.dim, info.layers) == ("fake", 48, 1)
    assert resolve("fake").dim == 64 and resolve("fake-b").dim == 64
    assert info.weights_sha256() == resolve("fake-48").weights_sha256() != resolve("fake").weights_sha256()
    with pytest.raises(SbsearchError, match="dimension 1 is outside"):
        resolve("fake-1")
    monkeypatch.delenv("SBSEARCH_FAKE_MODELS")
    with pytest.raises(SbsearchError, match="unknown model 'fake'"):
        resolve("fake")
    assert FakeEmbedder("fake").dim == 64, "constructing one directly needs no switch"


def test_indexer_with_an_embedder_takes_its_name_and_refuses_another(tmp_path, corpus, fake_embedder, idx):
    ix = Indexer(idx, embedder=fake_embedder)
    assert ix.model_name == "fake" and ix.info is fake_embedder.info
    ix.run([corpus])
    consistent(ix.store, "fake")
    with pytest.raises(SbsearchError, match="given with an embedder"):
        Indexer(idx, "fake-b", embedder=fake_embedder)


def test_opening_an_index_that_another_process_is_creating_waits_for_its_schema(tmp_path):
    import sqlite3
    import threading

    from sbsearch.errors import SbsearchError
    from sbsearch.index.store import DB_NAME, Store

    foreign = tmp_path / "foreign"
    foreign.mkdir()
    sqlite3.connect(foreign / DB_NAME).execute("CREATE TABLE x (y)")
    with pytest.raises(SbsearchError, match="is not an sbsearch index"):
        Store(foreign)

    creating = tmp_path / "creating"
    creating.mkdir()
    sqlite3.connect(creating / DB_NAME).close()  # the file exists, its tables do not yet
    later = threading.Timer(0.5, lambda: Store(creating, create=True))
    later.start()
    store = Store(creating)  # waits for the creator's first migration instead of failing
    later.join()
    assert store.db["documents"].exists()


# ------------------------------------------------------------------------ reading while embedding

class SlowFake(FakeEmbedder):
    """The fake model, slow enough that the reading thread has time to run ahead; records how
    many files had been read when each batch was encoded, and can fail on a chosen batch."""

    def __init__(self, name, reads, fail_on=None):
        super().__init__(name)
        self.reads, self.fail_on, self.seen = reads, fail_on, []

    def encode(self, texts, progress=None):
        before = len(self.reads)
        if self.fail_on is not None and len(self.seen) == self.fail_on:
            raise RuntimeError("encoder failed")
        import time

        time.sleep(0.3)
        self.seen.append((before, len(self.reads)))
        return super().encode(texts, progress)


def many_files(root, n=12):
    root.mkdir(parents=True, exist_ok=True)
    for i in range(n):
        (root / f"note-{i:02d}.txt").write_text(f"Note {i} about topic{i} and the shared words of every note.\n")
    return root


def counting_reads(monkeypatch, seconds=0.0):
    """Count the files read; each read takes at least `seconds` (a slow parser)."""
    import time

    from sbsearch.index import indexer as indexer_module

    reads = []
    real = indexer_module.load_document

    def load(path, *a, **kw):
        time.sleep(seconds)
        reads.append(str(path))
        return real(path, *a, **kw)
    monkeypatch.setattr(indexer_module, "load_document", load)
    return reads


def test_files_are_read_while_the_previous_batch_is_embedded(tmp_path, monkeypatch, isolated_home):
    from sbsearch.index import indexer as indexer_module

    monkeypatch.setattr(indexer_module, "PENDING_BATCH", 3)
    reads = counting_reads(monkeypatch, seconds=0.05)
    docs = many_files(tmp_path / "docs")
    emb = SlowFake("fake", reads)
    summary = Indexer(tmp_path / "idx", embedder=emb).run([docs])
    assert summary.added == 12 and summary.chunks_embedded == 12
    # during some batch's encoding the reading thread read further files
    assert any(after > before for before, after in emb.seen), emb.seen

    # the same index as reading in the calling thread (read_ahead=0), where nothing moves meanwhile
    reads.clear()
    emb0 = SlowFake("fake", reads)
    Indexer(tmp_path / "idx0", embedder=emb0, read_ahead=0).run([docs])
    assert all(after == before for before, after in emb0.seen)
    a, b = Store(tmp_path / "idx"), Store(tmp_path / "idx0")
    assert sorted(t for _, t, _ in a.chunk_texts()) == sorted(t for _, t, _ in b.chunk_texts())
    consistent(a, "fake")


def test_a_failure_while_embedding_stops_the_reader_and_publishes_nothing(tmp_path, monkeypatch, isolated_home):
    import threading

    from sbsearch.index import indexer as indexer_module

    monkeypatch.setattr(indexer_module, "PENDING_BATCH", 3)
    reads = counting_reads(monkeypatch)
    docs = many_files(tmp_path / "docs")
    Indexer(tmp_path / "idx", embedder=FakeEmbedder("fake")).run([docs])
    before = Store(tmp_path / "idx").chunk_texts()
    for i in range(12):
        (docs / f"note-{i:02d}.txt").write_text(f"Changed note {i}.\n")
    with pytest.raises(RuntimeError, match="encoder failed"):
        Indexer(tmp_path / "idx", embedder=SlowFake("fake", reads, fail_on=1)).run([docs])
    assert not [t for t in threading.enumerate() if t.name == "sbsearch-reader"]
    store = Store(tmp_path / "idx")
    assert store.chunk_texts() == before
    assert store.runs()[0]["status"] == "failed"


def test_token_batches_hold_similar_lengths_within_the_budget():
    import random

    from sbsearch.embed.onnx_backend import token_batches

    rng = random.Random(0)
    lengths = [rng.randint(3, 256) for _ in range(500)]
    batches = token_batches(lengths, 2048, 32)
    assert sorted(i for b in batches for i in b) == list(range(500))
    for b in batches:
        assert len(b) <= 32
        assert len(b) == 1 or len(b) * max(lengths[i] for i in b) <= 2048
    widths = [max(lengths[i] for i in b) for b in batches]
    assert widths == sorted(widths)
    assert token_batches([300], 100, 32) == [[0]]  # a text longer than the budget still goes alone


@pytest.mark.parametrize("overlap, kept", [(0, 0), (None, DEFAULT_CHUNK_OVERLAP), (30, 30), (500, 40)])
def test_chunk_overlap_zero_is_kept_not_replaced_by_the_default(tmp_path, fake_embedder, overlap, kept):
    """An overlap of 0 is a setting (benchmarks/chunking.py measures it), not "unset"; larger ones
    are capped at a third of the chunk."""
    root = tmp_path / "docs"
    root.mkdir()
    sentences = [f"Sentence number {i} talks about topic {i % 7} in some detail." for i in range(200)]
    (root / "long.txt").write_text(" ".join(sentences))
    ix = Indexer(tmp_path / "idx", embedder=fake_embedder, chunk_tokens=120, chunk_overlap=overlap)
    ix.run([root])
    assert ix.store.get_meta("chunk_overlap") == str(kept)
    texts = texts_of(ix.store, (root / "long.txt").resolve())
    assert len(texts) > 3
    words = sum(len(t.split()) for t in texts)
    if kept == 0:  # every sentence in exactly one chunk
        assert words == sum(len(s.split()) for s in sentences)
    else:  # sentences carried over into the next chunk
        assert words > sum(len(s.split()) for s in sentences)
