"""How long README command 1 (`bash scripts/demo.sh`) takes on this machine, from a fresh clone:
cold (a new clone, no virtual environment, no model cache: setup converts the default model and
full-onnx, tune exports its int8 model) and warm (the same clone again: its venv and model cache
present, a new index), setup excluded,
as the demo itself counts it. The target (issue: the main job ≤ 10 minutes on 2 cores) is on the
demo's own clock, which starts after scripts/setup.sh.

    .venv/bin/python benchmarks/demo_time.py              # cold, then warm; publish
    .venv/bin/python benchmarks/demo_time.py --no-write   # print, write nothing

Each run's log is kept under --work; the time of each step is read from the demo's own
"== [N s] step" lines. Writes benchmarks/results/demo.json and appends a section to
docs/BENCHMARKS.md (report.publish). Commit your work first: the clone is of HEAD.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(REPO / "benchmarks")]

from report import publish  # noqa: E402

RESULTS = REPO / "benchmarks" / "results" / "demo.json"
STEP = re.compile(r"^== \[(\d+)s\] (.*)$")
TOOK = re.compile(r"^The demo took (\d+) s")


def run_demo(clone: Path, home: Path, log: Path) -> dict:
    """One `bash scripts/demo.sh` in `clone`, with its own sbsearch home and cache under `home`."""
    env = {**os.environ, "SBSEARCH_HOME": str(home / "home"), "SBSEARCH_CACHE": str(home / "cache"),
           "SBSEARCH_INDEX": str(clone / "indexes" / "sample_docs")}
    env.pop("SBSEARCH_MODELS_DIR", None)
    shutil.rmtree(clone / "indexes", ignore_errors=True)  # a new index each run
    t = time.perf_counter()
    with open(log, "w") as out:
        proc = subprocess.run(["bash", "scripts/demo.sh"], cwd=clone, env=env, stdout=out, stderr=subprocess.STDOUT)
    wall = time.perf_counter() - t
    text = log.read_text(errors="replace")
    steps = [(int(m.group(1)), m.group(2)) for m in map(STEP.match, text.splitlines()) if m]
    took = next((int(m.group(1)) for m in map(TOOK.match, text.splitlines()) if m), None)
    durations = []
    for i, (start, name) in enumerate(steps):
        end = steps[i + 1][0] if i + 1 < len(steps) else took
        durations.append({"step": name.split(":")[0].split(" (")[0], "seconds": None if end is None else end - start})
    return {"exit": proc.returncode, "demo_seconds": took, "wall_seconds_with_setup": round(wall, 1),
            "steps": durations, "log": str(log), "load_after": [round(x, 2) for x in os.getloadavg()],
            "tune_lines": [ln for ln in text.splitlines() if ln.startswith(("minilm-tuned", "default search model",
                                                                            "without labels", "  probe"))
                           or "not tried" in ln]}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--work", type=Path, default=Path("/tmp/sbsearch-demo-time"))
    ap.add_argument("--no-write", action="store_true")
    args = ap.parse_args()
    work = args.work
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True)
    clone = work / "clone"
    head = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=REPO, capture_output=True, text=True).stdout.strip()
    subprocess.run(["git", "clone", "-q", str(REPO), str(clone)], check=True)
    rec = {"commit": head, "machine": f"{platform.machine()}, {os.cpu_count()} cores",
           "when": time.strftime("%Y-%m-%d %H:%M"), "load_before": [round(x, 2) for x in os.getloadavg()]}
    rec["cold"] = run_demo(clone, work, work / "cold.log")
    rec["warm"] = run_demo(clone, work, work / "warm.log")
    print(json.dumps(rec, indent=1))
    if args.no_write:
        return
    RESULTS.write_text(json.dumps(rec, indent=1) + "\n")
    publish(render(rec))


def render(rec: dict) -> str:
    lines = [f"### demo_time.py — {rec['when']} (README command 1 from a fresh clone of {rec['commit']})", "",
             f"`.venv/bin/python benchmarks/demo_time.py` · {rec['machine']} · load average before "
             f"{rec['load_before'][0]:.1f}. Seconds on the demo's own clock (after setup).", "",
             "| run | exit | demo s | " + " | ".join(" ".join(s["step"].split()[:3]) for s in rec["cold"]["steps"]) + " |",
             "|---|---|---|" + "---|" * len(rec["cold"]["steps"])]
    for name in ("cold", "warm"):
        r = rec[name]
        lines.append(f"| {name} | {r['exit']} | {r['demo_seconds']} | "
                     + " | ".join(str(s["seconds"]) for s in r["steps"]) + " |")
    lines += ["", "What tune printed (warm run):", "", "```"] + rec["warm"]["tune_lines"] + ["```"]
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    main()
