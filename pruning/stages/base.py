"""What every recovery stage is: the data it trains on, its learning rate, its teacher, train()."""

from __future__ import annotations

from typing import ClassVar, Sequence


class RecoveryStage:
    """One stage of a recovery plan. A subclass names itself, says which of the run's inputs it
    trains on (pruning.inputs.RecoveryInputs: "triplets", "pairs", "sentences"), whether it needs a
    teacher, and trains a model in place with train(), returning what the card records about it."""

    name: ClassVar[str]
    default_lr: ClassVar[float] = 2e-5         # its learning rate unless --lr is given
    inputs: ClassVar[frozenset[str]] = frozenset()
    needs_teacher: ClassVar[bool] = False
    # trains with the shared STS-B dev set as its evaluator when no --sts-dev is given
    uses_default_dev: ClassVar[bool] = False

    def __init__(self, rows: Sequence, *, epochs: float | None = None, lr: float | None = None,
                 dev: list | None = None, teacher=None, teacher_sha: str = ""):
        self.rows = list(rows)
        self.epochs = epochs
        self.lr = lr if lr is not None else self.default_lr
        self.dev = dev
        self.teacher = teacher
        self.teacher_sha = teacher_sha

    @classmethod
    def from_inputs(cls, inputs, **kw) -> "RecoveryStage":
        """The stage with its rows taken from a run's inputs (a RecoveryInputs)."""
        raise NotImplementedError

    @classmethod
    def check_teacher(cls, teacher, base_layers: int) -> None:
        """Refuse a teacher this stage cannot learn from (before any training starts)."""

    def train(self, model, cfg, kept: list[int], on_step=None) -> dict:
        raise NotImplementedError


class TrainerStage(RecoveryStage):
    """A stage run by sentence-transformers' own trainer (pruning.train.train_stage): a subclass
    gives its dataset, its loss and the texts its sequence length is fitted to."""

    def texts(self) -> list[str]:
        """The texts the training sequence length is fitted to."""
        return [t for row in self.rows for t in row[:3] if isinstance(t, str)]

    def dataset(self, targets):
        raise NotImplementedError

    def loss(self, model):
        raise NotImplementedError

    def batch_sampler(self, cfg):
        """Batches of similar length (less padding), unless --no-group-by-length."""
        from sentence_transformers.base.sampler import BatchSamplers

        from ..train import length_grouped_sampler

        return length_grouped_sampler() if cfg.group_by_length else BatchSamplers.BATCH_SAMPLER

    def train(self, model, cfg, kept: list[int], on_step=None) -> dict:
        from .. import train as trainer  # looked up at call time: a test may replace train_stage

        return trainer.train_stage(model, self, cfg, self.teacher, self.teacher_sha)
