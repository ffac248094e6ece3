"""Chunk size and overlap by measurement: passage length × overlap against quality, passages per
document and index time, per model, on sample_docs and StackFAQ.

    SBSEARCH_MODELS_DIR=... flock /tmp/sbsearch-bench.lock .venv/bin/python benchmarks/chunking.py \
        [--models minilm-int8 minilm-3-best-long-2ep-int8] [--tokens 128 200 256 384] [--overlaps 0 20 40]
    .venv/bin/python benchmarks/chunking.py --report    # the tables from the saved JSON, nothing measured

Sets: sample_docs (sample_docs/queries.jsonl; its `kind` subsets are kept in the JSON) and StackFAQ
(built at run time from $SBSEARCH_SHARED_DATA by benchmarks/hybrid.py's helper; nothing of it is
written into the repository).

Each model is loaded once and handed to the Indexer (Indexer(embedder=...)), so model load is not in
the index time. Each configuration builds a fresh index in a temporary folder (no vector is reused
from another configuration); the index time is the whole run (scan, read, chunk, embed, publish,
FAISS), wall and CPU seconds of this process. OCR results are cached by file hash, so an untimed
warm-up run per set fills that cache first. The machine is shared: times are reported as a ratio to
the 200/40 configuration of the same model and set, which runs first and last of its block (the
mean of the two; both are kept), the others in between in a fixed shuffled order; each configuration
is indexed --repeats times (2) back to back and its fastest run counts (load from other processes
only ever adds time). "Tokens embedded" (word pieces the model reads, headings included, at most
max_seq_length - 2 a chunk) is the load-free measure of the embedding work.

Quality: nDCG@10, MRR@10, recall@10 in vector and in hybrid mode (documents ranked at their best
chunk, as `sbsearch eval`). Both models read at most 256 word pieces (254 and [CLS], [SEP]): the
indexer caps a chunk at max_seq_length - 8 (248), so `Indexer(chunk_tokens=256)` or 384 would get
248. Requests over the cap (256, 384) are measured uncapped (the chunk settings are written into the
index before its first run, as the indexer would have written them) to show what the model's
truncation costs: the model sees only the first 254 word pieces of a longer chunk (heading
included; column "truncated"), while the lexical side indexes all of it.

Writes benchmarks/results/chunking.json (rewritten after every configuration, "complete": false
until the end); docs/BENCHMARKS.md quotes it.
"""

from __future__ import annotations

import argparse
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

REPO = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(REPO), str(REPO / "benchmarks")]

from hybrid import sample_docs_sets, stackfaq_sets  # noqa: E402
from sbsearch.embed import make_embedder  # noqa: E402
from sbsearch.index.indexer import Indexer  # noqa: E402
from sbsearch.index.store import now  # noqa: E402
from sbsearch.ingest.chunking import tokenizer_counter  # noqa: E402
from sbsearch.quality.evaluation import document_rankings  # noqa: E402
from sbsearch.quality.metrics import summarize  # noqa: E402
from sbsearch.search import Searcher  # noqa: E402

RESULTS = REPO / "benchmarks" / "results" / "chunking.json"
MODES = ("vector", "hybrid")
REF = (200, 40)  # the configuration times are divided by: the default before this measurement
METRICS = ("ndcg@10", "mrr@10", "recall@10")


def block_order(configs: list[tuple[int, int]], seed: int) -> list[tuple[int, int]]:
    """The reference first and last, the others shuffled in between (load drift falls on all)."""
    others = [c for c in configs if c != REF]
    random.Random(seed).shuffle(others)
    return [REF, *others, REF]


def build(index: Path, roots: list[Path], embedder, tokens: int, overlap: int) -> dict:
    """One fresh index run, timed; chunk statistics of the result."""
    shutil.rmtree(index, ignore_errors=True)
    wall, cpu = time.perf_counter(), time.process_time()
    ix = Indexer(index, embedder=embedder, chunk_tokens=tokens, chunk_overlap=overlap)
    limit = max(32, ix.info.max_seq_length - 8)  # the indexer's cap (Indexer._chunk_settings)
    uncapped = tokens > limit
    if uncapped:  # what _chunk_settings writes on a first run, without the cap
        tok = ix.info.path / "tokenizer.json"
        ix.store.set_meta("chunk_tokens", str(tokens))
        ix.store.set_meta("chunk_overlap", str(min(overlap, tokens // 3)))
        ix.store.set_meta("chunk_tokenizer", str(tok) if tok.exists() else "")
    summary = ix.run(roots)
    wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    store = ix.store
    tok = store.get_meta("chunk_tokenizer") or ""
    count = tokenizer_counter(tok)
    seen = ix.info.max_seq_length - 2  # [CLS] and [SEP]
    lengths = [count(f"{h}\n{t}" if h and h not in t else t) for _, t, h in store.chunk_texts_with_headings()]
    docs = sum(1 for d in store.documents().values() if d.status == "ok")
    if summary.failed:
        raise SystemExit(f"{summary.failed} files failed: {summary.failures[:3]}")
    return {"tokens_effective": int(store.get_meta("chunk_tokens")), "overlap_effective": int(store.get_meta("chunk_overlap")),
            "uncapped": uncapped, "documents": docs, "chunks": len(lengths),
            "passages_per_doc": round(len(lengths) / docs, 2),
            "mean_chunk_tokens": round(statistics.mean(lengths), 1),
            "truncated_share": round(sum(n > seen for n in lengths) / len(lengths), 3),
            "tokens_embedded": sum(min(n, seen) for n in lengths),
            "index_s": round(wall, 2), "index_cpu_s": round(cpu, 2), "ocr_pages_read": summary.ocr.get("pages_read", 0)}


def quality(index: Path, embedder, sets: dict) -> dict:
    out = {}
    for mode in MODES:
        searcher = Searcher(index, embedder=embedder, mode=mode)
        full = next(iter(sets.values()))  # the whole set; the others are subsets of it
        rankings = document_rankings(searcher, full)
        for name, qs in sets.items():
            m = summarize({q: r for q, r in rankings.items() if q in qs.queries}, qs.qrels)
            out.setdefault(name, {})[mode] = {k: round(m[k], 4) for k in METRICS}
    return out


def add_ratios(rows: list[dict]) -> None:
    for key in {(r["model"], r["set"]) for r in rows}:
        block = [r for r in rows if (r["model"], r["set"]) == key]
        refs = [r for r in block if (r["tokens"], r["overlap"]) == REF]
        if not refs:
            continue
        wall = statistics.mean(r["index_s"] for r in refs)
        cpu = statistics.mean(r["index_cpu_s"] for r in refs)
        work = refs[0]["tokens_embedded"]
        for r in block:
            r["index_ratio"] = round(r["index_s"] / wall, 2)
            r["index_cpu_ratio"] = round(r["index_cpu_s"] / cpu, 2)
            r["tokens_embedded_ratio"] = round(r["tokens_embedded"] / work, 2)


def merged(rows: list[dict]) -> list[dict]:
    """One row per model × set × configuration (the reference's two runs averaged)."""
    out: dict = {}
    for r in rows:
        k = (r["model"], r["set"], r["tokens"], r["overlap"])
        if k not in out:
            out[k] = dict(r, runs=1)
        else:
            o = out[k]
            assert o["quality"] == r["quality"], f"quality of two runs of {k} differ"
            for f in ("index_s", "index_cpu_s", "index_ratio", "index_cpu_ratio"):
                if f in r:
                    o[f] = round((o[f] * o["runs"] + r[f]) / (o["runs"] + 1), 2)
            o["runs"] += 1
    return list(out.values())


def table(rows: list[dict]) -> str:
    head = ("| model | set | tokens | overlap | passages/doc | truncated | tokens embedded × | index time × | CPU × "
            "| vector nDCG@10 | vector MRR@10 | hybrid nDCG@10 | hybrid MRR@10 |")
    lines = [head, "|" + "|".join(["---"] * 13) + "|"]
    for r in sorted(merged(rows), key=lambda r: (r["model"], r["set"], r["tokens"], r["overlap"])):
        q = r["quality"][r["set"]]
        tokens = str(r["tokens"]) if r["tokens"] == r["tokens_effective"] else f"{r['tokens']}→{r['tokens_effective']}"
        if r["uncapped"]:
            tokens += " (uncapped)"
        lines.append(f"| {r['model']} | {r['set']} | {tokens} | {r['overlap_effective']} | {r['passages_per_doc']:.2f} "
                     f"| {r['truncated_share']:.0%} | {r.get('tokens_embedded_ratio', float('nan')):.2f} "
                     f"| {r.get('index_ratio', float('nan')):.2f} "
                     f"| {r.get('index_cpu_ratio', float('nan')):.2f} "
                     f"| {q['vector']['ndcg@10']:.3f} | {q['vector']['mrr@10']:.3f} "
                     f"| {q['hybrid']['ndcg@10']:.3f} | {q['hybrid']['mrr@10']:.3f} |")
    return "\n".join(lines)


def summary_table(rows: list[dict]) -> tuple[str, list[dict]]:
    """Per configuration: nDCG@10 averaged over models × sets (hybrid, the default mode, and vector),
    passages per document and index-time ratio averaged likewise."""
    rows = merged(rows)
    configs = sorted({(r["tokens"], r["overlap"]) for r in rows})
    out = []
    for c in configs:
        rs = [r for r in rows if (r["tokens"], r["overlap"]) == c]
        out.append({"tokens": c[0], "overlap": c[1], "cells": len(rs),
                    "hybrid_ndcg": round(statistics.mean(r["quality"][r["set"]]["hybrid"]["ndcg@10"] for r in rs), 4),
                    "vector_ndcg": round(statistics.mean(r["quality"][r["set"]]["vector"]["ndcg@10"] for r in rs), 4),
                    "hybrid_mrr": round(statistics.mean(r["quality"][r["set"]]["hybrid"]["mrr@10"] for r in rs), 4),
                    "passages_per_doc": round(statistics.mean(r["passages_per_doc"] for r in rs), 2),
                    "tokens_embedded_ratio": round(statistics.mean(r.get("tokens_embedded_ratio", float("nan")) for r in rs), 2),
                    "index_ratio": round(statistics.mean(r.get("index_ratio", float("nan")) for r in rs), 2),
                    "index_cpu_ratio": round(statistics.mean(r.get("index_cpu_ratio", float("nan")) for r in rs), 2)})
    head = "| tokens | overlap | hybrid nDCG@10 | vector nDCG@10 | hybrid MRR@10 | passages/doc | tokens embedded × | index time × | CPU × |"
    lines = [head, "|" + "|".join(["---"] * 9) + "|"]
    for s in out:
        lines.append(f"| {s['tokens']} | {s['overlap']} | {s['hybrid_ndcg']:.3f} | {s['vector_ndcg']:.3f} "
                     f"| {s['hybrid_mrr']:.3f} | {s['passages_per_doc']:.2f} | {s['tokens_embedded_ratio']:.2f} | {s['index_ratio']:.2f} "
                     f"| {s['index_cpu_ratio']:.2f} |")
    return "\n".join(lines), out


def write(result: dict) -> None:
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(result, indent=1, ensure_ascii=False) + "\n")


def report() -> None:
    result = json.loads(RESULTS.read_text())
    if not result.get("complete"):
        print("(incomplete run: the tables hold what was measured so far)")
    print(f"{result['created']} · {result['machine']} · {result['command']}")
    print(table(result["rows"]))
    print()
    print(summary_table(result["rows"])[0])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--models", nargs="+", default=["minilm-int8", "minilm-3-best-long-2ep-int8"])
    ap.add_argument("--sets", nargs="+", default=["sample_docs", "stackfaq"], choices=["sample_docs", "stackfaq"])
    ap.add_argument("--tokens", nargs="+", type=int, default=[128, 200, 256, 384])
    ap.add_argument("--overlaps", nargs="+", type=int, default=[0, 20, 40])
    ap.add_argument("--repeats", type=int, default=2, help="Index runs per configuration; the fastest counts.")
    ap.add_argument("--work", type=Path, help="Folder for the temporary indexes (default: a new temp folder).")
    ap.add_argument("--report", action="store_true", help=f"Print the tables from {RESULTS.name} without measuring.")
    args = ap.parse_args()
    if args.report:
        report()
        return
    work = args.work or Path(tempfile.mkdtemp(prefix="sbsearch-chunking-"))
    work.mkdir(parents=True, exist_ok=True)
    configs = [(t, o) for t in args.tokens for o in args.overlaps]
    if REF not in configs:
        configs.append(REF)
    result = {"created": now(), "command": "benchmarks/chunking.py " + " ".join(sys.argv[1:]),
              "machine": f"{platform.machine()} · {os.cpu_count()} CPUs", "reference": list(REF),
              "complete": False, "models": {}, "rows": []}
    set_makers = {"sample_docs": sample_docs_sets, "stackfaq": lambda: stackfaq_sets(work)}
    data = {name: set_makers[name]() for name in args.sets}
    for m_i, model in enumerate(args.models):
        t = time.perf_counter()
        embedder = make_embedder(model)
        embedder.encode_query(["warm up"])
        result["models"][model] = {"load_s": round(time.perf_counter() - t, 2),
                                   "max_seq_length": embedder.info.max_seq_length}
        for s_i, (set_name, (roots, sets)) in enumerate(data.items()):
            if m_i == 0:  # untimed: fills the OCR cache, warms the file cache
                build(work / "warm-up", roots, embedder, *REF)
            for tokens, overlap in block_order(configs, seed=m_i * 10 + s_i):
                index = work / f"{model}-{set_name}-{tokens}-{overlap}"
                runs = [build(index, roots, embedder, tokens, overlap) for _ in range(args.repeats)]
                row = {"model": model, "set": set_name, "tokens": tokens, "overlap": overlap, **runs[-1],
                       "index_s": min(r["index_s"] for r in runs), "index_cpu_s": min(r["index_cpu_s"] for r in runs),
                       "index_s_runs": [r["index_s"] for r in runs]}
                row["quality"] = quality(index, embedder, sets)
                shutil.rmtree(index, ignore_errors=True)
                result["rows"].append(row)
                q = row["quality"][set_name]
                print(f"[{model} {set_name} {tokens}/{overlap}] chunks {row['chunks']} ({row['passages_per_doc']}/doc) "
                      f"index {row['index_s']} s (cpu {row['index_cpu_s']}) vector nDCG {q['vector']['ndcg@10']} "
                      f"hybrid nDCG {q['hybrid']['ndcg@10']}", flush=True)
                add_ratios(result["rows"])
                write(result)
    add_ratios(result["rows"])
    result["summary"] = summary_table(result["rows"])[1]
    result["complete"] = True
    write(result)
    shutil.rmtree(work / "warm-up", ignore_errors=True)
    print(table(result["rows"]))
    print()
    print(summary_table(result["rows"])[0])
    print(f"written {RESULTS}")


if __name__ == "__main__":
    main()
