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

from sbsearch.cli import cli
from sbsearch.search import Searcher
from sbsearch.store import Store

pytestmark = pytest.mark.slow

WORDS = ("travel hotel flight expense claim receipt vpn password laptop printer office parking kitchen "
         "holiday leave policy manager approval portal badge firmware release backup meeting").split()


def sbsearch(*args, **kw):
    return subprocess.Popen([sys.executable, "-m", "sbsearch", *map(str, args)], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, **kw)


def run_cli(*args):
    proc = sbsearch(*args)
    out, err = proc.communicate(timeout=300)
    return proc.returncode, out, err


def mutate(folder, rng, n_files=40):
    """Add, rewrite and delete some files, so each run has real work to do."""
    folder.mkdir(exist_ok=True)
    for _ in range(8):
        i = rng.randrange(n_files)
        p = folder / f"doc{i}.md"
        if p.exists() and rng.random() < 0.25:
            p.unlink()
            continue
        paras = ["# " + " ".join(rng.choices(WORDS, k=3))]
        paras += [" ".join(rng.choices(WORDS, k=rng.randint(20, 120))) + "." for _ in range(rng.randint(1, 6))]
        p.write_text("\n\n".join(paras))


def snapshot(index_path, model):
    """What a clean build must equal: documents, and each chunk's text with its vector."""
    store = Store(index_path)
    docs = sorted((r["path"], r["sha256"], r["status"]) for r in store.db.query("SELECT * FROM documents"))
    rows = list(store.db.query(
        "SELECT d.path, c.ord, c.text, e.vector FROM chunks c JOIN documents d ON d.id = c.doc_id "
        "LEFT JOIN embeddings e ON e.chunk_id = c.id AND e.model = ? ORDER BY d.path, c.ord", [model]))
    store.close()
    return docs, rows


@pytest.fixture
def env(tmp_path, tiny_model_dir, monkeypatch):
    monkeypatch.setenv("SBSEARCH_MODEL", str(tiny_model_dir))
    return tmp_path


def test_sigkill_at_random_moments_never_corrupts(env):
    n_trials = int(os.environ.get("SBSEARCH_CRASH_TRIALS", "10"))
    rng = random.Random(1234)
    docs, index = env / "docs", env / "idx"
    mutate(docs, rng)
    assert run_cli("index", docs, "-i", index, "-q")[0] == 0
    outcomes = []
    for trial in range(n_trials):
        mutate(docs, rng)
        proc = sbsearch("index", docs, "-i", index, "-q")
        time.sleep(rng.uniform(0.2, 6.0))
        killed = proc.poll() is None
        if killed:
            proc.send_signal(signal.SIGKILL)
        proc.wait()
        outcomes.append("killed" if killed else "finished")
        code, out, err = run_cli("check", "-i", index, "--json")
        assert code == 0, f"trial {trial}: check failed after kill: {out} {err}"
        code, out, err = run_cli("query", "travel expense", "-i", index, "--json", "-k", "3")
        assert code == 0 and len(out.splitlines()) == 3, f"trial {trial}: query failed: {err}"
    assert "killed" in outcomes, "the kills must land while the index runs"
    # one more run completes the work, and the result equals a clean build of the same folder
    assert run_cli("index", docs, "-i", index, "-q")[0] == 0
    assert run_cli("index", docs, "-i", env / "clean", "-q")[0] == 0
    model = os.environ["SBSEARCH_MODEL"]
    (docs_a, rows_a), (docs_b, rows_b) = snapshot(index, model), snapshot(env / "clean", model)
    assert docs_a == docs_b
    assert len(rows_a) == len(rows_b)
    for a, b in zip(rows_a, rows_b):
        assert (a["path"], a["ord"], a["text"]) == (b["path"], b["ord"], b["text"])
        assert a["vector"] is not None
        np.testing.assert_allclose(np.frombuffer(a["vector"], np.float32), np.frombuffer(b["vector"], np.float32),
                                   atol=1e-5)
    store = Store(index)
    runs = {r["status"] for r in store.runs(100)}
    assert "running" not in runs and ("interrupted" in runs or outcomes.count("killed") == 0)


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


def test_second_writer_gets_a_clear_message(env):
    docs, index = env / "docs", env / "idx"
    mutate(docs, random.Random(3))
    holder = subprocess.Popen([sys.executable, "-c",
                               "import sys, time; from sbsearch.locking import writer_lock\n"
                               f"with writer_lock({str(index)!r}):\n    print('held', flush=True); time.sleep(60)"],
                              stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "held"
        result = CliRunner().invoke(cli, ["index", str(docs), "-i", str(index)])
        assert result.exit_code == 1
        assert "another sbsearch process is writing" in result.output and f"pid {holder.pid}" in result.output
    finally:
        holder.kill()
        holder.wait()
    # the holder died: its lock went with it, no stale lock to clean up
    result = CliRunner().invoke(cli, ["index", str(docs), "-i", str(index), "--json"])
    assert result.exit_code == 0, result.output


def test_watch_runs_and_stops_cleanly_on_sigterm(env):
    docs, index = env / "docs", env / "idx"
    mutate(docs, random.Random(5))
    proc = sbsearch("watch", docs, "-i", index, "--every", "1s", "-q")
    deadline = time.time() + 120
    while time.time() < deadline:
        if (index / "index.db").exists() and Store(index).runs(10) and \
                sum(r["status"] == "ok" for r in Store(index).runs(10)) >= 2:
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

    from sbsearch import vectorindex

    docs, index = env / "docs", env / "idx"
    mutate(docs, random.Random(9))
    assert run_cli("index", docs, "-i", index, "-q")[0] == 0
    store = Store(index)
    model = os.environ["SBSEARCH_MODEL"]
    bad = vectorindex.load(store, model, store.model_row(model)["dim"])
    bad.remove_ids(np.asarray([int(faiss.vector_to_array(bad.id_map)[0])], dtype=np.int64))
    vectorindex._write(store, model, bad, store.generation)  # claims to be current, misses one id
    result = CliRunner().invoke(cli, ["check", "-i", str(index), "--json"])
    assert result.exit_code == 1 and "disagrees with SQLite" in result.output
    result = CliRunner().invoke(cli, ["check", "-i", str(index), "--repair", "--json"])
    assert result.exit_code == 0, result.output
    assert json.loads(result.output)["repaired"]
