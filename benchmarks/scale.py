"""The scale-out path measured against the embedded default, in one run:

    .venv/bin/python benchmarks/scale.py [--model minilm-int8] [--synthetic 100000] [--no-ray | --ray-only] [--no-write]

1. Quality: sample_docs indexed into a folder (SQLite + FAISS), migrated into PostgreSQL + pgvector
   (pgserver, a local PostgreSQL 16), nDCG@10 of the labelled queries per mode on both stores
   (PostgreSQL through its HNSW index, and exact: the same searches with index scans off).
2. Warm query p50 (vector mode, k=10) on both stores, on sample_docs and on a synthetic collection
   of N chunks (real chunk vectors plus noise, published through each store's own publish), and
   the HNSW recall@10 of pgvector against its exact ranking of the same vectors.
3. Ray: embedding throughput of the model in this process (every core, and one thread), and on a
   local Ray runtime with 1 and 2 actors (the runtime a cluster uses; each actor gets one core and
   its model runtime runs one thread).
Appends the tables, with this command line, to docs/BENCHMARKS.md (not with --no-write), and
writes every number to benchmarks/results/scale.json (always).
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

from report import publish  # noqa: E402
from sbsearch.index import Indexer  # noqa: E402
from sbsearch.index.location import open_store  # noqa: E402
from sbsearch.index.store import NewChunk, NewDocument  # noqa: E402
from sbsearch.index.migrate import migrate  # noqa: E402
from sbsearch.quality.evaluation import evaluate, load_query_set  # noqa: E402
from sbsearch.search import Searcher  # noqa: E402

MODES = ("vector", "hybrid", "lexical")


def p50_ms(searcher: Searcher, vecs: np.ndarray, rounds: int = 3) -> float:
    searcher.search_vectors(vecs[:3], 10)  # warm-up
    times = []
    for _ in range(rounds):
        for v in vecs:
            t = time.perf_counter()
            searcher.search_vectors(v[None, :], 10)
            times.append((time.perf_counter() - t) * 1000)
    return float(np.percentile(times, 50))


def synthetic(location, model: str, dim: int, n: int, centres: np.ndarray, info: dict) -> None:
    """n chunks in n/10 documents, with vectors near real chunk vectors (cosine ~0.8) and text of 3-6
    English sentences of STS-B and SNLI each (as benchmarks/hybrid.py), so that words cost what they
    cost in a real collection."""
    from hybrid import sentence_pool

    store = open_store(location, create=True)
    store.register_model(model, "", None, dim, None, None, info)
    store.set_meta("default_model", model)
    rng = np.random.default_rng(0)
    pool = sentence_pool()
    docs, vectors = [], {}
    for d in range(n // 10):
        chunks = []
        for c in range(10):
            base = centres[rng.integers(len(centres))]
            v = base + rng.standard_normal(dim).astype(np.float32) * 0.75 / np.sqrt(dim)
            v = (v / np.linalg.norm(v)).astype(np.float32)
            sha = f"{d}-{c}"
            vectors[sha] = v.tobytes()
            text = " ".join(pool[i] for i in rng.integers(len(pool), size=int(rng.integers(3, 7))))
            chunks.append(NewChunk(text=text, text_sha=sha, start=0, end=0))
        docs.append(NewDocument(path=f"/synthetic/doc{d}.txt", root="/synthetic", sha256=str(d), mtime=0.0, size=0,
                                format="txt", encoding="utf-8", status="ok", chunks=chunks))
        if len(docs) == 1000:
            store.publish(docs, [], {model: vectors})
            docs, vectors = [], {}
    if docs:
        store.publish(docs, [], {model: vectors})
    store.close()


def p50_text_ms(searchers: dict, queries: list[str], modes=("hybrid", "lexical"), rounds: int = 2) -> dict:
    """p50 ms of whole searches (the query's encoding included) per (store, mode), interleaved so
    that the machine's noise falls on each alike."""
    times: dict = {(name, mode): [] for name in searchers for mode in modes}
    for name, searcher in searchers.items():
        for mode in modes:
            searcher.search(queries[0], 10, mode=mode)  # warm-up
    for _ in range(rounds):
        for q in queries:
            for (name, mode), ts in times.items():
                t = time.perf_counter()
                searchers[name].search(q, 10, mode=mode)
                ts.append((time.perf_counter() - t) * 1000)
    return {key: float(np.percentile(ts, 50)) for key, ts in times.items()}


def hnsw_recall(pg, model: str, dim: int, queries: np.ndarray, k: int = 10) -> float:
    all_ids = np.array(sorted(pg.vector_ids(model)))
    hits = 0
    for q in queries:
        _, approx = pg.nearest(model, dim, q[None, :], k)
        _, exact = pg.nearest(model, dim, q[None, :], k, allowed=all_ids)
        hits += len(set(approx[0]) & set(exact[0]))
    return hits / (k * len(queries))


def ray_throughput(model: str, texts: list[str]) -> dict:
    """Chunks per second: in this process with every core and with one thread, and on Ray with 1
    and 2 actors of one core each (each actor's runtime runs one thread)."""
    from sbsearch.embed import make_embedder
    from sbsearch.embed.models import resolve
    from sbsearch.embed.ray_pool import RayEmbedder, connect

    info = resolve(model)
    out = {}
    for label, threads in (("local", ""), ("local 1 thread", "1")):
        os.environ["SBSEARCH_THREADS"] = threads
        local = make_embedder(info)
        local.encode(texts[:32])
        t = time.perf_counter()
        vecs = local.encode(texts)
        out[label] = len(texts) / (time.perf_counter() - t)
        if label == "local":
            ref = vecs
        del local
    os.environ.pop("SBSEARCH_THREADS")
    connect("auto", num_cpus=2)
    for actors in (1, 2):
        pool = RayEmbedder(info, "auto", actors=actors)
        pool.encode(texts[:32 * actors])  # every actor has loaded its model
        t = time.perf_counter()
        got = pool.encode(texts)
        out[f"ray x{actors}"] = len(texts) / (time.perf_counter() - t)
        out[f"max |diff| x{actors}"] = float(np.abs(got - ref).max())
        pool.close()
    return out


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--model", default="minilm-int8")
    parser.add_argument("--synthetic", type=int, default=100_000)
    parser.add_argument("--no-ray", action="store_true")
    parser.add_argument("--ray-only", action="store_true", help="only the embedding throughput (part 3)")
    parser.add_argument("--no-write", action="store_true")
    args = parser.parse_args()
    import pgserver

    work = Path(tempfile.mkdtemp(prefix="sbsearch-scale-"))
    server = pgserver.get_server(work / "pg", cleanup_mode="stop")
    import psycopg

    def database(name: str) -> str:
        with psycopg.connect(server.get_uri(), autocommit=True) as conn:
            conn.execute(f"CREATE DATABASE {name}")
        return server.get_uri(name)

    lines = [f"\n## Scale-out: PostgreSQL + pgvector beside SQLite + FAISS ({time.strftime('%Y-%m-%d')})\n",
             f"`{' '.join(['.venv/bin/python', 'benchmarks/scale.py', *sys.argv[1:]])}` · {platform.machine()}, "
             f"{os.cpu_count()} cores (shared) · model {args.model} · PostgreSQL 16 + pgvector (pgserver), local socket\n"]

    run = {"command": " ".join([".venv/bin/python", "benchmarks/scale.py", *sys.argv[1:]]),
           "date": time.strftime("%Y-%m-%d %H:%M"), "machine": f"{platform.machine()}, {os.cpu_count()} cores (shared)",
           "model": args.model}
    results: dict = {}  # "stores" (parts 1 and 2) and "ray" (part 3), each with the run that measured it
    stores = results["stores"] = {**run, "ndcg@10": {}, "vector_p50": {}} if not args.ray_only else {}
    folder, pg_url = work / "folder", database("sample")
    Indexer(folder, args.model).run([REPO / "sample_docs"])
    sqlite_store = open_store(folder)
    if not args.ray_only:
        migrate(folder, pg_url)
        qs = load_query_set(REPO / "sample_docs" / "queries.jsonl")
        lines += ["| mode | nDCG@10 SQLite + FAISS | nDCG@10 PostgreSQL (HNSW) | difference | "
                  "nDCG@10 PostgreSQL exact | difference |", "|---|---|---|---|---|---|"]
        for mode in MODES:
            a = evaluate(Searcher(folder, args.model, mode=mode), qs)["ndcg@10"]
            b = evaluate(Searcher(pg_url, args.model, mode=mode), qs)["ndcg@10"]
            exact = Searcher(pg_url, args.model, mode=mode)
            exact.vector_index.load()
            exact.store.conn.execute("SET enable_indexscan = off")  # the ORDER BY <=> becomes a full sort
            c = evaluate(exact, qs)["ndcg@10"]
            stores["ndcg@10"][mode] = {"sqlite_faiss": a, "pg_hnsw": b, "pg_exact": c}
            lines.append(f"| {mode} | {a:.4f} | {b:.4f} | {b - a:+.4f} | {c:.4f} | {c - a:+.4f} |")

        ids, centres = next(sqlite_store.vectors(args.model))
        dim = centres.shape[1]
        rng = np.random.default_rng(1)
        queries = centres[rng.choice(len(centres), 40, replace=False)]
        lines += ["", "| collection | chunks | FAISS p50 ms | pgvector p50 ms | pgvector HNSW recall@10 vs exact |",
                  "|---|---|---|---|---|"]
        pg = open_store(pg_url)
        row = {"chunks": sqlite_store.chunk_count(), "faiss_p50_ms": p50_ms(Searcher(folder, args.model), queries),
               "pg_p50_ms": p50_ms(Searcher(pg_url, args.model), queries),
               "hnsw_recall@10": hnsw_recall(pg, args.model, dim, queries)}
        stores["vector_p50"]["sample_docs"] = row
        lines.append(f"| sample_docs | {row['chunks']} | {row['faiss_p50_ms']:.2f} | {row['pg_p50_ms']:.2f} | "
                     f"{row['hnsw_recall@10']:.3f} |")
        if args.synthetic:
            n = args.synthetic
            info = {"description": "synthetic"}
            t = time.perf_counter()
            synthetic(work / "syn", args.model, dim, n, centres, info)
            sqlite_s = time.perf_counter() - t
            syn_url = database("synthetic")
            t = time.perf_counter()
            synthetic(syn_url, args.model, dim, n, centres, info)
            Searcher(syn_url, args.model).vector_index.load()  # builds the HNSW index
            pg_s = time.perf_counter() - t
            t = time.perf_counter()
            Searcher(work / "syn", args.model).vector_index.load()
            faiss_s = time.perf_counter() - t
            syn_pg = open_store(syn_url)
            row = {"chunks": n, "faiss_p50_ms": p50_ms(Searcher(work / "syn", args.model), queries),
                   "pg_p50_ms": p50_ms(Searcher(syn_url, args.model), queries),
                   "hnsw_recall@10": hnsw_recall(syn_pg, args.model, dim, queries)}
            stores["vector_p50"]["synthetic"] = row
            lines.append(f"| synthetic | {n:,} | {row['faiss_p50_ms']:.2f} | {row['pg_p50_ms']:.2f} | "
                         f"{row['hnsw_recall@10']:.3f} |")
            texts = [json.loads(line)["query"] for line in (REPO / "sample_docs" / "queries.jsonl").read_text().splitlines()
                     if line.strip()]
            texts = [q for q in texts if not any("\u3040" <= ch <= "\u9fff" for ch in q)][:60]
            sq, pq = Searcher(work / "syn", args.model), Searcher(syn_url, args.model)
            pq._embedder = sq.embedder  # one model in memory: the same encoding cost on both sides
            # first with nothing kept in memory (every search ranked by FTS5 / the BM25 statement:
            # what a question of words new to the process costs), then as a server runs
            from sbsearch.index.store.postings import POSTINGS

            budget = POSTINGS.budget
            POSTINGS.clear()
            POSTINGS.budget = 0
            try:
                t50_sql = p50_text_ms({"sqlite": sq, "pg": pq}, texts)
            finally:
                POSTINGS.budget = budget
            t50 = p50_text_ms({"sqlite": sq, "pg": pq}, texts)
            stores["text_p50_ms"] = {mode: {"sqlite_faiss": t50[("sqlite", mode)], "pg": t50[("pg", mode)]}
                                      for mode in ("hybrid", "lexical")}
            stores["text_p50_ms_nothing_kept"] = {mode: {"sqlite_faiss": t50_sql[("sqlite", mode)],
                                                         "pg": t50_sql[("pg", mode)]} for mode in ("hybrid", "lexical")}
            lines += ["", f"| synthetic, {n:,} chunks, {len(texts)} sample_docs questions | SQLite + FAISS p50 ms | "
                      "PostgreSQL p50 ms | PostgreSQL / SQLite |", "|---|---|---|---|"]
            for label, t in (("postings kept in memory", t50), ("nothing kept: FTS5 / SQL ranks every search", t50_sql)):
                lines += [f"| {mode}, {label} (query encoding included) | {t[('sqlite', mode)]:.1f} | "
                          f"{t[('pg', mode)]:.1f} | {t[('pg', mode)] / t[('sqlite', mode)]:.1f}x |"
                          for mode in ("hybrid", "lexical")]
            sizes = open_store(work / "syn").disk_bytes() / 2**20, syn_pg.disk_bytes() / 2**20
            stores["synthetic_build"] = {"sqlite_s": sqlite_s, "faiss_s": faiss_s, "pg_with_hnsw_s": pg_s,
                                          "sqlite_mb": sizes[0], "pg_mb": sizes[1]}
            lines.append(f"\nSynthetic build: SQLite {sqlite_s:.0f} s + FAISS {faiss_s:.0f} s; PostgreSQL with "
                         f"its HNSW index {pg_s:.0f} s; store size SQLite {sizes[0]:.0f} MB, PostgreSQL {sizes[1]:.0f} MB.")
    if not args.no_ray:
        texts = [t for _, t, _ in sqlite_store.chunk_texts()]
        r = ray_throughput(args.model, texts)
        results["ray"] = {**run, "chunks_per_s": r}
        lines += ["", "| embedding | cores | chunks/s | vs this process, same cores | max abs difference to local |",
                  "|---|---|---|---|---|",
                  f"| this process | 2 | {r['local']:.1f} | 1.00x | 0 |",
                  f"| this process, 1 thread | 1 | {r['local 1 thread']:.1f} | 1.00x | - |",
                  f"| Ray, 1 actor | 1 | {r['ray x1']:.1f} | {r['ray x1'] / r['local 1 thread']:.2f}x | "
                  f"{r['max |diff| x1']:.1e} |",
                  f"| Ray, 2 actors | 2 | {r['ray x2']:.1f} | {r['ray x2'] / r['local']:.2f}x | {r['max |diff| x2']:.1e} |",
                  "", f"Ray, 2 actors against 1 actor: {r['ray x2'] / r['ray x1']:.2f}x; against this process "
                  f"with 1 thread: {r['ray x2'] / r['local 1 thread']:.2f}x."]
    publish("\n".join(lines), write=not args.no_write)
    out = REPO / "benchmarks" / "results" / "scale.json"
    previous = json.loads(out.read_text()) if out.exists() else {}
    previous.update({k: v for k, v in results.items() if v})  # a --ray-only run keeps the store numbers
    previous.pop("command", None)  # the file's older, flat form
    out.write_text(json.dumps(previous, indent=2) + "\n")
    server.cleanup()
    shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
