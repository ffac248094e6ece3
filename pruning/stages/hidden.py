"""hidden: distil every kept layer, token by token, plus the sentence embedding (TinyBERT-style);
see pruning.train.train_hidden_stage."""

from __future__ import annotations

from ..host import SbsearchError
from .base import RecoveryStage


class HiddenStage(RecoveryStage):
    name = "hidden"
    default_lr = 1e-4
    inputs = frozenset({"sentences"})
    needs_teacher = True

    @classmethod
    def from_inputs(cls, inputs, **kw) -> "HiddenStage":
        return cls(inputs.sentences, **kw)

    @classmethod
    def check_teacher(cls, teacher, base_layers: int) -> None:
        from ..layers import count_layers

        if count_layers(teacher) != base_layers:
            # the student's kept layers are numbered in the base's stack; the teacher must share it
            raise SbsearchError(f"stage hidden: the teacher has {count_layers(teacher)} layers, "
                                f"the base {base_layers}; use the base itself (or a model with its layers) as teacher")

    def train(self, model, cfg, kept: list[int], on_step=None) -> dict:
        from .. import train as trainer

        return trainer.train_hidden_stage(model, self, cfg, self.teacher, kept, embedding_weight=cfg.embedding_weight,
                                          on_step=on_step)
