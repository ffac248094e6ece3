"""nli-softmax: Sentence-BERT's original NLI objective: a classifier on (u, v, |u - v|) over the three
labels of every (premise, hypothesis) pair (SoftmaxLoss).

Why a second NLI stage: the `nli` stage's ranking loss needs a premise with both an entailed and a
contradicting hypothesis (a triplet). JGLUE's JNLI pairs each premise with one hypothesis, so it
yields no triplet at all, while every one of its ~4,900 labelled pairs trains this objective.
"""

from __future__ import annotations

from .base import TrainerStage

LABEL_IDS = {"entailment": 0, "neutral": 1, "contradiction": 2}


class NliSoftmaxStage(TrainerStage):
    name = "nli-softmax"
    default_lr = 2e-5
    inputs = frozenset({"nli_pairs"})

    @classmethod
    def from_inputs(cls, inputs, **kw) -> "NliSoftmaxStage":
        return cls(inputs.nli_pairs, **kw)

    def dataset(self, targets):
        from datasets import Dataset

        premise, hypothesis, label = zip(*self.rows)
        return Dataset.from_dict({"premise": list(premise), "hypothesis": list(hypothesis),
                                  "label": [LABEL_IDS[x] for x in label]})

    def loss(self, model):
        from sentence_transformers.sentence_transformer import losses

        return losses.SoftmaxLoss(model, sentence_embedding_dimension=model.get_embedding_dimension(),
                                  num_labels=len(LABEL_IDS))
