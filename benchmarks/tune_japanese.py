"""`sbsearch tune` on a Japanese index: which recovery recipe it should use for the multilingual model.

    .venv/bin/python benchmarks/tune_japanese.py --recipes best,best-e5   # one tune run per recipe
    .venv/bin/python benchmarks/tune_japanese.py --render                 # the table from the results

The index: JSQuAD valid's 1,145 paragraphs, one file each (benchmarks/japanese.py's jsquad set, read at
run time from $SBSEARCH_SHARED_DATA; nothing of it is written into the repository), indexed through the
CLI as a user would, so its default model is the one sbsearch chooses for Japanese documents. Each
recipe tunes its own copy of that index through the CLI (`sbsearch tune --layers 6 --keep K --recipe R
--json`), timed from outside, one after the other (never two trainings at once). --keep is low by
default so that the candidate is served whatever its estimate, and both can be labelled; the table
shows whether the lower end of its interval reaches 97%, tune's default.

Then the labelled truth the estimate stands in for: nDCG@10 of 1,000 JSQuAD questions on that index,
vector and hybrid, with the judge (the index's model before tune), the fp32 candidate and the served
model. Results: benchmarks/results/tune_japanese.json, one entry per recipe (a rerun replaces it).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(REPO), str(REPO / "benchmarks")]

from japanese import jsquad_set  # noqa: E402

RESULTS = REPO / "benchmarks" / "results" / "tune_japanese.json"
QUESTIONS = 1000


def sbsearch(args: list, env: dict) -> tuple[subprocess.CompletedProcess, float]:
    t = time.perf_counter()
    proc = subprocess.run([sys.executable, "-m", "sbsearch", *map(str, args)], capture_output=True, text=True,
                          env=env)
    if proc.returncode not in (0, 3):
        raise SystemExit(f"sbsearch {' '.join(map(str, args))} failed ({proc.returncode}):\n{proc.stderr[-3000:]}")
    return proc, time.perf_counter() - t


def labelled(index: Path, qs, models: list[str]) -> dict:
    from sbsearch.quality.evaluation import evaluate
    from sbsearch.search import Searcher

    return {m: {mode: round(evaluate(Searcher(index, m, mode=mode), qs)["ndcg@10"], 4) for mode in ("vector", "hybrid")}
            for m in dict.fromkeys(models)}


def run_recipe(recipe: str, work: Path, base_index: Path, qs, keep: float, env: dict) -> dict:
    index = work / f"index-{recipe}"
    shutil.rmtree(index, ignore_errors=True)
    shutil.copytree(base_index, index)
    judge = json.loads(sbsearch(["status", "-i", index, "--json"], env)[0].stdout)["default_model"]
    proc, seconds = sbsearch(["tune", "-i", index, "--layers", "6", "--keep", keep, "--recipe", recipe,
                              "--name", f"ja-{recipe}", "--force", "--json"], env)
    out = json.loads(proc.stdout)
    cand = out["candidates"][0]
    est = cand.get("estimate") or {}
    i8 = out.get("int8") or {}
    os.environ.update(env)
    return {"recipe": recipe, "keep": keep, "judge": judge, "seconds": round(seconds, 1),
            "train_seconds": cand["train_seconds"], "candidate": cand["name"], "status": cand["status"],
            "estimate_pct": est.get("estimate_pct"), "interval_pct": est.get("interval_pct"),
            "passes_97": bool(est.get("interval_pct") and est["interval_pct"][0] >= 97),
            "speedup_fp32": cand.get("speedup"), "served": out["served"],
            "int8": {k: i8.get(k) for k in ("name", "served", "why", "loss_points")},
            "ndcg@10": labelled(index, qs, [judge, cand["name"], out["served"] or cand["name"]]),
            "when": time.strftime("%Y-%m-%d %H:%M"), "machine": f"{platform.machine()}, {os.cpu_count()} cores"}


def render(res: dict) -> str:
    rows = list(res.get("runs", {}).values())
    if not rows:
        return ""
    judge = rows[0]["judge"]
    jn = rows[0]["ndcg@10"][judge]
    lines = [f"### `sbsearch tune --layers 6` on a Japanese index: the recipe (benchmarks/tune_japanese.py)", "",
             f"Index: JSQuAD valid's {res['documents']:,} paragraphs, indexed through the CLI with the model sbsearch "
             f"chose for them ({judge}: nDCG@10 of {res['questions']:,} JSQuAD questions {jn['vector']:.3f} vector, "
             f"{jn['hybrid']:.3f} hybrid). One `sbsearch tune` per recipe on its own copy, one after the other.", "",
             "| recipe | tune min (recovery) | label-free estimate [90% interval] | passes 97%? | fp32 candidate: vector / hybrid "
             "| served | served: vector / hybrid | served vector, % of the judge's |",
             "|---|---|---|---|---|---|---|---|"]
    for r in rows:
        c, s = r["ndcg@10"][r["candidate"]], r["ndcg@10"][r["served"] or r["candidate"]]
        lo, hi = r["interval_pct"] or (None, None)
        lines.append(f"| `{r['recipe']}` | {r['seconds'] / 60:.1f} ({r['train_seconds'] / 60:.1f}) | {r['estimate_pct']:.1f}% "
                     f"[{lo:.1f}–{hi:.1f}] | {'yes' if r['passes_97'] else 'no'} | {c['vector']:.3f} / {c['hybrid']:.3f} | "
                     f"{r['served']} | {s['vector']:.3f} / {s['hybrid']:.3f} | {100 * s['vector'] / jn['vector']:.1f}% |")
    return "\n".join(lines) + "\n"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--recipes", default="best,best-e5")
    ap.add_argument("--keep", type=float, default=50.0)
    ap.add_argument("--work", type=Path, default=Path("/tmp/sbsearch-tune-japanese"))
    ap.add_argument("--render", action="store_true", help="print the table from the results, run nothing")
    ap.add_argument("--no-write", action="store_true")
    args = ap.parse_args()
    res = json.loads(RESULTS.read_text()) if RESULTS.exists() else {"runs": {}}
    if args.render:
        print(render(res))
        return
    args.work.mkdir(parents=True, exist_ok=True)
    env = {**os.environ, "PYTHONPATH": str(REPO), "SBSEARCH_HOME": str(args.work / "home"),
           "SBSEARCH_MODELS_DIR": str(args.work / "models"), "COLUMNS": "200"}
    folder, qs, info = jsquad_set(args.work / "corpus", QUESTIONS)
    base_index = args.work / "index-base"
    if not (base_index / "index.db").exists():
        _, seconds = sbsearch(["index", folder, "-i", base_index, "-q"], env)
        print(f"indexed {info['documents']} paragraphs in {seconds:.0f} s", flush=True)
    res.update(documents=info["documents"], questions=len(qs.queries))
    for recipe in args.recipes.split(","):
        print(f"tune --recipe {recipe} ...", flush=True)
        res["runs"][recipe] = run_recipe(recipe, args.work, base_index, qs, args.keep, env)
        print(json.dumps(res["runs"][recipe], indent=1), flush=True)
        if not args.no_write:
            RESULTS.write_text(json.dumps(res, indent=2, ensure_ascii=False) + "\n")
    print(render(res))


if __name__ == "__main__":
    main()
