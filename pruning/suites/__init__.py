"""Evaluation suites: one module per kind of measurement, and the registry that names them.

Adding a suite: a Suite subclass (its name, its primary metric, __call__(model, ctx) returning a
dict of metrics, or None when its data is missing) in a module here, and one line in SUITES below.
`--eval` and pruning.evaluate.evaluate_model then accept its name ("name" or "name:argument").
"""

from __future__ import annotations

from ..host import SbsearchError
from .base import Suite, SuiteContext  # noqa: F401
from .footprint import SizeSuite, SpeedSuite
from .nli import NliSuite
from .retrieval import JsquadSuite, SampleDocsJaSuite, SampleDocsSuite, StackFaqSuite
from .sts import JstsSuite, SickSuite, StsbSuite

SUITES: dict[str, type[Suite]] = {
    "stsb": StsbSuite,
    "sick": SickSuite,
    "nli": NliSuite,
    "stackfaq": StackFaqSuite,
    "sample_docs": SampleDocsSuite,
    "size": SizeSuite,
    "speed": SpeedSuite,
    # Japanese (JGLUE in the shared data; sample_docs' Japanese questions)
    "jsts": JstsSuite,
    "jsquad": JsquadSuite,
    "sample_docs_ja": SampleDocsJaSuite,
}
# sbsearch registers two more when it evaluates (sbsearch.model_choice.prune_suites): int8 (the model
# exported and served as sbsearch serves int8 models) and labelfree (sbsearch's label-free estimate).
DEFAULT_SUITES = ("stsb", "sick", "stackfaq", "sample_docs", "size", "speed")


def register(cls: type[Suite]) -> type[Suite]:
    """Add a suite class under its name (usable as a class decorator)."""
    SUITES[cls.name] = cls
    return cls


def suite_for(spec: str) -> Suite:
    """The suite "name" or "name:argument" stands for."""
    name, _, argument = spec.partition(":")
    if name not in SUITES:
        raise ValueError(f"unknown suite {spec}")
    return SUITES[name](argument)


def parse_suites(value: str) -> tuple[str, ...]:
    """--eval: "stsb,stackfaq", "all" (every registered suite) or "none"."""
    v = value.strip().lower()
    if v in ("", "none", "no"):
        return ()
    if v == "all":
        return tuple(SUITES)
    items = tuple(s.strip() for s in v.split(",") if s.strip())
    bad = [s for s in items if s not in SUITES]
    if bad:
        raise SbsearchError(f"unknown evaluation suite {bad[0]!r} (choose from {', '.join(SUITES)}, all, none)")
    return items
