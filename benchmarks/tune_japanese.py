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
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(REPO), str(REPO / "benchmarks")]

from japanese import jsquad_set, jsts_set  # noqa: E402
from tune_time import sbsearch  # noqa: E402  (the CLI in a subprocess, timed; exit 3 = nothing chosen)

RESULTS = REPO / "benchmarks" / "results" / "tune_japanese.json"
QUESTIONS = 1000


def labelled(index: Path, qs, models: list[str]) -> dict:
    from sbsearch.quality.evaluation import evaluate
    from sbsearch.search import Searcher

    return {m: {mode: round(evaluate(Searcher(index, m, mode=mode), qs)["ndcg@10"], 4) for mode in ("vector", "hybrid")}
            for m in dict.fromkeys(models)}


def run_recipe(recipe: str, work: Path, base_index: Path, qs, keep: float, env: dict, layers: str = "6",
               folder: Path | None = None, exhaustive: bool = False) -> dict:
    """One `sbsearch tune` on a copy of the index; with one layer count its candidate, else the one
    tune chose, is the row's (every candidate's estimate is kept in `candidates`). With `folder`, a
    candidate tune recovered but did not serve (its model stays in the models folder, its vectors do
    not) is embedded again (`sbsearch index -m`), with its int8 variant, and labelled too."""
    tag = recipe if layers == "6" else f"{recipe}-{layers.replace(',', '-')}"
    work.mkdir(parents=True, exist_ok=True)
    index = work / f"index-{tag}"
    shutil.rmtree(index, ignore_errors=True)
    shutil.copytree(base_index, index)
    judge = json.loads(sbsearch(["status", "-i", index, "--json"], env)[0].stdout)["default_model"]
    proc, seconds = sbsearch(["tune", "-i", index, "--layers", layers, "--keep", keep, "--recipe", recipe,
                              "--name", f"ja-{work.name}-{tag}", "--force", "--json"] + (["--exhaustive"] if exhaustive else []), env)
    out = json.loads(proc.stdout)
    cand = next((c for c in out["candidates"] if c["name"] == out["chosen"]), out["candidates"][-1])
    est = cand.get("estimate") or {}
    i8 = out.get("int8") or {}
    os.environ.update(env)
    served = out["served"]
    rejected = [c["name"] for c in out["candidates"] if c["status"] == "rejected"] if folder else []
    for name in rejected:
        for m in (name, f"{name}-int8"):
            sbsearch(["index", folder, "-i", index, "-m", m, "-q"], env)
    return {"recipe": recipe, "layers": layers, "keep": keep, "judge": judge, "seconds": round(seconds, 1),
            "train_seconds": sum(c["train_seconds"] for c in out["candidates"]), "candidate": cand["name"],
            "status": cand["status"], "estimate_pct": est.get("estimate_pct"), "interval_pct": est.get("interval_pct"),
            "passes_97": bool(est.get("interval_pct") and est["interval_pct"][0] >= 97),
            "speedup_fp32": cand.get("speedup"), "served": served,
            "pseudo_queries": out.get("pseudo_queries"), "pseudo_query_cut": "sentence",
            "candidates": [{"name": c["name"], "layers": c["layers"], "status": c["status"], "reason": c["reason"],
                            "estimate_pct": (c.get("estimate") or {}).get("estimate_pct"),
                            "agreement_pct": (c.get("estimate") or {}).get("agreement_pct"),
                            "interval_pct": (c.get("estimate") or {}).get("interval_pct"),
                            "train_seconds": c["train_seconds"]} for c in out["candidates"]],
            "int8": {k: i8.get(k) for k in ("name", "served", "why", "loss_points")},
            # a candidate not served left no vectors: only the judge and what tune chose are labelled
            "ndcg@10": labelled(index, qs, [judge] + ([cand["name"], served] if served else [])),
            "rejected_ndcg@10": labelled(index, qs, [m for n in rejected for m in (n, f"{n}-int8")]),
            "when": time.strftime("%Y-%m-%d %H:%M"), "machine": f"{platform.machine()}, {os.cpu_count()} cores"}


def render(res: dict) -> str:
    rows = list(res.get("runs", {}).values())
    if not rows:
        return ""
    first = next(r for r in rows if r.get("corpus", "jsquad") == "jsquad")
    judge, jn = first["judge"], first["ndcg@10"][first["judge"]]
    lines = ["### `sbsearch tune` on a Japanese index: the recipe, and what tune chooses (benchmarks/tune_japanese.py)", "",
             f"Index: JSQuAD valid's {res['documents']:,} paragraphs, indexed through the CLI with the model sbsearch "
             f"chose for them ({judge}: nDCG@10 of {res['questions']:,} JSQuAD questions {jn['vector']:.3f} vector, "
             f"{jn['hybrid']:.3f} hybrid); rows marked [jsts]: JSTS valid's sentences and its paraphrase questions "
             "(benchmarks/japanese.py's set). One `sbsearch tune` per row on its own copy, one after the other.", "",
             "| run | tune min (recovery) | chosen: label-free estimate [90% interval] | passes 97%? | fp32 candidate: vector / hybrid "
             "| served | served: vector / hybrid | served vector, % of the judge's |",
             "|---|---|---|---|---|---|---|---|"]
    for key, r in res["runs"].items():
        jn = r["ndcg@10"][r["judge"]]
        lo, hi = r["interval_pct"] or (None, None)
        est = f"{r['estimate_pct']:.1f}% [{lo:.1f}–{hi:.1f}]" if lo is not None else "no estimate"
        row = (f"| `{key}` | {r['seconds'] / 60:.1f} ({r['train_seconds'] / 60:.1f}) | {r['candidate']}: {est} "
               f"| {'yes' if r['passes_97'] else 'no'} | ")
        lab = r.get("rejected_ndcg@10", {})
        if not r["served"]:
            fp, i8 = lab.get(r["candidate"]), lab.get(f"{r['candidate']}-int8")
            lines.append(row + (f"{fp['vector']:.3f} / {fp['hybrid']:.3f} | nothing served (its int8) | {i8['vector']:.3f} / "
                                f"{i8['hybrid']:.3f} | {100 * i8['vector'] / jn['vector']:.1f}% |" if fp and i8
                                else "– | nothing served | – | – |"))
        else:
            c, s = r["ndcg@10"][r["candidate"]], r["ndcg@10"][r["served"]]
            lines.append(row + f"{c['vector']:.3f} / {c['hybrid']:.3f} | {r['served']} | {s['vector']:.3f} / {s['hybrid']:.3f} | "
                         f"{100 * s['vector'] / jn['vector']:.1f}% |")
        for other in r.get("candidates", []):
            if other["name"] != r["candidate"]:
                iv = other["interval_pct"]
                est = (f"{other['estimate_pct']:.1f}% [{iv[0]:.1f}–{iv[1]:.1f}]" if iv else "no estimate")
                fp, i8 = lab.get(other["name"]), lab.get(f"{other['name']}-int8")
                lines.append(f"| ↳ also tried | | {other['name']}: {est}, {other['status']} | "
                             f"{'yes' if iv and iv[0] >= 97 else 'no'} | "
                             + (f"{fp['vector']:.3f} / {fp['hybrid']:.3f} | (its int8) | {i8['vector']:.3f} / "
                                f"{i8['hybrid']:.3f} | {100 * i8['vector'] / jn['vector']:.1f}% |" if fp and i8 else "| | | |"))
    return "\n".join(lines) + "\n\n" + render_estimates(res)


def render_estimates(res: dict) -> str:
    """Every labelled candidate: its label-free estimate against its labelled share of the judge's
    vector nDCG@10 (fp32), by how the pseudo-queries were cut (runs before 2026-12-07 23:00 cut a
    Japanese paragraph whole: `paragraph`). One line per corpus, cut, recipe and layer count."""
    seen: dict[tuple, str] = {}
    for r in res.get("runs", {}).values():
        labels = {**r.get("rejected_ndcg@10", {}), **r["ndcg@10"]}
        judge = r["ndcg@10"][r["judge"]]["vector"]
        # the first runs recorded only the candidate they chose
        for c in r.get("candidates") or [{"name": r["candidate"], "layers": int(r.get("layers", 6)), "estimate_pct": r["estimate_pct"]}]:
            if c["name"] in labels and c.get("estimate_pct") is not None:
                share = 100 * labels[c["name"]]["vector"] / judge
                key = (r.get("corpus", "jsquad"), r.get("pseudo_query_cut", "paragraph"), r["recipe"], c["layers"])
                seen[key] = (f"| {key[0]} | {key[1]} | `{key[2]}` | {key[3]} | {c['estimate_pct']:.1f}% | "
                             f"{share:.1f}% | {c['estimate_pct'] - share:+.1f} |")
    lines = ["| index | pseudo-queries cut from | recipe | layers | label-free estimate | labelled share (fp32 vector) "
             "| estimate − labels |", "|---|---|---|---|---|---|---|"]
    return "\n".join(lines + [seen[k] for k in sorted(seen)]) + "\n"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--recipes", default="best,best-e5")
    ap.add_argument("--keep", type=float, default=50.0)
    ap.add_argument("--label-rejected", action="store_true",
                    help="also label the candidates tune recovered and rejected (embeds the index with each)")
    ap.add_argument("--layers", default="6", help="tune's --layers (4,6,8: what tune tries by default on e5-small)")
    ap.add_argument("--exhaustive", action="store_true", help="tune's --exhaustive: recover every layer count fully")
    ap.add_argument("--corpus", choices=("jsquad", "jsts"), default="jsquad",
                    help="the index: JSQuAD's paragraphs (1,000 questions), or JSTS valid's sentences "
                         "(benchmarks/japanese.py's paraphrase set: pairs scored >= 4)")
    ap.add_argument("--tag", default="", help="added to the result's key (to keep an earlier run's row)")
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
    if args.corpus == "jsquad":
        folder, qs, info = jsquad_set(args.work / "corpus", QUESTIONS)
    else:
        folder, qs, info = jsts_set(args.work / "corpus")
    base_index = args.work / f"index-base-{args.corpus}"
    if not (base_index / "index.db").exists():
        _, seconds = sbsearch(["index", folder, "-i", base_index, "-q"], env)
        print(f"indexed {info['documents']} {args.corpus} documents in {seconds:.0f} s", flush=True)
    if args.corpus == "jsquad":
        res.update(documents=info["documents"], questions=len(qs.queries))
    for recipe in args.recipes.split(","):
        key = recipe if (args.layers, args.keep) == ("6", 50.0) else f"{recipe} --layers {args.layers} --keep {args.keep:g}"
        key = " ".join(filter(None, [key, "--exhaustive" if args.exhaustive else "",
                                     f"[{args.corpus}]" if args.corpus != "jsquad" else "", args.tag]))
        print(f"{key} ...", flush=True)
        res["runs"][key] = run_recipe(recipe, args.work / args.corpus, base_index, qs, args.keep, env, args.layers,
                                      folder if args.label_rejected else None, args.exhaustive)
        res["runs"][key].update(corpus=args.corpus, documents=info["documents"], questions=len(qs.queries))
        print(json.dumps(res["runs"][key], indent=1), flush=True)
        if not args.no_write:
            RESULTS.write_text(json.dumps(res, indent=2, ensure_ascii=False) + "\n")
    print(render(res))


if __name__ == "__main__":
    main()
