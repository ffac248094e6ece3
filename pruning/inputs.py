"""What a run's stages train on, read before any training so that a bad file fails first:
NLI triplets, STS pairs (and the dev pairs of the STS evaluator), distillation texts."""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from pathlib import Path
from typing import Sequence

from . import data
from .host import SbsearchError, shared_data_dir

# what each input needs from the caller, said when a stage of the plan lacks it
MISSING = {
    "triplets": "stage nli needs --nli FILE (premise/hypothesis/label or anchor/positive/negative)",
    "nli_pairs": "stage nli-softmax needs --nli FILE (premise/hypothesis/label)",
    "pairs": "stage sts needs --sts FILE (sentence pairs with a score)",
}


@dataclass
class RecoveryInputs:
    triplets: list = field(default_factory=list)
    pairs: list = field(default_factory=list)
    dev: list | None = None
    dev_file: str | Path | None = None
    sentences: list[str] = field(default_factory=list)
    nli_pairs: list = field(default_factory=list)  # (premise, hypothesis, label) as read

    @staticmethod
    def check(cfg, stage_classes: Sequence[type]) -> None:
        """Refuse a plan whose stages lack their data (before the model is even resolved)."""
        needed = _needed(stage_classes)
        for wanted in ("triplets", "nli_pairs"):
            if wanted in needed and not cfg.nli:
                raise SbsearchError(MISSING[wanted])
        if "pairs" in needed and not cfg.sts:
            raise SbsearchError(MISSING["pairs"])

    @classmethod
    def read(cls, cfg, stage_classes: Sequence[type]) -> "RecoveryInputs":
        needed = _needed(stage_classes)
        triplets = [t for f in cfg.nli for t in data.read_triplets(f)] if "triplets" in needed else []
        if "triplets" in needed and not triplets:
            raise SbsearchError(f"{', '.join(map(str, cfg.nli))}: no (premise, entailment, contradiction) triplet "
                                "(no premise has both); stage nli-softmax trains on its labelled pairs "
                                "(--recipe paper-softmax)")
        nli_pairs = [p for f in cfg.nli for p in data.read_nli(f)] if "nli_pairs" in needed else []
        if cfg.nli_limit and len(nli_pairs) > cfg.nli_limit:
            nli_pairs = random.Random(cfg.seed).sample(nli_pairs, cfg.nli_limit)
        pairs = [p for f in cfg.sts for p in data.read_sts(f)] if "pairs" in needed else []
        if cfg.nli_limit and len(triplets) > cfg.nli_limit:
            triplets = random.Random(cfg.seed).sample(triplets, cfg.nli_limit)
        if cfg.sts_limit and len(pairs) > cfg.sts_limit:
            pairs = random.Random(cfg.seed).sample(pairs, cfg.sts_limit)
        dev_file = cfg.sts_dev or (_default_sts_dev() if any(c.uses_default_dev for c in stage_classes) else None)
        dev = data.read_sts(dev_file) if dev_file else None
        sentences = distillation_text(cfg) if "sentences" in needed else []
        return cls(triplets, pairs, dev, dev_file, sentences, nli_pairs)

    def entries(self, cfg) -> list[dict]:
        """The card's "data": every file (or handed-over text) with its role and sha256."""
        return ([data_entry(f, "nli") for f in cfg.nli] + [data_entry(f, "sts") for f in cfg.sts]
                + ([data_entry(self.dev_file, "sts-dev")] if self.dev_file else [])
                + [data_entry(f, "distil") for f in cfg.distil])


def _needed(stage_classes: Sequence[type]) -> set[str]:
    return set().union(*(c.inputs for c in stage_classes))


def distillation_text(cfg) -> list[str]:
    sources = list(cfg.distil) or list(cfg.nli) + list(cfg.sts)
    if not sources:
        raise SbsearchError("stage distil needs text: --distil FILE|DIR|INDEX (or --nli/--sts files)")
    extra: list[str] = []
    if cfg.sts_sentences and cfg.distil and cfg.sts:
        # short, query-like STS sentences join the searched text: they hold STS-B at the full
        # model's level (measured: 0.801 without them, 0.839 with 3,000; docs/PRUNING.md)
        extra = data.read_sentences(list(cfg.sts), limit=cfg.sts_sentences, seed=cfg.seed)
    return distil_texts(sources, cfg.distil_split, cfg.distil_limit, cfg.seed, extra)


def distil_texts(sources: Sequence, split: bool | str, limit: int | None, seed: int,
                 extra: Sequence[str] = ()) -> list[str]:
    """The distillation text: the sources' passages, cut into sentences when `split` (at most `limit`
    of them, a seeded sample), then the `extra` texts (cut the same way), then with split="both" the
    passages whole again (at most `limit` of them too). The limit applies to the sources' own texts
    only: sampling fewer sentences never drops the extra sentences or the whole passages."""
    passages = data.read_sentences(list(sources), seed=seed)
    own = data.dedupe(data.split_sentences(passages)) if split else passages
    whole = passages if split == "both" else []
    if limit and len(own) > limit:
        own = random.Random(seed).sample(own, limit)
    if limit and len(whole) > limit:
        whole = random.Random(seed).sample(whole, limit)
    extra = data.split_sentences(list(extra)) if split else list(extra)
    return data.dedupe(own + extra + whole)


def data_entry(source, role: str) -> dict:
    if isinstance(source, data.Texts):
        return {"path": source.name, "role": role, "sha256": source.sha256}
    p = Path(str(source))
    return {"path": str(p), "role": role, "sha256": data.file_sha256(p) if p.is_file() else ""}


def _default_sts_dev() -> Path | None:
    p = shared_data_dir() / "stsb" / "sts-dev.csv"
    return p if p.exists() else None
