"""The paper-shaped table for all-mpnet-base-v2 cut to 6/4/3/2 layers, measured on this machine.

    .venv/bin/python benchmarks/pruning_table.py --quick          # baselines + the 6-layer rows
    .venv/bin/python benchmarks/pruning_table.py --rows 6-top-best,6-alt-best
    .venv/bin/python benchmarks/pruning_table.py --all            # every row (hours on 2 cores)
    .venv/bin/python benchmarks/pruning_table.py --render         # only rewrite docs/PRUNING.md

Each row's result is kept in benchmarks/results/pruning_table.json (rows accumulate across runs; a row is re-run
only with --rerun), then docs/PRUNING.md is rewritten with every measured row, the command that
produced it and a PNG chart (quality vs. speed). Teacher vectors are cleared before each
distillation row (--warm-teacher keeps them), so its minutes include encoding with the teacher.
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from sbsearch import config  # noqa: E402

# tracked in git: the table's measurements are hours of CPU time and must survive a fresh checkout
RESULTS = REPO / "benchmarks" / "results" / "pruning_table.json"
DOC = REPO / "docs" / "PRUNING.md"
CHART = REPO / "docs" / "pruning_table.png"  # beside the table it illustrates
QUICK_SUITES = ("stsb", "stackfaq", "sample_docs", "size", "speed")
ALL_SUITES = ("stsb", "sick", "stackfaq", "sample_docs", "size", "speed")
# with --int8 / --labelfree (every MiniLM row has both): the int8 export's retrieval and speed, and the
# label-free estimate against the full model (sbsearch.quality.labelfree), whose agreement with the labelled
# nDCG@10 over the rows is printed under the table
EXTRA_SUITES = ("int8", "labelfree")


def shared(rel: str) -> str:
    return str(config.shared_data_dir() / rel)


NLI = [shared("nli/snli_dev_test.tsv"), shared("nli/xnli_validation_en.tsv")]  # XNLI test stays for the probe
STS = [shared("stsb/sts-train.csv")]
SEARCHED = [str(REPO / "sample_docs"), shared("stackfaq/stackExchange-FAQ.json")]  # documents, never queries
SHORT = [shared("stsb/sts-train.csv")]  # query-like short sentences

def _sentence_row(n: int, what: str, stages: str, distil: list[str], batch_size: int = 64, **extra) -> dict:
    """A row that recovers the evenly spread cut on short sentences (split, ≤64 tokens) of `distil`."""
    return {"kind": "prune", "layers": n, "strategy": "alternate", "label": f"{n} alternate: {what}",
            "kw": {"stages": stages, "distil": distil, "distil_split": True, "distil_limit": None,
                   "batch_size": batch_size, "max_length_cap": 64, **extra}}


# id -> row. kind: base (evaluate a model as is), cut (untrained cut), prune (pruning.api.prune kwargs)
ROWS: dict[str, dict] = {
    "full": {"kind": "base", "model": "full", "label": "all-mpnet-base-v2 (12 layers)"},
    "minilm": {"kind": "base", "model": "minilm", "label": "all-MiniLM-L6-v2 (trained from scratch)"},
}
for n in (6, 4, 3, 2):
    for strat, s in (("top", "top"), ("alt", "alternate")):
        ROWS[f"{n}-{strat}-cut"] = {"kind": "cut", "layers": n, "strategy": s, "label": f"{n} {s}: no fine-tuning"}
    ROWS[f"{n}-top-nli"] = {"kind": "prune", "layers": n, "strategy": "top", "label": f"{n} top: NLI",
                            "kw": {"recipe": "nli", "nli": NLI}}
    ROWS[f"{n}-top-paper"] = {"kind": "prune", "layers": n, "strategy": "top", "label": f"{n} top: NLI → STS ×2 (paper)",
                              "kw": {"recipe": "paper", "nli": NLI, "sts": STS},
                              # the model after its first stage is exactly the NLI row: measured on the way
                              "intermediate": {0: f"{n}-top-nli"}}
    # the same with 1 STS epoch (the `paper` recipe before it followed the reference: 2 epochs)
    ROWS[f"{n}-top-paper-sts1"] = {"kind": "prune", "layers": n, "strategy": "top",
                                   "label": f"{n} top: NLI → STS, 1 STS epoch",
                                   "kw": {"stages": "nli,sts:1", "nli": NLI, "sts": STS}}
    ROWS[f"{n}-top-distil"] = {"kind": "prune", "layers": n, "strategy": "top", "label": f"{n} top: distil (NLI+STS text, 20k)",
                               "kw": {"stages": "distil", "nli": NLI, "sts": STS, "distil_limit": 20000}}
    ROWS[f"{n}-top-distil-nli-sts"] = {"kind": "prune", "layers": n, "strategy": "top",
                                       "label": f"{n} top: distil → NLI → STS",
                                       "kw": {"recipe": "distil-nli-sts", "nli": NLI, "sts": STS, "distil_limit": 20000},
                                       # its first stage is the distil row exactly (same data, seed, settings)
                                       "intermediate": {0: f"{n}-top-distil"}}
    # the ≤15-minute recipes: distil on the searched documents + short query-like text
    ROWS[f"{n}-alt-distil-searched"] = {
        "kind": "prune", "layers": n, "strategy": "alternate",
        "label": f"{n} alternate: distil (searched docs + 3k STS sentences)",
        "kw": {"stages": "distil:2", "distil": SEARCHED + SHORT, "distil_limit": None, "batch_size": 32,
               "short_limit": 3000}}
    ROWS[f"{n}-alt-distil-searched-mix"] = {
        "kind": "prune", "layers": n, "strategy": "alternate",
        "label": f"{n} alternate: distil (searched docs + 3k STS sentences) → mix (distil + 1.5k STS-B pairs)",
        "kw": {"stages": "distil:2,mix:1", "distil": SEARCHED + SHORT, "sts": STS, "sts_limit": 1500,
               "batch_size": 32, "short_limit": 3000}}
    ROWS[f"{n}-alt-distil-searched-sts"] = {
        "kind": "prune", "layers": n, "strategy": "alternate",
        "label": f"{n} alternate: distil (searched docs + 3k STS sentences) → STS (1.5k STS-B pairs)",
        "kw": {"stages": "distil:2,sts:1", "distil": SEARCHED + SHORT, "sts": STS, "sts_limit": 1500,
               "batch_size": 32, "short_limit": 3000}}
    sent = "sentences of the searched docs (6k, ≤64 tokens)"
    ROWS[f"{n}-alt-distil-sent"] = _sentence_row(n, f"distil on the {sent}", "distil:1", SEARCHED)
    ROWS[f"{n}-alt-distil-sent-2ep"] = _sentence_row(n, f"distil on the {sent}, 2 epochs", "distil:2", SEARCHED)
    # every kept layer distilled token by token toward the teacher's hidden states + the embedding
    ROWS[f"{n}-alt-hidden-sent"] = _sentence_row(n, f"hidden-state distil on the {sent}", "hidden:1", SEARCHED)
    ROWS[f"{n}-alt-hidden-sent-sts"] = _sentence_row(
        n, "hidden-state distil on searched-doc sentences + 3k STS sentences", "hidden:1", SEARCHED + SHORT,
        short_limit=3000)
    ROWS[f"{n}-alt-hidden-sent-sts-b32"] = _sentence_row(
        n, "hidden-state distil on searched-doc sentences + 3k STS sentences, batch 32", "hidden:1",
        SEARCHED + SHORT, batch_size=32, short_limit=3000)
    # the same, plus every searched passage whole (up to 256 tokens): documents are embedded whole at search time
    ROWS[f"{n}-alt-hidden-sent-sts-whole"] = {
        "kind": "prune", "layers": n, "strategy": "alternate",
        "label": f"{n} alternate: hidden-state distil on searched-doc sentences + the passages whole (≤256 tokens) "
                 "+ 3k STS sentences, batch 32",
        "kw": {"stages": "hidden:1", "distil": SEARCHED, "sts": SHORT, "sts_sentences": 3000,
               "distil_split": "both", "distil_limit": None, "batch_size": 32, "max_length_cap": 256}}
    # only the passages whole (no sentences of them) + the STS sentences: what fits in 15 minutes
    ROWS[f"{n}-alt-hidden-whole-sts"] = {
        "kind": "prune", "layers": n, "strategy": "alternate",
        "label": f"{n} alternate: hidden-state distil on the searched passages whole (≤256 tokens) "
                 "+ 3k STS sentences, batch 32",
        "kw": {"stages": "hidden:1", "distil": SEARCHED, "sts": SHORT, "sts_sentences": 3000,
               "distil_split": False, "distil_limit": None, "batch_size": 32, "max_length_cap": 256}}
    # sentences + passages whole, with the sentences sampled down so that it fits in 15 minutes
    ROWS[f"{n}-alt-hidden-both-2k"] = {
        "kind": "prune", "layers": n, "strategy": "alternate",
        "label": f"{n} alternate: hidden-state distil on 2k searched-doc sentences + the passages whole "
                 "(≤256 tokens) + 3k STS sentences, batch 32",
        "kw": {"stages": "hidden:1", "distil": SEARCHED, "sts": SHORT, "sts_sentences": 3000,
               "distil_split": "both", "distil_limit": 2000, "batch_size": 32, "max_length_cap": 256}}
    # `sbsearch prune --recipe best` exactly as a user runs it (its settings: pruning/recipes.py)
    ROWS[f"{n}-best"] = {"kind": "prune", "layers": n, "strategy": "alternate",
                         "label": f"{n} alternate: `--recipe best` (searched docs + STS-B train text)",
                         "kw": {"recipe": "best", "distil": SEARCHED, "sts": SHORT}}
    # `best` as it was before session 4 (batches of 32; the recipe now uses 16, finding 14)
    ROWS[f"{n}-best-b32"] = {"kind": "prune", "layers": n, "strategy": "alternate",
                             "label": f"{n} alternate: `--recipe best --batch-size 32` (best before finding 14)",
                             "kw": {"recipe": "best", "distil": SEARCHED, "sts": SHORT, "batch_size": 32}}
    # the same recipe and step count at twice its learning rate: a direction for 98% within 15 minutes
    ROWS[f"{n}-best-lr2e4"] = {"kind": "prune", "layers": n, "strategy": "alternate",
                               "label": f"{n} alternate: `--recipe best --lr 2e-4`",
                               "kw": {"recipe": "best", "distil": SEARCHED, "sts": SHORT, "lr": 2e-4}}
    # best-long (every searched sentence, measured at batch 32: 97.8% / 97.5%) at best's batch of 16
    ROWS[f"{n}-best-long-b16"] = {"kind": "prune", "layers": n, "strategy": "alternate",
                                  "label": f"{n} alternate: `--recipe best-long --batch-size 16`",
                                  "kw": {"recipe": "best-long", "distil": SEARCHED, "sts": SHORT, "batch_size": 16}}
    ROWS[f"{n}-alt-distil-short"] = {
        "kind": "prune", "layers": n, "strategy": "alternate",
        "label": f"{n} alternate: distil (6k STS sentences only, no searched docs)",
        "kw": {"stages": "distil:1", "distil": SHORT, "distil_limit": 6000, "batch_size": 32}}

# all-MiniLM-L6-v2 cut to 4/3/2 of its 6 layers, recovered toward the uncut MiniLM-L6 (the teacher is
# the base unless a row names another): the recipes that won for mpnet, and the paper's for the record
for n in (4, 3, 2):
    for strat, s in (("top", "top"), ("alt", "alternate")):
        ROWS[f"m{n}-{strat}-cut"] = {"kind": "cut", "base": "minilm", "layers": n, "strategy": s,
                                     "label": f"MiniLM {n} {s}: no fine-tuning"}
    ROWS[f"m{n}-best"] = {"kind": "prune", "base": "minilm", "layers": n, "strategy": "alternate",
                          "label": f"MiniLM {n} alternate: `--recipe best`",
                          "kw": {"recipe": "best", "distil": SEARCHED, "sts": SHORT}}
    ROWS[f"m{n}-best-long"] = {"kind": "prune", "base": "minilm", "layers": n, "strategy": "alternate",
                               "label": f"MiniLM {n} alternate: `--recipe best-long --batch-size 16`",
                               "kw": {"recipe": "best-long", "distil": SEARCHED, "sts": SHORT, "batch_size": 16}}
    ROWS[f"m{n}-best-long-2ep"] = {"kind": "prune", "base": "minilm", "layers": n, "strategy": "alternate",
                                   "label": f"MiniLM {n} alternate: `--recipe best-long --batch-size 16`, 2 epochs",
                                   "kw": {"recipe": "best-long", "distil": SEARCHED, "sts": SHORT, "batch_size": 16,
                                          "stages": "hidden:2"}}
    ROWS[f"m{n}-top-best-long"] = {"kind": "prune", "base": "minilm", "layers": n, "strategy": "top",
                                   "label": f"MiniLM {n} top: `--recipe best-long --batch-size 16`",
                                   "kw": {"recipe": "best-long", "distil": SEARCHED, "sts": SHORT, "batch_size": 16,
                                          "strategy": "top"}}
    ROWS[f"m{n}-paper"] = {"kind": "prune", "base": "minilm", "layers": n, "strategy": "top",
                           "label": f"MiniLM {n} top: NLI → STS ×2 (paper)",
                           "kw": {"recipe": "paper", "nli": NLI, "sts": STS}}


def base_layers(row: dict) -> int:
    return 6 if row.get("base") == "minilm" else 12


def _command(row_id: str) -> str:
    return f".venv/bin/python benchmarks/pruning_table.py --rows {row_id}"


def run_row(row_id: str, suites, warm_teacher: bool, keep_dir: Path | None = None,
            side_rows: dict | None = None) -> dict:
    """Measure one row. Rows measured on the way (a recipe's first stage alone, see "intermediate")
    are added to side_rows."""
    from pruning import api, evaluate as ev, layers
    from sbsearch.embed.models import load_model
    from sbsearch.model_choice.prune_inputs import eval_data, text_sources

    row = ROWS[row_id]
    t0 = time.perf_counter()
    ed = eval_data()
    if row["kind"] in ("base", "cut"):
        model, _ = load_model(row.get("model") or row.get("base", "full"))
        kept = None
        if row["kind"] == "cut":
            kept = layers.choose_layers(layers.count_layers(model), row["layers"], row["strategy"])
            layers.cut_model(model, kept)
        metrics = ev.evaluate_model(model, suites, ed)
        return {"id": row_id, "label": row["label"], "metrics": metrics, "minutes": 0.0, "kept": kept,
                "command": _command(row_id), "when": time.strftime("%Y-%m-%d %H:%M")}
    kw = dict(row["kw"])
    if not warm_teacher:
        shutil.rmtree(config.cache_dir() / "pruning-teacher", ignore_errors=True)
    short_limit = kw.pop("short_limit", None)
    tmpdir = None
    if short_limit:  # searched documents in full + a sample of short sentences, as one text file in tmp
        from pruning import data

        docs = data.read_sentences(text_sources([s for s in kw["distil"] if s not in SHORT]))
        short = data.read_sentences(SHORT, limit=short_limit, seed=42)
        tmpdir = tempfile.mkdtemp(prefix="pruning-table-")
        f = Path(tmpdir) / "distil.txt"
        f.write_text("\n".join(docs + short) + "\n")
        kw["distil"] = [str(f)]
    kw["distil"] = text_sources(kw.get("distil", ()))  # sample_docs is a folder: sbsearch reads it for pruning
    out = Path(tempfile.mkdtemp(prefix=f"pruned-{row_id}-"))

    def on_stage(i: int, name: str, model, infos: list) -> None:
        side_id = row.get("intermediate", {}).get(i)
        if side_id is None or side_rows is None:
            return
        print(f"  measuring {side_id} (after stage {i + 1}: {name})", flush=True)
        side_rows[side_id] = {
            "id": side_id, "label": ROWS[side_id]["label"], "metrics": ev.evaluate_model(model, suites, ed),
            "minutes": round(sum(s["seconds"] for s in infos) / 60, 1), "kept": kept_layers(model),
            "stages": infos, "command": _command(row_id) + f"  (measured after its stage {i + 1})", "side": True,
            "when": time.strftime("%Y-%m-%d %H:%M")}

    def kept_layers(model) -> list[int]:
        return layers.choose_layers(base_layers(row), layers.count_layers(model), row["strategy"])

    try:
        kw.pop("strategy", None)
        card = api.prune(row.get("base", "full"), row["layers"], row["strategy"], str(out / "model"), evaluate=suites, compare=(), asymmetric=True,
                         progress=sys.stderr.isatty(), say=lambda s: print(f"  {s}", flush=True),
                         on_stage=on_stage, eval_data=ed, **kw)
    finally:
        if tmpdir:
            shutil.rmtree(tmpdir, ignore_errors=True)
    if keep_dir is not None:  # keep the trained model for other benchmarks (e.g. compare_models.py)
        keep_dir.mkdir(parents=True, exist_ok=True)
        shutil.rmtree(keep_dir / row_id, ignore_errors=True)
        shutil.move(str(out / "model"), str(keep_dir / row_id))
    shutil.rmtree(out, ignore_errors=True)
    return {"id": row_id, "label": row["label"], "metrics": card["metrics"]["model"],
            "minutes": round(card["seconds"]["training"] / 60, 1), "kept": card["kept_layers"],
            "stages": card["stages"], "command": _command(row_id), "when": time.strftime("%Y-%m-%d %H:%M")}


def speedups(steps: int = 4) -> list[dict]:
    """Seconds per training step (MNRL, 32 NLI triplets, mpnet cut to 6 layers) for each CPU speed-up,
    measured one after another in this process."""
    import torch
    from sentence_transformers.sentence_transformer import losses

    from pruning import data, layers
    from pruning.train import fitted_length, freeze_embeddings
    from sbsearch.embed.models import load_model

    model, _ = load_model("full")
    layers.cut_model(model, layers.choose_layers(12, 6, "top"))
    trip = data.nli_triplets(data.read_nli(NLI[0]))[:32 * (steps + 1)]
    texts = [t for row in trip for t in row]
    fitted = fitted_length(model, texts, 128)
    loss_fn = losses.MultipleNegativesRankingLoss(model)
    variants = [("baseline: fp32, embeddings trained, max length 128", dict(frozen=False, length=128, bf16=False)),
                ("frozen embeddings", dict(frozen=True, length=128, bf16=False)),
                (f"+ length fitted to the data ({fitted})", dict(frozen=True, length=fitted, bf16=False)),
                ("+ bf16 autocast", dict(frozen=True, length=fitted, bf16=True))]
    out = []
    for name, v in variants:
        freeze_embeddings(model, v["frozen"])
        model.max_seq_length = v["length"]
        opt = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=1e-6)
        times = []
        for i in range(steps + 1):
            batch = trip[32 * i: 32 * (i + 1)]
            feats = [model.tokenize([row[c] for row in batch]) for c in range(3)]
            t0 = time.perf_counter()
            with torch.autocast("cpu", dtype=torch.bfloat16, enabled=v["bf16"]):
                loss = loss_fn(feats, None)
            loss.backward()
            opt.step()
            opt.zero_grad()
            if i:  # the first step warms up
                times.append(time.perf_counter() - t0)
        out.append({"variant": name, "s_per_step": round(sum(times) / len(times), 2)})
        print(out[-1], flush=True)
    return out


def speed_by_layers(rounds: int = 3) -> dict:
    """Encode sentences/s of the full model, its cuts to 6/4/3/2 layers and MiniLM-L6, measured in
    rounds that take turns (one process, same sentences), so that the ratios survive a noisy machine.
    Recovery does not change a model's speed: every row with the same layer count shares its number."""
    from pruning import evaluate as ev, layers
    from pruning.data import read_sts
    from sbsearch.embed.models import load_model

    sents = [a for a, _, _ in read_sts(shared("stsb/sts-test.csv"))][:256]
    full, _ = load_model("full")
    models = {"12": full}
    for n in (6, 4, 3, 2):
        m, _ = load_model("full")
        layers.cut_model(m, layers.choose_layers(12, n, "top"))
        models[str(n)] = m
    models["minilm"], _ = load_model("minilm")
    runs: dict[str, list[float]] = {k: [] for k in models}
    for r in range(rounds):
        for k, m in models.items():
            runs[k].append(ev.speed(m, sents))
        print(f"round {r + 1}: " + ", ".join(f"{k} {v[-1]:.0f}/s" for k, v in runs.items()), flush=True)
    med = {k: sorted(v)[len(v) // 2] for k, v in runs.items()}
    return {"sentences_per_s": {k: round(v, 1) for k, v in med.items()},
            "speedup": {k: round(v / med["12"], 2) for k, v in med.items()}, "rounds": rounds,
            "sentences": len(sents), "command": ".venv/bin/python benchmarks/pruning_table.py --speed-by-layers",
            "when": time.strftime("%Y-%m-%d %H:%M")}


def remeasure(row_id: str, suites, keep_dir: Path | None, sample_docs: bool = True) -> dict:
    """Run `suites` again on a measured row's model (a base or cut is rebuilt, a trained model is
    read from --keep-models) and return only the new metrics, to be merged into the row.
    sample_docs=False: StackFAQ only (sample_docs changed after most rows' labels were measured)."""
    from pruning import evaluate as ev, layers
    from sbsearch.embed.models import load_model

    row = ROWS[row_id]
    if row["kind"] == "prune":
        if keep_dir is None or not (keep_dir / row_id).exists():
            raise SystemExit(f"{row_id}: its trained model is not in --keep-models {keep_dir}")
        model, _ = load_model(str((keep_dir / row_id).resolve()))
    else:
        model, _ = load_model(row.get("model") or row.get("base", "full"))
        if row["kind"] == "cut":
            layers.cut_model(model, layers.choose_layers(layers.count_layers(model), row["layers"], row["strategy"]))
    from sbsearch.model_choice.prune_inputs import eval_data

    ed = eval_data()
    if not sample_docs:
        ed.sample_docs = None
    return ev.evaluate_model(model, suites, ed)


def speed_minilm(rounds: int = 3) -> dict:
    """Encode speed of MiniLM-L6 and its top cuts to 4/3/2 layers, each in fp32 (torch) and int8 (ONNX
    Runtime), on short sentences (queries) and on sample_docs passages (documents), in rounds that
    take turns, so that the ratios to MiniLM-L6 survive a noisy machine. A cut's speed does not
    depend on its recovery or on which layers it keeps: every row of a layer count shares it."""
    from pruning import data, evaluate as ev, layers
    from sbsearch.embed.models import load_model

    sents = [a for a, _, _ in data.read_sts(shared("stsb/sts-test.csv"))][:256]
    from sbsearch.ingest.folder import folder_chunks
    from sbsearch.model_choice.prune_suites import Int8Model

    passages = data.read_sample_docs(REPO / "sample_docs", folder_chunks).passages[:128]
    tmp = Path(tempfile.mkdtemp(prefix="speed-minilm-"))
    models = {}
    try:
        for n in (6, 4, 3, 2):
            m, _ = load_model("minilm")
            if n < 6:
                layers.cut_model(m, layers.choose_layers(6, n, "top"))
            models[f"{n}"] = m
            (tmp / str(n)).mkdir()
            models[f"{n}-int8"] = Int8Model.export(m, tmp / str(n))
        runs: dict = {k: {"sentences": [], "passages": []} for k in models}
        for r in range(rounds):
            for k, m in models.items():
                runs[k]["sentences"].append(ev.speed(m, sents))
                runs[k]["passages"].append(ev.speed(m, passages, batch_size=16))
            print(f"round {r + 1}: " + ", ".join(f"{k} {v['sentences'][-1]:.0f}/{v['passages'][-1]:.0f} per s"
                                                   for k, v in runs.items()), flush=True)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    med = {k: {w: sorted(v[w])[len(v[w]) // 2] for w in v} for k, v in runs.items()}
    return {"per_s": {k: {w: round(x, 1) for w, x in v.items()} for k, v in med.items()},
            # each model against MiniLM-L6 in the same runtime: fp32 / fp32, int8 / int8
            "speedup": {k: {w: round(x / med["6-int8" if k.endswith("int8") else "6"][w], 2) for w, x in v.items()}
                        for k, v in med.items()},
            "rounds": rounds, "sentences": len(sents), "passages": len(passages),
            "command": ".venv/bin/python benchmarks/pruning_table.py --speed-minilm",
            "when": time.strftime("%Y-%m-%d %H:%M")}


def spearman_labelfree(results: dict) -> dict | None:
    """Rank correlation over the rows between each label-free view and the labelled nDCG@10:
    agreement with the full model's ranking (every row), with MiniLM-L6's (its cuts), and the
    known-item view against the full model."""
    from scipy.stats import spearmanr

    out = {}
    for name in ("stackfaq", "sample_docs"):
        for view, label in (("labelfree_pct", "agreement with full"), ("labelfree_minilm_pct", "agreement with MiniLM-L6"),
                            ("knownitem_pct", "known-item vs full")):
            pts = [(r["metrics"][f"{name}_{view}"], r["metrics"][f"{name}_ndcg10"])
                   for rid, r in results.items() if not rid.startswith("_")
                   and r["metrics"].get(f"{name}_{view}") is not None and f"{name}_ndcg10" in r["metrics"]]
            if len(pts) >= 4:
                out[f"{name}, {label}"] = {"rows": len(pts),
                                           "spearman": round(float(spearmanr(*zip(*pts)).correlation), 3)}
    return out or None


def calibration_points(results: dict) -> list[tuple[float, float]]:
    """(agreement %, labelled nDCG@10 as % of the same reference) for every row, set and reference."""
    pts = []
    for ref_id, view in (("full", "labelfree_pct"), ("minilm", "labelfree_minilm_pct")):
        ref = results.get(ref_id, {}).get("metrics", {})
        for rid, r in results.items():
            m = r.get("metrics", {}) if not rid.startswith("_") else {}
            for name in ("stackfaq", "sample_docs"):
                a, q, q_ref = m.get(f"{name}_{view}"), m.get(f"{name}_ndcg10"), ref.get(f"{name}_ndcg10")
                if a is not None and q is not None and q_ref and rid != ref_id:
                    pts.append((a, 100 * q / q_ref))
    return pts


def interval_coverage(results: dict) -> dict:
    """How often the labelled share (the row's nDCG@10 over its reference's, per set) falls inside the
    label-free estimate's 90% interval, over every (row, set, reference) whose interval is stored.
    Rows measured before the interval was recorded have only the mean agreement (the per-query values
    the bootstrap needs were not kept): they are counted as not available, not guessed."""
    points, missing = [], 0
    for ref_id, tag in (("full", ""), ("minilm", "_minilm")):
        ref = results.get(ref_id, {}).get("metrics", {})
        for rid, r in results.items():
            m = r.get("metrics", {}) if not rid.startswith("_") else {}
            for name in ("stackfaq", "sample_docs"):
                q, q_ref = m.get(f"{name}_ndcg10"), ref.get(f"{name}_ndcg10")
                if rid == ref_id or m.get(f"{name}_labelfree{tag}_pct") is None or q is None or not q_ref:
                    continue
                iv = m.get(f"{name}_labelfree{tag}_interval")
                if not iv:
                    missing += 1
                    continue
                share = round(100 * q / q_ref, 1)
                points.append({"row": rid, "set": name, "reference": ref_id, "labelled_pct": share,
                               "estimate_pct": m.get(f"{name}_labelfree{tag}_estimate"), "interval_pct": iv,
                               "inside": iv[0] <= share <= iv[1],
                               "side": "inside" if iv[0] <= share <= iv[1] else "above" if share > iv[1] else "below"})
    return {"points": points, "inside": sum(p["inside"] for p in points), "without_interval": missing}


def _layer_key(r: dict) -> str:
    if r["id"] == "minilm":
        return "minilm"
    return str(len(r["kept"])) if r.get("kept") else "12"


def merge_row(results: dict, row: dict, side: dict) -> dict:
    """results with a freshly measured row and the rows measured on its way (flagged "side"). A side
    row never replaces one measured by its own command, which has more columns (e.g. asymmetric
    retrieval) and the minutes of that recipe alone."""
    kept_side = {k: v for k, v in side.items() if k not in results or results[k].get("side")}
    return {**results, row["id"]: row, **kept_side}


def load_results() -> dict:
    return json.loads(RESULTS.read_text()) if RESULTS.exists() else {}


def render_minilm(results: dict) -> str:
    """The MiniLM table: every number against MiniLM-L6, nDCG@10 (the issue's measure), int8 beside fp32."""
    from sbsearch.quality.labelfree import calibrated_pct

    ids = ["minilm"] + [r for r in ROWS if ROWS[r].get("base") == "minilm"]
    ids = [r for r in ids if r in results and "sample_docs_ndcg10" in results[r]["metrics"]]
    if len(ids) < 2:
        return ""
    ref = results["minilm"]["metrics"]
    sp = results.get("_speed_minilm", {}).get("speedup", {})

    def f(m, k, fmt="{:.3f}"):
        return "–" if m.get(k) is None else fmt.format(m[k])

    def lf(m, name):
        a = m.get(f"{name}_labelfree_minilm_pct")
        return "–" if a is None else f"{a:.1f} → {calibrated_pct(a):.1f}"

    def pct(m, k, refm):
        return f"{100 * m[k] / refm[k]:.1f}%" if m.get(k) is not None and refm.get(k) else "–"

    lines = ["| row | layers kept | STS-B ρ | SICK-R ρ | StackFAQ nDCG@10 | sample_docs nDCG@10 | % of MiniLM-L6 "
             "(FAQ / docs) | int8: StackFAQ / sample_docs nDCG@10 | int8 % of MiniLM-L6 int8 (FAQ / docs) | "
             "speed vs MiniLM-L6 (fp32; int8) | label-free vs MiniLM-L6: agreement → est. % (FAQ / docs) | recovery min |",
             "|---" * 12 + "|"]
    for rid in ids:
        r = results[rid]
        m = r["metrics"]
        key = str(len(r["kept"])) if r.get("kept") else "6"
        speed = "–"
        if key in sp:
            speed = f"{sp[key]['sentences']:.2f}x; {sp[key + '-int8']['sentences']:.2f}x"
        lines.append(" | ".join([
            f"| {r['label']}", str(r.get("kept") or "all"), f(m, "stsb_test"), f(m, "sick_r"),
            f(m, "stackfaq_ndcg10"), f(m, "sample_docs_ndcg10"),
            f"{pct(m, 'stackfaq_ndcg10', ref)} / {pct(m, 'sample_docs_ndcg10', ref)}",
            f"{f(m, 'int8_stackfaq_ndcg10')} / {f(m, 'int8_sample_docs_ndcg10')}",
            f"{pct(m, 'int8_stackfaq_ndcg10', ref)} / {pct(m, 'int8_sample_docs_ndcg10', ref)}",
            speed,
            " / ".join(lf(m, name) for name in ("stackfaq", "sample_docs")),
            f"{r.get('minutes', 0):.1f} |"]))
    out = ("\n### MiniLM-L6 cut to 4, 3 and 2 layers (benchmarks/pruning_table.py)\n\nRecovered toward the uncut "
           "all-MiniLM-L6-v2 (it is the teacher). Quality is nDCG@10; *int8* is the model's int8 ONNX export "
           "(sbsearch's `-int8` models), measured on the same sets; the int8 percentages are against MiniLM-L6's "
           "own int8 export. *Speed* comes from one interleaved run (below), each runtime against MiniLM-L6 in "
           "the same runtime. *Label-free* is what `sbsearch tune` sees without labels (sbsearch.quality.labelfree): "
           "agreement with MiniLM-L6's ranking of pseudo-queries cut from the documents, and the share of "
           "MiniLM-L6's nDCG@10 it predicts through the shipped calibration.\n\n" + "\n".join(lines) + "\n")
    spm = results.get("_speed_minilm")
    if spm:
        out += ("\nEncode speed, MiniLM-L6 and its cuts (STS-B test sentences, batch 32 / sample_docs passages, batch "
                f"16; both cores; median of {spm['rounds']} interleaved rounds; `{spm['command']}`, {spm['when']}): "
                + ", ".join(f"{k}: {v['sentences']:.0f} / {v['passages']:.0f} per s"
                            for k, v in spm["per_s"].items()) + ".\n")
    return out


def render(results: dict) -> None:
    full = results.get("full", {}).get("metrics", {})
    cols = [("stsb_test", "STS-B ρ"), ("sick_r", "SICK-R ρ"), ("stackfaq_mrr10", "StackFAQ MRR@10"),
            ("sample_docs_mrr10", "sample_docs MRR@10"), ("stackfaq_asym_mrr10", "StackFAQ asym."),
            ("sample_docs_asym_mrr10", "sample_docs asym."), ("sentences_per_s", "sent/s"), ("mb", "MB")]
    sp = results.get("_speed_by_layers")
    if sp:  # one interleaved measurement per layer count replaces each row's own (noisy) number
        cols[-2] = ("speedup", "speed vs full")
    lines = ["| row | layers kept | " + " | ".join(c[1] for c in cols) + " | recovery min | % of full retrieval (FAQ / docs) |",
             "|---" * (len(cols) + 4) + "|"]
    order = [r for r in ROWS if r in results] + [r for r in results if r not in ROWS and not r.startswith("_")]
    for rid in [r for r in order if not ROWS.get(r, {}).get("base") == "minilm"]:
        r = results[rid]
        m = r["metrics"]
        pct = []
        for k in ("stackfaq_mrr10", "sample_docs_mrr10"):
            pct.append(f"{100 * m[k] / full[k]:.1f}%" if k in m and full.get(k) else "–")
        if sp:
            m = {**m, "speedup": sp["speedup"].get(_layer_key(r))}
        vals = [("–" if m.get(c) is None else f"{m[c]:.2f}x" if c == "speedup" else f"{m[c]:.0f}"
                 if c in ("sentences_per_s", "mb") else f"{m[c]:.3f}") for c, _ in cols]
        lines.append(f"| {r['label']} | {r.get('kept') or 'all'} | " + " | ".join(vals)
                     + f" | {r.get('minutes', 0):.1f} | {' / '.join(pct)} |")
    def shown(r: dict) -> str:  # rows measured with SICK-R were run with --sick (older records lack it)
        cmd = r["command"]
        if "sick_r" in r["metrics"] and "--sick" not in cmd and "pruning_table.py --rows" in cmd:
            cmd = cmd.replace("pruning_table.py --rows", "pruning_table.py --sick --rows")
        return cmd

    cmds = "\n".join(f"- `{shown(results[r])}` ({results[r]['when']})" for r in order)
    chart_note = ""
    try:
        _chart(results)
        chart_note = (f"\n![retrieval vs speed]({CHART.name})\n\nChart: `docs/{CHART.name}`, written by the "
                      "same command.\n")
    except Exception as exc:  # noqa: BLE001 - the chart is optional
        chart_note = f"\n(chart not written: {exc})\n"
    if sp:
        chart_note += ("\nEncode speed by layer count (STS-B test sentences, batch 32, both cores, median of "
                       f"{sp['rounds']} interleaved rounds; `{sp['command']}`, {sp['when']}): "
                       + ", ".join(f"{k}: {v:.0f}/s ({sp['speedup'][k]:.2f}x)"
                                   for k, v in sp["sentences_per_s"].items()) + ".\n")
    sp = results.get("_speedups")
    if sp:
        chart_note += ("\nTraining speed-ups (MNRL step, 32 NLI triplets, mpnet cut to 6 layers; "
                       f"`{sp['command']}`, {sp['when']}):\n\n| variant | s/step |\n|---|---|\n"
                       + "\n".join(f"| {r['variant']} | {r['s_per_step']} |" for r in sp["rows"]) + "\n")
    chart_note += render_minilm(results)
    rho = spearman_labelfree(results)
    pts = calibration_points(results)
    if len(pts) >= 3:
        from sbsearch.quality.labelfree import CALIBRATION, calibrated_pct, fit_calibration

        fit = fit_calibration(pts)
        shipped = sum(abs(calibrated_pct(a) - s) for a, s in pts) / len(pts)
        chart_note += ("\nCalibration of the label-free estimate (agreement → share of the reference's nDCG@10, "
                       f"1 − share = c·(1 − agreement)^p) over {len(pts)} (row, set, reference) points: fitted "
                       f"c = {fit['c']}, p = {fit['p']}, mean absolute error {fit['mean_abs_error_pct']} points; the "
                       f"curve shipped in sbsearch.quality.labelfree (c = {CALIBRATION['c']}, p = {CALIBRATION['p']}) is off by "
                       f"{shipped:.2f} points on average.\n")
    if rho:
        chart_note += ("\nLabel-free estimate against labelled nDCG@10, Spearman rank correlation over the rows "
                       "that have both: " + ", ".join(f"{k} ρ = {v['spearman']:.3f} ({v['rows']} rows)"
                                                      for k, v in rho.items()) + ".\n")
    cov = interval_coverage(results)
    if cov["points"] or cov["without_interval"]:
        pts_ = cov["points"]
        chart_note += (f"\nInterval coverage: the labelled share of the reference's nDCG@10 lies inside the label-free "
                       f"estimate's 90% interval (bootstrap over the pseudo-queries, what `sbsearch tune` shows) for "
                       f"{cov['inside']} of {len(pts_)} (row, set, reference) points"
                       + (": " + "; ".join(f"{p['row']} {p['set']} vs {p['reference']}: {p['labelled_pct']:.1f}% in "
                                           f"[{p['interval_pct'][0]:.1f}, {p['interval_pct'][1]:.1f}] ({p['side']})"
                                           for p in pts_) if pts_ else "")
                       + f". {cov['without_interval']} more points were measured before the interval was recorded "
                       "(only their mean agreement is stored): counting them needs their models again, retraining "
                       "the recovered ones; the untrained cuts are recomputed with `--remeasure labelfree:minilm`. "
                       "The interval states how much another draw of pseudo-queries would move the estimate; the "
                       "calibration's own error (above) is not in it.\n")
    grid = [f"{n}-{k}" for n in (6, 4, 3, 2) for k in ("top-cut", "alt-cut", "top-nli", "top-paper", "top-distil",
                                                        "top-distil-nli-sts", "best")]
    missing = [r for r in grid if r not in results]
    if missing:  # the paper-shaped grid, honestly: which of its cells this file has no measurement for
        chart_note += ("\nNot measured yet (rows defined in the script, run with `--rows`): "
                       + ", ".join(f"`{r}`" for r in missing) + ".\n")
    text = DOC.read_text() if DOC.exists() else ""
    start, end = "<!-- pruning-table:start -->", "<!-- pruning-table:end -->"
    block = (f"{start}\n### Measured table (benchmarks/pruning_table.py)\n\nAll numbers measured on this "
             "machine (2 CPU cores, shared with other work, so minutes are noisy by ±2). *speed vs full* comes "
             "from one interleaved run per layer count (below), since recovery does not change a model's "
             "speed. Recovery minutes include teacher encoding (teacher cache cleared before each row). *asym.* = asymmetric mode: "
             "documents embedded by the full model, queries by the pruned model.\n\n"
             + "\n".join(lines) + "\n" + chart_note + "\nCommands:\n\n" + cmds + f"\n{end}")
    if start in text and end in text:
        text = text[:text.index(start)] + block + text[text.index(end) + len(end):]
    else:
        text = (text or "# Pruning\n") + "\n" + block + "\n"
    DOC.write_text(text)


def _chart(results: dict) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    sp = results.get("_speed_by_layers")
    fig, axes = plt.subplots(1, 2, figsize=(12, 5))
    colours = {"12": "black", "6": "tab:blue", "4": "tab:green", "3": "tab:orange", "2": "tab:red",
               "minilm": "tab:purple"}
    for ax, metric, title in ((axes[0], "stackfaq_mrr10", "StackFAQ MRR@10"),
                              (axes[1], "stsb_test", "STS-B test Spearman")):
        seen = set()
        for rid, r in results.items():
            m = r.get("metrics", {}) if not rid.startswith("_") else {}
            if metric not in m or ROWS.get(rid, {}).get("base") == "minilm":
                continue
            key = _layer_key(r)
            x = sp["speedup"].get(key) if sp else m.get("sentences_per_s")
            if x is None:
                continue
            label = None if key in seen else ("MiniLM-L6" if key == "minilm" else f"{key} layers")
            seen.add(key)
            ax.scatter(x, m[metric], color=colours.get(key, "grey"), label=label)
            ax.annotate(rid, (x, m[metric]), fontsize=6)
        ax.set_xlabel("encode speed vs full model (one interleaved run)" if sp else "encode sentences/s")
        ax.set_ylabel(title)
        ax.legend(fontsize=7)
    fig.suptitle("all-mpnet-base-v2 cut by layers: quality vs speed (2-core CPU)")
    fig.tight_layout()
    fig.savefig(CHART, dpi=120)
    plt.close(fig)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--rows", default="", help="comma-separated row ids (see --list)")
    ap.add_argument("--quick", action="store_true", help="baselines and the 6-layer rows that fit in minutes")
    ap.add_argument("--all", action="store_true")
    ap.add_argument("--list", action="store_true")
    ap.add_argument("--speedups", action="store_true", help="measure seconds/step for each CPU speed-up")
    ap.add_argument("--speed-by-layers", action="store_true",
                    help="measure encode speed per layer count in one interleaved run (the table's speed column)")
    ap.add_argument("--render", action="store_true", help="only rewrite docs/PRUNING.md from benchmarks/results/pruning_table.json")
    ap.add_argument("--rerun", action="store_true", help="run rows that already have results again")
    ap.add_argument("--sick", action="store_true", help="also SICK-R (slower)")
    ap.add_argument("--int8", action="store_true", help="also the int8 export's retrieval and speed")
    ap.add_argument("--labelfree", action="store_true", help="also the label-free estimate against the full model")
    ap.add_argument("--extra-suites", default="", help="more comma-separated suites, e.g. labelfree:minilm")
    ap.add_argument("--speed-minilm", action="store_true",
                    help="measure MiniLM-L6 and its 4/3/2-layer cuts, fp32 and int8, in one interleaved run")
    ap.add_argument("--remeasure", default="",
                    help="comma-separated suites to run again on the --rows' models, merged into their rows")
    ap.add_argument("--stackfaq-only", action="store_true",
                    help="with --remeasure: StackFAQ only (sample_docs changed after most rows were measured)")
    ap.add_argument("--warm-teacher", action="store_true", help="keep cached teacher vectors between rows")
    ap.add_argument("--keep-models", type=Path, default=None,
                    help="keep each trained model as DIR/<row id> (e.g. the sbsearch models folder)")
    args = ap.parse_args()
    if args.list:
        for rid, r in ROWS.items():
            print(f"{rid:28s} {r['label']}")
        return
    ids = list(ROWS) if args.all else ["full", "minilm", "6-top-cut", "6-alt-cut", "6-alt-distil-searched",
                                       "6-alt-distil-short"] if args.quick else []
    ids += [r for r in args.rows.split(",") if r]
    unknown = [r for r in ids if r not in ROWS]
    if unknown:
        sys.exit(f"unknown row {unknown[0]!r}; see --list")
    from pruning.train import set_threads
    from sbsearch.embed.models import offline_environment

    offline_environment()
    set_threads()
    results = load_results()
    if args.speedups:
        results["_speedups"] = {"when": time.strftime("%Y-%m-%d %H:%M"), "rows": speedups(),
                                "command": ".venv/bin/python benchmarks/pruning_table.py --speedups"}
        RESULTS.parent.mkdir(parents=True, exist_ok=True)
        RESULTS.write_text(json.dumps(results, indent=1))
    if args.speed_by_layers:
        measured = speed_by_layers()
        results = {**load_results(), "_speed_by_layers": measured}
        RESULTS.parent.mkdir(parents=True, exist_ok=True)
        RESULTS.write_text(json.dumps(results, indent=1))
    if args.speed_minilm:
        measured = speed_minilm()
        results = {**load_results(), "_speed_minilm": measured}
        RESULTS.parent.mkdir(parents=True, exist_ok=True)
        RESULTS.write_text(json.dumps(results, indent=1))
    suites = (ALL_SUITES if args.sick else QUICK_SUITES) + tuple(x for x in EXTRA_SUITES if getattr(args, x))
    suites += tuple(x for x in args.extra_suites.split(",") if x)
    if args.remeasure:
        for rid in ids:
            extra = remeasure(rid, tuple(args.remeasure.split(",")), args.keep_models, not args.stackfaq_only)
            extra.pop("skipped", None)
            print(f"{rid}: {json.dumps(extra)}", flush=True)
            results = load_results()
            results[rid]["metrics"].update(extra)
            results[rid].setdefault("remeasured", []).append(
                {"suites": args.remeasure, "when": time.strftime("%Y-%m-%d %H:%M")}
                | ({"sets": "stackfaq"} if args.stackfaq_only else {}))
            RESULTS.write_text(json.dumps(results, indent=1))
    elif not args.render:
        for rid in ids:
            if rid in results and not args.rerun:
                print(f"{rid}: already measured (use --rerun)")
                continue
            print(f"{rid}: {ROWS[rid]['label']}", flush=True)
            t0 = time.perf_counter()
            side: dict = {}
            row = run_row(rid, suites, args.warm_teacher, args.keep_models, side)
            print(f"{rid}: {json.dumps(row['metrics'])} ({(time.perf_counter() - t0) / 60:.1f} min)", flush=True)
            # re-read before writing: another run of this script may have added rows meanwhile
            results = merge_row(load_results(), row, side)
            RESULTS.parent.mkdir(parents=True, exist_ok=True)
            RESULTS.write_text(json.dumps(results, indent=1))
    render(results)
    print(f"wrote {DOC}")


if __name__ == "__main__":
    main()
