"""Crash trials: SIGKILL a real `sbsearch index` at random moments, check the index after each.

    .venv/bin/python benchmarks/reliability.py [--trials 50] [--model minilm]

Uses the same harness as tests/test_reliability.py (which runs 10 trials in CI). Prints the trial
counts and outcomes and appends them, with the command, to docs/BENCHMARKS.md.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(REPO), str(REPO / "tests"), str(REPO / "benchmarks")]

from crash_harness import run_trials  # noqa: E402
from report import publish  # noqa: E402
from sbsearch.index.store import now  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--trials", type=int, default=50)
    ap.add_argument("--model", default="minilm")
    ap.add_argument("--max-delay", type=float, default=12.0, help="latest kill, seconds after the start")
    ap.add_argument("--no-write", action="store_true")
    args = ap.parse_args()
    os.environ["SBSEARCH_MODEL"] = args.model
    t = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="sbsearch-crash-") as work:
        result = run_trials(Path(work), args.trials, max_delay=args.max_delay)
    minutes = (time.perf_counter() - t) / 60
    print(json.dumps(result, indent=2))
    text = (f"### reliability.py — {now()}\n\n`python benchmarks/reliability.py {' '.join(sys.argv[1:])}` "
            f"({minutes:.1f} min): {result['trials']} trials with {args.model}, {result['killed']} runs killed "
            f"by SIGKILL mid-way, {result['finished']} finished before the kill; `sbsearch check` failed after "
            f"{len(result['check_failed'])}, a query failed after {len(result['query_failed'])}; after one "
            f"more run the index {'equals' if result['equal_to_clean_build'] else 'DIFFERS from'} a clean build "
            f"({result['difference']}). Runs by status: {result['runs_by_status']}.\n")
    publish(text, write=not args.no_write)


if __name__ == "__main__":
    main()
