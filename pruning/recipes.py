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
    "batch_size": 32, "max_length_cap": 128, "epochs": 1.0, "lr": None, "embedding_weight": 1.0,
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
    # `best` for multilingual-e5-small, measured on it (benchmarks/pruning_japanese.py, docs/PRUNING.md's
    # Japanese section): at 6 layers its int8 kept 92.0% of the 12-layer int8's JSQuAD nDCG@10 with `best`'s
    # settings; the sentence-embedding term weighted 10x (the layers' terms outweighed it 12 to 1), the rate
    # 8e-4 instead of 1e-4, and 4,500 of the documents' sentences for 1.5 epochs instead of 1,500 for 1:
    # 97.2%, 97.0% and 96.6% with three seeds, JSTS rho 99.8-100%, in 14.3-15.9 minutes.
    "best-e5": Recipe(("hidden",), MappingProxyType({
        "strategy": "alternate", "distil_split": "both", "distil_limit": 4500, "sts_sentences": 3000,
        "batch_size": 16, "max_length_cap": 256, "epochs": 1.5, "lr": 8e-4, "embedding_weight": 10.0})),
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
# The recipe a base model gets where none is named (`sbsearch tune`): the one measured on it, by the
# name of the model it was first cut from; any other model gets DEFAULT_RECIPE.
RECIPE_FOR_BASE: Mapping[str, str] = MappingProxyType({"e5-small": "best-e5"})
# A plan given stage by stage (--stages) without --recipe is recorded under this name.
CUSTOM = "custom"


def default_recipe(nli, sts, distil) -> str | None:
    """The recipe when none is named: best with both NLI and STS data, else the one the data allows."""
    if nli and sts:
        return DEFAULT_RECIPE
    return "nli" if nli else "sts" if sts else "distil" if distil else None


def recipe_for_base(original: str | None) -> str:
    """`best`, or the variant measured on this base model (named as the model it was first cut from)."""
    return RECIPE_FOR_BASE.get(original or "", DEFAULT_RECIPE)


def settings_of(recipe: str | None) -> dict:
    """Every setting a recipe implies: its own over DEFAULTS (an unknown or custom name: DEFAULTS)."""
    own = RECIPES[recipe].settings if recipe in RECIPES else {}
    return {**DEFAULTS, **own}
