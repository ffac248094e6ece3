"""prune(...): the keyword form of one pruning run, kept for the callers written against it.

    card = prune("full", 6, "top", "mpnet-pruned-6", nli=[...], sts=[...])

It builds a PruneConfig (pruning.config) and RunHooks and calls pruning.run.run; new code can do
that itself. The tables of earlier versions are here under their old names, read from where they
live now (pruning.recipes, pruning.stages).
"""

from __future__ import annotations

from dataclasses import fields
from pathlib import Path

from . import recipes
from .config import PruneConfig, RunHooks
from .inputs import distil_texts  # noqa: F401  (its old home)
from .run import evaluate_against, resolve_out, run  # noqa: F401
from .stages import STAGES, parse_stages  # noqa: F401

RECIPES = {name: list(r.stages) for name, r in recipes.RECIPES.items()}
RECIPE_SETTINGS = {name: dict(r.settings) for name, r in recipes.RECIPES.items() if r.settings}
DEFAULTS = dict(recipes.DEFAULTS)
DEFAULT_RECIPE = recipes.DEFAULT_RECIPE
STAGE_NAMES = tuple(STAGES)
STAGE_LR = {name: cls.default_lr for name, cls in STAGES.items()}
TEACHER_STAGES = {name for name, cls in STAGES.items() if cls.needs_teacher}

_HOOKS = {f.name for f in fields(RunHooks)}


def prune(base: str = "full", layers_to_keep: int | None = 6, strategy: str | None = None,
          out: str | Path | None = None, **options) -> dict:
    """Cut `base` to `layers_to_keep` layers by `strategy`, recover in stages, save to `out` with
    pruning.json and README.md, evaluate. Returns the card (a dict).
    options: any PruneConfig field (nli=, sts=, distil=, recipe=, stages=, evaluate=, ...) and any
    RunHooks field (progress=, quiet=, say=, on_stage=, on_step=, eval_data=)."""
    hooks = RunHooks(**{k: v for k, v in options.items() if k in _HOOKS})
    settings = {k: v for k, v in options.items() if k not in _HOOKS}
    cfg = PruneConfig(base=base, layers=layers_to_keep, strategy=strategy, out=out, **settings)
    return run(cfg, hooks)
