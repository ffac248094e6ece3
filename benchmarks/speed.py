"""Inference speed, memory, size and quality of models in fp32 and int8, in one run.

    .venv/bin/python benchmarks/speed.py [--models full minilm mpnet-pruned-6] [--no-write]

For each model M and its int8 variant M-int8: encode sentences/s (STS-B test sentences, batch 32),
cold query (a new `sbsearch query` process on the sample_docs index, to printed results; median of
3), warm query p50/p95 (one query at a time in a loaded process), peak RSS (child process), MB on
disk, and quality: sample_docs MRR@10 and STS-B test Spearman. Ratios are against `full` fp32.
Appends the table, with the command, to docs/BENCHMARKS.md.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(REPO), str(REPO / "benchmarks")]

from sbsearch import config  # noqa: E402
from sbsearch.model_choice.compare import _disk_mb, _peak_rss  # noqa: E402
from sbsearch.embed import make_embedder  # noqa: E402
from sbsearch.quality.evaluation import evaluate, load_query_set  # noqa: E402
from sbsearch.index import Indexer  # noqa: E402
from sbsearch.search import Searcher  # noqa: E402
from report import publish  # noqa: E402
from sbsearch.index.store import now  # noqa: E402


def sts_test() -> tuple[list[str], list[str], np.ndarray]:
    s1, s2, scores = [], [], []
    for line in (config.shared_data_dir() / "stsb" / "sts-test.csv").read_text(encoding="utf-8").splitlines():
        cols = line.split("\t")
        if len(cols) >= 7:
            scores.append(float(cols[4]))
            s1.append(cols[5])
            s2.append(cols[6])
    return s1, s2, np.asarray(scores)


def spearman(emb, s1, s2, gold) -> float:
    from scipy.stats import spearmanr

    a, b = emb.encode(s1), emb.encode(s2)
    return float(spearmanr((a * b).sum(1), gold).statistic)


def cold_query(index: Path, model: str, runs: int = 3) -> float:
    times = []
    for _ in range(runs):
        t = time.perf_counter()
        subprocess.run([sys.executable, "-m", "sbsearch", "query", "how do I claim travel expenses", "-i", str(index),
                        "-m", model, "-k", "5"], check=True, capture_output=True)
        times.append(time.perf_counter() - t)
    return statistics.median(times)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--models", nargs="+", default=["full", "minilm"])
    ap.add_argument("--sentences", type=int, default=512, help="STS-B sentences timed for encode speed")
    ap.add_argument("--no-write", action="store_true")
    args = ap.parse_args()
    s1, s2, gold = sts_test()
    timed = (s1 + s2)[: args.sentences]
    qs = load_query_set(REPO / "sample_docs" / "queries.jsonl")
    queries = list(qs.queries.values())[:40]
    work = Path(tempfile.mkdtemp(prefix="sbsearch-speed-"))
    rows = []
    for base in args.models:
        for name in (base, f"{base}-int8"):
            emb = make_embedder(name)
            emb.encode(timed[:32])  # warm-up
            t = time.perf_counter()
            emb.encode(timed)
            sps = len(timed) / (time.perf_counter() - t)
            index = work / f"idx-{name}"
            ix = Indexer(index, name)
            ix._embedder = emb
            ix.run([REPO / "sample_docs"])
            searcher = Searcher(index, embedder=emb)
            searcher.search_many(queries[:2], 10)
            lat = []
            for q in queries:
                t = time.perf_counter()
                searcher.search(q, 10)
                lat.append((time.perf_counter() - t) * 1000)
            row = {"model": name, "encode_per_s": sps, "cold_s": cold_query(index, name),
                   "warm_p50": float(np.percentile(lat, 50)), "warm_p95": float(np.percentile(lat, 95)),
                   "rss_mb": _peak_rss(name, timed[:64]).get("peak_rss_mb"), "disk_mb": _disk_mb(emb.info.path),
                   "mrr10": evaluate(searcher, qs)["mrr@10"], "stsb": spearman(emb, s1, s2, gold)}
            rows.append(row)
            print(json.dumps(row), flush=True)
            del emb, searcher, ix
    ref = next(r for r in rows if r["model"] == "full") if any(r["model"] == "full" for r in rows) else rows[0]
    lines = [f"### speed.py — {now()}", "",
             f"`python benchmarks/speed.py {' '.join(sys.argv[1:])}` on {platform.machine()}, {os.cpu_count()} cores. "
             f"Ratios against {ref['model']}; quality = sample_docs MRR@10 and STS-B test Spearman.", "",
             "| model | encode sent/s | × | cold query s | warm p50 ms | warm p95 ms | peak RSS MB | MB on disk | "
             "MRR@10 | % | STS-B ρ | % |", "|---|---|---|---|---|---|---|---|---|---|---|---|"]
    for r in rows:
        lines.append(
            f"| {r['model']} | {r['encode_per_s']:.1f} | {r['encode_per_s'] / ref['encode_per_s']:.2f}x | "
            f"{r['cold_s']:.2f} | {r['warm_p50']:.1f} | {r['warm_p95']:.1f} | {r['rss_mb']} | {r['disk_mb']} | "
            f"{r['mrr10']:.3f} | {100 * r['mrr10'] / ref['mrr10']:.1f}% | {r['stsb']:.3f} | "
            f"{100 * r['stsb'] / ref['stsb']:.1f}% |")
    text = "\n".join(lines) + "\n"
    publish(text, write=not args.no_write)


if __name__ == "__main__":
    main()
