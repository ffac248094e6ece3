"""`sbsearch compare` of several models against the full model on sample_docs and on StackFAQ.

    .venv/bin/python benchmarks/compare_models.py --models mpnet-pruned-6 minilm [--datasets sample_docs stackfaq]

StackFAQ (from $SBSEARCH_SHARED_DATA/stackfaq) is turned into a BEIR folder (corpus = one document per
FAQ thread: question and answers; queries = the users' rephrasings) in a temporary directory at run
time; nothing of it is written into the repository. Every model is compared with `full` on the same
chunks of the same index, in one run. Prints a table and appends it, with the command, to
docs/BENCHMARKS.md.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(REPO), str(REPO / "benchmarks")]

from sbsearch import config  # noqa: E402
from sbsearch.model_choice.compare import compare  # noqa: E402
from sbsearch.quality.evaluation import beir_corpus_folder, load_query_set  # noqa: E402
from report import publish  # noqa: E402
from sbsearch.index.store import now  # noqa: E402


def stackfaq_beir(out: Path) -> Path:
    from pruning.data import read_stackfaq

    rs = read_stackfaq(config.shared_data_dir() / "stackfaq" / "stackExchange-FAQ.json")
    (out / "qrels").mkdir(parents=True, exist_ok=True)
    with open(out / "corpus.jsonl", "w") as f:
        for text, doc in zip(rs.passages, rs.passage_doc):
            title, _, body = text.partition("\n")
            f.write(json.dumps({"_id": doc, "title": title, "text": body}) + "\n")
    with open(out / "queries.jsonl", "w") as f:
        for qid, text in rs.queries.items():
            f.write(json.dumps({"_id": qid, "text": text}) + "\n")
    with open(out / "qrels" / "test.tsv", "w") as f:
        f.write("query-id\tcorpus-id\tscore\n")
        for qid, rel in rs.qrels.items():
            for doc, grade in rel.items():
                f.write(f"{qid}\t{doc}\t{int(grade)}\n")
    return out


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--models", nargs="+", required=True, help="models A, each compared with --b")
    ap.add_argument("--b", default="full")
    ap.add_argument("--datasets", nargs="+", default=["sample_docs", "stackfaq"])
    ap.add_argument("--no-write", action="store_true")
    args = ap.parse_args()
    work = Path(tempfile.mkdtemp(prefix="sbsearch-compare-"))
    table = []
    for ds in args.datasets:
        if ds == "sample_docs":
            roots, qs = [REPO / "sample_docs"], load_query_set(REPO / "sample_docs" / "queries.jsonl")
        elif ds == "stackfaq":
            beir = stackfaq_beir(work / "stackfaq-beir")
            roots, qs = [beir_corpus_folder(beir, work / "stackfaq-corpus")], load_query_set(beir)
        else:
            raise SystemExit(f"unknown dataset {ds}")
        index = work / f"index-{ds}"
        for model in args.models:
            r = compare(index, model, args.b, qs, roots, latency_queries=30)
            a, b = r["models"][model], r["models"][args.b]
            row = {"dataset": ds, "model": model, "b": args.b, "queries": len(qs.queries), "chunks": r["chunks"],
                   "mrr_a": a["quality"]["mrr@10"], "mrr_b": b["quality"]["mrr@10"],
                   "ndcg_a": a["quality"]["ndcg@10"], "ndcg_b": b["quality"]["ndcg@10"],
                   "r5_a": a["quality"]["recall@5"], "r5_b": b["quality"]["recall@5"],
                   "overlap": r["agreement"]["overlap@10"], "ratios": r["ratios"],
                   "layers": a["cost"]["layers"], "p50_a": a["cost"]["query_ms_p50"], "p50_b": b["cost"]["query_ms_p50"],
                   "cps_a": a["cost"]["encode_chunks_per_s"], "cps_b": b["cost"]["encode_chunks_per_s"],
                   "rss_a": a["cost"].get("peak_rss_mb"), "rss_b": b["cost"].get("peak_rss_mb"),
                   "mb_a": a["cost"]["disk_mb"], "mb_b": b["cost"]["disk_mb"]}
            table.append(row)
            print(json.dumps(row), flush=True)
    lines = [f"### compare_models.py — {now()}", "",
             f"`python benchmarks/compare_models.py {' '.join(sys.argv[1:])}` on {platform.machine()}, "
             f"{os.cpu_count()} cores. Each row: model A against B = {args.b} on the same chunks, one run.", "",
             "| dataset | A | layers | MRR@10 A / B | % | nDCG@10 A / B | % | recall@5 A / B | top-10 overlap | "
             "encode chunks/s A / B | speed | query p50 ms A / B | peak RSS MB A / B | MB on disk A / B |",
             "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|"]
    for r in table:
        lines.append(
            f"| {r['dataset']} ({r['queries']} q, {r['chunks']} chunks) | {r['model']} | {r['layers']} | "
            f"{r['mrr_a']:.3f} / {r['mrr_b']:.3f} | {100 * r['mrr_a'] / r['mrr_b']:.1f}% | "
            f"{r['ndcg_a']:.3f} / {r['ndcg_b']:.3f} | {100 * r['ndcg_a'] / r['ndcg_b']:.1f}% | "
            f"{r['r5_a']:.3f} / {r['r5_b']:.3f} | {r['overlap']:.2f} | {r['cps_a']:.1f} / {r['cps_b']:.1f} | "
            f"{r['cps_a'] / r['cps_b']:.2f}x | {r['p50_a']:.0f} / {r['p50_b']:.0f} | {r['rss_a']} / {r['rss_b']} | "
            f"{r['mb_a']} / {r['mb_b']} |")
    text = "\n".join(lines) + "\n"
    publish(text, write=not args.no_write)


if __name__ == "__main__":
    main()
