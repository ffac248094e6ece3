"""Recovery stages: one module each, and the registry that names them.

Adding a stage: a module here with a RecoveryStage subclass (its name, the inputs it trains on, its
learning rate, train()), and one line in STAGES below. Recipes (pruning.recipes) and --stages then
accept its name. Importing this package does not import torch.
"""

from __future__ import annotations

from ..host import SbsearchError
from .base import RecoveryStage, TrainerStage  # noqa: F401
from .distil import DistilStage
from .hidden import HiddenStage
from .mix import MixStage
from .nli import NliStage
from .nli_softmax import NliSoftmaxStage
from .sts import StsStage

STAGES: dict[str, type[RecoveryStage]] = {
    "nli": NliStage,
    "nli-softmax": NliSoftmaxStage,
    "sts": StsStage,
    "distil": DistilStage,
    "mix": MixStage,
    "hidden": HiddenStage,
}


def register(cls: type[RecoveryStage]) -> type[RecoveryStage]:
    """Add a stage class under its name (usable as a class decorator)."""
    STAGES[cls.name] = cls
    return cls


def stage_class(name: str) -> type[RecoveryStage]:
    try:
        return STAGES[name]
    except KeyError:
        raise SbsearchError(f"unknown stage {name!r} (stages: {', '.join(STAGES)})") from None


def parse_stages(spec) -> list[tuple[str, float | None]]:
    """'distil,nli,sts:2' -> [('distil', None), ('nli', None), ('sts', 2.0)] (name[:epochs])."""
    items = [s.strip() for s in (spec.split(",") if isinstance(spec, str) else spec) if s and s.strip()]
    out = []
    for item in items:
        name, _, ep = item.partition(":")
        name = name.strip().lower()
        stage_class(name)
        try:
            out.append((name, float(ep) if ep else None))
        except ValueError:
            raise SbsearchError(f"stage {item!r}: epochs after ':' must be a number") from None
    return out
