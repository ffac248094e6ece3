"""sts: CoSENTLoss on (sentence1, sentence2, score 0..1); STS-B dev (or any pairs) as the evaluator."""

from __future__ import annotations

from .base import TrainerStage


def sts_dataset(pairs):
    from datasets import Dataset

    s1, s2, sc = zip(*pairs)
    return Dataset.from_dict({"sentence1": list(s1), "sentence2": list(s2), "score": [float(x) for x in sc]})


class StsStage(TrainerStage):
    name = "sts"
    default_lr = 2e-5
    inputs = frozenset({"pairs"})
    uses_default_dev = True

    @classmethod
    def from_inputs(cls, inputs, **kw) -> "StsStage":
        return cls(inputs.pairs, dev=inputs.dev, **kw)

    def dataset(self, targets):
        return sts_dataset(self.rows)

    def loss(self, model):
        from sentence_transformers.sentence_transformer import losses

        return losses.CoSENTLoss(model)
