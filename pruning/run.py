"""One pruning run, from a base model to an exported, evaluated, pruned model:

    cut ─▶ resume ─▶ recover (stage ─▶ stage ─▶ …) ─▶ export (save + pruning.json) ─▶ evaluate

    card = run(PruneConfig.from_recipe("best", base="minilm", layers=3, out="minilm-3", distil=[...]))

Each finished stage is saved under .<out>.stages/ so that running the same configuration again after
an interruption resumes after the last finished stage (same base, layers, stages, data and settings).
"""

from __future__ import annotations

import hashlib
import json
import shutil
import time
from pathlib import Path

from . import card as card_mod
from . import host, layers
from .config import PruneConfig, RunHooks
from .host import SbsearchError
from .inputs import RecoveryInputs
from .stages import stage_class
from .train import TrainConfig, config_dict


def resolve_out(out: str | Path) -> Path:
    """A bare name (no slash) lands in the models folder; anything else is a path."""
    s = str(out)
    if "/" not in s and "\\" not in s and not s.startswith("."):
        return host.models_dir() / s
    return Path(s).expanduser()


def run(cfg: PruneConfig, hooks: RunHooks | None = None) -> dict:
    """Cut, recover, export, evaluate; returns the model's card (a dict, with its "path")."""
    return PruneRun(cfg.resolved(), hooks or RunHooks()).run()


def original_of(card: dict) -> str | None:
    """The model a pruned model was first cut from, however many cuts ago (a name or a path)."""
    return (card.get("cut_from") or {}).get("original_base") or card.get("base_model")


class PruneRun:
    def __init__(self, cfg: PruneConfig, hooks: RunHooks):
        self.cfg, self.hooks, self.say = cfg, hooks, hooks.say
        self.plan = cfg.plan
        self.classes = [stage_class(n) for n, _ in self.plan]
        self.teacher_kept: list[int] | None = None  # set with the teacher: see kept_in_stack_of

    def run(self) -> dict:
        t_start = time.perf_counter()
        host.offline_environment()
        self.out_dir = self.check_out()
        self.prepare()
        model = self.cut()
        model, infos, start = self.resume(model)
        infos = self.recover(model, infos, start)
        card = self.export(model, infos)
        if self.cfg.evaluate:
            card = self.evaluate(model, card, t_start)
        if self.work.exists():
            shutil.rmtree(self.work)
        card["path"] = str(self.out_dir)
        return card

    # ---- plan: which stages, on which data (read now so bad files fail before any training)
    def check_out(self) -> Path:
        if self.cfg.out is None:
            raise SbsearchError("give --out DIR or NAME for the pruned model")
        out_dir = resolve_out(self.cfg.out)
        if out_dir.exists() and any(out_dir.iterdir()) and not self.cfg.force:
            if not (out_dir / card_mod.CARD_FILE).exists():
                raise SbsearchError(f"{out_dir} exists and is not a pruned model; choose another --out")
            raise SbsearchError(f"{out_dir} already holds a pruned model; use --force to replace it")
        return out_dir

    def prepare(self) -> None:
        cfg = self.cfg
        RecoveryInputs.check(cfg, self.classes)
        self.info = host.resolve_model(cfg.base)
        self.info.verify()
        self.base_sha = self.info.weights_sha256() or ""
        self.inputs = RecoveryInputs.read(cfg, self.classes)
        self.data_entries = self.inputs.entries(cfg)
        self.train_cfg = TrainConfig(
            epochs=cfg.epochs, batch_size=cfg.batch_size, lr=cfg.lr or 2e-5, max_length=cfg.max_length,
            max_length_cap=cfg.max_length_cap, seed=cfg.seed, bf16=cfg.bf16, freeze_embeddings=cfg.freeze_embeddings,
            group_by_length=cfg.group_by_length, threads=cfg.threads, embedding_weight=cfg.embedding_weight,
            progress=self.hooks.progress and not self.hooks.quiet, log_lines=not self.hooks.quiet)
        self.work = self.out_dir.parent / f".{self.out_dir.name}.stages"

    # ---- cut
    def cut(self):
        model, _ = host.load_model(self.info)
        self.total = layers.count_layers(model)
        self.kept = layers.choose_layers(self.total, self.cfg.layers, self.cfg.layer_strategy(), self.cfg.keep_layers)
        layers.cut_model(model, self.kept)
        self.say(f"cut {self.info.name}: kept layers {self.kept} of {self.total}")
        self.plan_key = self.key()
        return model

    def key(self) -> str:
        """What a saved stage must match to be resumed from: base, layers, plan, settings, data."""
        cfg = self.cfg
        return hashlib.sha256(json.dumps({
            "base": self.base_sha, "kept": self.kept, "plan": self.plan, "cfg": config_dict(self.train_cfg),
            "lr": cfg.lr, "data": [d["sha256"] for d in self.data_entries], "distil_n": len(self.inputs.sentences),
            "sts_sentences": cfg.sts_sentences, "split": cfg.distil_split, "limits": [cfg.sts_limit, cfg.nli_limit],
            "teacher": cfg.teacher,
        }, sort_keys=True).encode()).hexdigest()[:16]

    # ---- resume: the last finished stage of this exact plan
    def resume(self, model):
        if not (self.cfg.resume and self.work.exists()):
            return model, [], 0
        for i in reversed(range(len(self.plan))):
            marker = self.work / f"{i}-{self.plan[i][0]}" / "stage.json"
            if marker.exists():
                saved = json.loads(marker.read_text())
                if saved.get("plan") == self.plan_key:
                    from sentence_transformers import SentenceTransformer

                    model = SentenceTransformer(str(marker.parent), device="cpu", local_files_only=True)
                    self.say(f"resuming after stage {i + 1}/{len(self.plan)} ({self.plan[i][0]}) from {marker.parent}")
                    return model, saved["infos"], i + 1
        return model, [], 0

    # ---- recover
    def teacher(self, start: int):
        """The teacher model and its sha256, when a stage still to run needs one."""
        if not any(c.needs_teacher for c in self.classes[start:]):
            return None, ""
        tinfo = host.resolve_model(self.cfg.teacher or self.cfg.base)
        teacher_model, _ = host.load_model(tinfo)
        self.teacher_kept, stack = self.kept_in_stack_of(teacher_model, tinfo)
        for cls in self.classes[start:]:
            cls.check_teacher(teacher_model, stack)
        return teacher_model, tinfo.weights_sha256() or tinfo.name

    def kept_in_stack_of(self, teacher_model, tinfo) -> tuple[list[int], int]:
        """The kept layers numbered in the teacher's stack, and that stack's size. Normally the base's
        own numbering. When the base is itself a cut of the teacher (its card names the teacher as the
        original model and lists which of its layers the cut kept), the kept layers are mapped through
        that list: a cut can be cut again and still learn from the original (progressive pruning,
        e.g. 12 → 6 → 4), each layer pulled toward the original's states."""
        parent = self.parent_card()
        original = int(parent.get("base_layers") or 0)
        if (parent and original != self.total and original_of(parent) in (tinfo.name, str(tinfo.path))
                and layers.count_layers(teacher_model) == original):
            return [int(parent["kept_layers"][i]) for i in self.kept], original
        return list(self.kept), self.total

    def parent_card(self) -> dict:
        """The base's own card when the base was itself pruned (its layer numbers and counts refer to
        the original model), else {}."""
        card = self.info.card
        return card if card.get("kept_layers") and len(card["kept_layers"]) == self.total else {}

    def recover(self, model, infos: list[dict], start: int) -> list[dict]:
        teacher_model, teacher_sha = self.teacher(start)
        for i in range(start, len(self.plan)):
            name, epochs = self.plan[i]
            stage = self.classes[i].from_inputs(self.inputs, epochs=epochs, lr=self.cfg.stage_lr(name),
                                                teacher=teacher_model, teacher_sha=teacher_sha)
            self.say(f"stage {i + 1}/{len(self.plan)}: {name} on {len(stage.rows)} rows")
            infos.append(stage.train(model, self.train_cfg, self.teacher_kept or self.kept, on_step=self.hooks.on_step))
            self.say(f"stage {name} done in {infos[-1]['seconds']:.0f} s"
                     + (f" (STS dev ρ {infos[-1]['dev_spearman']:.4f})" if "dev_spearman" in infos[-1] else ""))
            if i < len(self.plan) - 1:  # the last stage is saved as the model itself
                d = self.work / f"{i}-{name}"
                model.save(str(d))
                (d / "stage.json").write_text(json.dumps({"plan": self.plan_key, "infos": infos}, indent=1))
            if self.hooks.on_stage is not None:
                was_training = model.training
                self.hooks.on_stage(i, name, model, list(infos))
                model.train(was_training)
        return infos

    # ---- export
    def export(self, model, infos: list[dict]) -> dict:
        out_dir = self.out_dir
        tmp_out = out_dir.parent / f".{out_dir.name}.tmp"
        if tmp_out.exists():
            shutil.rmtree(tmp_out)
        tmp_out.parent.mkdir(parents=True, exist_ok=True)
        model.save(str(tmp_out))
        card = self.card(infos)
        if out_dir.exists():
            shutil.rmtree(out_dir)
        tmp_out.rename(out_dir)
        return card_mod.write_card(out_dir, card)

    def card(self, infos: list[dict]) -> dict:
        cfg, info, kept, total = self.cfg, self.info, self.kept, self.total
        parent = self.parent_card()
        return {
            "name": self.out_dir.name,
            "base_model": info.name if info.kind == "builtin" else str(info.path),
            "base_path": str(info.path),
            "base_weights_sha256": self.base_sha,
            "base_layers": int(parent.get("base_layers", total)),
            # what the base reads (sbsearch.embed.models.model_languages): a cut keeps its vocabulary
            "languages": list(info.languages),
            "layers": len(kept),
            "strategy": cfg.layer_strategy(),
            "kept_layers": [parent["kept_layers"][i] for i in kept] if parent else kept,
            **({"cut_from": {"model": str(info.path), "layers": total, "kept": kept,
                             "original_base": original_of(parent)}} if parent else {}),
            "recipe": cfg.recipe,
            "stages": infos,
            "data": self.data_entries,
            "hyperparameters": self.hyperparameters(),
            "seconds": {"stages": {f"{i + 1}-{s['stage']}": s["seconds"] for i, s in enumerate(infos)},
                        "training": round(sum(s.get("seconds", 0) for s in infos), 1)},
            "metrics": {},
            "created": time.strftime("%Y-%m-%dT%H:%M:%S"),
        }

    def hyperparameters(self) -> dict:
        cfg, inputs = self.cfg, self.inputs
        return {**config_dict(self.train_cfg), "stage_lr": {n: cfg.stage_lr(n) for n, _ in self.plan},
                "distil_limit": cfg.distil_limit, "distil_split": cfg.distil_split, "sts_limit": cfg.sts_limit,
                "sts_sentences": cfg.sts_sentences, "nli_limit": cfg.nli_limit,
                "sts_pairs": len(inputs.pairs), "nli_triplets": len(inputs.triplets),
                "distil_texts": len(inputs.sentences), "teacher": cfg.teacher or self.info.name}

    # ---- evaluate: the model, its base and the untrained cut, in one run
    def evaluate(self, model, card: dict, t_start: float) -> dict:
        cfg = self.cfg
        doc_model = host.resolve_model(cfg.teacher) if (cfg.asymmetric and cfg.teacher) else cfg.asymmetric
        card["metrics"] = evaluate_against(model, self.info, self.kept, cfg.evaluate, cfg.compare, self.say,
                                           doc_model, self.hooks.eval_data)
        card["seconds"]["evaluation"] = round(time.perf_counter() - t_start - card["seconds"]["training"], 1)
        return card_mod.write_card(self.out_dir, card)


def evaluate_against(model, base_info, kept, suites, compare=("base", "cut"), say=lambda s: None,
                     asymmetric=False, ed=None) -> dict:
    """Metrics of `model` and, on request, of its base and of the same cut without training.
    asymmetric: also retrieval with documents embedded by the base (or by this ModelInfo, e.g. the
    teacher) and queries by `model`. ed: the evaluation data (pruning.evaluate.EvalData)."""
    from . import evaluate as ev

    ed = ed or ev.EvalData.default()
    cache: dict = {}
    base_model = doc_model = None
    if "base" in compare or "cut" in compare or asymmetric is True:
        base_model, _ = host.load_model(base_info)
        base_model._sbsearch_sha = base_info.weights_sha256() or ""  # lets evaluate cache its passage vectors
        doc_model = base_model if asymmetric is True else None
    if asymmetric and asymmetric is not True:
        doc_model, _ = host.load_model(asymmetric)
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
