"""One call from a base model to an exported, evaluated, pruned model: prune(...).

    cut ─▶ stage ─▶ stage ─▶ … ─▶ save + pruning.json ─▶ evaluate (model, base, untrained cut)

Each finished stage is saved under <out>.stages/ so that running the same command again after an
interruption resumes after the last finished stage (same base, layers, stages, data and settings).
"""

from __future__ import annotations

import hashlib
import json
import random
import shutil
import time
from pathlib import Path
from typing import Callable, Sequence

from sbsearch import config
from sbsearch.errors import SbsearchError

from . import card as card_mod
from . import data, layers
from .train import Stage, TrainConfig, config_dict, train_hidden_stage, train_stage

# Recipes: the stage lists `--recipe` stands for, and the settings each one implies unless given
# explicitly. "paper" is Shelke et al.: NLI (1 epoch) then STS (2 epochs, as in issue #3's reference
# measurement). "best" is the default when both --nli and --sts are given: the fastest recipe measured
# to keep retrieval close to the full model (docs/PRUNING.md). A "name:epochs" stage keeps its epochs
# whatever --epochs says (--epochs sets the others); --stages spells out any other plan.
RECIPES: dict[str, list[str]] = {
    "best": ["hidden"],
    "best-long": ["hidden"],
    "paper": ["nli", "sts:2"],
    "nli": ["nli"],
    "sts": ["sts"],
    "distil": ["distil"],
    "hidden": ["hidden"],
    "distil-nli-sts": ["distil", "nli", "sts:2"],
}
RECIPE_SETTINGS: dict[str, dict] = {
    # hidden-state distillation toward the full model (every kept layer, token by token) on the --distil
    # text (e.g. the documents to be searched; else the --nli/--sts text): 1,500 of its sentences, its
    # passages whole (up to 256 tokens: the student must also embed whole documents), plus 3,000
    # sentences of the --sts file; length-grouped batches of 16, evenly spread layers.
    # Measured (benchmarks/pruning_table.py, docs/PRUNING.md findings 10-14): sentences only, 13 min,
    # StackFAQ 93% of full; + the passages whole, 22 min, 97.8%; with the sentences sampled to 2,000,
    # 16 min, 95.8%. 1,500 keeps it within 15 minutes; batches of 16 instead of 32 (twice the steps)
    # cost 1.7 min and gained on every column (14.4 min, 96.3% / 96.2% of full). `best-long` keeps every
    # sentence (measured at batch 32). A CoSENT STS stage after distillation cost retrieval for +0.008 STS-B.
    "best": {"strategy": "alternate", "distil_split": "both", "distil_limit": 1500, "sts_sentences": 3000,
             "batch_size": 16, "max_length_cap": 256},
    "best-long": {"strategy": "alternate", "distil_split": "both", "distil_limit": 12000, "sts_sentences": 3000,
                  "batch_size": 32, "max_length_cap": 256},
    "paper": {"strategy": "top"},
}
DEFAULTS = {"strategy": "top", "distil_split": False, "distil_limit": None, "sts_limit": None, "sts_sentences": None,
            "batch_size": 32, "max_length_cap": 128}
DEFAULT_RECIPE = "best"
STAGE_NAMES = ("nli", "sts", "distil", "mix", "hidden")
STAGE_LR = {"nli": 2e-5, "sts": 2e-5, "distil": 1e-4, "mix": 1e-4, "hidden": 1e-4}
TEACHER_STAGES = {"distil", "mix", "hidden"}


def resolve_out(out: str | Path) -> Path:
    """A bare name (no slash) lands in models_dir(); anything else is a path."""
    s = str(out)
    if "/" not in s and "\\" not in s and not s.startswith("."):
        return config.models_dir() / s
    return Path(s).expanduser()


def parse_stages(spec: str | Sequence[str]) -> list[tuple[str, float | None]]:
    """'distil,nli,sts:2' -> [('distil', None), ('nli', None), ('sts', 2.0)] (name[:epochs])."""
    items = [s.strip() for s in (spec.split(",") if isinstance(spec, str) else spec) if s and s.strip()]
    out = []
    for item in items:
        name, _, ep = item.partition(":")
        name = name.strip().lower()
        if name not in STAGE_NAMES:
            raise SbsearchError(f"unknown stage {name!r} (stages: {', '.join(STAGE_NAMES)})")
        try:
            out.append((name, float(ep) if ep else None))
        except ValueError:
            raise SbsearchError(f"stage {item!r}: epochs after ':' must be a number") from None
    return out


def _data_entry(path, role: str) -> dict:
    p = Path(str(path))
    if p.is_file():
        return {"path": str(p), "role": role, "sha256": data.file_sha256(p)}
    if p.is_dir() and (p / "index.db").exists():
        return {"path": str(p), "role": role, "sha256": data.file_sha256(p / "index.db")}
    return {"path": str(p), "role": role, "sha256": ""}


def _default_sts_dev() -> Path | None:
    p = config.shared_data_dir() / "stsb" / "sts-dev.csv"
    return p if p.exists() else None


def distil_texts(sources: Sequence[str], split: bool | str, limit: int | None, seed: int,
                 extra: Sequence[str] = ()) -> list[str]:
    """The distillation text: the sources' passages, cut into sentences when `split` (at most `limit`
    of them, a seeded sample), then the `extra` texts (cut the same way), then with split="both" the
    passages whole again (at most `limit` of them too). The limit applies to the sources' own texts
    only: sampling fewer sentences never drops the extra sentences or the whole passages."""
    passages = data.read_sentences(list(sources), seed=seed)
    own = data.dedupe(data.split_sentences(passages)) if split else passages
    whole = passages if split == "both" else []
    if limit and len(own) > limit:
        own = random.Random(seed).sample(own, limit)
    if limit and len(whole) > limit:
        whole = random.Random(seed).sample(whole, limit)
    extra = data.split_sentences(list(extra)) if split else list(extra)
    return data.dedupe(own + extra + whole)


def prune(
    base: str = "full",
    layers_to_keep: int | None = 6,
    strategy: str | None = None,
    out: str | Path | None = None,
    *,
    keep_layers: Sequence[int] | None = None,
    nli: Sequence[str] = (),
    sts: Sequence[str] = (),
    sts_dev: str | None = None,
    distil: Sequence[str] = (),
    distil_limit: int | None = None,
    distil_split: bool | str | None = None,
    sts_limit: int | None = None,
    sts_sentences: int | None = None,
    nli_limit: int | None = None,
    teacher: str | None = None,
    stages: str | Sequence[str] | None = None,
    recipe: str | None = None,
    epochs: float = 1.0,
    batch_size: int | None = None,
    lr: float | None = None,
    max_length: int | None = None,
    max_length_cap: int | None = None,
    seed: int = 42,
    bf16: bool = False,
    freeze_embeddings: bool = True,
    group_by_length: bool = True,
    threads: int | None = None,
    evaluate: Sequence[str] = (),
    compare: Sequence[str] = ("base", "cut"),
    asymmetric: bool = False,
    resume: bool = True,
    force: bool = False,
    progress: bool = True,
    quiet: bool = False,
    say: Callable[[str], None] = lambda s: None,
    on_stage: Callable[[int, str, object, list], None] | None = None,
    on_step: Callable[[int, int, object], None] | None = None,
) -> dict:
    """Cut `base` to `layers_to_keep` layers by `strategy`, recover in stages, save to `out` with
    pruning.json and README.md, evaluate. Returns the card (a dict).
    on_stage(index, name, model, stage_infos) is called after each stage trained in this run, e.g. to
    evaluate the intermediate model (NLI alone, before STS) without training it twice.
    on_step(step, total_steps, model) is called after each step of a hidden-state stage (see
    train.train_hidden_stage); raising train.RecoveryStopped there ends the run with nothing saved.
    quiet: no training output at all (neither a progress bar nor log lines), e.g. under --json."""
    from sbsearch.embed.models import load_model, offline_environment, resolve

    t_start = time.perf_counter()
    offline_environment()
    if out is None:
        raise SbsearchError("give --out DIR or NAME for the pruned model")
    out_dir = resolve_out(out)
    if out_dir.exists() and any(out_dir.iterdir()) and not force:
        if not (out_dir / card_mod.CARD_FILE).exists():
            raise SbsearchError(f"{out_dir} exists and is not a pruned model; choose another --out")
        raise SbsearchError(f"{out_dir} already holds a pruned model; use --force to replace it")

    # ---- plan: which stages, on which data (read now so bad files fail before any training)
    if stages is None:
        if recipe is None:
            recipe = DEFAULT_RECIPE if (nli and sts) else "nli" if nli else "sts" if sts else \
                "distil" if distil else None
        if recipe is None:
            plan = []
        elif recipe not in RECIPES:
            raise SbsearchError(f"unknown recipe {recipe!r} (recipes: {', '.join(RECIPES)})")
        else:
            plan = parse_stages(RECIPES[recipe])
    else:
        plan = parse_stages(stages)
        recipe = recipe or "custom"
    # recipe settings fill whatever the caller left unset (None)
    given = {"strategy": strategy, "distil_split": distil_split, "distil_limit": distil_limit,
             "sts_sentences": sts_sentences,
             "sts_limit": sts_limit, "batch_size": batch_size, "max_length_cap": max_length_cap}
    preset = {**DEFAULTS, **RECIPE_SETTINGS.get(recipe or "", {})}
    settings = {k: (v if v is not None else preset[k]) for k, v in given.items()}
    strategy, distil_split, distil_limit = settings["strategy"], settings["distil_split"], settings["distil_limit"]
    sts_limit, batch_size, max_length_cap = settings["sts_limit"], settings["batch_size"], settings["max_length_cap"]
    sts_sentences = settings["sts_sentences"]
    names = {n for n, _ in plan}
    if "nli" in names and not nli:
        raise SbsearchError("stage nli needs --nli FILE (premise/hypothesis/label or anchor/positive/negative)")
    if ({"sts", "mix"} & names) and not sts:
        raise SbsearchError("stage sts needs --sts FILE (sentence pairs with a score)")

    info = resolve(base)
    info.verify()
    base_sha = info.weights_sha256() or ""
    triplets = [t for f in nli for t in data.read_triplets(f)] if "nli" in names else []
    pairs = [p for f in sts for p in data.read_sts(f)] if ({"sts", "mix"} & names) else []
    if nli_limit and len(triplets) > nli_limit:
        triplets = random.Random(seed).sample(triplets, nli_limit)
    if sts_limit and len(pairs) > sts_limit:
        pairs = random.Random(seed).sample(pairs, sts_limit)
    dev_file = sts_dev or (_default_sts_dev() if "sts" in names else None)
    dev = data.read_sts(dev_file) if dev_file else None
    sentences: list[str] = []
    if TEACHER_STAGES & names:
        sources = list(distil) or list(nli) + list(sts)
        if not sources:
            raise SbsearchError("stage distil needs text: --distil FILE|DIR|INDEX (or --nli/--sts files)")
        extra: list[str] = []
        if sts_sentences and distil and sts:
            # short, query-like STS sentences join the searched text: they hold STS-B at the full
            # model's level (measured: 0.801 without them, 0.839 with 3,000; docs/PRUNING.md)
            extra = data.read_sentences(list(sts), limit=sts_sentences, seed=seed)
        sentences = distil_texts(sources, distil_split, distil_limit, seed, extra)
    data_entries = ([_data_entry(f, "nli") for f in nli] + [_data_entry(f, "sts") for f in sts]
                    + ([_data_entry(dev_file, "sts-dev")] if dev_file else [])
                    + [_data_entry(f, "distil") for f in distil])

    cfg = TrainConfig(epochs=epochs, batch_size=batch_size, lr=lr or 2e-5, max_length=max_length,
                      max_length_cap=max_length_cap, seed=seed, bf16=bf16,
                      freeze_embeddings=freeze_embeddings, group_by_length=group_by_length, threads=threads,
                      progress=progress and not quiet, log_lines=not quiet)

    def stage_for(name: str, ep: float | None) -> Stage:
        stage_lr = lr or STAGE_LR[name]
        if name == "nli":
            return Stage("nli", triplets, epochs=ep, lr=stage_lr)
        if name == "sts":
            return Stage("sts", pairs, dev=dev, epochs=ep, lr=stage_lr)
        if name in ("distil", "hidden"):
            return Stage(name, sentences, epochs=ep, lr=stage_lr)
        return Stage("mix", sentences, dev=dev, epochs=ep, lr=stage_lr, extra_rows=pairs)

    # ---- cut
    model, _ = load_model(info)
    total = layers.count_layers(model)
    kept = layers.choose_layers(total, layers_to_keep, "explicit" if keep_layers else strategy, keep_layers)
    layers.cut_model(model, kept)
    say(f"cut {info.name}: kept layers {kept} of {total}")

    plan_key = hashlib.sha256(json.dumps({
        "base": base_sha, "kept": kept, "plan": plan, "cfg": config_dict(cfg), "lr": lr,
        "data": [d["sha256"] for d in data_entries], "distil_n": len(sentences), "sts_sentences": sts_sentences, "split": distil_split, "limits": [sts_limit, nli_limit], "teacher": teacher,
    }, sort_keys=True).encode()).hexdigest()[:16]

    # ---- resume: the last finished stage of this exact plan
    work = out_dir.parent / f".{out_dir.name}.stages"
    infos: list[dict] = []
    start = 0
    if resume and work.exists():
        for i in reversed(range(len(plan))):
            marker = work / f"{i}-{plan[i][0]}" / "stage.json"
            if marker.exists():
                saved = json.loads(marker.read_text())
                if saved.get("plan") == plan_key:
                    from sentence_transformers import SentenceTransformer

                    model = SentenceTransformer(str(marker.parent), device="cpu", local_files_only=True)
                    infos = saved["infos"]
                    start = i + 1
                    say(f"resuming after stage {i + 1}/{len(plan)} ({plan[i][0]}) from {marker.parent}")
                    break

    # ---- recover
    teacher_model = None
    teacher_sha = ""
    if any(n in TEACHER_STAGES for n, _ in plan[start:]):
        tinfo = resolve(teacher or base)
        teacher_model, _ = load_model(tinfo)
        teacher_sha = tinfo.weights_sha256() or tinfo.name
        if any(n == "hidden" for n, _ in plan[start:]) and layers.count_layers(teacher_model) != total:
            # the student's kept layers are numbered in the base's stack; the teacher must share it
            raise SbsearchError(f"stage hidden: the teacher has {layers.count_layers(teacher_model)} layers, "
                                f"the base {total}; use the base itself (or a model with its layers) as teacher")
    for i in range(start, len(plan)):
        name, ep = plan[i]
        stage = stage_for(name, ep)
        say(f"stage {i + 1}/{len(plan)}: {name} on {len(stage.rows)} rows")
        if name == "hidden":
            infos.append(train_hidden_stage(model, stage, cfg, teacher_model, kept, on_step=on_step))
        else:
            infos.append(train_stage(model, stage, cfg, teacher_model, teacher_sha))
        say(f"stage {name} done in {infos[-1]['seconds']:.0f} s"
            + (f" (STS dev ρ {infos[-1]['dev_spearman']:.4f})" if "dev_spearman" in infos[-1] else ""))
        if i < len(plan) - 1:  # the last stage is saved as the model itself
            d = work / f"{i}-{name}"
            model.save(str(d))
            (d / "stage.json").write_text(json.dumps({"plan": plan_key, "infos": infos}, indent=1))
        if on_stage is not None:
            was_training = model.training
            on_stage(i, name, model, list(infos))
            model.train(was_training)
    del teacher_model

    # ---- export
    tmp_out = out_dir.parent / f".{out_dir.name}.tmp"
    if tmp_out.exists():
        shutil.rmtree(tmp_out)
    tmp_out.parent.mkdir(parents=True, exist_ok=True)
    model.save(str(tmp_out))
    train_seconds = round(sum(s.get("seconds", 0) for s in infos), 1)
    # a base that was itself pruned: layer numbers and counts refer to the original model
    parent = info.card if info.card.get("kept_layers") and len(info.card["kept_layers"]) == total else {}
    card = {
        "name": out_dir.name,
        "base_model": info.name if info.kind == "builtin" else str(info.path),
        "base_path": str(info.path),
        "base_weights_sha256": base_sha,
        "base_layers": int(parent.get("base_layers", total)),
        # what the base reads (sbsearch.embed.models.model_languages): a cut keeps its vocabulary
        "languages": list(info.languages),
        "layers": len(kept),
        "strategy": "explicit" if keep_layers else strategy,
        "kept_layers": [parent["kept_layers"][i] for i in kept] if parent else kept,
        **({"cut_from": {"model": str(info.path), "layers": total, "kept": kept,
                         "original_base": parent.get("base_model")}} if parent else {}),
        "recipe": recipe,
        "stages": infos,
        "data": data_entries,
        "hyperparameters": {**config_dict(cfg), "stage_lr": {n: (lr or STAGE_LR[n]) for n, _ in plan},
                            "distil_limit": distil_limit, "distil_split": distil_split, "sts_limit": sts_limit, "sts_sentences": sts_sentences, "nli_limit": nli_limit,
                            "sts_pairs": len(pairs), "nli_triplets": len(triplets), "distil_texts": len(sentences),
                            "teacher": teacher or info.name},
        "seconds": {"stages": {f"{i + 1}-{s['stage']}": s["seconds"] for i, s in enumerate(infos)},
                    "training": train_seconds},
        "metrics": {},
        "created": time.strftime("%Y-%m-%dT%H:%M:%S"),
    }
    if out_dir.exists():
        shutil.rmtree(out_dir)
    tmp_out.rename(out_dir)
    card = card_mod.write_card(out_dir, card)

    # ---- evaluate: the model, its base and the untrained cut, in one run
    if evaluate:
        card["metrics"] = evaluate_against(model, info, kept, evaluate, compare, say,
                                           resolve(teacher) if (asymmetric and teacher) else asymmetric)
        card["seconds"]["evaluation"] = round(time.perf_counter() - t_start - train_seconds, 1)
        card = card_mod.write_card(out_dir, card)
    if work.exists():
        shutil.rmtree(work)
    card["path"] = str(out_dir)
    return card


def evaluate_against(model, base_info, kept, suites, compare=("base", "cut"), say=lambda s: None,
                     asymmetric=False) -> dict:
    """Metrics of `model` and, on request, of its base and of the same cut without training.
    asymmetric: also retrieval with documents embedded by the base (or by this ModelInfo, e.g. the
    teacher) and queries by `model`."""
    from sbsearch.embed.models import load_model

    from . import evaluate as ev

    ed = ev.EvalData.default()
    cache: dict = {}
    base_model = doc_model = None
    if "base" in compare or "cut" in compare or asymmetric is True:
        base_model, _ = load_model(base_info)
        base_model._sbsearch_sha = base_info.weights_sha256() or ""  # lets evaluate cache its passage vectors
        doc_model = base_model if asymmetric is True else None
    if asymmetric and asymmetric is not True:
        doc_model, _ = load_model(asymmetric)
        doc_model._sbsearch_sha = asymmetric.weights_sha256() or ""
    results = {"model": ev.evaluate_model(model, suites, ed, cache, progress=lambda s: say(f"model: {s}"),
                                          doc_model=doc_model)}
    if base_model is not None:
        if "base" in compare:
            results["base"] = ev.evaluate_model(base_model, suites, ed, cache, progress=lambda s: say(f"base: {s}"))
        if "cut" in compare:
            layers.cut_model(base_model, kept)
            results["cut"] = ev.evaluate_model(base_model, suites, ed, cache, progress=lambda s: say(f"untrained cut: {s}"))
    return results
