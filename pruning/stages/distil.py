"""distil: MSELoss to a teacher's embeddings of unlabelled text (teacher vectors cached on disk)."""

from __future__ import annotations

from .base import TrainerStage


def distil_dataset(sentences, targets):
    from datasets import Dataset

    return Dataset.from_dict({"sentence": list(sentences), "label": targets})


class DistilStage(TrainerStage):
    name = "distil"
    default_lr = 1e-4
    inputs = frozenset({"sentences"})
    needs_teacher = True

    @classmethod
    def from_inputs(cls, inputs, **kw) -> "DistilStage":
        return cls(inputs.sentences, **kw)

    def texts(self) -> list[str]:
        return list(self.rows)

    def dataset(self, targets):
        return distil_dataset(self.rows, targets)

    def loss(self, model):
        from sentence_transformers.sentence_transformer import losses

        return losses.MSELoss(model)
