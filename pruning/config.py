"""PruneConfig: everything one pruning run is asked to do, as one value.

    cfg = PruneConfig.from_recipe("best", base="minilm", layers=3, out="minilm-3", distil=[...])
    card = pruning.run.run(cfg)

A field left None takes its recipe's setting (pruning.recipes), then the default; resolved() fills
them in, and the recipe itself when none is named (chosen by the data given, as `sbsearch prune`
always did). The plan is the recipe's stages, or `stages` spelled out ("hidden,sts:2").
"""

from __future__ import annotations

from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from typing import Callable, Sequence

from . import recipes
from .host import SbsearchError
from .layers import parse_layer_list
from .stages import parse_stages, stage_class

# the settings a recipe may imply (the rest of PruneConfig is the caller's alone)
RECIPE_SETTINGS = tuple(recipes.DEFAULTS)


@dataclass(frozen=True)
class PruneConfig:
    # what to cut, and where the result goes
    base: str = "full"
    layers: int | None = 6            # None: as many as keep_layers lists, else 6
    strategy: str | None = None
    out: str | Path | None = None
    keep_layers: Sequence[int] | str | None = None  # explicit 0-based layers, or "0,2,4"
    # recovery data: file paths, or pruning.data.Texts the caller read (e.g. an index's chunks)
    nli: Sequence = ()
    sts: Sequence = ()
    sts_dev: str | None = None
    distil: Sequence = ()
    distil_limit: int | None = None
    distil_split: bool | str | None = None
    sts_limit: int | None = None
    sts_sentences: int | None = None
    nli_limit: int | None = None
    teacher: str | None = None
    # the plan
    stages: str | Sequence[str] | None = None
    recipe: str | None = None
    # training
    epochs: float | None = None     # None: the recipe's (pruning.recipes), else 1
    batch_size: int | None = None
    lr: float | None = None
    max_length: int | None = None
    max_length_cap: int | None = None
    seed: int = 42
    bf16: bool = False
    freeze_embeddings: bool = True
    group_by_length: bool = True
    threads: int | None = None
    embedding_weight: float | None = None  # stage hidden: the sentence-embedding term's weight [recipe's, else 1]
    # evaluation and the run itself
    evaluate: Sequence[str] = ()
    compare: Sequence[str] = ("base", "cut")
    asymmetric: bool = False
    resume: bool = True
    force: bool = False

    @classmethod
    def from_recipe(cls, name: str | None, **overrides) -> "PruneConfig":
        """A recipe's configuration, resolved; `overrides` set any field (None: the recipe's)."""
        unknown = set(overrides) - {f.name for f in fields(cls)}
        if unknown:
            raise TypeError(f"PruneConfig has no field {sorted(unknown)[0]!r}")
        return cls(recipe=name, **overrides).resolved()

    def resolved(self) -> "PruneConfig":
        """The recipe chosen (when none is named and no stages are given: by the data), checked,
        and every setting left None filled in from it."""
        recipe = self.recipe
        if self.stages is None:
            if recipe is None:
                recipe = recipes.default_recipe(self.nli, self.sts, self.distil)
            elif recipe not in recipes.RECIPES:
                raise SbsearchError(f"unknown recipe {recipe!r} (recipes: {', '.join(recipes.RECIPES)})")
        else:
            recipe = recipe or recipes.CUSTOM
        preset = recipes.settings_of(recipe)
        if self.stages is not None:
            preset["lr"] = None  # a recipe's rate was measured on its own stages; spelled-out stages keep theirs
        filled = {k: (getattr(self, k) if getattr(self, k) is not None else preset[k]) for k in RECIPE_SETTINGS}
        keep = parse_layer_list(self.keep_layers) if isinstance(self.keep_layers, str) else self.keep_layers
        if self.strategy == "explicit" and not keep:
            raise SbsearchError("--strategy explicit needs --keep-layers, e.g. --keep-layers 0,2,4")
        n_layers = self.layers if self.layers is not None else len(keep) if keep else 6
        cfg = replace(self, recipe=recipe, keep_layers=keep or None, layers=n_layers, **filled)
        cfg.plan  # an unknown stage fails here, before anything is read
        return cfg

    @property
    def plan(self) -> list[tuple[str, float | None]]:
        """[(stage name, its own epochs or None)] in order."""
        if self.stages is not None:
            return parse_stages(self.stages)
        if self.recipe in recipes.RECIPES:
            return parse_stages(recipes.RECIPES[self.recipe].stages)
        return []

    def stage_lr(self, name: str) -> float:
        return self.lr or stage_class(name).default_lr

    def layer_strategy(self) -> str | None:
        """The strategy recorded and used: explicit when layers are listed."""
        return "explicit" if self.keep_layers else self.strategy


def split_setting(split: bool | None, whole: bool) -> bool | str | None:
    """distil_split from the two switches: cut into sentences (or not, or unset), and also keep each
    passage whole ("both"), which needs the cut."""
    if not whole:
        return split
    if split is False:
        raise SbsearchError("--distil-whole keeps passages beside their sentences; it needs --distil-split")
    return "both"


@dataclass
class RunHooks:
    """How a run talks to its caller (none of it changes the model).
    on_stage(index, name, model, stage_infos): after each stage trained in this run, e.g. to evaluate
    the intermediate model (NLI alone, before STS) without training it twice.
    on_step(step, total_steps, model): after each step of a hidden-state stage; raising
    train.RecoveryStopped there ends the run with nothing saved.
    quiet: no training output at all (neither a progress bar nor log lines), e.g. under --json.
    eval_data: where the evaluation suites find their data (pruning.evaluate.EvalData; default:
    the shared data sets, and no folder reader, so no sample_docs suite)."""
    progress: bool = True
    quiet: bool = False
    say: Callable[[str], None] = field(default=lambda s: None)
    on_stage: Callable | None = None
    on_step: Callable | None = None
    eval_data: object | None = None
