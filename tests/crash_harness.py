"""Crash trials shared by tests/test_reliability.py (10 kills) and benchmarks/reliability.py (50):
a real `sbsearch index` subprocess is SIGKILLed at random moments while the corpus keeps changing;
after each kill the index must pass `sbsearch check` and answer a query."""

from __future__ import annotations

import random
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

from sbsearch.index.store import Store

WORDS = ("travel hotel flight expense claim receipt vpn password laptop printer office parking kitchen "
         "holiday leave policy manager approval portal badge firmware release backup meeting").split()


def sbsearch(*args, **kw) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "sbsearch", *map(str, args)], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, **kw)


def run_cli(*args) -> tuple[int, str, str]:
    proc = sbsearch(*args)
    out, err = proc.communicate(timeout=600)
    return proc.returncode, out, err


def mutate(folder: Path, rng: random.Random, n_files: int = 40) -> None:
    """Add, rewrite and delete some files, so each run has real work to do."""
    folder.mkdir(exist_ok=True)
    for _ in range(8):
        p = folder / f"doc{rng.randrange(n_files)}.md"
        if p.exists() and rng.random() < 0.25:
            p.unlink()
            continue
        paras = ["# " + " ".join(rng.choices(WORDS, k=3))]
        paras += [" ".join(rng.choices(WORDS, k=rng.randint(20, 120))) + "." for _ in range(rng.randint(1, 6))]
        p.write_text("\n\n".join(paras))


def snapshot(index_path: Path, model: str):
    """What a clean build must equal: documents, and each chunk's text with its vector and its
    lexical (FTS5) row."""
    store = Store(index_path)
    docs = sorted((r["path"], r["sha256"], r["status"]) for r in store.db.query("SELECT * FROM documents"))
    rows = list(store.db.query(
        "SELECT d.path, c.ord, c.text, e.vector, l.body FROM chunks c JOIN documents d ON d.id = c.doc_id "
        "LEFT JOIN embeddings e ON e.chunk_id = c.id AND e.model = ? LEFT JOIN lexical l ON l.rowid = c.id "
        "ORDER BY d.path, c.ord", [model]))
    store.close()
    return docs, rows


def same_index(a: Path, b: Path, model: str) -> tuple[bool, str]:
    (docs_a, rows_a), (docs_b, rows_b) = snapshot(a, model), snapshot(b, model)
    if docs_a != docs_b:
        return False, "documents differ"
    if len(rows_a) != len(rows_b):
        return False, f"chunk counts differ ({len(rows_a)} vs {len(rows_b)})"
    for x, y in zip(rows_a, rows_b):
        if (x["path"], x["ord"], x["text"]) != (y["path"], y["ord"], y["text"]):
            return False, f"chunk text differs in {x['path']}"
        if x["body"] is None or x["body"] != y["body"]:
            return False, f"lexical row missing or different in {x['path']}"
        if x["vector"] is None or not np.allclose(np.frombuffer(x["vector"], np.float32),
                                                  np.frombuffer(y["vector"], np.float32), atol=1e-5):
            return False, f"vector differs in {x['path']}"
    return True, "equal"


def latest_run_id(index: Path) -> int:
    con = sqlite3.connect(f"file:{index / 'index.db'}?mode=ro", uri=True, timeout=10)
    try:
        return con.execute("SELECT coalesce(max(id), 0) FROM runs").fetchone()[0]
    finally:
        con.close()


def wait_until_running(index: Path, proc: subprocess.Popen, after_run_id: int) -> None:
    """Until the child has recorded its run (it holds the writer lock and works from here) or exited."""
    while proc.poll() is None and latest_run_id(index) <= after_run_id:
        time.sleep(0.005)


def run_trials(work: Path, n_trials: int, seed: int = 1234, max_delay: float | None = None) -> dict:
    """Returns counts of kills, check/query failures, and whether the final index equals a clean build.

    max_delay: each kill comes a random 0.2..max_delay seconds after the process starts. By
    default the kill instead comes a random time after the run has recorded itself, up to 1.3 times
    as long as the first (full) run worked: start-up (imports, opening the index) can take most of
    a process's life when the model is fast, and a kill there tests nothing."""
    rng = random.Random(seed)
    docs, index = work / "docs", work / "idx"
    mutate(docs, rng)
    code, _, err = run_cli("index", docs, "-i", index, "-q")
    assert code == 0, err
    store = Store(index)
    work_s = store.runs(1)[0]["seconds"]
    store.close()
    result = {"trials": n_trials, "killed": 0, "finished": 0, "check_failed": [], "query_failed": []}
    for trial in range(n_trials):
        mutate(docs, rng)
        last_run = latest_run_id(index)
        proc = sbsearch("index", docs, "-i", index, "-q")
        if max_delay is None:
            wait_until_running(index, proc, last_run)
            time.sleep(rng.uniform(0, 1.3 * work_s))
        else:
            time.sleep(rng.uniform(0.2, max_delay))
        if proc.poll() is None:
            proc.send_signal(signal.SIGKILL)
            result["killed"] += 1
        else:
            result["finished"] += 1
        proc.wait()
        code, out, err = run_cli("check", "-i", index, "--json")
        if code != 0:
            result["check_failed"].append((trial, out + err))
        code, out, err = run_cli("query", "travel expense", "-i", index, "--json", "-k", "3")
        if code != 0 or len(out.splitlines()) != 3:
            result["query_failed"].append((trial, err))
    code, _, err = run_cli("index", docs, "-i", index, "-q")
    assert code == 0, err
    code, _, err = run_cli("index", docs, "-i", work / "clean", "-q")
    assert code == 0, err
    import os

    result["equal_to_clean_build"], result["difference"] = same_index(index, work / "clean", os.environ["SBSEARCH_MODEL"])
    statuses = [r["status"] for r in Store(index).runs(10_000)]
    result["runs_by_status"] = {s: statuses.count(s) for s in sorted(set(statuses))}
    return result
