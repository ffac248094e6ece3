"""Index types chosen by size (exact / IVF / HNSW on request) with real FAISS and a real SQLite Store.

Vectors are put straight into the store (no model): clustered unit vectors, because approximate
search only reaches 0.99 recall on data with structure, as real sentence embeddings have. The
threshold is lowered so that an approximate index is built from a few thousand vectors."""

from __future__ import annotations

import json
import re
from pathlib import Path

import faiss
import numpy as np
import pytest
from click.testing import CliRunner

from sbsearch.index import maintenance
from sbsearch.vectors import exact_file, faiss_index
from sbsearch.cli import cli
from sbsearch.errors import SbsearchError
from sbsearch.search import Searcher
from sbsearch.index.store import NewChunk, NewDocument, Store
from sbsearch.index.store.vector_codec import decode_matrix, encode, encode_matrix

MODEL = "synthetic-test-model"
DIM = 48


def clustered(n: int, dim: int = DIM, seed: int = 0, rank: int = 24) -> np.ndarray:
    """Unit vectors with topics, documents and a decaying spectrum (a small cousin of the
    generator in benchmarks/ann.py)."""
    rng = np.random.default_rng(seed)
    scale = np.arange(1, rank + 1) ** -0.5
    basis = rng.standard_normal((rank, dim)) / np.sqrt(rank)
    topics = rng.standard_normal((max(1, n // 300), rank)) * scale
    docs = topics[rng.integers(0, len(topics), max(1, n // 10))] + 0.7 * rng.standard_normal((max(1, n // 10), rank)) * scale
    z = docs[rng.integers(0, len(docs), n)] + 0.6 * rng.standard_normal((n, rank)) * scale
    x = z @ basis
    x /= np.linalg.norm(x, axis=1, keepdims=True)
    x += 0.1 * rng.standard_normal((n, dim)) / np.sqrt(dim)
    return (x / np.linalg.norm(x, axis=1, keepdims=True)).astype(np.float32)


def uniform(n: int, dim: int, seed: int = 0) -> np.ndarray:
    x = np.random.default_rng(seed).standard_normal((n, dim)).astype(np.float32)
    return x / np.linalg.norm(x, axis=1, keepdims=True)


def make_store(path, vecs: np.ndarray) -> Store:
    """A store holding one document per 10 vectors (bulk inserts, like a finished index run)."""
    store = Store(path, create=True)
    store.register_model(MODEL, "", None, vecs.shape[1], None, None)
    add_docs(store, vecs, first_doc=0, publish=False)
    return store


def add_docs(store: Store, vecs: np.ndarray, first_doc: int, publish: bool = True):
    """Documents of 10 chunks each for `vecs`. publish=True goes through Store.publish (as an
    indexing run does) and returns its (generation, removed ids, added [(id, sha)])."""
    docs = []
    for d in range(0, len(vecs), 10):
        n = first_doc + d // 10
        chunks = [NewChunk(text=f"passage {n}-{i}", text_sha=f"sha-{n}-{i}") for i in range(len(vecs[d:d + 10]))]
        docs.append(NewDocument(path=f"/docs/doc{n}.txt", root="/docs", sha256=str(n), status="ok", chunks=chunks))
    by_sha = {c.text_sha: v.tobytes() for c, v in zip((c for d in docs for c in d.chunks), vecs)}
    if publish:
        return store.publish(docs, [], {MODEL: by_sha})
    db = store.db
    with db.atomic():
        for doc in docs:
            doc_id = db["documents"].insert(doc.columns() | {"n_chunks": len(doc.chunks)}).last_pk
            for i, ch in enumerate(doc.chunks):
                cur = db.execute("INSERT INTO chunks (doc_id, ord, text, text_sha) VALUES (?, ?, ?, ?)",
                                 [doc_id, i, ch.text, ch.text_sha])
                db.execute("INSERT INTO embeddings (chunk_id, model, vector) VALUES (?, ?, ?)",  # as the store keeps it
                           [cur.lastrowid, MODEL, encode(np.frombuffer(by_sha[ch.text_sha], np.float32),
                                                         store.vector_encoding())])
        store.set_meta("generation", str(store.generation + 1))
    store.rebuild_lexical()  # an index run writes the lexical rows with the chunks
    return None


def remove_docs(store: Store, paths: list[str]):
    return store.publish([], paths, {})


def stored(store: Store) -> tuple[np.ndarray, np.ndarray]:
    parts = list(store.vectors(MODEL))
    return np.concatenate([i for i, _ in parts]), np.vstack([m for _, m in parts])


def meta(store: Store) -> dict:
    return faiss_index._read_meta(store, MODEL)


def brute_force_recall(index, ids: np.ndarray, mat: np.ndarray, positions: np.ndarray, k: int = 10) -> float:
    """recall@k of `index` for the stored vectors at `positions` as queries, against numpy brute
    force over (ids, mat): each query's own id left out, a result scoring at least the k-th exact
    score counted as found (ties). Written here independently of faiss_index.recall_at_k."""
    queries = mat[positions]
    exact = queries @ mat.T
    _, got_ids = index.search(queries, k + 1)
    row_of = {int(i): r for r, i in enumerate(ids)}
    found = 0
    for j, p in enumerate(positions):
        order = [r for r in np.argsort(-exact[j]) if r != p][:k]
        kth = exact[j][order[-1]] - 1e-5
        gold = {int(ids[r]) for r in order}
        got = [int(i) for i in got_ids[j] if i >= 0 and i != ids[p]][:k]
        found += sum(1 for i in got if i in gold or exact[j][row_of[i]] >= kth)
    return found / (k * len(positions))


def measurement_sample(n: int) -> np.ndarray:
    """The positions faiss_index uses as recall queries (same seed, same draw)."""
    rng = np.random.default_rng(faiss_index.RECALL_SEED)
    return np.sort(rng.choice(n, min(faiss_index.RECALL_QUERIES, n), replace=False))


@pytest.fixture
def low_threshold(monkeypatch):
    monkeypatch.setattr(faiss_index, "EXACT_UP_TO", 2000)
    monkeypatch.delenv(faiss_index.ENV_TYPE, raising=False)


def test_small_collection_is_exact(tmp_path, low_threshold):
    store = make_store(tmp_path / "idx", clustered(1500))
    index = faiss_index.build(store, MODEL, DIM)
    m = meta(store)
    assert faiss_index.kind_of(index) == "exact" and m["type"] == "exact"
    assert m["recall_at_10"] == 1.0 and m["exact_up_to"] == 2000 and m["count"] == 1500
    assert "fallback" not in m


def test_above_threshold_builds_ivf_with_recall_measured_and_verified(tmp_path, low_threshold):
    store = make_store(tmp_path / "idx", clustered(4000))
    faiss_index.build(store, MODEL, DIM)
    m = meta(store)
    assert m["type"] == "ivf" and m["faiss"] == "IndexIVFFlat(IndexFlatIP)"
    assert m["params"]["nlist"] == faiss_index._ivf_nlist(4000)
    assert 1 <= m["params"]["nprobe"] <= m["params"]["nlist"] * faiss_index.IVF_MAX_PROBE_FRACTION
    assert m["recall_at_10"] >= 0.99 and m["recall_queries"] == faiss_index.RECALL_QUERIES
    assert m["measured_at_count"] == 4000 and m["exact_up_to"] == 2000

    index = faiss_index.load(store, MODEL, DIM)
    ivf = faiss.extract_index_ivf(index)
    nprobe = m["params"]["nprobe"]
    assert ivf.nprobe == nprobe
    ids, mat = stored(store)
    # the stored recall is what an independent brute force gives on the same queries ...
    sample = measurement_sample(len(ids))
    assert brute_force_recall(index, ids, mat, sample) == pytest.approx(m["recall_at_10"], abs=1e-3)
    # ... nprobe is the smallest that reaches the target on them ...
    if nprobe > 1:
        ivf.nprobe = nprobe - 1
        assert brute_force_recall(index, ids, mat, sample) < faiss_index.RECALL_TARGET
        ivf.nprobe = nprobe
    # ... and it holds with every stored vector as a query
    assert brute_force_recall(index, ids, mat, np.arange(len(ids))) >= 0.985


def test_search_parameter_comes_from_meta_not_the_file(tmp_path, low_threshold):
    store = make_store(tmp_path / "idx", clustered(4000))
    faiss_index.build(store, MODEL, DIM)
    m = meta(store)
    assert m["params"]["nprobe"] > 1, "the data needs more than one list per query for this test"
    raw = faiss.read_index(str(faiss_index.current_file(store, MODEL)))
    faiss.extract_index_ivf(raw).nprobe = 1
    faiss_index._write(store, MODEL, raw, store.generation)  # the file now persists nprobe=1
    assert faiss.extract_index_ivf(faiss.read_index(str(faiss_index.current_file(store, MODEL)))).nprobe == 1
    index = faiss_index.load_generation(store, MODEL, DIM, store.generation)
    assert faiss.extract_index_ivf(index).nprobe == m["params"]["nprobe"]


def test_ivf_update_in_place_never_returns_removed_ids(tmp_path, low_threshold):
    store = make_store(tmp_path / "idx", clustered(4000))
    faiss_index.build(store, MODEL, DIM)
    before = meta(store)
    removed_ids_all: set[int] = set()
    new = clustered(300, seed=7)
    for step in range(3):
        # one "run": 10 documents removed, 10 new ones added, patched into the IVF file in place
        paths = [f"/docs/doc{step * 10 + d}.txt" for d in range(10)]
        gen, removed, _ = remove_docs(store, paths)
        faiss_index.update(store, MODEL, DIM, gen - 1, gen, removed, [], None)
        gen, _, added = add_docs(store, new[step * 100:(step + 1) * 100], first_doc=1000 + step * 10)
        vecs = np.vstack([new[step * 100 + i] for i in range(len(added))])
        faiss_index.update(store, MODEL, DIM, gen - 1, gen, [], [cid for cid, _ in added], vecs)
        removed_ids_all.update(removed)
        m = meta(store)
        assert m["generation"] == store.generation and m["type"] == "ivf"
        assert m["measured_at_count"] == before["measured_at_count"], "patched, not rebuilt"
        assert m["params"] == before["params"] and m["recall_at_10"] == before["recall_at_10"]
    assert meta(store)["changed_since_build"] == 3 * (100 + 100)

    index = faiss_index.load(store, MODEL, DIM)
    ids, mat = stored(store)
    assert set(faiss_index.index_ids(index).tolist()) == set(ids.tolist())
    assert not removed_ids_all & set(ids.tolist())
    # the removed vectors themselves as queries: their ids never come back
    removed_vecs = clustered(4000)[:300]
    _, got = index.search(removed_vecs, 10)
    assert not removed_ids_all & set(got.ravel().tolist())
    # each added vector finds itself first
    _, got = index.search(new, 1)
    assert (got[:, 0] == ids[-300:]).all()
    assert maintenance.check(store.path, verify_models=False)["ok"]


def test_results_through_searcher_agree_with_sqlite(tmp_path, low_threshold):
    store = make_store(tmp_path / "idx", clustered(3000))
    gen, removed, _ = remove_docs(store, [f"/docs/doc{d}.txt" for d in range(0, 300, 6)])
    faiss_index.update(store, MODEL, DIM, gen - 1, gen, removed, [], None)  # no file yet: a build
    assert meta(store)["type"] == "ivf"
    searcher = Searcher(store.path, model=MODEL, embedder=None)
    results = searcher.search_vectors(clustered(3000)[:200], k=10)
    texts = {r["id"]: r["text"] for r in store.db.query("SELECT id, text FROM chunks")}
    assert all(len(rs) == 10 for rs in results)
    for rs in results:
        for r in rs:
            assert r.chunk_id not in removed and texts[r.chunk_id] == r.text


def test_crossing_the_threshold_switches_type_both_ways(tmp_path, low_threshold):
    vecs = clustered(2600)
    store = make_store(tmp_path / "idx", vecs[:1800])
    faiss_index.build(store, MODEL, DIM)
    assert meta(store)["type"] == "exact"
    gen, _, added = add_docs(store, vecs[1800:], first_doc=180)
    faiss_index.update(store, MODEL, DIM, gen - 1, gen, [], [c for c, _ in added], vecs[1800:])
    m = meta(store)
    assert m["type"] == "ivf" and m["count"] == 2600 and m["measured_at_count"] == 2600
    assert faiss_index.kind_of(faiss_index.load(store, MODEL, DIM)) == "ivf"
    assert maintenance.check(store.path, verify_models=False)["ok"]
    gen, removed, _ = remove_docs(store, [f"/docs/doc{d}.txt" for d in range(100)])
    faiss_index.update(store, MODEL, DIM, gen - 1, gen, removed, [], None)
    m = meta(store)
    assert m["type"] == "exact" and m["count"] == 1600
    index = faiss_index.load(store, MODEL, DIM)
    assert faiss_index.kind_of(index) == "exact"
    assert set(faiss_index.index_ids(index).tolist()) == set(stored(store)[0].tolist())
    assert maintenance.check(store.path, verify_models=False)["ok"]


def test_large_growth_rebuilds_and_measures_again(tmp_path, low_threshold):
    vecs = clustered(7000)
    store = make_store(tmp_path / "idx", vecs[:4000])
    faiss_index.build(store, MODEL, DIM)
    assert meta(store)["measured_at_count"] == 4000
    gen, _, added = add_docs(store, vecs[4000:], first_doc=400)  # 1.75x: past REBUILD_GROWTH
    faiss_index.update(store, MODEL, DIM, gen - 1, gen, [], [c for c, _ in added], vecs[4000:])
    m = meta(store)
    assert m["type"] == "ivf" and m["measured_at_count"] == 7000 and m["changed_since_build"] == 0
    assert m["params"]["nlist"] == faiss_index._ivf_nlist(7000) and m["recall_at_10"] >= 0.99


def test_check_passes_for_both_types_and_catches_a_wrong_ivf_file(tmp_path, low_threshold):
    for n, kind in ((1500, "exact"), (4000, "ivf")):
        store = make_store(tmp_path / f"idx{n}", clustered(n))
        faiss_index.build(store, MODEL, DIM)
        report = maintenance.check(store.path, verify_models=False)
        assert report["ok"], report["problems"]
        assert report["models"][0]["faiss"] == "ok" and report["models"][0]["faiss_index"]["type"] == kind
    bad = faiss.read_index(str(faiss_index.current_file(store, MODEL)))  # writable copy
    bad.remove_ids(np.asarray(stored(store)[0][:1], dtype=np.int64))
    faiss_index._write(store, MODEL, bad, store.generation)  # claims to be current, misses one id
    report = maintenance.check(store.path, verify_models=False)
    assert not report["ok"] and "disagrees with SQLite (0 extra, 1 missing ids)" in report["problems"][0]
    report = maintenance.check(store.path, repair=True, verify_models=False)
    assert report["repaired"] and maintenance.check(store.path, verify_models=False)["ok"]
    assert meta(store)["type"] == "ivf"


def test_hnsw_on_request_rebuilds_on_removal(tmp_path, low_threshold, monkeypatch):
    monkeypatch.setenv(faiss_index.ENV_TYPE, "hnsw")
    store = make_store(tmp_path / "idx", clustered(3000))
    faiss_index.build(store, MODEL, DIM)
    m = meta(store)
    assert m["type"] == "hnsw" and m["chosen_by"] == "SBSEARCH_INDEX_TYPE=hnsw"
    assert m["params"]["M"] == faiss_index.HNSW_M and m["recall_at_10"] >= 0.99
    index = faiss_index.load(store, MODEL, DIM)
    assert faiss.downcast_index(index.index).hnsw.efSearch == m["params"]["efSearch"]
    ids, mat = stored(store)
    assert brute_force_recall(index, ids, mat, measurement_sample(len(ids))) == pytest.approx(m["recall_at_10"], abs=1e-3)
    assert brute_force_recall(index, ids, mat, np.arange(0, len(ids), 3)) >= 0.985
    gen, removed, _ = remove_docs(store, ["/docs/doc0.txt", "/docs/doc1.txt"])
    faiss_index.update(store, MODEL, DIM, gen - 1, gen, removed, [], None)
    index = faiss_index.load(store, MODEL, DIM)
    assert meta(store)["type"] == "hnsw" and index.ntotal == 2980
    _, got = index.search(clustered(3000)[:20], 10)
    assert not set(removed) & set(got.ravel().tolist())
    assert maintenance.check(store.path, verify_models=False)["ok"]


def test_unreachable_recall_falls_back_to_exact_and_does_not_retry_every_run(tmp_path, low_threshold):
    # uniform random 128-d vectors have no structure: IVF would have to scan most lists
    store = make_store(tmp_path / "idx", uniform(3000, 128))
    faiss_index.build(store, MODEL, 128)
    m = meta(store)
    assert m["type"] == "exact" and m["recall_at_10"] == 1.0
    assert "fallback" in m and m["fallback"].startswith("ivf reached recall@10")
    gen, _, added = add_docs(store, uniform(10, 128, seed=1), first_doc=300)
    faiss_index.update(store, MODEL, 128, gen - 1, gen, [], [c for c, _ in added], uniform(10, 128, seed=1))
    m2 = meta(store)
    assert m2["type"] == "exact" and m2["count"] == 3010 and "fallback" in m2
    assert m2["build_seconds"] == m["build_seconds"] and m2["changed_since_build"] == 10, "patched, not rebuilt"


def test_env_override_and_bad_value(tmp_path, low_threshold, monkeypatch):
    store = make_store(tmp_path / "idx", clustered(4000))
    monkeypatch.setenv(faiss_index.ENV_TYPE, "exact")
    faiss_index.build(store, MODEL, DIM)
    assert meta(store)["type"] == "exact" and meta(store)["chosen_by"] == "SBSEARCH_INDEX_TYPE=exact"
    monkeypatch.setenv(faiss_index.ENV_TYPE, "annoy")
    with pytest.raises(SbsearchError, match="SBSEARCH_INDEX_TYPE"):
        faiss_index.build(store, MODEL, DIM)


def test_recall_counts_ties_and_ignores_the_query_itself():
    # exact neighbours of stored vector 5: itself, then 1 (0.9), then 2 and 3 tied at 0.8
    exact = (np.array([[1.0, 0.9, 0.8, 0.8, 0.7]]), np.array([[5, 1, 2, 3, 4]]))
    tie = (np.array([[1.0, 0.9, 0.8]]), np.array([[5, 1, 3]]))  # 3 instead of 2: equally right
    assert faiss_index.recall_at_k(tie, exact, np.array([5]), k=2) == 1.0
    miss = (np.array([[1.0, 0.9, 0.7]]), np.array([[5, 1, 4]]))
    assert faiss_index.recall_at_k(miss, exact, np.array([5]), k=2) == 0.5
    # without the query id, the query's own hit counts like any other result
    assert faiss_index.recall_at_k(miss, exact, None, k=2) == 1.0


def test_status_shows_type_and_measured_recall(tmp_path, low_threshold):
    store = make_store(tmp_path / "idx", clustered(4000))
    faiss_index.build(store, MODEL, DIM)
    out = CliRunner().invoke(cli, ["status", "-i", str(store.path), "--json"])
    assert out.exit_code == 0, out.output
    f = json.loads(out.output)["models"][0]["faiss"]
    assert f["type"] == "ivf" and f["recall_at_10"] >= 0.99 and f["current"] and f["params"]["nprobe"] >= 1
    out = CliRunner().invoke(cli, ["status", "-i", str(store.path)], env={"COLUMNS": "200"})
    assert out.exit_code == 0 and "ivf nlist=" in out.output
    assert re.search(r"recall@10 (0\.99\d|1\.000) \(measured at 4,000\)", out.output), out.output


# ------------------------------------------------------------------------------ the exact type's int8 file

def exact_reference(ids: np.ndarray, mat: np.ndarray):
    """What an exact index was before int8 files: a float32 IndexFlatIP of the same vectors."""
    ref = faiss.IndexIDMap2(faiss.IndexFlatIP(mat.shape[1]))
    ref.add_with_ids(mat, ids)
    return ref


def from_file(store: Store):
    """The index as a searcher reads it from its file (not the object a build returned)."""
    index = faiss_index.load_generation(store, MODEL, DIM, store.generation)
    assert index is not None, "the current file did not load"
    return index


def same_answers(index, ref, queries: np.ndarray, k: int = 20) -> bool:
    """Scores and ids equal bit for bit."""
    (s1, i1), (s2, i2) = index.search(queries, k), ref.search(queries, k)
    return np.array_equal(s1, s2) and np.array_equal(i1, i2)


def as_previous_version(store: Store, vectors: np.ndarray | None = None) -> Path:
    """The current exact file replaced by what the version before int8 files wrote: a float32 FAISS
    file `<model>-g<generation>.faiss`, a meta without `file_format`. Its vectors: the store's, or
    `vectors` (as embedded: an index made before the store was int8)."""
    m = meta(store)
    ids, mat = stored(store)
    path = faiss_index.faiss_dir(store) / f"{Path(m['file']).stem}.faiss"
    faiss.write_index(exact_reference(ids, mat if vectors is None else vectors), str(path))
    faiss_index.current_file(store, MODEL).unlink()
    old = {k: v for k, v in m.items() if k != "file_format"} | {"file": path.name} | faiss_index._file_facts(path)
    faiss_index._meta_path(store, MODEL).write_text(json.dumps(old))
    return path


def as_stored(vecs: np.ndarray, store: Store) -> np.ndarray:
    """Vectors as the store keeps them (what the indexer hands to update)."""
    encoding = store.vector_encoding()
    return decode_matrix(encode_matrix(vecs, encoding), encoding)


def test_exact_file_is_int8_and_answers_like_a_float32_flat_index(tmp_path, low_threshold):
    store = make_store(tmp_path / "idx", clustered(1500))
    faiss_index.build(store, MODEL, DIM)
    m = meta(store)
    assert m["type"] == "exact" and m["file_format"] == "int8" and m["file"].endswith(".int8")
    # 8 + 4 + d bytes a vector (id, scale, codes), against 4·d + 8 for the float32 file
    assert m["file_bytes"] == 24 + 1500 * exact_file.row_bytes(DIM)
    assert faiss_index.current_file(store, MODEL).stat().st_size == m["file_bytes"]
    ids, mat = stored(store)
    index = from_file(store)
    assert faiss_index.kind_of(index) == "exact" and index.ntotal == 1500
    assert np.array_equal(index.index.reconstruct_n(0, 1500), mat), "the vectors, bit for bit"
    assert np.array_equal(faiss_index.index_ids(index), ids)
    assert same_answers(index, exact_reference(ids, mat), clustered(50, seed=3))
    # filtered search (an id selector on the flat index) as well
    allowed = np.sort(ids[::2])
    got = faiss_index.search_allowed(store, MODEL, index, clustered(5, seed=4), 10, allowed)
    want = faiss_index.search_allowed(store, MODEL, exact_reference(ids, mat), clustered(5, seed=4), 10, allowed)
    assert all(np.array_equal(a, b) for a, b in zip(got, want))
    d = faiss_index.describe(store, MODEL)
    assert d["file_format"] == "int8" and d["memory_bytes"] == 1500 * (4 * DIM + 8)
    assert maintenance.check(store.path, verify_models=False)["ok"]


@pytest.mark.parametrize("damage", ["truncated", "header", "not this format"])
def test_int8_file_reader_refuses_a_file_that_is_not_whole(tmp_path, low_threshold, damage):
    """Without its meta's checksums: the file's own header and size."""
    store = make_store(tmp_path / "idx", clustered(1100))
    faiss_index.build(store, MODEL, DIM)
    path = faiss_index.current_file(store, MODEL)
    data = path.read_bytes()
    if damage == "truncated":
        path.write_bytes(data[:-7])
    elif damage == "header":
        path.write_bytes(data[:16] + (10**6).to_bytes(8, "little") + data[24:])  # a count it does not hold
    else:
        faiss.write_index(exact_reference(*stored(store)), str(path))  # a FAISS file under the name
    with pytest.raises(RuntimeError, match="int8 exact index file|shorter than its header"):
        exact_file.read(path)


def test_exact_update_patches_the_int8_file_across_generations(tmp_path, low_threshold):
    store = make_store(tmp_path / "idx", clustered(1500))
    faiss_index.build(store, MODEL, DIM)
    built = meta(store)
    new = clustered(200, seed=5)
    removed_all: set[int] = set()
    for step in range(2):
        gen, removed, _ = remove_docs(store, [f"/docs/doc{step * 10 + d}.txt" for d in range(5)])
        faiss_index.update(store, MODEL, DIM, gen - 1, gen, removed, [], None)
        removed_all.update(removed)
        gen, _, added = add_docs(store, new[step * 100:(step + 1) * 100], first_doc=1000 + step * 10)
        faiss_index.update(store, MODEL, DIM, gen - 1, gen, [], [c for c, _ in added],
                           as_stored(new[step * 100:(step + 1) * 100], store))
        m = meta(store)
        assert m["generation"] == store.generation and m["file"].endswith(".int8")
        assert m["file_format"] == "int8" and m["build_seconds"] == built["build_seconds"], "patched, not rebuilt"
    assert meta(store)["count"] == 1500 - 100 + 200 and meta(store)["changed_since_build"] == 300
    ids, mat = stored(store)
    index = from_file(store)
    ref = exact_reference(ids, mat)
    queries = np.vstack([clustered(1500)[:100], new])  # removed vectors and added ones among them
    _, got = index.search(queries, 10)
    assert not removed_all & set(got.ravel().tolist())
    # a patched file answers as one rebuilt from the store (the order of equal scores aside)
    scores, _ = ref.search(queries, 10)
    assert np.array_equal(index.search(queries, 10)[0], scores)
    assert set(faiss_index.index_ids(index).tolist()) == set(ids.tolist())
    assert len(list(faiss_index.faiss_dir(store).glob("*.int8"))) == 2  # the current and the previous
    assert maintenance.check(store.path, verify_models=False)["ok"]


def test_vectors_not_of_int8_form_are_kept_in_a_float32_file(tmp_path, low_threshold):
    store = make_store(tmp_path / "idx", clustered(1200))
    faiss_index.build(store, MODEL, DIM)
    raw = clustered(30, seed=6)  # as embedded, not through the store's int8: not this file's form
    gen, _, added = add_docs(store, raw, first_doc=500)
    faiss_index.update(store, MODEL, DIM, gen - 1, gen, [], [c for c, _ in added], raw)
    m = meta(store)
    assert m["file_format"] == "faiss" and m["file"].endswith(".faiss") and m["type"] == "exact"
    index = from_file(store)
    assert np.array_equal(np.vstack([index.reconstruct(int(c)) for c, _ in added]), raw), "nothing rounded"
    assert maintenance.check(store.path, verify_models=False)["ok"]


def test_an_exact_file_of_the_previous_version_loads_and_the_next_update_rebuilds_it(tmp_path, low_threshold):
    embedded = clustered(1500)
    store = make_store(tmp_path / "idx", embedded)
    faiss_index.build(store, MODEL, DIM)
    ids, _ = stored(store)
    legacy = as_previous_version(store, embedded)  # float32, the vectors as embedded
    assert faiss_index.describe(store, MODEL)["file_format"] is None
    # searched as it is: its own vectors, so its own answers
    index = from_file(store)
    assert same_answers(index, exact_reference(ids, embedded), clustered(50, seed=3))
    report = maintenance.check(store.path, verify_models=False)
    assert report["ok"] and report["models"][0]["faiss"] == "ok"
    # the next update rebuilds it from the store, as an int8 file
    gen, removed, _ = remove_docs(store, ["/docs/doc0.txt"])
    faiss_index.update(store, MODEL, DIM, gen - 1, gen, removed, [], None)
    m = meta(store)
    assert m["file_format"] == "int8" and m["measured_at_count"] == 1490 and m["changed_since_build"] == 0
    ids, mat = stored(store)
    assert same_answers(from_file(store), exact_reference(ids, mat), clustered(50, seed=3))
    assert legacy.exists()  # kept one generation (a reader may be opening it), then removed
    gen, removed, _ = remove_docs(store, ["/docs/doc1.txt"])
    faiss_index.update(store, MODEL, DIM, gen - 1, gen, removed, [], None)
    assert not legacy.exists() and not list(faiss_index.faiss_dir(store).glob("*.faiss"))
    assert meta(store)["file_format"] == "int8" and maintenance.check(store.path, verify_models=False)["ok"]


def test_removing_the_index_removes_files_of_both_formats(tmp_path, low_threshold):
    store = make_store(tmp_path / "idx", clustered(1100))
    faiss_index.build(store, MODEL, DIM)
    as_previous_version(store)
    faiss_index.build(store, MODEL, DIM)  # .int8 beside the .faiss of the same generation
    assert {p.suffix for p in faiss_index.faiss_dir(store).iterdir()} == {".faiss", ".int8", ".json"}
    faiss_index.remove_files(store, MODEL)
    assert not list(faiss_index.faiss_dir(store).iterdir())
