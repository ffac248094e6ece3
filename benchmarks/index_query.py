"""Indexing and query speed of sbsearch for the full model and MiniLM, measured in one run.

    .venv/bin/python benchmarks/index_query.py [--models full minilm] [--synthetic 100000] [--files 10000]

Prints, per model: indexing throughput on sample_docs (chunks/s), warm query latency p50/p95 on the
sample index and on a synthetic index of N chunks (random unit vectors stored like real ones, real
query encoding, real FAISS and SQLite), then the time of a no-change re-index of many small files.
Appends the table, with this command line, to docs/BENCHMARKS.md.
"""

from __future__ import annotations

import argparse
import json
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

from sbsearch.embed import make_embedder  # noqa: E402
from sbsearch.index import Indexer  # noqa: E402
from sbsearch.search import Searcher  # noqa: E402
from report import publish  # noqa: E402
from sbsearch.index.store import Store, now  # noqa: E402


def latencies(searcher: Searcher, queries: list[str], rounds: int = 2) -> tuple[float, float]:
    searcher.search_many(queries[:3], 10)  # warm-up
    times = []
    for _ in range(rounds):
        for q in queries:
            t = time.perf_counter()
            searcher.search(q, 10)
            times.append((time.perf_counter() - t) * 1000)
    return float(np.percentile(times, 50)), float(np.percentile(times, 95))


def synthetic_index(path: Path, model: str, dim: int, n: int, centres: np.ndarray | None = None) -> None:
    """n chunks of filler text across n/10 documents, with unit vectors for `model`: real chunk vectors
    (centres, e.g. of the sample index) plus noise (cosine ~0.8 to their centre), so that the
    collection is clustered like real text and real queries land in it; uniform random vectors
    would have no structure, and the index type chosen for them (exact) would not be the real one."""
    store = Store(path, create=True)
    rng = np.random.default_rng(0)
    with store.db.atomic():
        store.db["models"].insert({"name": model, "path": "", "sha256": None, "dim": dim, "layers": None,
                                   "total_layers": None, "added_at": now(), "info": "{}"})
        for d in range(n // 10):
            doc_id = store.db["documents"].insert({"path": f"/synthetic/doc{d}.txt", "root": "/synthetic",
                                                   "sha256": str(d), "status": "ok", "n_chunks": 10}).last_pk
            vecs = rng.standard_normal((10, dim)).astype(np.float32)
            if centres is not None:
                noise = vecs * np.float32(0.75 / np.sqrt(dim))  # float32: a float64 scalar would widen the array
                vecs = (centres[rng.integers(len(centres), size=10)] + noise).astype(np.float32)
            vecs /= np.linalg.norm(vecs, axis=1, keepdims=True)
            for i in range(10):
                cid = store.db["chunks"].insert({"doc_id": doc_id, "ord": i, "text": f"synthetic passage {d}-{i}",
                                                 "text_sha": f"{d}-{i}"}).last_pk
                store.db["embeddings"].insert({"chunk_id": cid, "model": model, "vector": vecs[i].tobytes()})
        store.set_meta("generation", "1")
        store.set_meta("default_model", model)
    store.close()


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--models", nargs="+", default=["full", "minilm"])
    ap.add_argument("--synthetic", type=int, default=100_000)
    ap.add_argument("--files", type=int, default=10_000)
    ap.add_argument("--no-write", action="store_true")
    args = ap.parse_args()

    work = Path(tempfile.mkdtemp(prefix="sbsearch-bench-"))
    os.environ.setdefault("SBSEARCH_CACHE", str(Path.home() / ".cache" / "sbsearch"))
    queries = [json.loads(line)["query"] for line in (REPO / "sample_docs" / "queries.jsonl").read_text().splitlines()][:40]
    rows = []
    for model in args.models:
        emb = make_embedder(model)
        idx = work / f"sample-{model}"
        t = time.perf_counter()
        ix = Indexer(idx, model)
        ix._embedder = emb  # model load is not indexing work: time the run with the model loaded
        s = ix.run([REPO / "sample_docs"])
        index_s = time.perf_counter() - t
        p50, p95 = latencies(Searcher(idx, embedder=emb), queries)
        syn = work / f"synthetic-{model}"
        t = time.perf_counter()
        centres = np.concatenate([m for _, m in Store(idx).vectors(model)])
        synthetic_index(syn, model, emb.dim, args.synthetic, centres)
        build_s = time.perf_counter() - t
        searcher = Searcher(syn, embedder=emb)
        t = time.perf_counter()
        searcher.vector_index.load()  # first load builds the FAISS file from SQLite
        faiss_build_s = time.perf_counter() - t
        from sbsearch.vectors import faiss_index

        syn_meta = faiss_index.describe(searcher.store, model) or {}
        sp50, sp95 = latencies(searcher, queries)
        rows.append({"model": model, "chunks": s.chunks_total, "index_s": index_s,
                     "chunks_per_s": s.chunks_total / index_s, "p50": p50, "p95": p95,
                     "syn_p50": sp50, "syn_p95": sp95, "syn_type": syn_meta.get("type"),
                     "syn_recall": syn_meta.get("recall_at_10"), "syn_build_s": build_s, "faiss_build_s": faiss_build_s})
        print(json.dumps(rows[-1]), flush=True)
        del emb, searcher
        shutil.rmtree(syn)

    # no-change re-index of many small files: costs a stat + hash per file, no model
    files = work / "many"
    for i in range(args.files):
        sub = files / f"d{i // 500}"
        sub.mkdir(parents=True, exist_ok=True)
        (sub / f"note{i}.txt").write_text(f"Note {i}: the meeting room {i % 40} is booked on day {i % 28}.")
    emb = make_embedder(args.models[-1])
    ix = Indexer(work / "many-idx", args.models[-1])
    ix._embedder = emb
    t = time.perf_counter()
    ix.run([files])
    first_s = time.perf_counter() - t
    t = time.perf_counter()
    again = Indexer(work / "many-idx", args.models[-1]).run([files])
    nochange_s = time.perf_counter() - t
    assert again.unchanged == args.files, again

    base = rows[0]
    lines = [
        f"### index_query.py — {now()}",
        "",
        f"`{' '.join(['python', 'benchmarks/index_query.py'] + sys.argv[1:])}` on {platform.processor() or platform.machine()}, "
        f"{os.cpu_count()} cores; sample_docs = {base['chunks']} chunks; synthetic index = {args.synthetic:,} chunks.",
        "",
        "| model | index chunks/s | sample p50 ms | sample p95 ms | synthetic p50 ms | synthetic p95 ms | synthetic index (recall@10) | chunks/s vs first | p50 vs first |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        lines.append(f"| {r['model']} | {r['chunks_per_s']:.1f} | {r['p50']:.1f} | {r['p95']:.1f} | {r['syn_p50']:.1f} | "
                     f"{r['syn_p95']:.1f} | {r['syn_type']} ({r['syn_recall']}) | {r['chunks_per_s'] / base['chunks_per_s']:.2f}x | {r['p50'] / base['p50']:.2f}x |")
    lines += ["", f"No-change re-index of {args.files:,} small files: {nochange_s:.1f} s "
              f"(first index of them with {args.models[-1]}: {first_s:.1f} s; ratio {first_s / nochange_s:.0f}x). "
              f"Building the FAISS file of the synthetic index from SQLite: "
              + ", ".join(f"{r['model']} {r['faiss_build_s']:.1f} s" for r in rows) + ".", ""]
    text = "\n".join(lines)
    publish(text, write=not args.no_write)
    shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
