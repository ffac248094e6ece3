"""mix: distil + sts in one run (round-robin batches), so STS tuning cannot drift from the teacher."""

from __future__ import annotations

from .base import TrainerStage
from .distil import distil_dataset
from .sts import sts_dataset


class MixStage(TrainerStage):
    name = "mix"
    default_lr = 1e-4
    inputs = frozenset({"sentences", "pairs"})
    needs_teacher = True

    def __init__(self, rows, *, extra_rows=(), **kw):
        super().__init__(rows, **kw)
        self.extra_rows = list(extra_rows)  # the STS pairs (rows holds the distillation sentences)

    @classmethod
    def from_inputs(cls, inputs, **kw) -> "MixStage":
        return cls(inputs.sentences, dev=inputs.dev, extra_rows=inputs.pairs, **kw)

    def texts(self) -> list[str]:
        return list(self.rows) + [t for row in self.extra_rows for t in row[:2]]

    def dataset(self, targets):
        return {"distil": distil_dataset(self.rows, targets), "sts": sts_dataset(self.extra_rows)}

    def loss(self, model):
        from sentence_transformers.sentence_transformer import losses

        return {"distil": losses.MSELoss(model), "sts": losses.CoSENTLoss(model)}
