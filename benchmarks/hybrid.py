"""Hybrid search measured in one run: quality per model × mode, fusion variants, and the cost of the
lexical side at 100,000 chunks (latency, FTS5 size, filters that match 0.1% of the chunks).

    .venv/bin/python benchmarks/hybrid.py [--models full minilm minilm-3-best-long-2ep] [--skip-scale]
    .venv/bin/python benchmarks/hybrid.py --scale-only --chunks 100000

Quality: sample_docs/queries.jsonl (all queries, and its `kind` subsets: identifier, japanese, the
rest) and StackFAQ (built at run time from $SBSEARCH_SHARED_DATA like benchmarks/compare_models.py;
nothing of it is written into the repository). Each model indexes each set once; every mode is
then `sbsearch eval` of the same index: nDCG@10, MRR@10, recall@10.

Fusion variants (minilm, both sets): reciprocal-rank fusion (its constant k, weights of the two
rankings) against relative score fusion (vector weight 0.5-0.9), and hybrid without "identifiers
first". The rows per model × mode use the default fusion (sbsearch.search.searcher.FUSION).

Scale: a real Store of N chunks (text: sentences drawn at run time from the shared STS-B and SNLI
files, 10 chunks a document; vectors: ann.py's clustered synthetic 384-d vectors stored as
`minilm-int8`, so the query encoder is the real default model). Warm query latency one query at a
time, modes interleaved, queries from sample_docs; FTS5 size; and a --folder filter matching 0.1% of
the chunks in vector and hybrid mode: results returned, all inside the filter, and equal to the exact
top-k among the filtered chunks. Where a search's time goes: mean wall and CPU ms per mode of its
steps (query encoding, vector index, rescoring, common words, FTS5 BM25, chunk rows), and the load
average before and after the latency rounds (the machine is shared: compare ratios within a run).
--reuse-scale measures changed search code on the index an earlier run left in --work.

Writes benchmarks/results/hybrid.json; docs/BENCHMARKS.md quotes it.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import platform
import random
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(REPO), str(REPO / "benchmarks")]

from sbsearch import config  # noqa: E402
from sbsearch.index.filters import DocumentFilter  # noqa: E402
from sbsearch.index.indexer import Indexer  # noqa: E402
from sbsearch.index.store import NewChunk, NewDocument, Store, now  # noqa: E402
from sbsearch.quality.evaluation import QuerySet, beir_corpus_folder, evaluate, load_query_set  # noqa: E402
from sbsearch.search import Searcher  # noqa: E402

RESULTS = REPO / "benchmarks" / "results" / "hybrid.json"
MODES = ("vector", "lexical", "hybrid")


def subset(qs: QuerySet, ids: set[str], name: str) -> QuerySet:
    return QuerySet({q: t for q, t in qs.queries.items() if q in ids}, {q: r for q, r in qs.qrels.items() if q in ids},
                    qs.doc_id, f"{qs.source} [{name}]")


def sample_docs_kinds() -> tuple[QuerySet, dict[str, set[str]]]:
    """sample_docs' labelled questions, and their ids by kind (identifier, japanese, formats, …)."""
    path = REPO / "sample_docs" / "queries.jsonl"
    qs = load_query_set(path)
    kinds: dict[str, set[str]] = {}
    for line in path.read_text(encoding="utf-8").splitlines():
        if line.strip():
            obj = json.loads(line)
            kinds.setdefault(obj.get("kind", "other"), set()).add(str(obj["id"]))
    return qs, kinds


def sample_docs_sets() -> tuple[list[Path], dict[str, QuerySet]]:
    qs, kinds = sample_docs_kinds()
    sets = {"sample_docs": qs}
    for kind, ids in sorted(kinds.items()):
        sets[f"sample_docs:{kind}"] = subset(qs, ids, kind)
    return [REPO / "sample_docs"], sets


def stackfaq_sets(work: Path) -> tuple[list[Path], dict[str, QuerySet]]:
    from compare_models import stackfaq_beir

    beir = stackfaq_beir(work / "stackfaq-beir")
    return [beir_corpus_folder(beir, work / "stackfaq-corpus")], {"stackfaq": load_query_set(beir)}


def metrics(searcher: Searcher, qs: QuerySet) -> dict:
    m = evaluate(searcher, qs)
    return {k: round(m[k], 4) for k in ("ndcg@10", "mrr@10", "recall@10")}


def quality(models: list[str], work: Path) -> dict:
    out: dict = {"rows": [], "fusion": []}
    for name, (roots, sets) in {"sample_docs": sample_docs_sets(), "stackfaq": stackfaq_sets(work)}.items():
        index = work / f"index-{name}"
        for model in models:
            t = time.perf_counter()
            Indexer(index, model).run(roots)
            print(f"[{name}] indexed with {model} in {time.perf_counter() - t:.0f} s", flush=True)
            for mode in MODES:
                if mode == "lexical" and model != models[0]:
                    continue  # the lexical side has no model: one row per set
                searcher = Searcher(index, model, mode=mode)
                for set_name, qs in sets.items():
                    row = {"set": set_name, "queries": len(qs.queries), "model": "-" if mode == "lexical" else model,
                           "mode": mode, **metrics(searcher, qs)}
                    out["rows"].append(row)
                    print(json.dumps(row), flush=True)
        fusion_model = "minilm" if "minilm" in models else models[-1]
        variants = [{"fusion": "rrf", "rrf_k": k} for k in (10, 60)]
        variants += [{"fusion": "rrf", "weights": w} for w in ((1.0, 0.5), (0.75, 1.0))]
        variants += [{"fusion": "score", "weights": (a, round(1 - a, 2))} for a in (0.5, 0.6, 0.7, 0.8, 0.9)]
        variants += [{"identifiers_first": False}]
        for variant in variants:
            searcher = Searcher(index, fusion_model, mode="hybrid")
            searcher.fusion = variant.get("fusion", searcher.fusion)
            searcher.rrf_k = variant.get("rrf_k", searcher.rrf_k)
            searcher.fusion_weights = variant.get("weights", searcher.fusion_weights)
            searcher.identifiers_first = variant.get("identifiers_first", True)
            for set_name, qs in sets.items():
                row = {"set": set_name, "model": fusion_model, "variant": variant, **metrics(searcher, qs)}
                out["fusion"].append(row)
                print(json.dumps(row), flush=True)
    return out


# ------------------------------------------------------------------------------------------ scale

def sentence_pool() -> list[str]:
    """English sentences from the shared STS-B and SNLI files, read at run time."""
    data = config.shared_data_dir()
    pool: list[str] = []
    for name in ("stsb/sts-train.csv", "stsb/sts-dev.csv", "stsb/sts-test.csv"):
        with open(data / name, encoding="utf-8") as f:
            for row in csv.reader(f, delimiter="\t", quoting=csv.QUOTE_NONE):
                pool += [s for s in row[5:7] if s]
    with open(data / "nli" / "snli_dev_test.tsv", encoding="utf-8") as f:
        next(f)
        for line in f:
            parts = line.rstrip("\n").split("\t")
            pool += parts[1:3]
    return list(dict.fromkeys(s.strip() for s in pool if len(s.split()) >= 4))


def build_scale_index(path: Path, n_chunks: int, rare_share: float = 0.001,
                      reuse: bool = False) -> tuple[Store, np.ndarray, str]:
    from ann import Clustered

    model = "minilm-int8"
    if reuse and (path / "index.db").exists():
        store = Store(path)
        if store.chunk_count() == n_chunks and store.vector_count(model) == n_chunks:
            print(f"[scale] reusing the {n_chunks} chunks of {path}", flush=True)
            return store, None, model
        store.close()
    shutil.rmtree(path, ignore_errors=True)  # a fresh build (replacing 100k chunks costs far more)
    rng = random.Random(0)
    pool = sentence_pool()
    vecs = Clustered(n_chunks, 384, seed=0)
    store = Store(path, create=True)
    store.register_model(model, "", None, 384, 6, 6)
    n_rare_docs = max(1, int(n_chunks * rare_share) // 10)
    n_docs = n_chunks // 10
    batch_docs = 1000
    t = time.perf_counter()
    for start in range(0, n_docs, batch_docs):
        docs, by_sha = [], {}
        block = vecs.rows(start * 10, min(n_docs, start + batch_docs) * 10)
        for d in range(start, min(n_docs, start + batch_docs)):
            folder = "rare" if d < n_rare_docs else f"area-{d % 50:02d}"
            chunks = []
            for c in range(10):
                text = " ".join(rng.choice(pool) for _ in range(rng.randint(3, 6)))
                sha = f"{d}-{c}"
                chunks.append(NewChunk(text=text, text_sha=sha, start=0, end=len(text)))
                by_sha[sha] = block[(d - start) * 10 + c].astype(np.float32).tobytes()
            docs.append(NewDocument(path=f"/corpus/{folder}/doc-{d:06d}.txt", root="/corpus", sha256=str(d),
                                    mtime=1.7e9, size=1, format="txt", status="ok", chunks=chunks))
        store.publish(docs, [], {model: by_sha})
    store.checkpoint(truncate=True)  # as the end of an index run does (passively)
    print(f"[scale] {n_chunks} chunks stored in {time.perf_counter() - t:.0f} s", flush=True)
    return store, vecs.queries(1), model


def percentile(values: list[float], p: float) -> float:
    return float(np.percentile(values, p))


FTS5_ONLY = "hybrid, FTS5 bm25 always"


def interleaved_latency(searcher: Searcher, queries: list[str], rounds: int) -> dict[str, list[float]]:
    """ms of each whole search (query encoding included), per mode, modes interleaved query by
    query so that the machine's noise falls on every mode alike; the first round first. Beside the
    three modes, hybrid as it was before the lexical postings were kept in memory (FTS5's bm25()
    on every search; the store is told that nothing is kept, and keeps nothing for it)."""
    lat: dict[str, list[float]] = {m: [] for m in (*MODES, FTS5_ONLY)}
    lexical = getattr(searcher.store, "_lexical", None)
    for _ in range(rounds):
        for q in queries:
            for mode in (*MODES, FTS5_ONLY):
                if mode == FTS5_ONLY and lexical is not None:
                    lexical.answerable_from_memory = lambda phrases, state: False
                t = time.perf_counter()
                searcher.search(q, 10, mode="hybrid" if mode == FTS5_ONLY else mode)
                lat[mode].append((time.perf_counter() - t) * 1000)
                if mode == FTS5_ONLY and lexical is not None:
                    del lexical.answerable_from_memory
    return lat


# What a search spends its time on: the searcher's steps, timed where they are called
PHASES = {"encode the query": ("embedder", "encode_query"), "vector index": ("vector_index", "search"),
          "vectors rescored": (None, "_exact_scores"), "common words": (None, "_selective"),
          "FTS5 BM25": ("store", "lexical_search"), "chunk rows": ("store", "chunk_rows")}


def phases(searcher: Searcher, queries: list[str]) -> dict[str, dict[str, dict[str, float]]]:
    """Mean ms per search of each step in PHASES, and of the whole search, per mode (one round,
    modes interleaved): wall clock, and CPU time of the process (every thread: the query encoder
    runs on several), which the machine's other work moves far less. Each step is wrapped on the
    searcher's own objects for the measurement only."""
    spent: dict[str, list[float]] = {}
    originals = []
    for name, (owner, method) in PHASES.items():
        obj = getattr(searcher, owner) if owner else searcher
        originals.append((obj, method))
        setattr(obj, method, _timed(getattr(obj, method), name, spent))
    totals: dict[str, dict[str, list[float]]] = {m: {} for m in MODES}
    try:
        for q in queries:
            for mode in MODES:
                spent.clear()
                _timed(searcher.search, "whole search", spent)(q, 10, mode=mode)
                for name, (wall, cpu) in spent.items():
                    row = totals[mode].setdefault(name, [0.0, 0.0])
                    row[0] += wall / len(queries)
                    row[1] += cpu / len(queries)
    finally:
        for obj, method in originals:
            delattr(obj, method)  # the class's own method again
    return {m: {name: {"wall_ms": round(w, 2), "cpu_ms": round(c, 2)} for name, (w, c) in row.items()}
            for m, row in totals.items()}


def _timed(function, name: str, spent: dict[str, list[float]]):
    """function, adding the wall and CPU ms of each call to spent[name]."""
    def timed(*args, **kwargs):
        wall, cpu = time.perf_counter(), time.process_time()
        try:
            return function(*args, **kwargs)
        finally:
            row = spent.setdefault(name, [0.0, 0.0])
            row[0] += (time.perf_counter() - wall) * 1000
            row[1] += (time.process_time() - cpu) * 1000
    return timed


def scale(n_chunks: int, work: Path, rounds: int = 3, reuse: bool = False) -> dict:
    from sbsearch.embed import make_embedder

    store, _, model = build_scale_index(work / "scale", n_chunks, reuse=reuse)
    embedder = make_embedder(model)
    searcher = Searcher(store.path, embedder=embedder)
    queries = [json.loads(line)["query"] for line in (REPO / "sample_docs" / "queries.jsonl").read_text().splitlines()
               if line.strip()]
    queries = [q for q in queries if not any("\u3040" <= ch <= "\u9fff" for ch in q)][:60]
    t = time.perf_counter()
    searcher.search(queries[0], 10, mode="vector")  # builds the FAISS index from SQLite once
    faiss_build_s = time.perf_counter() - t
    for mode in MODES:
        searcher.search(queries[1], 10, mode=mode)
    load_before = os.getloadavg()
    lat = interleaved_latency(searcher, queries, rounds)
    latency = {m: {"p50_ms": round(percentile(v, 50), 2), "p95_ms": round(percentile(v, 95), 2)} for m, v in lat.items()}
    first = {m: percentile(v[:len(queries)], 50) for m, v in lat.items()}  # each query's first search
    ratio = {"hybrid/vector p50": round(latency["hybrid"]["p50_ms"] / latency["vector"]["p50_ms"], 2),
             "hybrid/vector p95": round(latency["hybrid"]["p95_ms"] / latency["vector"]["p95_ms"], 2),
             "hybrid/vector p50, first round": round(first["hybrid"] / first["vector"], 2)}
    later = {m: percentile(v[len(queries):], 50) for m, v in lat.items()}  # rounds 2.., postings kept
    ratio["hybrid/vector p50, rounds after the first"] = round(later["hybrid"] / later["vector"], 2)
    ratio["hybrid with FTS5 bm25 always / vector p50"] = round(latency[FTS5_ONLY]["p50_ms"] / latency["vector"]["p50_ms"], 2)
    ratio["hybrid with FTS5 bm25 always / vector p50, first round"] = round(first[FTS5_ONLY] / first["vector"], 2)
    load = {"before": [round(x, 2) for x in load_before], "after": [round(x, 2) for x in os.getloadavg()]}
    phase_ms = phases(searcher, queries)
    cpu = {m: phase_ms[m]["whole search"]["cpu_ms"] for m in MODES}
    ratio["hybrid/vector mean CPU"] = round(cpu["hybrid"] / cpu["vector"], 2)
    # a filter that matches 0.1% of the chunks
    rare = DocumentFilter.build(folders=["rare"])
    allowed = store.filtered_chunk_ids(rare)
    ids, mat = store.vectors_for_ids(model, allowed)
    filters = {"allowed_chunks": int(len(allowed)), "share": round(len(allowed) / n_chunks, 5), "checks": []}
    for q in queries[:20]:
        qv = embedder.encode_query([q])
        exact = ids[np.argsort(-(mat @ qv[0]))[:10]].tolist()
        for mode in ("vector", "hybrid"):
            t = time.perf_counter()
            res = searcher.search(q, 10, mode=mode, doc_filter=rare)
            ms = (time.perf_counter() - t) * 1000
            inside = all("/rare/" in r.path for r in res)
            row = {"mode": mode, "returned": len(res), "inside": inside, "ms": round(ms, 1)}
            if mode == "vector":
                row["equals_exact_top10"] = [r.chunk_id for r in res] == exact
            filters["checks"].append(row)
    summary = {}
    for mode in ("vector", "hybrid"):
        rows = [c for c in filters["checks"] if c["mode"] == mode]
        summary[mode] = {"queries": len(rows), "all_returned_10": all(c["returned"] == 10 for c in rows),
                         "all_inside": all(c["inside"] for c in rows),
                         "median_ms": round(statistics.median(c["ms"] for c in rows), 1)}
        if mode == "vector":
            summary[mode]["all_equal_exact"] = all(c["equals_exact_top10"] for c in rows)
    filters["summary"] = summary
    del filters["checks"]
    return {"chunks": n_chunks, "faiss": searcher.vector_index.describe(), "faiss_build_s": round(faiss_build_s, 1),
            "lexical": store.lexical_summary(), "index_db_bytes": store.disk_bytes(), "latency": latency,
            "ratio": ratio, "load_average": load, "phases_mean_ms": phase_ms, "queries": len(queries), "rounds": rounds,
            "filter_0.1pct": filters}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--models", nargs="+", default=["full", "minilm", "minilm-3-best-long-2ep"])
    ap.add_argument("--chunks", type=int, default=100_000)
    ap.add_argument("--skip-scale", action="store_true")
    ap.add_argument("--scale-only", action="store_true")
    ap.add_argument("--reuse-scale", action="store_true", help="Keep the scale index of --work when it holds "
                                                                   "--chunks chunks (a measurement of changed search code).")
    ap.add_argument("--work", type=Path, help="Folder for the indexes (kept; a second run updates them "
                                               "incrementally instead of embedding everything again).")
    args = ap.parse_args()
    work = args.work or Path(tempfile.mkdtemp(prefix="sbsearch-hybrid-"))
    work.mkdir(parents=True, exist_ok=True)
    previous = json.loads(RESULTS.read_text()) if RESULTS.exists() else {}
    # every part a run does not measure keeps its earlier numbers (each scale has its own key)
    result = {**previous, "created": now(), "command": "benchmarks/hybrid.py " + " ".join(sys.argv[1:]),
              "machine": f"{platform.machine()} · {os.cpu_count()} CPUs"}
    if not args.scale_only:
        result["quality"] = quality(args.models, work)
    if not args.skip_scale:
        key = {100_000: "scale", 1_000_000: "scale_1m"}.get(args.chunks, f"scale_{args.chunks}")
        result[key] = {**scale(args.chunks, work, reuse=args.reuse_scale),
                       "command": "benchmarks/hybrid.py " + " ".join(sys.argv[1:]), "created": now()}
        print(json.dumps(result[key], indent=1), flush=True)
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(result, indent=1, ensure_ascii=False) + "\n")
    print(f"written {RESULTS}")


if __name__ == "__main__":
    main()
