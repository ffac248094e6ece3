"""Crash trials shared by tests/test_reliability.py (10 kills on SQLite + FAISS, a few on
PostgreSQL) and benchmarks/reliability.py (50): a real `sbsearch index` subprocess is SIGKILLed at
random moments while the corpus keeps changing; after each kill the index must hold the last
complete state, pass `sbsearch check` and answer a query."""

from __future__ import annotations

import hashlib
import os
import random
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

from sbsearch.config import is_store_url
from sbsearch.index.location import open_store
from sbsearch.index.store import Store
from sbsearch.index.store.vector_codec import decode

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


def where(location) -> list[str]:
    """The CLI arguments that name an index: a folder (SQLite + FAISS) or a PostgreSQL URL."""
    return ["--store", location] if is_store_url(location) else ["-i", str(location)]


def snapshot(location, model: str):
    """What a clean build must equal: documents, and each chunk's text with its vector and its
    lexical row (FTS5's text, or PostgreSQL's tsvector)."""
    if is_store_url(location):
        import psycopg
        from psycopg.rows import dict_row

        with psycopg.connect(location, row_factory=dict_row) as con:
            con.execute("SET search_path = sbsearch, public")
            docs = sorted((r["path"], r["sha256"], r["status"]) for r in con.execute("SELECT * FROM documents"))
            rows = [{**r, "vector": None if r["vector"] is None else np.array(r["vector"], np.float32).tobytes()}
                    for r in con.execute(
                        "SELECT d.path, c.ord, c.text, e.vector::real[] AS vector, l.tsv::text AS body FROM chunks c "
                        "JOIN documents d ON d.id = c.doc_id LEFT JOIN embeddings e ON e.chunk_id = c.id "
                        "AND e.model = %s LEFT JOIN lexical l ON l.chunk_id = c.id ORDER BY d.path, c.ord", [model])]
        return docs, rows
    store = Store(location)
    docs = sorted((r["path"], r["sha256"], r["status"]) for r in store.db.query("SELECT * FROM documents"))
    encoding = store.vector_encoding()
    rows = [{**r, "vector": None if r["vector"] is None else decode(r["vector"], encoding).tobytes()}
            for r in store.db.query(
                "SELECT d.path, c.ord, c.text, e.vector, l.body FROM chunks c JOIN documents d ON d.id = c.doc_id "
                "LEFT JOIN embeddings e ON e.chunk_id = c.id AND e.model = ? LEFT JOIN lexical l ON l.rowid = c.id "
                "ORDER BY d.path, c.ord", [model])]
    store.close()
    return docs, rows


def same_index(a, b, model: str) -> tuple[bool, str]:
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


def files_on_disk(docs: Path) -> list[tuple[str, str]]:
    return sorted((str(p.resolve()), hashlib.sha256(p.read_bytes()).hexdigest()) for p in docs.glob("*.md"))


_pg_stores: dict[str, object] = {}


def _open(location):
    """A store to read runs from; PostgreSQL's kept open (one connection, not one per poll)."""
    if not is_store_url(location):
        return open_store(location)
    if location not in _pg_stores:
        _pg_stores[location] = open_store(location)
    return _pg_stores[location]


def latest_run_id(location) -> int:
    if is_store_url(location):
        runs = _open(location).runs(1)
        return runs[0]["id"] if runs else 0
    con = sqlite3.connect(f"file:{Path(location) / 'index.db'}?mode=ro", uri=True, timeout=10)
    try:
        return con.execute("SELECT coalesce(max(id), 0) FROM runs").fetchone()[0]
    finally:
        con.close()


def wait_until_running(location, proc: subprocess.Popen, after_run_id: int) -> None:
    """Until the child has recorded its run (it holds the writer lock and works from here) or exited."""
    while proc.poll() is None and latest_run_id(location) <= after_run_id:
        time.sleep(0.005)


def run_trials(work: Path, n_trials: int, seed: int = 1234, max_delay: float | None = None,
               store: str | None = None, clean_store: str | None = None) -> dict:
    """Returns counts of kills, check/query failures, whether each killed run left the last
    complete state (the one before it, or its own if it had published), and whether the final
    index equals a clean build.

    store, clean_store: PostgreSQL URLs of two empty databases to run the trials on (the index
    and the clean build), instead of folders under work.
    max_delay: each kill comes a random 0.2..max_delay seconds after the process starts. By
    default the kill instead comes a random time after the run has recorded itself, up to 1.3 times
    as long as the first (full) run worked: start-up (imports, opening the index) can take most of
    a process's life when the model is fast, and a kill there tests nothing."""
    rng = random.Random(seed)
    model = os.environ["SBSEARCH_MODEL"]
    docs, index, clean = work / "docs", store or work / "idx", clean_store or work / "clean"
    mutate(docs, rng)
    code, _, err = run_cli("index", docs, *where(index), "-q")
    assert code == 0, err
    work_s = _open(index).runs(1)[0]["seconds"]
    result = {"trials": n_trials, "killed": 0, "finished": 0, "check_failed": [], "query_failed": [],
              "not_last_complete_state": []}
    for trial in range(n_trials):
        before = snapshot(index, model)
        mutate(docs, rng)
        last_run = latest_run_id(index)
        proc = sbsearch("index", docs, *where(index), "-q")
        if max_delay is None:
            wait_until_running(index, proc, last_run)
            time.sleep(rng.uniform(0, 1.3 * work_s))
        else:
            time.sleep(rng.uniform(0.2, max_delay))
        if proc.poll() is None:
            proc.send_signal(signal.SIGKILL)
            result["killed"] += 1
            after = snapshot(index, model)
            # all of the run or none of it: its documents are those on disk now, or nothing changed
            if after != before and [(p, sha) for p, sha, _ in after[0]] != files_on_disk(docs):
                result["not_last_complete_state"].append(trial)
        else:
            result["finished"] += 1
        proc.wait()
        code, out, err = run_cli("check", *where(index), "--json")
        if code != 0:
            result["check_failed"].append((trial, out + err))
        code, out, err = run_cli("query", "travel expense", *where(index), "--json", "-k", "3")
        if code != 0 or len(out.splitlines()) != 3:
            result["query_failed"].append((trial, err))
    code, _, err = run_cli("index", docs, *where(index), "-q")
    assert code == 0, err
    code, _, err = run_cli("index", docs, *where(clean), "-q")
    assert code == 0, err
    result["equal_to_clean_build"], result["difference"] = same_index(index, clean, model)
    statuses = [r["status"] for r in _open(index).runs(10_000)]
    for url in (index, clean):
        if url in _pg_stores:
            _pg_stores.pop(url).close()
    result["runs_by_status"] = {s: statuses.count(s) for s in sorted(set(statuses))}
    return result
