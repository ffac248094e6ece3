"""What every evaluation suite is: a name, its primary metric, and a call that measures a model."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable, ClassVar

from .. import measures


@dataclass
class SuiteContext:
    """What the suites of one evaluation share: the data, a cache of what was read or embedded once
    (shared across the models of one run), progress messages, and the document model of the
    asymmetric mode (passages embedded by another model, queries by the one measured)."""
    ed: measures.EvalData
    cache: dict
    progress: Callable[[str], None] | None = None
    doc_model: object | None = None
    own: dict = field(default_factory=dict)  # this model's passage vectors by set name

    def once(self, key, fn):
        if key not in self.cache:
            self.cache[key] = fn()
        return self.cache[key]

    def say(self, msg: str) -> None:
        if self.progress:
            self.progress(msg)

    def retrieval_set(self, name: str):
        return measures.retrieval_set(name, self.ed, self.once)

    def own_passages(self, model, name: str, rs):
        """The measured model's passage vectors, shared by retrieval and the label-free estimate."""
        if name not in self.own:
            self.own[name] = measures.encode(model, rs.passages)
        return self.own[name]


class Suite:
    """One evaluation suite, like a sentence-transformers evaluator: called with a model, it returns
    a dict of metrics holding its `primary_metric`, or None when its data is missing (skipped).
    `argument` is what follows the name in "name:argument" (e.g. labelfree:minilm)."""

    name: ClassVar[str]
    primary_metric: ClassVar[str]

    def __init__(self, argument: str = ""):
        self.argument = argument

    def __call__(self, model, ctx: SuiteContext) -> dict | None:
        raise NotImplementedError
