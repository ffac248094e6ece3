"""nli: MultipleNegativesRankingLoss on (anchor, entailment, contradiction), no duplicates in a batch."""

from __future__ import annotations

from .base import TrainerStage


class NliStage(TrainerStage):
    name = "nli"
    default_lr = 2e-5
    inputs = frozenset({"triplets"})

    @classmethod
    def from_inputs(cls, inputs, **kw) -> "NliStage":
        return cls(inputs.triplets, **kw)

    def dataset(self, targets):
        from datasets import Dataset

        a, p, n = zip(*self.rows)
        return Dataset.from_dict({"anchor": list(a), "positive": list(p), "negative": list(n)})

    def loss(self, model):
        from sentence_transformers.sentence_transformer import losses

        return losses.MultipleNegativesRankingLoss(model)

    def batch_sampler(self, cfg):
        # in-batch negatives: a duplicate text in a batch would be its own false negative
        from sentence_transformers.base.sampler import BatchSamplers

        return BatchSamplers.NO_DUPLICATES
