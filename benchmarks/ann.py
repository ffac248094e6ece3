"""Exact vs approximate FAISS indexes as sbsearch builds them, measured in one run.

    .venv/bin/python benchmarks/ann.py [--sizes 10000 50000 100000 200000] [--dims 384 768] [--no-write]

For each collection size N and dimension: a real Store holding N synthetic unit vectors (clustered:
topics, documents of 10 chunks, a decaying spectrum, a shared mean direction, so that cosines look
like sentence embeddings' rather than like uniform noise), then `faiss_index.build` of each type
(exact; the automatic choice; IVF and HNSW forced with SBSEARCH_INDEX_TYPE), each timed (SQLite read
included), loaded the way searchers load it, and queried one query at a time with held-out vectors
(same distribution, not stored): FAISS p50/p95, Searcher.search_vectors p50 (FAISS + SQLite rows),
recall@10 against exact search on those queries next to the recall measured at build time, file size.
One extra row: uniform random vectors (what benchmarks/index_query.py stores), where approximate
search cannot reach the recall target and the automatic choice must fall back to exact.
Appends the tables, with this command line, to docs/BENCHMARKS.md.
"""

from __future__ import annotations

import argparse
import os
import platform
import shutil
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(REPO), str(REPO / "benchmarks")]

import faiss  # noqa: E402

from report import publish  # noqa: E402
from sbsearch.vectors import faiss_index  # noqa: E402
from sbsearch.search import Searcher  # noqa: E402
from sbsearch.index.store import Store, now  # noqa: E402
from sbsearch.index.store.vector_codec import encode_matrix  # noqa: E402

MODEL = "bench-synthetic"
K = 10
DEFAULT_THREADS = faiss.omp_get_max_threads()


class Clustered:
    """Rows of one synthetic collection, generated block by block from shared structure: topics
    (one per 1,000 chunks), documents (10 consecutive chunks each) drawn around a topic, chunks around
    their document, in a rank-96 subspace with a decaying spectrum, plus a shared mean direction and
    a little full-dimensional noise. Cosine of random pairs ~0.12, of a chunk's nearest neighbour
    ~0.84 (what sentence-embedding collections show, roughly); queries are new passages on a topic."""

    def __init__(self, n: int, dim: int, seed: int = 0, rank: int = 96):
        rng = np.random.default_rng(seed)
        self.dim, self.rng = dim, rng
        self.scale = np.arange(1, rank + 1) ** -0.5
        self.basis = (rng.standard_normal((rank, dim)) / np.sqrt(rank)).astype(np.float32)
        self.topics = rng.standard_normal((max(1, n // 1000), rank)) * self.scale
        n_docs = (n + 9) // 10
        self.docs = self.topics[rng.integers(0, len(self.topics), n_docs)] + 0.7 * rng.standard_normal((n_docs, rank)) * self.scale
        mean = rng.standard_normal(dim).astype(np.float32)
        self.mean = mean / np.linalg.norm(mean)

    def _finish(self, z: np.ndarray) -> np.ndarray:
        x = z.astype(np.float32) @ self.basis
        x /= np.linalg.norm(x, axis=1, keepdims=True)
        x += 0.35 * self.mean + 0.25 * self.rng.standard_normal(x.shape).astype(np.float32) / np.sqrt(self.dim)
        return x / np.linalg.norm(x, axis=1, keepdims=True)

    def rows(self, start: int, stop: int) -> np.ndarray:
        doc = np.arange(start, stop) // 10
        return self._finish(self.docs[doc] + 0.6 * self.rng.standard_normal((stop - start, len(self.scale))) * self.scale)

    def queries(self, n: int) -> np.ndarray:
        topic = self.topics[self.rng.integers(0, len(self.topics), n)]
        spread = np.sqrt(0.7 ** 2 + 0.6 ** 2)  # as far from its topic as a stored chunk, in no stored document
        return self._finish(topic + spread * self.rng.standard_normal((n, len(self.scale))) * self.scale)


def uniform(n: int, dim: int, seed: int) -> np.ndarray:
    x = np.random.default_rng(seed).standard_normal((n, dim)).astype(np.float32)
    return x / np.linalg.norm(x, axis=1, keepdims=True)


def _embedding_rows(blocks, encoding: str):
    """(chunk id, model, blob) of each vector in the encoding the store keeps (int8 since the
    compact store: a float32 blob would be read as int8 codes of the wrong length), encoded a
    block at a time; `blocks` is a matrix or an iterable of matrices (consecutive chunk ids)."""
    if isinstance(blocks, np.ndarray):
        matrix = blocks
        blocks = (matrix[s:s + 100_000] for s in range(0, len(matrix), 100_000))
    first = 1
    for block in blocks:
        for j, blob in enumerate(encode_matrix(block, encoding)):
            yield first + j, MODEL, blob
        first += len(block)


def make_store(path: Path, vecs: np.ndarray, n: int | None = None, dim: int | None = None) -> Store:
    """N chunks in N/10 documents with their vectors, bulk-inserted (what an indexing run leaves).
    `vecs` may also be an iterable of blocks, given with n and dim, so that a store of 10M vectors
    is written without holding them all (15 GB of float32 at 384-d)."""
    store = Store(path, create=True)
    n = len(vecs) if n is None else n
    dim = vecs.shape[1] if dim is None else dim
    store.register_model(MODEL, "", None, dim, None, None)
    conn = store.db.conn
    with store.db.atomic():
        n_docs = (n + 9) // 10
        conn.executemany("INSERT INTO documents (id, path, root, sha256, status, n_chunks) VALUES (?, ?, ?, ?, 'ok', 10)",
                         ((d + 1, f"/synthetic/doc{d}.txt", "/synthetic", str(d)) for d in range(n_docs)))
        conn.executemany("INSERT INTO chunks (id, doc_id, ord, text, text_sha) VALUES (?, ?, ?, ?, ?)",
                         ((i + 1, i // 10 + 1, i % 10, f"synthetic passage {i}", str(i)) for i in range(n)))
        conn.executemany("INSERT INTO embeddings (chunk_id, model, vector) VALUES (?, ?, ?)",
                         _embedding_rows(vecs, store.vector_encoding()))
        store.set_meta("generation", "1")
        store.set_meta("default_model", MODEL)
    return store


def exact_top(queries: np.ndarray, vecs: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    s = queries @ vecs.T
    top = np.argpartition(-s, k - 1, axis=1)[:, :k]
    sc = np.take_along_axis(s, top, 1)
    order = np.argsort(-sc, axis=1)
    return np.take_along_axis(sc, order, 1), np.take_along_axis(top, order, 1) + 1  # chunk ids start at 1


def timed_interleaved(fns: dict, queries: np.ndarray) -> dict[str, tuple[float, float]]:
    """p50/p95 ms of each function, one query at a time, the functions taking turns on every query
    so that all of them meet the same load of this shared machine."""
    for q in queries[:20]:
        for fn in fns.values():
            fn(q[None])  # warm: pages mapped, caches filled
    times: dict[str, list[float]] = {name: [] for name in fns}
    for q in queries:
        for name, fn in fns.items():
            t = time.perf_counter()
            fn(q[None])
            times[name].append((time.perf_counter() - t) * 1000)
    return {name: (float(np.percentile(t, 50)), float(np.percentile(t, 95))) for name, t in times.items()}


def build(store: Store, dim: int, kind: str, gold, queries: np.ndarray) -> dict:
    """Build `kind` (auto: the automatic choice) through faiss_index and load it as a searcher does."""
    if kind == "auto":
        os.environ.pop(faiss_index.ENV_TYPE, None)
    else:
        os.environ[faiss_index.ENV_TYPE] = kind
    t = time.perf_counter()
    faiss_index.build(store, MODEL, dim)
    build_s = time.perf_counter() - t
    os.environ.pop(faiss_index.ENV_TYPE, None)
    meta = faiss_index._read_meta(store, MODEL)
    # loaded as searchers load it (IVF lists memory-mapped, the search parameter from the meta); the
    # object stays valid after the next build replaces the file
    index = faiss_index.load_generation(store, MODEL, dim, store.generation)
    d, i = index.search(queries, K + 1)
    row = {"asked": kind, "index": index, "type": meta["type"], "params": meta.get("params", {}),
           "build_s": build_s, "recall_build": meta.get("recall_at_10"),
           "recall_held_out": faiss_index.recall_at_k((d, i), gold, None, K),
           "mb": (faiss_index.faiss_dir(store) / meta["file"]).stat().st_size / 1e6, "fallback": meta.get("fallback")}
    print(f"  {kind:>5} -> {row['type']} {row['params']} build {build_s:.1f}s recall build {row['recall_build']} "
          f"held-out {row['recall_held_out']:.4f} {row['mb']:.0f} MB" + (f" ({row['fallback']})" if row["fallback"] else ""),
          flush=True)
    return row


def measure(store: Store, dim: int, kinds: list[str], queries: np.ndarray, gold) -> dict:
    rows = {kind: build(store, dim, kind, gold, queries) for kind in kinds}
    if "hnsw" in rows and rows["auto"]["type"] != "ivf":  # the IVF row of the comparison table
        rows["ivf"] = build(store, dim, "ivf", gold, queries)
    lat = timed_interleaved({k: (lambda q, ix=r["index"]: ix.search(q, K)) for k, r in rows.items()}, queries)
    # The app leaves FAISS at its default thread count; on a shared machine an OpenMP region in a
    # single-query search waits for a core that is busy. The same queries on one thread, for comparison.
    faiss.omp_set_num_threads(1)
    lat1 = timed_interleaved({k: (lambda q, ix=rows[k]["index"]: ix.search(q, K)) for k in ("exact", "auto")}, queries)
    faiss.omp_set_num_threads(DEFAULT_THREADS)
    searcher = Searcher(store.path, model=MODEL)

    def via_searcher(index):
        def run(q):
            searcher.vector_index._index, searcher.vector_index._generation = index, store.generation  # this index for this snapshot
            searcher.search_vectors(q, K)
        return run

    slat = timed_interleaved({k: via_searcher(rows[k]["index"]) for k in ("exact", "auto")}, queries)
    for k, r in rows.items():
        r["p50"], r["p95"] = lat[k]
        r["p50_1"] = lat1.get(k, (None,))[0]
        r["search_p50"] = slat.get(k, (None,))[0]
        print(f"  {k:>5}: p50 {r['p50']:.2f} ms p95 {r['p95']:.2f} ms"
              + (f", 1 thread p50 {r['p50_1']:.2f} ms, search_vectors p50 {r['search_p50']:.2f} ms" if r["p50_1"] else ""),
              flush=True)
    for r in rows.values():
        r.pop("index", None)
    if "hnsw" in rows and "ivf" not in rows:
        rows["ivf"] = rows["auto"]  # the automatic choice was IVF
    return rows


def params_text(p: dict) -> str:
    return " ".join(f"{k}={v}" for k, v in p.items()) or "–"


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--sizes", type=int, nargs="+", default=[10_000, 50_000, 100_000, 200_000])
    ap.add_argument("--dims", type=int, nargs="+", default=[384, 768])
    ap.add_argument("--queries", type=int, default=200, help="held-out queries, timed one at a time")
    ap.add_argument("--uniform", type=int, default=100_000, help="size of the uniform-random row (0: skip)")
    ap.add_argument("--no-write", action="store_true")
    args = ap.parse_args()

    work = Path(tempfile.mkdtemp(prefix="sbsearch-ann-"))
    results = []
    t_all = time.perf_counter()
    try:
        for dim in args.dims:
            gen = Clustered(max(args.sizes), dim)
            vecs = np.vstack([gen.rows(s, min(s + 50_000, max(args.sizes))) for s in range(0, max(args.sizes), 50_000)])
            queries = gen.queries(args.queries)
            for n in sorted(args.sizes):
                print(f"N={n:,} dim={dim}", flush=True)
                store = make_store(work / f"{dim}-{n}", vecs[:n])
                gold = exact_top(queries, vecs[:n], K + 1)
                rows = measure(store, dim, ["exact", "auto", "hnsw"], queries, gold)
                results.append({"n": n, "dim": dim, "data": "clustered", **rows})
                store.close()
                shutil.rmtree(work / f"{dim}-{n}")
            del vecs
        if args.uniform:
            dim, n = min(args.dims), args.uniform
            print(f"uniform N={n:,} dim={dim}", flush=True)
            vecs = uniform(n, dim, 0)
            queries = uniform(args.queries, dim, 1)
            store = make_store(work / "uniform", vecs)
            gold = exact_top(queries, vecs, K + 1)
            rows = measure(store, dim, ["exact", "auto"], queries, gold)
            results.append({"n": n, "dim": dim, "data": "uniform", **rows})
            store.close()
    finally:
        shutil.rmtree(work, ignore_errors=True)

    cmd = " ".join(["python", "benchmarks/ann.py"] + sys.argv[1:])
    lines = [
        f"### ann.py — {now()}",
        "",
        f"`{cmd}` on {platform.processor() or platform.machine()}, {os.cpu_count()} cores, FAISS {faiss.__version__} "
        f"({faiss.omp_get_max_threads()} OpenMP threads, the default the app runs with). "
        f"EXACT_UP_TO = {faiss_index.EXACT_UP_TO:,}, recall target {faiss_index.RECALL_TARGET}. Vectors: synthetic "
        f"clustered unit vectors (see the script), the first N of one {max(args.sizes):,}-vector collection; "
        f"{args.queries} held-out queries timed one at a time after 20 warm-up queries. Total run "
        f"{time.perf_counter() - t_all:.0f} s.",
        "",
        "Automatic choice vs exact search (build time includes reading the vectors from SQLite; "
        "search_vectors = FAISS + the chunk rows from SQLite, no query encoding):",
        "",
        "| N | dim | data | chosen | parameters | build s exact / chosen | FAISS p50 ms exact / chosen | "
        "FAISS p95 ms exact / chosen | p50 speed-up | FAISS p50 ms on 1 thread exact / chosen | search_vectors p50 ms exact / chosen | "
        "recall@10 at build / held-out | file MB exact / chosen |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in results:
        e, a = r["exact"], r["auto"]
        chosen = a["type"] + (" (fallback)" if a["fallback"] else "")
        lines.append(
            f"| {r['n']:,} | {r['dim']} | {r['data']} | {chosen} | {params_text(a['params'])} | "
            f"{e['build_s']:.1f} / {a['build_s']:.1f} | {e['p50']:.2f} / {a['p50']:.2f} | {e['p95']:.2f} / {a['p95']:.2f} | "
            f"{e['p50'] / a['p50']:.1f}x | {e['p50_1']:.2f} / {a['p50_1']:.2f} | {e['search_p50']:.2f} / {a['search_p50']:.2f} | "
            f"{a['recall_build']:.3f} / {a['recall_held_out']:.3f} | {e['mb']:.0f} / {a['mb']:.0f} |")
    lines += [
        "",
        "IVF and HNSW, each forced with SBSEARCH_INDEX_TYPE and tuned to the same recall target at build:",
        "",
        "| N | dim | IVF parameters | IVF build s | IVF p50 / p95 ms | IVF recall@10 held-out | IVF MB | "
        "HNSW parameters | HNSW build s | HNSW p50 / p95 ms | HNSW recall@10 held-out | HNSW MB |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in results:
        if "hnsw" not in r:
            continue
        i, h = r["ivf"], r["hnsw"]
        cell = lambda x: (f"{params_text(x['params'])}" if x["type"] != "exact" else f"exact ({x['fallback'] or 'too few'})")  # noqa: E731
        lines.append(
            f"| {r['n']:,} | {r['dim']} | {cell(i)} | {i['build_s']:.1f} | {i['p50']:.2f} / {i['p95']:.2f} | "
            f"{i['recall_held_out']:.3f} | {i['mb']:.0f} | {cell(h)} | {h['build_s']:.1f} | {h['p50']:.2f} / {h['p95']:.2f} | "
            f"{h['recall_held_out']:.3f} | {h['mb']:.0f} |")
    publish("\n".join(lines) + "\n", write=not args.no_write)


if __name__ == "__main__":
    main()
