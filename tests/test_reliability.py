"""Unattended re-indexing: one writer, crash safety under SIGKILL, readers during a re-index, watch."""

import json
import os
import random
import signal
import subprocess
import sys
import time

import numpy as np
import pytest
from click.testing import CliRunner

from crash_harness import WORDS, mutate, run_cli, run_trials, sbsearch
from sbsearch.cli import cli
from sbsearch.errors import SbsearchError
from sbsearch.search import Searcher
from sbsearch.index.store import Store


@pytest.fixture
def env(tmp_path, monkeypatch):
    # crash safety is about SQLite and FAISS files, not the model: the fake keeps runs short
    monkeypatch.setenv("SBSEARCH_MODEL", "fake")
    return tmp_path


@pytest.mark.slow  # many sbsearch processes, tens of seconds
@pytest.mark.parametrize("store", ["sqlite", "postgres"])
def test_sigkill_at_random_moments_never_corrupts(env, store, request):
    """A killed writer leaves the last complete state, on either store: SQLite + FAISS (10 kills,
    SBSEARCH_CRASH_TRIALS) and PostgreSQL + pgvector (5 kills, each a new `sbsearch` process)."""
    trials = int(os.environ.get("SBSEARCH_CRASH_TRIALS", "10"))
    if store == "sqlite":
        result = run_trials(env, n_trials=trials)
    else:
        index = request.getfixturevalue("pg_url")
        clean = request.getfixturevalue("pg_url_2")
        result = run_trials(env, n_trials=min(trials, 5), store=index, clean_store=clean)
    assert result["killed"] > 0, "the kills must land while the index runs"
    assert result["not_last_complete_state"] == []
    assert result["check_failed"] == [] and result["query_failed"] == []
    assert result["equal_to_clean_build"], result["difference"]
    assert "running" not in result["runs_by_status"]
    assert result["runs_by_status"].get("interrupted", 0) >= 1


@pytest.mark.slow  # several index runs with searches during each
def test_queries_during_reindex_see_a_complete_state(env):
    rng = random.Random(7)
    docs, index = env / "docs", env / "idx"
    mutate(docs, rng, n_files=60)
    for _ in range(4):
        mutate(docs, rng, n_files=60)
    assert run_cli("index", docs, "-i", index, "-q")[0] == 0
    searcher = Searcher(index)
    k = 5
    for _ in range(3):
        for _ in range(6):
            mutate(docs, rng, n_files=60)
        writer = sbsearch("index", docs, "-i", index, "-q")
        seen = 0
        while writer.poll() is None or seen < 5:
            fresh = Searcher(index, embedder=searcher.embedder)  # a new reader each time: loads the current FAISS
            results = fresh.search(rng.choice(WORDS) + " " + rng.choice(WORDS), k)
            assert len(results) == k
            for r in results:
                assert r.text and r.path.startswith(str(docs))
            seen += 1
        assert writer.returncode == 0, writer.stderr.read()
    assert seen >= 5


@pytest.mark.parametrize("store", ["sqlite", "postgres"])
def test_second_writer_gets_a_clear_message(env, store, request):
    docs = env / "docs"
    mutate(docs, random.Random(3))
    if store == "sqlite":
        index, where = str(env / "idx"), ["-i", str(env / "idx")]
    else:  # the lock is an advisory lock of the database, held by the holder's session
        index = request.getfixturevalue("pg_url")
        where = ["--store", index]
    holder = subprocess.Popen([sys.executable, "-c",
                               "import sys, time; from sbsearch.index.location import open_store\n"
                               f"with open_store({index!r}, create=True).writer_lock():\n"
                               "    print('held', flush=True); time.sleep(60)"],
                              stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "held"
        result = CliRunner().invoke(cli, ["index", str(docs), *where])
        assert result.exit_code == 1 and "Traceback" not in result.output
        assert "another sbsearch process is writing" in result.output
        assert (f"pid {holder.pid}" if store == "sqlite" else "server pid") in result.output
    finally:
        holder.kill()
        holder.wait()
    # the holder died: its lock went with it, no stale lock to clean up (a database ends the dead
    # client's session as soon as it notices the closed connection)
    deadline = time.monotonic() + 10
    while (result := CliRunner().invoke(cli, ["index", str(docs), *where, "--json"])).exit_code != 0:
        assert time.monotonic() < deadline, result.output
        time.sleep(0.2)


def ok_runs(index) -> int:
    try:
        return sum(r["status"] == "ok" for r in Store(index).runs(10))
    except SbsearchError:  # no index yet, or the watcher is creating its tables right now
        return 0


def test_watch_runs_and_stops_cleanly_on_sigterm(env):
    docs, index = env / "docs", env / "idx"
    mutate(docs, random.Random(5))
    proc = sbsearch("watch", docs, "-i", index, "--every", "1s", "-q")
    deadline = time.time() + 120
    while time.time() < deadline:
        if ok_runs(index) >= 2:
            break
        time.sleep(0.5)
    proc.send_signal(signal.SIGTERM)
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 0, err
    assert "stopped" in out
    assert sum(r["status"] == "ok" for r in Store(index).runs(10)) >= 2
    assert "running" not in {r["status"] for r in Store(index).runs(10)}


def test_check_detects_and_repairs_a_wrong_faiss_file(env):
    import faiss

    from sbsearch.vectors import faiss_index

    docs, index = env / "docs", env / "idx"
    mutate(docs, random.Random(9))
    assert run_cli("index", docs, "-i", index, "-q")[0] == 0
    store = Store(index)
    model = os.environ["SBSEARCH_MODEL"]
    bad = faiss_index.load(store, model, store.model_row(model)["dim"])
    bad.remove_ids(np.asarray([int(faiss.vector_to_array(bad.id_map)[0])], dtype=np.int64))
    faiss_index._write(store, model, bad, store.generation)  # claims to be current, misses one id
    result = CliRunner().invoke(cli, ["check", "-i", str(index), "--json"])
    assert result.exit_code == 1 and "disagrees with SQLite" in result.output
    result = CliRunner().invoke(cli, ["check", "-i", str(index), "--repair", "--json"])
    assert result.exit_code == 0, result.output
    assert json.loads(result.output)["repaired"]
