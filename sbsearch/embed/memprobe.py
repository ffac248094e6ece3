"""Peak memory of one model, measured in a fresh process: `python -m sbsearch.embed.memprobe MODEL`.

Peak RSS only grows within a process, so two models compared in one process would share one
number; each model gets its own child process instead. Prints one JSON object.
"""

from __future__ import annotations

import json
import sys
import time


def high_water_mb() -> float:
    """Peak resident memory of this process (VmHWM). Not getrusage's ru_maxrss: that survives
    fork+exec, so a child started by a big parent would report the parent's peak."""
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    raise RuntimeError("no VmHWM in /proc/self/status")


def probe(name: str, texts: list[str]) -> dict:
    t0 = time.perf_counter()
    from . import make_embedder

    base = high_water_mb()
    emb = make_embedder(name)
    loaded = time.perf_counter()
    emb.encode(texts)
    peak = high_water_mb()
    return {"model": name, "peak_rss_mb": round(peak, 1), "rss_before_load_mb": round(base, 1),
            "load_seconds": round(loaded - t0, 2)}


def main() -> None:
    name = sys.argv[1]
    texts = [line for line in sys.stdin.read().split("\n\x1e\n") if line.strip()] if not sys.stdin.isatty() else []
    if not texts:
        texts = ["The quarterly travel policy update explains how to book hotels and claim expenses."] * 64
    print(json.dumps(probe(name, texts)))


if __name__ == "__main__":
    main()
