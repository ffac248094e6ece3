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
    requested: tuple[str, ...] = ()  # the suites of this evaluation, as given ("name" or "name:argument")

    # the retrieval sets the int8 suite measures its export on when the evaluation names none of them:
    # those two, as before the Japanese sets existed
    DEFAULT_RETRIEVAL_SETS = ("stackfaq", "sample_docs")
    RETRIEVAL_SETS = ("stackfaq", "sample_docs", "jsquad", "sample_docs_ja")

    @property
    def retrieval_sets_measured(self) -> tuple[str, ...]:
        """The retrieval sets this evaluation asked for (e.g. int8 measures its export on each)."""
        asked = tuple(n for n in self.RETRIEVAL_SETS if n in {s.partition(":")[0] for s in self.requested})
        return asked or self.DEFAULT_RETRIEVAL_SETS

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
            self.own[name] = measures.encode(model, rs.passages, role="document")
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
