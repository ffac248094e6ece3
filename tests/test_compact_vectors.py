"""Vectors kept once and compactly (issue #30): int8 with a scale per vector in the SQLite store's
bytes (vector_codec), float32 out of every read; an index made before (float32) read as it is and
migrated in place without a model run (migrations m007, m008), its float32 exact FAISS file
searched as it is until a change rebuilds it as an int8 file; a migration killed halfway leaves
the float32 index searchable; PostgreSQL keeps float32 (what its HNSW index searches) and takes a
migrated index's vectors as float32."""

from __future__ import annotations

import json
import os
import shutil
import signal
import sqlite3
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from sbsearch.cli import cli
from sbsearch.errors import SbsearchError
from sbsearch.index.location import open_store
from sbsearch.index.store import Store
from sbsearch.index.store import vector_codec as codec
from sbsearch.index.store.sqlite import schema
from sbsearch.search import Searcher
from sbsearch.vectors import faiss_index

SAMPLE_DOCS = Path(__file__).resolve().parents[1] / "sample_docs"
QUERIES = ["vpn password reset", "travel expenses hotel", "printer toner", "parking badge"]


def invoke(*args, ok: bool = True):
    result = CliRunner(env={"COLUMNS": "200"}).invoke(cli, [str(a) for a in args])
    if ok:
        assert result.exit_code == 0, result.output
    return result


def unit_rows(n: int, dim: int, seed: int = 0) -> np.ndarray:
    mat = np.random.default_rng(seed).normal(size=(n, dim)).astype(np.float32)
    return mat / np.linalg.norm(mat, axis=1, keepdims=True)


def blob_lengths(folder: Path, table: str = "embeddings") -> set[int]:
    with sqlite3.connect(folder / "index.db") as con:
        return {r[0] for r in con.execute(f"SELECT length(vector) FROM {table}")}


def make_float32_index(folder: Path) -> dict[int, np.ndarray]:
    """Turn an index into one made before the encodings existed (float32 vectors, no meta row,
    m007/m008 not applied, no incremental auto-vacuum); its float32 vectors by chunk id."""
    store = Store(folder)
    encoding = store.vector_encoding()
    db = store.db
    with db.atomic():
        rows = db.execute("SELECT rowid, chunk_id, vector FROM embeddings").fetchall()
        vectors = {cid: codec.decode(blob, encoding) for _, cid, blob in rows}
        db.conn.executemany("UPDATE embeddings SET vector = ? WHERE rowid = ?",
                            [(vectors[cid].tobytes(), rowid) for rowid, cid, _ in rows])
        db.execute("DELETE FROM meta WHERE key = ?", [codec.ENCODING_KEY])
        db.execute("DELETE FROM _sqlite_migrations WHERE name IN ('m007_compact_vectors', 'm008_reclaim_space')")
    db.execute("PRAGMA auto_vacuum = NONE")
    db.execute("VACUUM")
    store.close()
    return vectors


@pytest.fixture
def fake_index(tmp_path) -> Path:
    folder = tmp_path / "idx"
    invoke("index", SAMPLE_DOCS, "-i", folder, "-m", "fake", "-q")
    return folder


# ------------------------------------------------------------------------------------ the codec

def test_int8_round_trip_stays_within_half_a_step_and_keeps_cosines():
    mat = unit_rows(2000, 384)
    blobs = codec.encode_matrix(mat, codec.INT8)
    assert {len(b) for b in blobs} == {384 + 4}
    back = codec.decode_matrix(blobs, codec.INT8)
    assert back.dtype == np.float32 and back.shape == mat.shape
    step = np.abs(mat).max(axis=1) / 127
    assert (np.abs(back - mat).max(axis=1) <= step / 2 * (1 + 1e-4)).all()
    cos = (back * mat).sum(1) / np.linalg.norm(back, axis=1)
    assert cos.min() > 0.9999
    # one vector at a time gives the same bytes as a matrix
    assert codec.encode(mat[7], codec.INT8) == blobs[7]
    assert np.array_equal(codec.decode(blobs[7], codec.INT8), back[7])


def test_int8_of_a_decoded_vector_is_the_same_bytes_and_zero_stays_zero():
    blobs = codec.encode_matrix(unit_rows(500, 384, seed=1), codec.INT8)
    assert codec.encode_matrix(codec.decode_matrix(blobs, codec.INT8), codec.INT8) == blobs
    zero = codec.encode(np.zeros(16, np.float32), codec.INT8)
    assert np.array_equal(codec.decode(zero, codec.INT8), np.zeros(16, np.float32))


def test_float16_and_float32_round_trips():
    mat = unit_rows(100, 384, seed=2)
    assert codec.decode_matrix(codec.encode_matrix(mat, codec.FLOAT32), codec.FLOAT32).tobytes() == mat.tobytes()
    half = codec.decode_matrix(codec.encode_matrix(mat, codec.FLOAT16), codec.FLOAT16)
    assert np.abs(half - mat).max() < 2.5e-4
    assert codec.recode(codec.encode(mat[0], codec.INT8), codec.INT8, codec.FLOAT32) == \
        codec.decode(codec.encode(mat[0], codec.INT8), codec.INT8).tobytes()


def test_an_unknown_encoding_is_one_clear_error():
    assert codec.check_encoding(None) == codec.FLOAT32
    with pytest.raises(SbsearchError, match="cannot read"):
        codec.check_encoding("bfloat8")


# ------------------------------------------------------------------------------------ SQLite

def test_a_new_index_keeps_int8_and_gives_its_pending_pages_back(fake_index):
    store = Store(fake_index)
    assert store.vector_encoding() == codec.INT8
    dim = store.model_row("fake")["dim"]
    assert blob_lengths(fake_index) == {dim + 4}
    ids, mat = next(store.vectors("fake"))
    assert mat.dtype == np.float32 and mat.shape == (store.chunk_count(), dim)
    assert np.allclose(np.linalg.norm(mat, axis=1), 1, atol=0.01)
    got_ids, got = store.vectors_for_ids("fake", ids[:5])
    assert np.array_equal(got, mat[:5])
    assert store.db.execute("PRAGMA auto_vacuum").fetchone()[0] == 2  # incremental
    assert store.pending_count() == 0
    assert store.db.execute("PRAGMA freelist_count").fetchone()[0] == 0
    status = json.loads(invoke("status", "-i", fake_index, "--json").output)
    assert status["vector_encoding"] == "int8"
    assert "per chunk" in invoke("status", "-i", fake_index).output


def test_an_old_float32_index_reads_as_it_is_without_migrating(fake_index):
    vectors = make_float32_index(fake_index)
    store = Store(fake_index)  # a reader: applies no migration
    assert store.vector_encoding() == codec.FLOAT32
    ids, mat = next(store.vectors("fake"))
    assert np.array_equal(mat, np.vstack([vectors[int(i)] for i in ids]))
    found = Searcher(fake_index, "fake").search_many(QUERIES, k=3, mode="vector")
    assert all(len(r) == 3 for r in found)
    assert blob_lengths(fake_index) == {4 * store.model_row("fake")["dim"]}


def test_the_cli_migrates_an_old_index_in_place_without_a_model_run(fake_index):
    size_before = (fake_index / "index.db").stat().st_size
    vectors = make_float32_index(fake_index)
    old = {q: [r.chunk_id for r in res] for q, res in
           zip(QUERIES, Searcher(fake_index, "fake").search_many(QUERIES, k=5, mode="hybrid"))}
    float32_size = (fake_index / "index.db").stat().st_size
    invoke("index", SAMPLE_DOCS, "-i", fake_index, "-m", "fake", "-q")  # nothing changed on disk
    store = Store(fake_index)
    assert store.runs(1)[0]["chunks_embedded"] == 0
    assert store.vector_encoding() == codec.INT8
    dim = store.model_row("fake")["dim"]
    assert blob_lengths(fake_index) == {dim + 4}
    ids, mat = next(store.vectors("fake"))
    expected = np.vstack([vectors[int(i)] for i in ids])
    step = np.abs(expected).max(axis=1, keepdims=True) / 127
    assert (np.abs(mat - expected) <= step / 2 * (1 + 1e-4)).all()
    assert store.db.execute("PRAGMA freelist_count").fetchone()[0] == 0
    assert (fake_index / "index.db").stat().st_size < min(float32_size, size_before + 4096)
    check = json.loads(invoke("check", "-i", fake_index, "--json").output)
    assert check["ok"] and check["problems"] == []
    new = {q: [r.chunk_id for r in res] for q, res in
           zip(QUERIES, Searcher(fake_index, "fake").search_many(QUERIES, k=5, mode="hybrid"))}
    assert sum(o[0] == n[0] for o, n in zip(old.values(), new.values())) >= len(QUERIES) - 1


def make_previous_faiss_file(folder: Path, model: str = "fake") -> Path:
    """Replace a model's exact FAISS file by what the version before int8 FAISS files wrote: a
    float32 FAISS file of the stored vectors (`-g<generation>.faiss`), a meta without `file_format`."""
    import faiss

    store = Store(folder)
    meta = faiss_index._read_meta(store, model)
    assert meta["type"] == "exact" and meta["file_format"] == "int8"
    parts = list(store.vectors(model))
    old = faiss.IndexIDMap2(faiss.IndexFlatIP(meta["dim"]))
    old.add_with_ids(np.vstack([m for _, m in parts]), np.concatenate([i for i, _ in parts]))
    path = faiss_index.faiss_dir(store) / meta["file"].replace(".int8", ".faiss")
    faiss.write_index(old, str(path))
    (faiss_index.faiss_dir(store) / meta["file"]).unlink()
    meta = {k: v for k, v in meta.items() if k != "file_format"} | {"file": path.name} | faiss_index._file_facts(path)
    faiss_index._meta_path(store, model).write_text(json.dumps(meta))
    store.close()
    return path


def test_an_index_of_before_int8_faiss_files_is_searched_and_its_file_rewritten_by_the_next_change(tmp_path):
    """An index made before (float32 store, float32 exact FAISS file): queries and check as they
    were; a run that changes nothing migrates the store and keeps the file; the first run that
    changes a document rebuilds the file from the store, as an int8 file of a quarter the bytes."""
    docs = tmp_path / "docs"
    shutil.copytree(SAMPLE_DOCS, docs)
    folder = tmp_path / "idx"
    invoke("index", docs, "-i", folder, "-m", "fake", "-q")
    make_float32_index(folder)
    legacy = make_previous_faiss_file(folder)
    float32_bytes = legacy.stat().st_size

    def answers():
        return {q: [r.chunk_id for r in res]
                for q, res in zip(QUERIES, Searcher(folder, "fake").search_many(QUERIES, k=5, mode="vector"))}

    before = answers()
    assert json.loads(invoke("check", "-i", folder, "--json").output)["ok"]
    invoke("index", docs, "-i", folder, "-m", "fake", "-q")  # nothing changed: migrates the store only
    assert Store(folder).vector_encoding() == codec.INT8 and legacy.exists()
    assert answers() == before, "the float32 file is still the one searched"
    assert json.loads(invoke("check", "-i", folder, "--json").output)["ok"]
    (docs / "new-note.txt").write_text("A new note about the parking badge office opening hours.\n")
    invoke("index", docs, "-i", folder, "-m", "fake", "-q")
    store = Store(folder)
    meta = faiss_index._read_meta(store, "fake")
    assert meta["file_format"] == "int8" and meta["generation"] == store.generation
    assert meta["file_bytes"] < float32_bytes / 3
    after = answers()
    assert sum(before[q][0] == after[q][0] for q in QUERIES) >= len(QUERIES) - 1
    assert json.loads(invoke("check", "-i", folder, "--json").output)["ok"]


def test_check_finds_a_vector_of_the_wrong_length(fake_index):
    with sqlite3.connect(fake_index / "index.db") as con:
        con.execute("UPDATE embeddings SET vector = substr(vector, 1, 20) WHERE rowid = (SELECT min(rowid) FROM embeddings)")
    result = invoke("check", "-i", fake_index, "--json", ok=False)
    assert result.exit_code == 1
    report = json.loads(result.output)
    assert report["vector_encoding"] == "int8"
    assert any("1 stored vectors are not 64-d int8" in p for p in report["problems"])


def test_pending_vectors_of_a_stopped_run_are_migrated_and_still_reused(fake_index):
    make_float32_index(fake_index)
    pending = unit_rows(3, 64, seed=3)
    with sqlite3.connect(fake_index / "index.db") as con:
        con.executemany("INSERT INTO pending_vectors (model, text_sha, vector) VALUES ('fake', ?, ?)",
                        [(f"sha-{i}", v.tobytes()) for i, v in enumerate(pending)])
    store = Store(fake_index, create=True)  # a writer: migrates
    assert blob_lengths(fake_index, "pending_vectors") == {64 + 4}
    got = store.vectors_by_text(["sha-0", "sha-1", "sha-2"])["fake"]
    for i, v in enumerate(pending):
        assert np.abs(np.frombuffer(got[f"sha-{i}"], np.float32) - v).max() <= np.abs(v).max() / 254 * (1 + 1e-4)


def test_a_failing_migration_is_not_half_applied(fake_index, monkeypatch):
    vectors = make_float32_index(fake_index)
    calls = []

    def fail_on_second_batch(mat, encoding):
        calls.append(len(mat))
        if len(calls) == 2:
            raise RuntimeError("disk on fire")
        return codec.encode_matrix(mat, encoding)

    monkeypatch.setattr(schema, "encode_matrix", fail_on_second_batch)
    monkeypatch.setattr(schema._recode_table, "__defaults__", (50,))  # batches of 50 rows
    with pytest.raises(RuntimeError):
        Store(fake_index, create=True)
    store = Store(fake_index)
    assert store.vector_encoding() == codec.FLOAT32
    assert blob_lengths(fake_index) == {4 * 64}  # the first batch's updates rolled back too
    ids, mat = next(store.vectors("fake"))
    assert np.array_equal(mat, np.vstack([vectors[int(i)] for i in ids]))
    applied = {r["name"] for r in store.db.query("SELECT name FROM _sqlite_migrations")}
    assert "m007_compact_vectors" not in applied


KILLED_MIGRATION = textwrap.dedent("""
    import sys, time
    from pathlib import Path
    from sbsearch.index.store import vector_codec
    from sbsearch.index.store.sqlite import schema

    calls = []
    def slow(mat, encoding):
        calls.append(1)
        if len(calls) == 3:  # two batches rewritten, uncommitted: say so, and wait for the kill
            Path(sys.argv[2]).write_text("inside")
            time.sleep(60)
        return vector_codec.encode_matrix(mat, encoding)
    schema.encode_matrix = slow
    schema._recode_table.__defaults__ = (40,)
    from sbsearch.index.store import Store
    Store(Path(sys.argv[1]), create=True)
""")


def test_kill_9_during_the_migration_leaves_the_float32_index_searchable(fake_index, tmp_path):
    vectors = make_float32_index(fake_index)
    before = invoke("query", "travel expenses hotel", "-i", fake_index, "-m", "fake", "--json", "-k", "3").output
    marker = tmp_path / "inside"
    proc = subprocess.Popen([sys.executable, "-c", KILLED_MIGRATION, str(fake_index), str(marker)],
                            env={**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)})
    deadline = time.monotonic() + 60
    while not marker.exists() and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.02)
    assert marker.exists(), "the migration never reached its third batch"
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    # the previous index, whole: float32 vectors, searchable, passes check
    store = Store(fake_index)
    assert store.vector_encoding() == codec.FLOAT32 and blob_lengths(fake_index) == {4 * 64}
    ids, mat = next(store.vectors("fake"))
    assert np.array_equal(mat, np.vstack([vectors[int(i)] for i in ids]))
    store.close()
    assert invoke("query", "travel expenses hotel", "-i", fake_index, "-m", "fake", "--json", "-k", "3").output == before
    invoke("check", "-i", fake_index)
    # and the next writer migrates it
    invoke("index", SAMPLE_DOCS, "-i", fake_index, "-m", "fake", "-q")
    assert Store(fake_index).vector_encoding() == codec.INT8 and blob_lengths(fake_index) == {64 + 4}
    invoke("check", "-i", fake_index)


@pytest.mark.slow  # a real model
def test_a_new_index_with_a_real_model_searches_like_float32(tmp_path):
    """minilm-int8 on sample_docs: the int8-stored index against the same index turned float32
    (benchmarks/storage.py measures the nDCG@10 of both on three sets)."""
    folder = tmp_path / "idx"
    invoke("index", SAMPLE_DOCS, "-i", folder, "-m", "minilm-int8", "-q")
    compact = {q: [r.chunk_id for r in res] for q, res in
               zip(QUERIES, Searcher(folder, "minilm-int8").search_many(QUERIES, k=5, mode="vector"))}
    make_float32_index(folder)
    shutil.rmtree(folder / "faiss")  # rebuilt from the float32 vectors
    full = {q: [r.chunk_id for r in res] for q, res in
            zip(QUERIES, Searcher(folder, "minilm-int8").search_many(QUERIES, k=5, mode="vector"))}
    assert all(compact[q][0] == full[q][0] for q in QUERIES)


# ------------------------------------------------------------------------------------ PostgreSQL

def test_postgres_keeps_float32_pending_vectors_too(pg_url):
    """PostgreSQL keeps pgvector's float32 (what HNSW searches), pending vectors too: a vector
    that waited there comes back exactly as it was embedded, as a clean run stores it."""
    invoke("index", SAMPLE_DOCS, "--store", pg_url, "-m", "fake", "-q")
    store = open_store(pg_url)
    assert store.vector_encoding() == codec.FLOAT32
    pending = unit_rows(2, 64, seed=4)
    store.save_pending("fake", {f"new-{i}": v.tobytes() for i, v in enumerate(pending)})
    assert store.vectors_by_text(["new-0"])["fake"]["new-0"] == pending[0].tobytes()
    assert store.malformed_vector_count("fake", 64) == 0
    # a vector of another length cannot even be stored: the model's HNSW index casts to vector(64)
    import psycopg

    with pytest.raises(psycopg.errors.DataException, match="expected 64 dimensions"):
        store.conn.execute("UPDATE embeddings SET vector = %s WHERE chunk_id = (SELECT min(chunk_id) FROM embeddings)",
                           [unit_rows(1, 32)[0]])
    store.close()
    assert json.loads(invoke("check", "--store", pg_url, "--json").output)["vector_encoding"] == "float32"


def test_a_migrated_sqlite_index_moves_to_postgres_as_float32(fake_index, pg_url):
    make_float32_index(fake_index)
    invoke("index", SAMPLE_DOCS, "-i", fake_index, "-m", "fake", "-q")  # migrates to int8
    invoke("migrate", "-i", fake_index, "--to", pg_url)
    sqlite, pg = open_store(fake_index), open_store(pg_url)
    assert pg.get_meta(codec.ENCODING_KEY) is None  # the SQLite encoding's row stays behind
    ids = np.array([cid for cid, _, _ in sqlite.chunk_texts()])
    a, b = sqlite.vectors_for_ids("fake", ids), pg.vectors_for_ids("fake", ids)
    order_a, order_b = np.argsort(a[0]), np.argsort(b[0])
    assert np.array_equal(a[0][order_a], b[0][order_b]) and np.array_equal(a[1][order_a], b[1][order_b])
    invoke("check", "--store", pg_url)
