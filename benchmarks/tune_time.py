"""How long `sbsearch tune --keep 97` takes on an index of ~2,500 chunks, what it chooses, what its
probe skips, and what it serves afterwards.

    .venv/bin/python benchmarks/tune_time.py                 # the new way (probe, int8), then publish
    .venv/bin/python benchmarks/tune_time.py --old           # also the exhaustive order, as tune was
    .venv/bin/python benchmarks/tune_time.py --no-write      # print, write nothing

Corpus (built at run time from $SBSEARCH_SHARED_DATA, nothing of it is written into the repository):
every StackFAQ answer, one document each (as benchmarks/compare_models.py builds it), plus documents
of 24 consecutive STS-B / SNLI sentences (benchmarks/hybrid.py's sentence pool: consecutive sentences
share a genre) until the index holds about --chunks chunks. It is indexed as a user would, with the
default model (minilm-int8), so tune's reference is MiniLM-L6 and the index's previous default its
int8 variant.

The new way runs through the CLI (`sbsearch tune --keep 97 --json`) and is timed from outside. The
old way (--old) is `tune(exhaustive=True)`: every candidate recovered fully, fewest layers first,
until one passes, with the probes observed at 10%, 25% and 50% of each recovery for the record (their
seconds are reported and subtracted): it measures how much a recovery gains after its probe, the
figure PROBE_HEADROOM in sbsearch/model_choice/tune.py must exceed.

After tune: a cold `sbsearch query` (a fresh process, three times, median) with whether it imported
torch; and, since StackFAQ's rephrased questions are labelled, the labelled nDCG@10 (vector mode) of
the reference, its int8 variant, the chosen model and its int8 variant on this index, so that the
estimate's interval can be set beside a labelled share.

Writes benchmarks/results/tune.json; appends a section to docs/BENCHMARKS.md (report.publish).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(REPO), str(REPO / "benchmarks")]

from report import publish  # noqa: E402

RESULTS = REPO / "benchmarks" / "results" / "tune.json"
QUERY = "how do I change the default shell"


def build_corpus(work: Path, target_chunks: int, per_doc: int = 24) -> tuple[list[Path], Path]:
    """(folders to index, the StackFAQ BEIR folder holding its labelled queries)."""
    from compare_models import stackfaq_beir
    from hybrid import sentence_pool

    from sbsearch.quality.evaluation import beir_corpus_folder

    beir = stackfaq_beir(work / "stackfaq-beir")
    faq = beir_corpus_folder(beir, work / "corpus" / "stackfaq")
    faq_docs = len(list(faq.iterdir()))
    filler = work / "corpus" / "sentences"
    shutil.rmtree(filler, ignore_errors=True)
    filler.mkdir(parents=True)
    pool = sentence_pool()
    # a document of 24 sentences (~280 words) cuts into about 2 chunks of <= 200 tokens
    n_docs = max(0, (target_chunks - faq_docs) // 2)
    for d in range(n_docs):
        part = pool[d * per_doc:(d + 1) * per_doc]
        if not part:
            break
        (filler / f"text-{d:04d}.txt").write_text(" ".join(part) + "\n", encoding="utf-8")
    return [work / "corpus"], beir


def env_for(home: Path) -> dict:
    return {**os.environ, "PYTHONPATH": str(REPO), "SBSEARCH_HOME": str(home), "COLUMNS": "200"}


def sbsearch(args: list[str], env: dict, log: Path | None = None) -> tuple[subprocess.CompletedProcess, float]:
    t = time.perf_counter()
    proc = subprocess.run([sys.executable, "-m", "sbsearch", *map(str, args)], capture_output=True, text=True,
                          env=env)
    seconds = time.perf_counter() - t
    if log is not None:
        log.write_text(proc.stderr)
    if proc.returncode not in (0, 3):
        raise SystemExit(f"sbsearch {' '.join(map(str, args))} failed ({proc.returncode}):\n{proc.stderr[-3000:]}")
    return proc, seconds


def cold_queries(index: Path, env: dict, rounds: int = 3) -> dict:
    code = ("import sys, time; t = time.perf_counter(); from sbsearch.cli import cli\n"
            "try:\n    cli(['query', '-i', sys.argv[1], sys.argv[2], '--json'])\nexcept SystemExit as e:\n"
            "    assert e.code in (0, None), e.code\n"
            "print('SECONDS', time.perf_counter() - t, 'TORCH', 'torch' in sys.modules)\n")
    inner, outer, torch = [], [], []
    for _ in range(rounds):
        t = time.perf_counter()
        proc = subprocess.run([sys.executable, "-c", code, str(index), QUERY], capture_output=True, text=True,
                              env=env)
        outer.append(time.perf_counter() - t)
        if proc.returncode != 0:
            raise SystemExit(f"cold query failed:\n{proc.stderr[-2000:]}")
        last = proc.stdout.strip().splitlines()[-1].split()
        inner.append(float(last[1]))
        torch.append(last[3] == "True")
    return {"seconds_median": round(statistics.median(outer), 2), "seconds": [round(x, 2) for x in outer],
            "in_process_seconds_median": round(statistics.median(inner), 2), "torch_imported": any(torch),
            "rounds": rounds, "query": QUERY,
            "note": "a fresh `python -c` process: interpreter start, imports, model load, one query"}


def labelled_models(judge: str, run: dict) -> list[str]:
    """The models whose labelled nDCG@10 sets tune's estimates beside the truth: the judge, every
    candidate recovered (its estimate is a share of the judge's) and the int8 variant tune built."""
    names = [judge] + [c["name"] for c in run["candidates"] if c["status"] != "skipped"]
    names += [(run.get("int8") or {}).get("name"), run.get("served")]
    return list(dict.fromkeys(n for n in names if n))


def labelled(index: Path, roots: list[Path], beir: Path, models: list[str], home: Path) -> dict:
    """Labelled nDCG@10 of each model (vector mode) for StackFAQ's queries on this index; a model
    the index holds no vectors of (a rejected candidate) embeds it first (`sbsearch index -m`)."""
    for m in models:
        sbsearch(["index", *roots, "-i", index, "-m", m, "-q"], env_for(home))  # vectors exist: no-op
    os.environ["SBSEARCH_HOME"] = str(home)
    from sbsearch.quality.evaluation import evaluate, load_query_set
    from sbsearch.search import Searcher

    qs = load_query_set(beir)
    out = {}
    for m in models:
        out[m] = round(evaluate(Searcher(index, m, mode="vector"), qs)["ndcg@10"], 4)
    return {"queries": len(qs.queries), "ndcg@10": out}


def summary(run: dict) -> dict:
    """The parts of a tune result the record keeps in its table."""
    def cand(c: dict) -> dict:
        est = c.get("estimate") or {}
        return {"name": c["name"], "layers": c["layers"], "status": c["status"], "reason": c["reason"],
                "estimate_pct": est.get("estimate_pct"), "interval_pct": est.get("interval_pct"),
                "train_seconds": c["train_seconds"], "speedup_fp32": c.get("speedup"),
                "probes": [{"fraction": p["fraction"], "estimate_pct": p["estimate"]["estimate_pct"],
                            "interval_pct": p["estimate"].get("interval_pct"), "seconds": p["seconds"],
                            "chunks": p["chunks"], "queries": p["queries"]} for p in c.get("probes", [])]}
    i8 = run.get("int8") or {}
    return {"chosen": run["chosen"], "served": run["served"], "speedup": run["speedup"],
            "speedup_against": run["speedup_against"], "seconds": run["seconds"], "timings": run["timings"],
            "candidates": [cand(c) for c in run["candidates"]],
            "skipped": [c["name"] for c in run["candidates"] if c["status"] == "skipped"],
            "int8": {k: i8.get(k) for k in ("name", "served", "why", "loss_points", "speedup", "speedup_against")}
            | {"estimate_pct": (i8.get("estimate") or {}).get("estimate_pct"),
               "interval_pct": (i8.get("estimate") or {}).get("interval_pct")}}


def headroom_points(run: dict) -> list[dict]:
    """For each fully recovered candidate: its final estimate minus each probe's (upper ends too)."""
    out = []
    for c in run["candidates"]:
        est = c.get("estimate") or {}
        if est.get("estimate_pct") is None:
            continue
        for p in c.get("probes", []):
            pe = p["estimate"]
            out.append({"candidate": c["name"], "fraction": p["fraction"],
                        "gain_points": round(est["estimate_pct"] - pe["estimate_pct"], 1),
                        "upper_gain_points": round(est["interval_pct"][1] - pe["interval_pct"][1], 1)})
    return out


def markdown(rec: dict) -> str:
    new = rec["new"]

    def row(label: str, run: dict) -> str:
        cands = "; ".join(
            f"{c['layers']}: " + (f"skipped after {c['train_seconds'] / 60:.1f} min (probe {c['probes'][0]['estimate_pct']:.1f}%, "
                                  f"upper end {c['probes'][0]['interval_pct'][1]:.1f}%)" if c["status"] == "skipped"
                                  else f"{c['estimate_pct']:.1f}% [{c['interval_pct'][0]:.1f}–{c['interval_pct'][1]:.1f}] "
                                       f"{c['status']}, recovered in {c['train_seconds'] / 60:.1f} min")
            for c in run["candidates"])
        return (f"| {label} | {run['seconds'] / 60:.1f} | {run['chosen'] or '–'} | {run['served'] or '–'} | {cands} |")

    lines = [f"### `sbsearch tune --keep 97` on {rec['chunks']:,} chunks (benchmarks/tune_time.py, {rec['when']})", "",
             f"Index: {rec['documents']:,} documents, {rec['chunks']:,} chunks (every StackFAQ answer, plus documents "
             "of 24 consecutive STS-B/SNLI sentences, read at run time from the shared data), indexed with the default "
             f"model ({rec['index_default']}, " + (f"{rec['index_seconds']:.0f} s" if rec.get("index_seconds") else
                                                  "indexed by an earlier run in the same work folder") + "). Judge: the index's own model, from its stored vectors; "
             "teacher: its fp32 form (MiniLM-L6). A candidate passes "
             "when the lower end of its estimate's 90% interval (bootstrap over the 200 pseudo-queries, 1,000 "
             f"resamples) reaches 97%. Machine: {rec['machine']}.", "",
             f"| run | minutes | chosen | served (default) | candidates: est. % of {rec['index_default']} [90% interval] |",
             "|---|---|---|---|---|", row("bisecting the layer counts, probe at 25%, int8", new)]
    if rec.get("old"):
        old = rec["old"]
        lines.append(row(f"old: exhaustive order (probes observed: {old['probe_seconds'] / 60:.1f} min, "
                         "subtracted)", {**old, "seconds": old["seconds"] - old["probe_seconds"]}))
    i8 = new["int8"]
    lines += [""] if i8.get("name") or i8.get("why") else ["", "int8: not tried (no candidate chosen)."]
    lines += [] if not (i8.get("name") or i8.get("why")) else [f"int8: {i8['name']} estimated {i8['estimate_pct']}% [{i8['interval_pct'][0]}–{i8['interval_pct'][1]}], "
              f"{i8['why']}; " + (f"served, {new['speedup']:.2f}x {new['speedup_against']}'s encode speed."
                                  if i8["served"] else "not served.") if i8.get("estimate_pct") is not None else
              f"int8: {i8.get('why')}"]
    gains = [f"{c['layers']} layers {c['probes'][0]['interval_pct'][1]:.1f} → {c['interval_pct'][1]:.1f} "
             f"({c['interval_pct'][1] - c['probes'][0]['interval_pct'][1]:+.1f})"
             for c in new["candidates"] if c["status"] != "skipped" and c["probes"]]
    if gains:
        lines.append("Probe at 25% → finished model, upper ends of the interval: " + "; ".join(gains)
                     + f" points (PROBE_HEADROOM, the most a skipped candidate is assumed to gain: {rec['probe_headroom']:g}).")
    for c in new["candidates"]:
        if c["status"] == "skipped":
            lines.append(f"Skipped: {c['name']}, {c['reason']}.")
    if rec.get("note"):
        lines.append(rec["note"])
    t = new["timings"]
    lines.append("Time by phase (s): " + ", ".join(f"{k} {v:.0f}" for k, v in t.items()) + ".")
    cq = rec["cold_query"]
    lines.append(f"Cold `sbsearch query` after tune (a fresh process, median of {cq['rounds']}): "
                 f"{cq['seconds_median']:.2f} s, torch imported: {'yes' if cq['torch_imported'] else 'no'} "
                 f"(before tune, with {rec['index_default']}: {rec['cold_query_before']['seconds_median']:.2f} s).")
    lab = rec.get("labelled")
    if lab:
        judge = rec["index_default"]
        ref = lab["ndcg@10"].get(judge)
        parts = [f"{m} {v:.3f}" + (f" ({100 * v / ref:.1f}% of {judge})" if ref and m != judge else "")
                 for m, v in lab["ndcg@10"].items()]
        lines.append(f"Labelled nDCG@10 on this index ({lab['queries']} StackFAQ queries, vector mode): " + ", ".join(parts)
                     + ". " + rec.get("labelled_note", ""))
    if rec.get("headroom"):
        gains = [h["upper_gain_points"] for h in rec["headroom"] if h["fraction"] == 0.25]
        lines.append(f"Gain after the 25% probe (final upper end − probe upper end), exhaustive run: "
                     f"{', '.join(f'{g:+.1f}' for g in gains)} points; PROBE_HEADROOM is {rec['probe_headroom']:g}.")
    also = rec.get("also")
    if also:
        lines += ["", f"The int8 path (--keep 97 chose nothing here): `{also['command']}` on a copy of the index "
                  f"above, whose MiniLM-L6 reference vectors were already built ({rec.get('when_also', '')}):", "",
                  "| run | minutes | chosen | served (default) | candidates: est. % of MiniLM-L6 [90% interval] |",
                  "|---|---|---|---|---|", row(f"--keep {also['keep']:g} --layers {also['layers']}", also)]
        a8 = also["int8"]
        if a8.get("estimate_pct") is not None:
            lines.append(f"int8: {a8['name']} estimated {a8['estimate_pct']}% [{a8['interval_pct'][0]}–"
                         f"{a8['interval_pct'][1]}], {a8['why']}; "
                         + (f"served, {also['speedup']:.2f}x {also['speedup_against']}'s encode speed (the fp32 "
                            f"candidate: {also['candidates'][-1]['speedup_fp32']:.2f}x minilm's)."
                            if a8["served"] else "not served."))
        lines.append("Time by phase (s): " + ", ".join(f"{k} {v:.0f}" for k, v in also["timings"].items()) + ".")
        cq = also["cold_query"]
        lines.append(f"Cold `sbsearch query` after it (median of {cq['rounds']}): {cq['seconds_median']:.2f} s, torch "
                     f"imported: {'yes' if cq['torch_imported'] else 'no'}.")
        lab = also["labelled"]["ndcg@10"]
        ref = lab.get("minilm")
        lines.append("Labelled nDCG@10 (StackFAQ queries on this index, vector mode): " + ", ".join(
            f"{m} {v:.3f}" + (f" ({100 * v / ref:.1f}% of minilm)" if ref and m != "minilm" else "")
            for m, v in lab.items()) + ".")
    chk = rec.get("int8_check")
    if chk:
        lines.append(chk["text"])
    lines += ["", "Command: `" + rec["command"] + "`" + (f"; then `.venv/bin/python benchmarks/tune_time.py --also "
                                                        f"{also['keep']:g}:{also['layers']}`" if also else "")]
    return "\n".join(lines) + "\n"


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--work", type=Path, default=Path("/tmp/sbsearch-tune-time"))
    ap.add_argument("--chunks", type=int, default=2500)
    ap.add_argument("--keep", type=float, default=97.0)
    ap.add_argument("--old", action="store_true", help="also the exhaustive order (as tune was)")
    ap.add_argument("--skip-new", action="store_true", help="only --old, merged into the existing record")
    ap.add_argument("--also", default="",
                    help="KEEP:LAYERS, e.g. 94:4: one more tune run, on a copy of the new run's index (its "
                         "reference vectors already built), merged into the existing record as `also`: the "
                         "path that serves an int8 model when --keep 97 chooses nothing")
    ap.add_argument("--after-tune", action="store_true",
                    help="keep the work folder's tune run (tune-new.json); measure only what follows it")
    ap.add_argument("--no-write", action="store_true")
    ap.add_argument("--child-old", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child_old:
        child_old(json.loads(args.child_old))
        return
    from sbsearch.model_choice.tune import PROBE_HEADROOM

    work = args.work
    work.mkdir(parents=True, exist_ok=True)
    roots, beir = build_corpus(work, args.chunks)
    base = work / "index-base"
    home = work / "home-base"
    # --also and --skip-new add to the recorded run; a new run starts a new record (what an earlier one
    # measured with another tune stays in docs/BENCHMARKS.md)
    rec: dict = json.loads(RESULTS.read_text()) if RESULTS.exists() and (args.also or args.skip_new) else {}
    if args.also:
        also_run(rec, args.also, work, beir, roots)
        rec["when_also"] = time.strftime("%Y-%m-%d %H:%M")
        finish(rec, args)
        return
    if not (base / "index.db").exists():
        shutil.rmtree(base, ignore_errors=True)
        _, secs = sbsearch(["index", *roots, "-i", base, "-q"], env_for(home))
        rec["index_seconds"] = round(secs, 1)
    status = json.loads(sbsearch(["status", "-i", base, "--json"], env_for(home))[0].stdout)
    rec.update({"chunks": status["chunks"], "documents": status.get("documents") or status.get("files"),
                "index_default": status["default_model"], "keep": args.keep, "probe_headroom": PROBE_HEADROOM,
                "machine": f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores (shared with "
                           "other developers' jobs; times are wall clock)"})
    rec.setdefault("index_seconds", None)
    if not args.skip_new:
        rec["cold_query_before"] = cold_queries(base, env_for(home))
        index = work / "index-new"
        nhome = work / "home-new"
        if args.after_tune:  # the tune run of this work folder, kept: measure what follows it
            rec["new"] = json.loads((work / "tune-new.json").read_text())
        else:
            shutil.rmtree(index, ignore_errors=True)
            shutil.copytree(base, index)
            shutil.rmtree(nhome, ignore_errors=True)
            proc, secs = sbsearch(["tune", "-i", index, "--keep", args.keep, "--json", "-q"], env_for(nhome),
                                  log=work / "tune-new.log")
            rec["new"] = summary(json.loads(proc.stdout)) | {"wall_seconds": round(secs, 1)}
            (work / "tune-new.json").write_text(json.dumps(rec["new"], indent=1))
        print(json.dumps(rec["new"], indent=1), flush=True)
        rec["cold_query"] = cold_queries(index, env_for(nhome))
        rec["labelled"] = labelled(index, roots, beir, labelled_models(rec["index_default"], rec["new"]), nhome)
        rec["labelled_note"] = ("The estimate's interval covers the draw of pseudo-queries from the whole index; "
                                "the labelled share is measured on the StackFAQ part only (1,249 queries), so the two "
                                "need not agree.")
    if args.old:
        index = work / "index-old"
        shutil.rmtree(index, ignore_errors=True)
        shutil.copytree(base, index)
        ohome = work / "home-old"
        shutil.rmtree(ohome, ignore_errors=True)
        t = time.perf_counter()
        proc = subprocess.run([sys.executable, __file__, "--child-old",
                               json.dumps({"index": str(index), "home": str(ohome), "keep": args.keep})],
                              capture_output=True, text=True, env=env_for(ohome))
        (work / "tune-old.log").write_text(proc.stderr)
        if proc.returncode != 0:
            raise SystemExit(f"old way failed:\n{proc.stderr[-3000:]}")
        run = json.loads(proc.stdout.strip().splitlines()[-1])
        rec["old"] = summary(run) | {"wall_seconds": round(time.perf_counter() - t, 1),
                                     "probe_seconds": run["timings"].get("probes", 0.0)}
        rec["headroom"] = headroom_points(run)
    rec["when"] = time.strftime("%Y-%m-%d %H:%M")
    rec["command"] = ".venv/bin/python benchmarks/tune_time.py" + (" --old" if args.old else "")
    finish(rec, args)


def also_run(rec: dict, spec: str, work: Path, beir: Path, roots: list[Path]) -> None:
    keep, _, layers = spec.partition(":")
    src = work / "index-new"
    index = work / "index-also"
    shutil.rmtree(index, ignore_errors=True)
    shutil.copytree(src, index)
    home = work / "home-also"
    shutil.rmtree(home, ignore_errors=True)
    args = ["tune", "-i", index, "--keep", keep, "--json", "-q"] + (["--layers", layers] if layers else [])
    proc, secs = sbsearch(args, env_for(home), log=work / "tune-also.log")
    run = json.loads(proc.stdout)
    out = summary(run) | {"wall_seconds": round(secs, 1), "keep": float(keep), "layers": layers,
                          "command": "sbsearch tune " + " ".join(map(str, args[3:]))}
    print(json.dumps(out, indent=1), flush=True)
    out["cold_query"] = cold_queries(index, env_for(home))
    out["labelled"] = labelled(index, roots, beir, labelled_models(rec["index_default"], summary(run)), home)
    rec["also"] = out


def finish(rec: dict, args) -> None:
    text = markdown(rec)
    if args.no_write:
        print(text)
        return
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(rec, indent=1) + "\n")
    publish(text)


if __name__ == "__main__":
    main()
