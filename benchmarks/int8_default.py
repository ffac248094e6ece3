"""Is a model's int8 variant free? Measure it, record it, and time the out-of-the-box cold query.

    .venv/bin/python benchmarks/int8_default.py [--models minilm full] [--no-write]

For each model: labelled nDCG@10 on sample_docs and StackFAQ of the fp32 model and of its int8
ONNX export (pruning.evaluate's suites, the same code as the pruning table), written to
sbsearch/embed/int8_quality.json, which `sbsearch.embed.models.default_model()` reads: a new index uses
NAME-int8 when it loses at most 0.005 nDCG@10 on every set. Then a fresh index of sample_docs is
built the way a new user builds it (`sbsearch index sample_docs`, no model named) and a cold
`sbsearch query` (a new process, to printed results) is timed, median of 5. Appends the table
to docs/BENCHMARKS.md.
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

REPO = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(REPO), str(REPO / "benchmarks")]

from report import publish  # noqa: E402
from sbsearch.embed.models import INT8_FREE_LOSS, INT8_RECORD, default_model, int8_loss  # noqa: E402
from sbsearch.index.store import now  # noqa: E402

KEYS = ("sample_docs_ndcg10", "stackfaq_ndcg10")


def measure(name: str) -> dict:
    from pruning import evaluate as ev
    from sbsearch.embed.models import load_model
    from sbsearch.model_choice.prune_inputs import eval_data

    model, _ = load_model(name)
    m = ev.evaluate_model(model, ("stackfaq", "sample_docs", "int8"), eval_data())
    return {k: m[k] for k in m if k.endswith("ndcg10") or k.endswith("mrr10")}


def cold_queries(runs: int = 5) -> tuple[str, list[float]]:
    env = {**os.environ}
    with tempfile.TemporaryDirectory(prefix="int8-default-") as tmp:
        env["SBSEARCH_INDEX"] = str(Path(tmp) / "idx")
        cmd = [sys.executable, "-m", "sbsearch"]
        subprocess.run(cmd + ["index", str(REPO / "sample_docs"), "-q"], check=True, env=env, capture_output=True)
        status = json.loads(subprocess.run(cmd + ["status", "--json"], check=True, env=env, capture_output=True,
                                           text=True).stdout)
        times = []
        for _ in range(runs):
            t = time.perf_counter()
            subprocess.run(cmd + ["query", "how do I claim travel expenses", "-k", "5"], check=True, env=env,
                           capture_output=True)
            times.append(time.perf_counter() - t)
    return status["default_model"], times


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--models", nargs="+", default=["minilm"])
    ap.add_argument("--no-write", action="store_true")
    args = ap.parse_args()
    record = json.loads(INT8_RECORD.read_text()) if INT8_RECORD.exists() else {"models": {}}
    for name in args.models:
        record["models"][name] = {**measure(name), "measured": now()}
        print(name, json.dumps(record["models"][name]), flush=True)
    record["command"] = "python benchmarks/int8_default.py --models " + " ".join(args.models)
    record["rule"] = f"NAME-int8 is the default when it loses at most {INT8_FREE_LOSS} nDCG@10 on every set"
    if not args.no_write:
        INT8_RECORD.write_text(json.dumps(record, indent=1) + "\n")
    chosen, times = cold_queries()
    lines = [f"### int8_default.py — {now()}", "",
             f"`python benchmarks/int8_default.py {' '.join(sys.argv[1:])}` on {platform.machine()}, "
             f"{os.cpu_count()} cores. nDCG@10 of each model and its int8 export (pruning.evaluate); "
             f"a loss of at most {INT8_FREE_LOSS} on both sets makes int8 the default of new indexes.", "",
             "| model | sample_docs fp32 | int8 | StackFAQ fp32 | int8 | worst loss | default for a new index |",
             "|---|---|---|---|---|---|---|"]
    for name in args.models:
        m = record["models"][name]
        lines.append(f"| {name} | {m['sample_docs_ndcg10']:.4f} | {m['int8_sample_docs_ndcg10']:.4f} | "
                     f"{m['stackfaq_ndcg10']:.4f} | {m['int8_stackfaq_ndcg10']:.4f} | {int8_loss(name):+.4f} | "
                     f"{default_model(name)} |")
    lines += ["", f"Out of the box (`sbsearch index sample_docs`, no model named): the index was built with "
              f"**{chosen}**; cold `sbsearch query` (new process to printed results) "
              f"{statistics.median(times):.2f} s median of {len(times)} "
              f"(min {min(times):.2f}, max {max(times):.2f})."]
    publish("\n".join(lines) + "\n", write=not args.no_write)


if __name__ == "__main__":
    main()
