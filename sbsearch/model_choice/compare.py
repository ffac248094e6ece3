"""A/B comparison of two models on the same chunks: quality, agreement and cost, one run.

Both models embed the same chunks of one index (chunking is fixed per index), so differences are
the models' alone. Timings of A and B are interleaved (A, B, A, B, …) so that a noisy shared
machine hurts both sides alike; peak memory is measured in a child process per model.
"""

from __future__ import annotations

import json
import statistics
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

from ..errors import SbsearchError
from ..index.indexer import Indexer
from ..index.store import IndexStore as Store, now  # either store: the protocol both implement
from ..ingest.chunking import embedding_text
from ..progress import NullProgress, Progress
from ..quality.evaluation import QuerySet, document_rankings
from ..quality.metrics import overlap_at_k, summarize
from ..search import Searcher, split_mode

QUALITY_KEYS = ["recall@1", "recall@5", "recall@10", "mrr@10", "ndcg@10"]


def _percentile(values: list[float], q: float) -> float:
    return float(np.percentile(np.asarray(values), q)) if values else float("nan")


def pseudo_queries(store: Store, limit: int = 100) -> QuerySet:
    """Unlabelled queries for agreement when the user gives none: the index's section headings."""
    queries = {f"h{i}": heading.split(" > ")[-1] for i, heading in enumerate(store.headings(limit))}
    if not queries:
        raise SbsearchError("no queries given and the index has no headings to use; pass --queries FILE")
    return QuerySet(queries, {}, "relpath", "section headings of the index")


def agreement(rank_a: dict[str, list[str]], rank_b: dict[str, list[str]], k: int = 10) -> dict:
    """How much A's ranking agrees with B's, without labels."""
    from scipy.stats import kendalltau

    overlaps, top1, taus = [], [], []
    for qid, b in rank_b.items():
        a = rank_a.get(qid, [])
        overlaps.append(overlap_at_k(a, b, k))
        top1.append(1.0 if a[:1] and a[:1] == b[:1] else 0.0)
        shared = [d for d in b[:k] if d in a[:k]]
        if len(shared) >= 3:
            tau = kendalltau([a.index(d) for d in shared], [b.index(d) for d in shared]).statistic
            if not np.isnan(tau):
                taus.append(float(tau))
    return {
        "queries": len(rank_b),
        f"overlap@{k}": statistics.fmean(overlaps) if overlaps else 0.0,
        "top1_agreement": statistics.fmean(top1) if top1 else 0.0,
        "kendall_tau": statistics.fmean(taus) if taus else None,
    }


def _disk_mb(path: Path) -> float:
    files = [p for p in Path(path).rglob("*") if p.is_file() and p.suffix in (".safetensors", ".bin", ".onnx")]
    return round(sum(p.stat().st_size for p in files) / 1e6, 1)


def _peak_rss(model: str, texts: list[str]) -> dict:
    proc = subprocess.run([sys.executable, "-m", "sbsearch.embed.memprobe", model], input="\n\x1e\n".join(texts),
                          capture_output=True, text=True, timeout=900)
    if proc.returncode != 0:
        return {"peak_rss_mb": None, "error": proc.stderr.strip().splitlines()[-1:] or ["memprobe failed"]}
    return json.loads(proc.stdout.strip().splitlines()[-1])


def measure_costs(searchers: dict[str, Searcher], queries: list[str], chunk_texts: list[str],
                  rounds: int = 3) -> dict[str, dict]:
    """Query latency p50/p95 (encode + search, one query at a time) and encode throughput on the
    index's own chunks; A and B take turns each round."""
    lat: dict[str, list[float]] = {n: [] for n in searchers}
    thr: dict[str, list[float]] = {n: [] for n in searchers}
    for s in searchers.values():  # warm-up: first calls pay for lazy initialisation
        s.search_many(queries[:2], 10)
        if s.mode != "lexical":
            s.embedder.encode(chunk_texts[:8])
    for _ in range(rounds):
        for name, s in searchers.items():
            for q in queries:
                t = time.perf_counter()
                s.search(q, 10)
                lat[name].append((time.perf_counter() - t) * 1000)
            if s.mode == "lexical":
                continue  # no model: nothing to encode
            t = time.perf_counter()
            s.embedder.encode(chunk_texts)
            thr[name].append(len(chunk_texts) / (time.perf_counter() - t))
    out = {}
    for name, s in searchers.items():
        if s.mode == "lexical":
            out[name] = {"query_ms_p50": round(_percentile(lat[name], 50), 2),
                         "query_ms_p95": round(_percentile(lat[name], 95), 2), "mode": "lexical"}
            continue
        out[name] = {
            "query_ms_p50": round(_percentile(lat[name], 50), 2),
            "query_ms_p95": round(_percentile(lat[name], 95), 2),
            "encode_chunks_per_s": round(statistics.median(thr[name]), 2),
            "parameters": s.embedder.parameter_count(),
            "disk_mb": _disk_mb(s.embedder.info.path),
            "layers": s.embedder.info.layers,
            "dim": s.dim,
        }
    return out


def compare(index_path: Path, model_a: str, model_b: str, query_set: QuerySet | None = None,
            roots: list[Path] | None = None, progress: Progress | None = None,
            latency_queries: int = 30, throughput_chunks: int = 128, measure_memory: bool = True) -> dict:
    progress = progress or NullProgress()
    if model_a == model_b:
        raise SbsearchError("--a and --b name the same model")
    for name in dict.fromkeys(split_mode(n)[0] for n in (model_a, model_b)):
        progress.message(f"making sure every chunk has a {name} vector")
        Indexer(index_path, name, progress=progress).run(list(roots or []))
    searchers = {model_a: Searcher(index_path, model_a), model_b: Searcher(index_path, model_b)}
    store = searchers[model_a].store
    qs = query_set if query_set is not None else pseudo_queries(store)
    result: dict = {"created": now(), "index": str(store.path), "a": model_a, "b": model_b,
                    "queries": {"source": qs.source, "count": len(qs.queries), "labelled": qs.labelled},
                    "chunks": store.chunk_count(),
                    "models": {model_a: {}, model_b: {}}}

    progress.message("ranking the queries with both models")
    rankings = {n: document_rankings(s, qs, 10) for n, s in searchers.items()}
    if qs.labelled:
        for n in searchers:  # evaluate()'s numbers, from the rankings just made (not ranked twice)
            result["models"][n]["quality"] = summarize(rankings[n], qs.qrels)
    result["agreement"] = agreement(rankings[model_a], rankings[model_b])

    progress.message("timing both models")
    qtexts = list(qs.queries.values())[:latency_queries]
    chunk_texts = [t for _, t in sample_chunks(store, throughput_chunks)]
    costs = measure_costs(searchers, qtexts, chunk_texts)
    for n in searchers:
        result["models"][n]["cost"] = costs[n]
    if measure_memory:
        progress.message("measuring peak memory (one process per model)")
        for n in searchers:
            if searchers[n].mode == "lexical":
                continue
            result["models"][n]["cost"].update({k: v for k, v in _peak_rss(split_mode(n)[0], chunk_texts[:64]).items()
                                                if k in ("peak_rss_mb", "load_seconds")})
    result["ratios"] = _ratios(result, model_a, model_b)
    result["headline"] = _headline(result, model_a, model_b)
    estimate = tune_estimate(store, split_mode(model_a)[0])
    if estimate is not None:
        result["tune_estimate"] = estimate
    store.add_compare(model_a, model_b, result)
    return result


def tune_estimate(store: Store, model: str) -> dict | None:
    """What `sbsearch tune` estimated for `model` without labels (its share of the judge's quality,
    with the interval), so that a labelled compare can show it beside the labelled truth. Read from
    the newest record naming the model: tune's own, or a compare that carried it on."""
    row = store.latest_compare(model)
    if row is None or row["model_a"] != model:
        return None
    result = row["result"]
    if result.get("tune_estimate"):
        return result["tune_estimate"]
    if result.get("source") == "tune" and result.get("labelfree", {}).get("estimate_pct") is not None:
        est = result["labelfree"]
        return {"estimate_pct": est["estimate_pct"], "interval_pct": est.get("interval_pct"),
                "interval_level": est.get("interval_level"), "judge": row["model_b"], "created": row["created"]}
    return None


def sample_chunks(store: Store, n: int) -> list[tuple[int, str]]:
    all_rows = [(cid, embedding_text(text, heading)) for cid, text, heading in store.chunk_texts_with_headings()]
    if len(all_rows) <= n:
        return all_rows
    step = len(all_rows) / n  # evenly spread: every document type is represented
    return [all_rows[int(i * step)] for i in range(n)]


def _ratios(result: dict, a: str, b: str) -> dict:
    ra, rb = result["models"][a], result["models"][b]
    out = {}
    for key in QUALITY_KEYS:
        qa, qb = ra.get("quality", {}).get(key), rb.get("quality", {}).get(key)
        if qa is not None and qb:
            out[f"{key} % of B"] = round(100 * qa / qb, 1)
    ca, cb = ra["cost"], rb["cost"]
    for key, better_low in [("query_ms_p50", True), ("query_ms_p95", True), ("encode_chunks_per_s", False),
                            ("peak_rss_mb", True), ("parameters", True), ("disk_mb", True)]:
        if ca.get(key) and cb.get(key):
            out[f"{key} A/B"] = round(ca[key] / cb[key], 3)
    return out


def _headline(result: dict, a: str, b: str) -> dict:
    ra, rb = result["models"][a], result["models"][b]
    head: dict = {}
    if "quality" in ra and rb["quality"].get("ndcg@10"):
        head["quality_metric"] = "nDCG@10"
        head["quality_pct"] = round(100 * ra["quality"]["ndcg@10"] / rb["quality"]["ndcg@10"], 1)
    else:
        head["quality_metric"] = "top-10 overlap"
        head["quality_pct"] = round(100 * result["agreement"]["overlap@10"], 1)
    if ra["cost"].get("encode_chunks_per_s") and rb["cost"].get("encode_chunks_per_s"):
        head["speedup"] = round(ra["cost"]["encode_chunks_per_s"] / rb["cost"]["encode_chunks_per_s"], 2)
    return head


def write_chart(result: dict, path: Path) -> Path:
    """Bars of B-relative quality and cost: one glance says what A gives up and what it buys."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    a, b = result["a"], result["b"]
    ratios = result["ratios"]
    labels, values = [], []
    for key, label in [("ndcg@10 % of B", "nDCG@10"), ("mrr@10 % of B", "MRR@10"), ("recall@5 % of B", "recall@5")]:
        if key in ratios:
            labels.append(label)
            values.append(ratios[key])
    if not labels:
        labels.append("top-10 overlap")
        values.append(100 * result["agreement"]["overlap@10"])
    for key, label, invert in [("encode_chunks_per_s A/B", "encode speed", False), ("query_ms_p50 A/B", "query speed", True),
                               ("peak_rss_mb A/B", "peak memory", False), ("disk_mb A/B", "size on disk", False)]:
        if key in ratios:
            labels.append(label)
            values.append(100 / ratios[key] if invert else 100 * ratios[key])
    fig, ax = plt.subplots(figsize=(8, 4))
    colors = ["#4c72b0"] * (len(labels) - sum(1 for lb in labels if lb in ("encode speed", "query speed", "peak memory", "size on disk")))
    colors += ["#dd8452"] * (len(labels) - len(colors))
    bars = ax.bar(labels, values, color=colors)
    ax.axhline(100, color="grey", lw=1, ls="--")
    ax.bar_label(bars, fmt="%.0f%%")
    ax.set_ylabel(f"{a} as % of {b}")
    ax.set_title(f"{a} vs {b} = 100%: quality (blue, higher is better), speed (higher is better),\n"
                 "memory and size (lower is better)", fontsize=10)
    ax.tick_params(axis="x", labelrotation=15)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path
