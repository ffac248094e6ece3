"""Quantised index types (ivf-sq8, ivf-binary) with exact rescoring, against exact search, on a real
SQLite store and real FAISS: recall, ids, deletes, generations, damaged files, check and
check --repair, a killed build, and the real CLI. The exact type's int8 file goes through the
damaged-file and killed-build tests too.

Vectors are clustered unit vectors put straight into the store (see test_vectorindex_types.py);
128-d, because one sign bit per dimension of a 48-d vector says too little to rank anything."""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import time

import faiss
import numpy as np
import pytest

from sbsearch.embed.fake import FakeEmbedder
from sbsearch.index import maintenance
from sbsearch.search import Searcher
from sbsearch.vectors import faiss_index
from sbsearch.vectors.quantised import BINARY, QUANTISED, RESCORE_FACTORS, SQ8, RescoredIndex
from test_vectorindex_types import add_docs, brute_force_recall, make_store, measurement_sample, remove_docs, stored

import test_vectorindex_types as base

DIM = 128
N = 4000


def clustered(n: int, seed: int = 0) -> np.ndarray:
    return base.clustered(n, DIM, seed=seed, rank=48)


@pytest.fixture
def forced(monkeypatch, request):
    """The quantised type of the test's parameter, asked for by name."""
    monkeypatch.setattr(faiss_index, "EXACT_UP_TO", 2000)
    monkeypatch.setenv(faiss_index.ENV_TYPE, request.param)
    return request.param


def meta(store) -> dict:
    return faiss_index._read_meta(store, base.MODEL)


def built(tmp_path, n: int = N):
    store = make_store(tmp_path / "idx", clustered(n))
    faiss_index.build(store, base.MODEL, DIM)
    return store


def ok(store) -> dict:
    return maintenance.check(store.path, verify_models=False)


both = pytest.mark.parametrize("forced", QUANTISED, indirect=True)
# the exact type's file (int8 codes, exact_file.py) goes through the same damage and kill tests
with_exact = pytest.mark.parametrize("forced", QUANTISED + ("exact",), indirect=True)


@both
def test_quantised_type_reaches_the_target_against_exact_search(tmp_path, forced):
    store = built(tmp_path)
    m = meta(store)
    assert m["type"] == forced and m["chosen_by"] == f"SBSEARCH_INDEX_TYPE={forced}"
    assert m["params"]["nlist"] == faiss_index._ivf_nlist(N) and m["params"]["factor"] >= 2
    assert m["recall_at_10"] >= faiss_index.RECALL_TARGET and m["recall_queries"] == faiss_index.RECALL_QUERIES
    float_bytes = N * DIM * 4
    # codes, not vectors: SQ8 a quarter of float32, binary a 32nd (plus ids and the lists' centroids)
    assert m["file_bytes"] < float_bytes * (0.4 if forced == SQ8 else 0.2)
    assert faiss_index.describe(store, base.MODEL)["memory_bytes"] == m["file_bytes"]

    index = faiss_index.load(store, base.MODEL, DIM)
    assert isinstance(index, RescoredIndex) and faiss_index.kind_of(index) == forced
    assert index.nprobe == m["params"]["nprobe"] and index.factor == m["params"]["factor"]
    ids, mat = stored(store)
    sample = measurement_sample(len(ids))
    # the recall in the meta is what an independent brute force measures on the same queries ...
    assert brute_force_recall(index, ids, mat, sample) == pytest.approx(m["recall_at_10"], abs=1e-3)
    # ... and it holds with every third stored vector as a query: tuned to 0.99 on its own sample, the
    # index keeps the floor of 0.98 on others (0.985 measured with float32 stored vectors,
    # 0.9848 with int8 ones for ivf-binary)
    assert brute_force_recall(index, ids, mat, np.arange(0, len(ids), 3)) >= 0.98
    # scores are the exact inner products with the stored vectors, whatever the codes said
    queries = clustered(50, seed=5)
    scores, got = index.search(queries, 10)
    row_of = {int(i): r for r, i in enumerate(ids)}
    exact = np.array([[queries[j] @ mat[row_of[int(i)]] for i in got[j]] for j in range(len(queries))])
    assert np.allclose(scores, exact, atol=1e-5) and (np.diff(scores, axis=1) <= 1e-6).all()


@both
def test_fewer_candidates_than_tuned_miss_the_target(tmp_path, forced):
    """The tuned factor and nprobe are the smallest that pass: one step less fails (the test can fail)."""
    store = built(tmp_path)
    m = meta(store)
    index = faiss_index.load(store, base.MODEL, DIM)
    ids, mat = stored(store)
    sample = measurement_sample(len(ids))
    if m["params"]["nprobe"] > 1:
        index.nprobe = m["params"]["nprobe"] - 1
        assert brute_force_recall(index, ids, mat, sample) < faiss_index.RECALL_TARGET
        index.nprobe = m["params"]["nprobe"]
    factors = RESCORE_FACTORS[forced]
    if m["params"]["factor"] != factors[0]:  # a smaller factor missed even at the most lists allowed
        index.factor = factors[factors.index(m["params"]["factor"]) - 1]
        fraction = faiss_index.BINARY_MAX_PROBE_FRACTION if forced == BINARY else faiss_index.IVF_MAX_PROBE_FRACTION
        index.nprobe = max(1, int(m["params"]["nlist"] * fraction))
        assert brute_force_recall(index, ids, mat, sample) < faiss_index.RECALL_TARGET


@both
def test_hybrid_candidates_rescore_only_for_the_results_shown(tmp_path, forced):
    """Asked for 50 with recall_depth 10 (hybrid's fusion candidates, 10 shown), a quantised index
    reads as many stored vectors as a search for 10, finds the same best 10, and ranks 50 of those
    candidates by their exact scores; without recall_depth it reads factor x 50."""
    store = built(tmp_path)
    index = faiss_index.load(store, base.MODEL, DIM)
    ids, mat = stored(store)
    row_of = {int(i): r for r, i in enumerate(ids)}
    read = []
    original = store.vectors_for_ids
    store.vectors_for_ids = lambda model, wanted: read.append(len(wanted)) or original(model, wanted)
    queries = clustered(20, seed=7)
    for q in queries:
        read.clear()
        ten = index.search(q[None], 10)
        for_ten = read.pop()
        fifty = index.search(q[None], 50, recall_depth=10)
        assert read.pop() == max(for_ten, 50) and for_ten <= index.factor * 10  # 50 at least, to rank 50
        index.search(q[None], 50)
        assert read.pop() > max(for_ten, 50)
        assert (fifty[1][0] >= 0).all()
        if for_ten >= 50:  # the same candidates: the same best 10
            assert (fifty[1][0, :10] == ten[1][0]).all()
        else:  # more candidates: a best 10 at least as good
            assert (fifty[0][0, :10] >= ten[0][0] - 1e-6).all()
        exact = np.array([q @ mat[row_of[int(i)]] for i in fifty[1][0]])
        assert np.allclose(fifty[0][0], exact, atol=1e-5) and (np.diff(fifty[0][0]) <= 1e-6).all()


@both
def test_update_in_place_never_returns_removed_ids_and_follows_generations(tmp_path, forced):
    store = built(tmp_path)
    before = meta(store)
    old_generation = store.generation
    new = clustered(200, seed=7)
    removed_all: set[int] = set()
    for step in range(2):
        gen, removed, _ = remove_docs(store, [f"/docs/doc{step * 10 + d}.txt" for d in range(10)])
        faiss_index.update(store, base.MODEL, DIM, gen - 1, gen, removed, [], None)
        gen, _, added = add_docs(store, new[step * 100:(step + 1) * 100], first_doc=1000 + step * 10)
        faiss_index.update(store, base.MODEL, DIM, gen - 1, gen, [], [c for c, _ in added], new[step * 100:(step + 1) * 100])
        removed_all.update(removed)
        m = meta(store)
        assert m["generation"] == store.generation and m["type"] == forced
        assert m["measured_at_count"] == before["measured_at_count"], "patched, not rebuilt"
        assert m["params"] == before["params"] and m.get("centre") == before.get("centre")
    assert faiss_index.load_generation(store, base.MODEL, DIM, old_generation) is None  # that file is gone
    index = faiss_index.load(store, base.MODEL, DIM)
    ids, _ = stored(store)
    assert set(faiss_index.index_ids(index).tolist()) == set(ids.tolist())
    _, got = index.search(clustered(N)[:200], 10)  # the removed vectors themselves as queries
    assert not removed_all & set(got.ravel().tolist())
    _, got = index.search(new, 1)  # each added vector finds itself first
    assert (got[:, 0] == ids[-200:]).all()
    assert ok(store)["ok"]
    # a searcher's snapshot of an older generation is never answered from a newer file
    vi = faiss_index.FaissVectorIndex(store, base.MODEL, DIM)
    assert vi.search(new[:1], 5, store.generation - 1) is None
    assert vi.search(new[:1], 5, store.generation)[1][0, 0] == ids[-200]


@both
def test_filtered_search_ranks_only_allowed_chunks(tmp_path, forced, monkeypatch):
    monkeypatch.setattr(faiss_index, "EXACT_FILTER_MAX", 100)  # through the quantised index's selector
    store = built(tmp_path)
    ids, mat = stored(store)
    allowed = np.sort(ids[::3])
    index = faiss_index.load(store, base.MODEL, DIM)
    queries = mat[1::3][:40]  # stored vectors that are not allowed themselves
    scores, got = faiss_index.search_allowed(store, base.MODEL, index, queries, 10, allowed)
    assert set(got.ravel().tolist()) <= set(allowed.tolist())
    exact = queries @ mat[np.isin(ids, allowed)].T
    kth = np.sort(exact, 1)[:, -10:-9] - 1e-5
    assert (scores <= exact.max(1, keepdims=True) + 1e-5).all()
    assert (scores >= kth).mean() >= 0.95  # recall@10 among the allowed chunks


@both
def test_searcher_results_come_from_sqlite(tmp_path, forced):
    store = built(tmp_path, 3000)
    results = Searcher(store.path, model=base.MODEL, embedder=None).search_vectors(clustered(3000)[:50], k=10)
    texts = {r["id"]: r["text"] for r in store.db.query("SELECT id, text FROM chunks")}
    assert all(len(rs) == 10 for rs in results)
    assert all(texts[r.chunk_id] == r.text for rs in results for r in rs)


def truncate(path):
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])


def flip_middle(path):
    """64 bytes in the middle inverted in place (no truncation: this process may have the file
    memory-mapped, and a mapped file that shrinks kills its reader with SIGBUS)."""
    with open(path, "r+b") as f:
        f.seek(path.stat().st_size // 2)
        middle = f.read(64)
        f.seek(path.stat().st_size // 2)
        f.write(bytes(b ^ 0xFF for b in middle))


@with_exact
@pytest.mark.parametrize("damage", ["truncated", "corrupt", "previous generation"])
def test_damaged_file_is_found_by_check_repaired_and_rebuilt_at_load(tmp_path, forced, damage):
    store = built(tmp_path)
    path = faiss_index.current_file(store, base.MODEL)
    assert path.suffix == (".int8" if forced == "exact" else ".faiss")
    if damage == "previous generation":
        previous = path.read_bytes()
        gen, removed, _ = remove_docs(store, ["/docs/doc0.txt"])
        faiss_index.update(store, base.MODEL, DIM, gen - 1, gen, removed, [], None)
        path = faiss_index.current_file(store, base.MODEL)
        path.write_bytes(previous)  # the file of the generation before, under the current name
    else:
        (truncate if damage == "truncated" else flip_middle)(path)
    report = ok(store)
    assert not report["ok"] and ("truncated" in report["problems"][0] or "corrupt" in report["problems"][0])
    # a searcher never searches it: it rebuilds from the stored vectors and answers right
    index = faiss_index.load(store, base.MODEL, DIM)
    assert faiss_index.kind_of(index) == forced and meta(store)["file_bytes"] == path.stat().st_size
    ids, mat = stored(store)
    assert brute_force_recall(index, ids, mat, np.arange(0, len(ids), 7)) >= 0.985
    assert ok(store)["ok"]
    # check --repair rebuilds too
    flip_middle(path)
    report = maintenance.check(store.path, repair=True, verify_models=False)
    assert report["repaired"] and ok(store)["ok"] and meta(store)["type"] == forced


@both
def test_file_of_another_type_under_the_meta_is_not_searched(tmp_path, forced, monkeypatch):
    store = built(tmp_path)
    path = faiss_index.current_file(store, base.MODEL)
    monkeypatch.setenv(faiss_index.ENV_TYPE, "ivf")
    other = tmp_path / "other"
    other_store = make_store(other, clustered(N))
    faiss_index.build(other_store, base.MODEL, DIM)
    path.write_bytes(faiss_index.current_file(other_store, base.MODEL).read_bytes())
    assert not ok(store)["ok"]
    monkeypatch.setenv(faiss_index.ENV_TYPE, forced)
    assert faiss_index.kind_of(faiss_index.load(store, base.MODEL, DIM)) == forced


KILL_SCRIPT = """
import os, sys
from sbsearch.index.store import Store
from sbsearch.vectors import faiss_index
store = Store(sys.argv[1])
os.environ[faiss_index.ENV_TYPE] = sys.argv[2]
print("ready", flush=True)
while True:
    faiss_index.build(store, sys.argv[3], int(sys.argv[4]))
"""


@with_exact
def test_kill_9_during_builds_leaves_a_searchable_index(tmp_path, forced):
    store = built(tmp_path)
    ids, mat = stored(store)
    rng = random.Random(0)
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
    for _ in range(4):
        proc = subprocess.Popen([sys.executable, "-c", KILL_SCRIPT, str(store.path), forced, base.MODEL, str(DIM)],
                                stdout=subprocess.PIPE, env=env)
        assert proc.stdout.readline().strip() == b"ready"
        time.sleep(rng.uniform(0.2, 3.0))
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait()
        assert ok(store)["ok"], "the file and meta left are a complete pair"
        index = faiss_index.load_generation(store, base.MODEL, DIM, store.generation)
        assert index is not None and faiss_index.kind_of(index) == forced
        assert brute_force_recall(index, ids, mat, np.arange(0, len(ids), 11)) >= 0.985


def run_cli(*args, env=None):
    return subprocess.run([sys.executable, "-m", "sbsearch", *map(str, args)], capture_output=True, text=True,
                          env={**os.environ, "PYTHONPATH": os.pathsep.join(sys.path), "COLUMNS": "250", **(env or {})},
                          timeout=300)


@pytest.mark.parametrize("kind", QUANTISED)
def test_real_cli_status_query_check_and_repair(tmp_path, kind, monkeypatch):
    """`sbsearch` processes on a store of the fake 128-d model: status shows the type, memory and
    recall; vector queries agree with exact search; check finds a damaged file, --repair mends it."""
    model = "fake-128"
    monkeypatch.setattr(base, "MODEL", model)
    embedder = FakeEmbedder(model)
    vecs = clustered(N)
    store = make_store(tmp_path / "idx", vecs)
    store.set_meta("default_model", model)
    env = {faiss_index.ENV_TYPE: kind}
    assert run_cli("check", "--repair", "-i", store.path, env=env).returncode == 0  # builds it
    out = run_cli("status", "-i", store.path, "--json", env=env)
    assert out.returncode == 0, out.stderr
    f = json.loads(out.stdout)["models"][0]["faiss"]
    assert f["type"] == kind and f["recall_at_10"] >= 0.99 and 0 < f["memory_bytes"] < N * DIM * 4 * 0.4
    text = run_cli("status", "-i", store.path, env=env).stdout
    assert f"{kind} nlist=" in text and "in memory" in text and "recall@10 " in text, text

    # vector queries through the CLI: the quantised index's rescored answers, with exact scores
    words = "travel hotel flight expense claim receipt vpn password laptop printer".split()
    ids, mat = stored(store)
    row_of = {int(i): r for r, i in enumerate(ids)}
    text_of = {r["id"]: r["text"] for r in store.db.query("SELECT id, text FROM chunks")}
    index = faiss_index.load(store, model, DIM)
    for q in (" ".join(random.Random(i).sample(words, 3)) for i in range(3)):
        out = run_cli("query", q, "-i", store.path, "--mode", "vector", "-k", "10", "--json", env=env)
        assert out.returncode == 0, out.stderr
        rows = [json.loads(line) for line in out.stdout.splitlines() if line.strip()]
        qv = embedder.encode([q])
        scores, got = index.search(qv, 10)
        assert [r["text"] for r in rows] == [text_of[int(i)] for i in got[0]]
        assert [r["score"] for r in rows] == pytest.approx([float(mat[row_of[int(i)]] @ qv[0]) for i in got[0]], abs=1e-5)

    flip_middle(faiss_index.current_file(store, model))
    bad = run_cli("check", "-i", store.path, env=env)
    assert bad.returncode == 1 and "corrupt" in bad.stdout and "Traceback" not in bad.stderr
    assert run_cli("check", "--repair", "-i", store.path, env=env).returncode == 0
    assert run_cli("check", "-i", store.path, env=env).returncode == 0


def test_automatic_choice_quantises_only_past_the_float_budget(monkeypatch):
    monkeypatch.delenv(faiss_index.ENV_TYPE, raising=False)
    budget_vectors = faiss_index.FLOAT_INDEX_MAX_BYTES // (384 * 4)
    assert faiss_index.choose_kind(faiss_index.EXACT_UP_TO, dim=384) == "exact"
    assert faiss_index.choose_kind(budget_vectors, dim=384) == "ivf"
    assert faiss_index.choose_kind(budget_vectors + 1, dim=384) == faiss_index.AUTO_QUANTISED[0]
    assert faiss_index._attempts(BINARY, "auto") == [BINARY, SQ8, "ivf"]
    assert faiss_index._attempts(BINARY, BINARY) == [BINARY]


def test_automatic_quantised_build_falls_back_in_order(tmp_path, monkeypatch):
    """Past the float budget, a collection whose signs say too little (uniform 128-d noise) goes
    from binary to SQ8 (or on), and says so; the fallback is not retried on every small update."""
    monkeypatch.setattr(faiss_index, "EXACT_UP_TO", 2000)
    monkeypatch.setattr(faiss_index, "FLOAT_INDEX_MAX_BYTES", 1000 * DIM * 4)
    monkeypatch.delenv(faiss_index.ENV_TYPE, raising=False)
    store = make_store(tmp_path / "idx", base.uniform(3000, DIM))
    faiss_index.build(store, base.MODEL, DIM)
    m = meta(store)
    assert m["type"] != BINARY and m["fallback"].startswith("ivf-binary reached recall@10")
    gen, _, added = add_docs(store, base.uniform(10, DIM, seed=1), first_doc=300)
    faiss_index.update(store, base.MODEL, DIM, gen - 1, gen, [], [c for c, _ in added], base.uniform(10, DIM, seed=1))
    m2 = meta(store)
    assert m2["type"] == m["type"] and m2["build_seconds"] == m["build_seconds"], "patched, not rebuilt"
    assert faiss.__version__  # real FAISS
