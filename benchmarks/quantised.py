"""Quantised vector indexes (ivf-sq8, ivf-binary, each with exact rescoring) against exact and the
float IVF, as sbsearch builds and searches them, at a size given on the command line:

    .venv/bin/python benchmarks/quantised.py --n 1000000 [--kinds exact ivf ivf-sq8 ivf-binary] [--queries 200] [--no-write]
    .venv/bin/python benchmarks/quantised.py --n 1000000 --build-only   # the builds' time and peak memory only

Vectors: real MiniLM (minilm-int8) embeddings of the English sentences of the shared STS-B and SNLI
files (encoded once, cached under $SBSEARCH_CACHE), each stored vector one of them perturbed along
the embeddings' own directions (a random combination of 32 centred real embeddings, so the noise
has their spectrum rather than a uniform one) and normalised again; held-out queries are drawn
the same way and are not stored. A real SQLite store holds them (benchmarks/ann.py's bulk insert).

Per type: `faiss_index.build` forced with SBSEARCH_INDEX_TYPE, run in a process of its own that
does nothing else (opens the store, builds), timed (SQLite read and recall tuning included), with
its peak resident memory (VmHWM) and its resident memory before the build; then a fresh search process opens the store as a searcher does and reports its resident
memory (VmRSS) before loading the index and after the queries, the FAISS file's size, and the
p50/p95 of one query at a time through FaissVectorIndex.search (quantised: candidates, their
vectors read from SQLite, rescoring) and through Searcher.search_vectors (that plus the chunk rows),
and recall@10 of the answers against exact search over all stored vectors.
Writes benchmarks/results/quantised.json (the run's rows merged by N and type); prints the table.
--build-only skips the search process and writes benchmarks/results/quantised_build.json instead,
its rows merged by N, type and the commit of the code that built (so that two versions of the
build can be compared on the same vectors).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(REPO), str(REPO / "benchmarks")]

from ann import MODEL, make_store  # noqa: E402
from sbsearch import config  # noqa: E402
from sbsearch.vectors import faiss_index  # noqa: E402

K = 10
RESULTS = REPO / "benchmarks" / "results" / "quantised.json"
BUILD_RESULTS = REPO / "benchmarks" / "results" / "quantised_build.json"
NOISE = 0.6  # perturbation scale: a stored vector keeps cosine ~0.85 with the sentence it came from


def real_embeddings() -> np.ndarray:
    """minilm-int8 embeddings of the shared English sentence pool (cached: ~2 min to encode)."""
    from hybrid import sentence_pool

    cache = config.cache_dir() / "bench" / "pool-minilm-int8.npy"
    if cache.exists():
        return np.load(cache)
    from sbsearch.embed import make_embedder

    pool, embedder = sentence_pool(), make_embedder("minilm-int8")
    vecs = np.vstack([np.asarray(embedder.encode(pool[s:s + 512]), dtype=np.float32) for s in range(0, len(pool), 512)])
    cache.parent.mkdir(parents=True, exist_ok=True)
    np.save(cache, vecs)
    return vecs


def perturbed_blocks(real: np.ndarray, n: int, seed: int):
    """n unit vectors in blocks of 100,000, each a real embedding moved along a random mix of 32
    other (centred) real embeddings, i.e. along directions the model actually uses. In blocks so
    that 10M vectors (15 GB of float32) are never held at once."""
    rng = np.random.default_rng(seed)
    centred = real - real.mean(axis=0)
    for s in range(0, n, 100_000):
        m = min(100_000, n - s)
        mix = rng.standard_normal((m, 32)).astype(np.float32) / np.sqrt(32)
        v = real[rng.integers(len(real), size=m)] + NOISE * (mix @ centred[rng.integers(len(real), size=32)])
        yield (v / np.linalg.norm(v, axis=1, keepdims=True)).astype(np.float32)


def perturbed(real: np.ndarray, n: int, seed: int) -> np.ndarray:
    return np.vstack(list(perturbed_blocks(real, n, seed)))


def exact_top(queries: np.ndarray, blocks, k: int) -> tuple[np.ndarray, np.ndarray]:
    """Exact top-k (scores, chunk ids) of each query over all vectors, given as consecutive blocks
    (chunk ids start at 1)."""
    best_s = np.full((len(queries), k), -np.inf, dtype=np.float32)
    best_i = np.zeros((len(queries), k), dtype=np.int64)
    s = 0
    for block in blocks:
        sc = np.concatenate([best_s, queries @ block.T], axis=1)
        ids = np.concatenate([best_i, np.broadcast_to(np.arange(s, s + len(block)) + 1, (len(queries), len(block)))], axis=1)
        top = np.argpartition(-sc, k - 1, axis=1)[:, :k]
        best_s, best_i = np.take_along_axis(sc, top, 1), np.take_along_axis(ids, top, 1)
        s += len(block)
    order = np.argsort(-best_s, axis=1)
    return np.take_along_axis(best_s, order, 1), np.take_along_axis(best_i, order, 1)


SEARCH_CHILD = r"""
import json, sys, time
import numpy as np
def rss_mb():
    for line in open("/proc/self/status"):
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
path, model, queries_file, k = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
from sbsearch.search import Searcher
queries = np.load(queries_file)
searcher = Searcher(path, model=model, embedder=None)
store, vi = searcher.store, searcher.vector_index
before = rss_mb()
t = time.perf_counter()
vi.load()
load_s = time.perf_counter() - t
gen = store.generation
def one(q):
    with store.snapshot():
        return vi.search(q[None], k, gen)
for q in queries[:20]:
    one(q); searcher.search_vectors(q[None], k)
index_ms, search_ms, got = [], [], []
for q in queries:
    t = time.perf_counter(); s, i = one(q); index_ms.append((time.perf_counter() - t) * 1000)
    t = time.perf_counter(); searcher.search_vectors(q[None], k); search_ms.append((time.perf_counter() - t) * 1000)
    got.append((s[0].tolist(), i[0].tolist()))
print(json.dumps({"rss_before_mb": before, "rss_after_mb": rss_mb(), "load_s": load_s,
                  "index_p50_ms": float(np.percentile(index_ms, 50)), "index_p95_ms": float(np.percentile(index_ms, 95)),
                  "search_p50_ms": float(np.percentile(search_ms, 50)), "search_p95_ms": float(np.percentile(search_ms, 95)),
                  "got": got}))
"""


# The build alone, in a process that does nothing else: its peak resident memory is the build's
# (plus the interpreter, numpy, FAISS and the open store, reported apart as rss_before_build_mb).
# VmHWM, not ru_maxrss: Linux carries ru_maxrss over an exec, so a child started from this
# process (holding the vectors) would report the parent's size.
BUILD_CHILD = r"""
import json, sys, time
def rss_mb(field="VmRSS"):
    for line in open("/proc/self/status"):
        if line.startswith(field + ":"):
            return int(line.split()[1]) / 1024
path, model, dim = sys.argv[1], sys.argv[2], int(sys.argv[3])
import faiss, numpy, os
from sbsearch.index.store import Store
from sbsearch.vectors import faiss_index
if os.environ.get("BENCH_RECALL_TARGET"):  # a benchmark's own target, to build a type that misses 0.99
    faiss_index.RECALL_TARGET = float(os.environ["BENCH_RECALL_TARGET"])
store = Store(path)
before = rss_mb()
t = time.perf_counter()
faiss_index.build(store, model, dim)
print(json.dumps({"build_s": time.perf_counter() - t, "rss_before_build_mb": before,
                  "build_peak_rss_mb": rss_mb("VmHWM")}))
"""


def build(store, dim: int, kind: str) -> dict:
    """Build `kind` in a child process: {build_s, rss_before_build_mb, build_peak_rss_mb}."""
    env = {**os.environ, "PYTHONPATH": str(REPO), faiss_index.ENV_TYPE: kind}
    out = subprocess.run([sys.executable, "-c", BUILD_CHILD, str(store.path), MODEL, str(dim)],
                         capture_output=True, text=True, env=env)
    if out.returncode:
        sys.exit(f"the build of {kind} failed:\n{out.stderr.strip()}")
    return json.loads(out.stdout.strip().splitlines()[-1])


def built_row(store, dim: int, kind: str) -> dict:
    """What a build of `kind` gave: the type it chose, its parameters, time, memory, file, recall."""
    b = build(store, dim, kind)
    meta = faiss_index._read_meta(store, MODEL)
    print(f"  {kind}: built {meta['type']} in {b['build_s']:.0f} s, peak RSS {b['build_peak_rss_mb']:.0f} MB", flush=True)
    return {"asked": kind, "type": meta["type"], "params": meta.get("params", {}), "fallback": meta.get("fallback"),
            "build_s": round(b["build_s"], 1), "rss_before_build_mb": round(b["rss_before_build_mb"]),
            "build_peak_rss_mb": round(b["build_peak_rss_mb"]), "recall_at_build": meta.get("recall_at_10"),
            "file_mb": round(meta["file_bytes"] / 2**20, 1)}


def measure(store, dim: int, kind: str, queries_file: Path, gold) -> dict:
    row = built_row(store, dim, kind)
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    out = subprocess.run([sys.executable, "-c", SEARCH_CHILD, str(store.path), MODEL, str(queries_file), str(K + 1)],
                         capture_output=True, text=True, env=env, check=True)
    child = json.loads(out.stdout.strip().splitlines()[-1])
    got = child.pop("got")
    scores = np.array([s for s, _ in got], dtype=np.float32)
    ids = np.array([i for _, i in got], dtype=np.int64)
    row.update(recall_held_out=round(faiss_index.recall_at_k((scores, ids), gold, None, K), 4),
               **{k: round(v, 2) for k, v in child.items()})
    print(f"  {kind}: {row}", flush=True)
    return row


def table(rows: list[dict]) -> str:
    lines = ["| N | type | parameters | build s | build peak RSS MB | file MB | search process RSS MB: before load / after "
             "queries | index p50 / p95 ms | search_vectors p50 / p95 ms | recall@10 at build / held-out |",
             "|---|---|---|---|---|---|---|---|---|---|"]
    for r in rows:
        params = " ".join(f"{k}={v}" for k, v in r["params"].items()) or "–"
        lines.append(f"| {r['n']:,} | {r['type']} | {params} | {r['build_s']:.0f} | {r['build_peak_rss_mb']:,} | "
                     f"{r['file_mb']:.0f} | {r['rss_before_mb']:.0f} / {r['rss_after_mb']:.0f} | "
                     f"{r['index_p50_ms']:.2f} / {r['index_p95_ms']:.2f} | "
                     f"{r['search_p50_ms']:.2f} / {r['search_p95_ms']:.2f} | {r['recall_at_build']:.3f} / "
                     f"{r['recall_held_out']:.3f} |")
    return "\n".join(lines)


def build_table(rows: list[dict]) -> str:
    lines = ["| N | code | type asked → built | parameters | build s | RSS MB before the build / peak | file MB | "
             "recall@10 at build |", "|---|---|---|---|---|---|---|---|"]
    for r in rows:
        params = " ".join(f"{k}={v}" for k, v in r["params"].items()) or "–"
        lines.append(f"| {r['n']:,} | {r['commit']} | {r['asked']} → {r['type']} | {params} | {r['build_s']:.0f} | "
                     f"{r['rss_before_build_mb']:,} / {r['build_peak_rss_mb']:,} | {r['file_mb']:.0f} | "
                     f"{r['recall_at_build']:.3f} |")
    return "\n".join(lines)


def commit() -> str:
    """The commit of the code measured (+ "-dirty" when the tree has changes to it)."""
    git = ["git", "-C", str(REPO)]
    head = subprocess.run([*git, "rev-parse", "--short", "HEAD"], capture_output=True, text=True).stdout.strip()
    dirty = subprocess.run([*git, "status", "--porcelain", "sbsearch"], capture_output=True, text=True).stdout.strip()
    return (head or "unknown") + ("-dirty" if dirty else "")


def save(path: Path, rows: list[dict], key: tuple[str, ...], cmd: str) -> None:
    """Merge the run's rows into `path`, replacing older rows with the same `key` fields."""
    old = json.loads(path.read_text()) if path.exists() else {"runs": []}
    new_keys = {tuple(x[k] for k in key) for x in rows}
    old["runs"] = [r for r in old["runs"] if tuple(r.get(k) for k in key) not in new_keys]
    old["runs"] += [{**r, "command": cmd, "date": time.strftime("%Y-%m-%d %H:%M"),
                     "machine": f"{platform.machine()}, {os.cpu_count()} cores (shared)"} for r in rows]
    path.write_text(json.dumps(old, indent=2) + "\n")


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--n", type=int, default=1_000_000)
    ap.add_argument("--kinds", nargs="+", default=["exact", "ivf", "ivf-sq8", "ivf-binary"])
    ap.add_argument("--queries", type=int, default=200)
    ap.add_argument("--build-only", action="store_true", help="builds only: time, peak memory, recall at build")
    ap.add_argument("--no-write", action="store_true")
    ap.add_argument("--work", default=None, help="folder for the temporary store (default: the system's temp)")
    args = ap.parse_args()
    t_all = time.perf_counter()
    real = real_embeddings()
    queries = perturbed(real, args.queries, seed=1)
    # The stored vectors are drawn twice, block by block, from the same seed: once for the exact
    # answers, once into the store (the blocks are equal; 10M of them would not fit at once).
    gold = None if args.build_only else exact_top(queries, perturbed_blocks(real, args.n, seed=0), K + 1)
    work = Path(tempfile.mkdtemp(prefix="sbsearch-quantised-", dir=args.work))
    try:
        t = time.perf_counter()
        store = make_store(work / "idx", perturbed_blocks(real, args.n, seed=0), n=args.n, dim=real.shape[1])
        print(f"store of {args.n:,} vectors: {time.perf_counter() - t:.0f} s", flush=True)
        np.save(work / "queries.npy", queries)
        code = commit()
        rows = [{"n": args.n, "dim": real.shape[1], "commit": code,
                 **(built_row(store, real.shape[1], kind) if args.build_only
                    else measure(store, real.shape[1], kind, work / "queries.npy", gold))}
                for kind in args.kinds]
    finally:
        shutil.rmtree(work, ignore_errors=True)
    cmd = " ".join(["python", "benchmarks/quantised.py", *sys.argv[1:]])
    print(f"\n`{cmd}` · {platform.machine()}, {os.cpu_count()} cores (shared) · {len(real):,} real minilm-int8 "
          f"embeddings perturbed · {args.queries} held-out queries · run {time.perf_counter() - t_all:.0f} s\n")
    print(build_table(rows) if args.build_only else table(rows))
    if not args.no_write:
        if args.build_only:
            save(BUILD_RESULTS, rows, ("n", "asked", "commit"), cmd)
        else:
            save(RESULTS, rows, ("n", "asked"), cmd)


if __name__ == "__main__":
    main()
