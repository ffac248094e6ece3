"""`sbsearch tune` and `sbsearch frontier` on sample_docs, as a user runs them, checked against labels.

    .venv/bin/python benchmarks/frontier.py [--keep 97] [--layers 2,3,4] [--no-write]

1. index sample_docs with MiniLM-L6 (fp32) in a fresh index;
2. `sbsearch tune --keep K`: label-free, it cuts MiniLM-L6, distils on the index's chunks, picks the
   fastest candidate whose estimate reaches K% and makes it the default;
3. the labelled truth for every candidate (`sbsearch eval` on the judged questions of sample_docs): how far the
   label-free estimate was from the labelled share of MiniLM-L6's nDCG@10;
4. `sbsearch frontier` over MiniLM-L6, the chosen model, their int8 variants and the full model, with
   labels: the chart is written to docs/frontier_sample_docs.png (shown in the README).
Appends the tables, with this command, to docs/BENCHMARKS.md.
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
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(REPO), str(REPO / "benchmarks")]

from report import publish  # noqa: E402
from sbsearch.index.store import now  # noqa: E402

CHART = REPO / "docs" / "frontier_sample_docs.png"
QUERIES = REPO / "sample_docs" / "queries.jsonl"


def sb(*args: str, env: dict) -> str:
    proc = subprocess.run([sys.executable, "-m", "sbsearch", *args], env=env, capture_output=True, text=True)
    if proc.returncode not in (0, 3):
        raise SystemExit(f"sbsearch {' '.join(args)} failed: {proc.stderr.strip()[-2000:]}")
    return proc.stdout


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--keep", default="97")
    ap.add_argument("--layers", default="2,3,4")
    ap.add_argument("--extra-models", default="full,full-int8", help="also placed on the frontier")
    ap.add_argument("--no-write", action="store_true")
    args = ap.parse_args()
    work = Path(tempfile.mkdtemp(prefix="bench-frontier-"))
    env = {**os.environ, "SBSEARCH_INDEX": str(work / "idx"), "SBSEARCH_MODELS_DIR": str(work / "models")}
    try:
        sb("index", str(REPO / "sample_docs"), "-m", "minilm", "-q", env=env)
        tuned = json.loads(sb("tune", "--keep", args.keep, "--layers", args.layers, "--json", "-q", env=env))
        print(json.dumps(tuned), flush=True)
        ref = json.loads(sb("eval", "--queries", str(QUERIES), "-m", "minilm", "--json", "-q", env=env))
        rows = []
        for c in tuned["candidates"]:
            # a rejected candidate's vectors were dropped: embed them again to measure it with labels
            sb("index", "-m", c["name"], str(REPO / "sample_docs"), "-q", env=env)
            m = json.loads(sb("eval", "--queries", str(QUERIES), "-m", c["name"], "--json", "-q", env=env))
            rows.append((c, m))
        models = ["minilm", "minilm-int8"]
        if tuned["chosen"]:
            models += [tuned["chosen"], tuned["chosen"] + "-int8"]
        models += [m for m in args.extra_models.split(",") if m]
        front = json.loads(sb("frontier", "--models", ",".join(models), "--queries", str(QUERIES),
                              "--chart", str(CHART), "--json", "-q", env=env))
        print(json.dumps(front), flush=True)
    finally:
        shutil.rmtree(work, ignore_errors=True)

    lines = [f"### frontier.py — {now()}", "",
             f"`python benchmarks/frontier.py {' '.join(sys.argv[1:])}` on {platform.machine()}, {os.cpu_count()} "
             f"cores. `sbsearch tune --keep {args.keep} --layers {args.layers}` on a fresh sample_docs index of "
             f"MiniLM-L6, then the labelled truth ({ref['queries']} judged questions) for each candidate.", "",
             "| candidate | layers | agreement with MiniLM-L6 | label-free estimate | labelled nDCG@10 | labelled % of "
             "MiniLM-L6 | estimate − labelled | encode speed vs MiniLM-L6 | recovery min | tune's verdict |",
             "|---|---|---|---|---|---|---|---|---|---|"]
    for c, m in rows:
        share = 100 * m["ndcg@10"] / ref["ndcg@10"]
        lines.append(f"| {c['name']} | {c['layers']} | {c['estimate']['agreement_pct']:.1f}% | "
                     f"{c['estimate']['estimate_pct']:.1f}% | {m['ndcg@10']:.3f} | {share:.1f}% | "
                     f"{c['estimate']['estimate_pct'] - share:+.1f} | {c['speedup']:.2f}x | "
                     f"{c['train_seconds'] / 60:.1f} | {'chosen' if c['passed'] else 'rejected'} |")
    lines += ["", f"MiniLM-L6 itself: nDCG@10 {ref['ndcg@10']:.3f}. Tune took {tuned['seconds'] / 60:.1f} min in all.", "",
              f"`sbsearch frontier` on the same index, labelled ({front['chunks']} chunks; encode speed on the "
              "index's chunks and query latency measured in turns):", "",
              "| model | nDCG@10 | encode chunks/s | query ms p50 | MB on disk | on the frontier |", "|---|---|---|---|---|---|"]
    for name, m in sorted(front["models"].items(), key=lambda kv: -kv[1]["encode_chunks_per_s"]):
        lines.append(f"| {name} | {m['quality']:.3f} | {m['encode_chunks_per_s']:.1f} | {m['query_ms_p50']:.1f} | "
                     f"{m['disk_mb']:.1f} | {'yes' if name in front['frontier'] else ''} |")
    lines += ["", f"Chart: `docs/{CHART.name}`."]
    publish("\n".join(lines) + "\n", write=not args.no_write)


if __name__ == "__main__":
    main()
