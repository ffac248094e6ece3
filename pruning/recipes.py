"""Recipes: the stage lists `--recipe` stands for, and the settings each one implies unless given.

A recipe is data: its stages ("name" or "name:epochs"; a stage with its own epochs keeps them
whatever --epochs says) and the settings it fills in where the caller left them unset. Adding a
recipe is one entry here; its stages must be registered in pruning.stages.

"paper" is Shelke et al.: NLI (1 epoch) then STS (2 epochs, as in issue #3's reference measurement);
"paper-softmax" the same with NLI as Sentence-BERT's classifier (for NLI data without triplets).
"best" is the default when both --nli and --sts are given: the fastest recipe measured to keep
retrieval close to the full model (docs/PRUNING.md).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Mapping


@dataclass(frozen=True)
class Recipe:
    stages: tuple[str, ...]
    settings: Mapping[str, object] = field(default_factory=lambda: MappingProxyType({}))


# What a setting is when neither the caller nor the recipe sets it.
DEFAULTS: Mapping[str, object] = MappingProxyType({
    "strategy": "top", "distil_split": False, "distil_limit": None, "sts_limit": None, "sts_sentences": None,
    "batch_size": 32, "max_length_cap": 128,
})

RECIPES: Mapping[str, Recipe] = MappingProxyType({
    # hidden-state distillation toward the full model (every kept layer, token by token) on the --distil
    # text (e.g. the documents to be searched; else the --nli/--sts text): 1,500 of its sentences, its
    # passages whole (up to 256 tokens: the student must also embed whole documents), plus 3,000
    # sentences of the --sts file; length-grouped batches of 16, evenly spread layers.
    # Measured (benchmarks/pruning_table.py, docs/PRUNING.md findings 10-14): sentences only, 13 min,
    # StackFAQ 93% of full; + the passages whole, 22 min, 97.8%; with the sentences sampled to 2,000,
    # 16 min, 95.8%. 1,500 keeps it within 15 minutes; batches of 16 instead of 32 (twice the steps)
    # cost 1.7 min and gained on every column (14.4 min, 96.3% / 96.2% of full). `best-long` keeps every
    # sentence (measured at batch 32). A CoSENT STS stage after distillation cost retrieval for +0.008 STS-B.
    "best": Recipe(("hidden",), MappingProxyType({
        "strategy": "alternate", "distil_split": "both", "distil_limit": 1500, "sts_sentences": 3000,
        "batch_size": 16, "max_length_cap": 256})),
    "best-long": Recipe(("hidden",), MappingProxyType({
        "strategy": "alternate", "distil_split": "both", "distil_limit": 12000, "sts_sentences": 3000,
        "batch_size": 32, "max_length_cap": 256})),
    "paper": Recipe(("nli", "sts:2"), MappingProxyType({"strategy": "top"})),
    # the paper's plan where NLI data yields no triplets (JGLUE's JNLI: one hypothesis per premise):
    # NLI by Sentence-BERT's softmax classifier over every labelled pair, then STS ×2
    "paper-softmax": Recipe(("nli-softmax", "sts:2"), MappingProxyType({"strategy": "top"})),
    "nli": Recipe(("nli",)),
    "sts": Recipe(("sts",)),
    "distil": Recipe(("distil",)),
    "hidden": Recipe(("hidden",)),
    "distil-nli-sts": Recipe(("distil", "nli", "sts:2")),
})
DEFAULT_RECIPE = "best"
# A plan given stage by stage (--stages) without --recipe is recorded under this name.
CUSTOM = "custom"


def default_recipe(nli, sts, distil) -> str | None:
    """The recipe when none is named: best with both NLI and STS data, else the one the data allows."""
    if nli and sts:
        return DEFAULT_RECIPE
    return "nli" if nli else "sts" if sts else "distil" if distil else None


def settings_of(recipe: str | None) -> dict:
    """Every setting a recipe implies: its own over DEFAULTS (an unknown or custom name: DEFAULTS)."""
    own = RECIPES[recipe].settings if recipe in RECIPES else {}
    return {**DEFAULTS, **own}
