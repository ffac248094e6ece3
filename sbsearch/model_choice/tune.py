"""`sbsearch tune`: the fastest model that keeps a stated share of a reference model's quality on
an index's own documents, found without labels.

    for n in candidate layer counts, fewest first:
        cut the reference to n layers, recover it by hidden-state distillation on the index's chunks
        embed the index with it (its vectors are kept only if it is chosen)
        estimate its quality against the reference, label-free (sbsearch.quality.labelfree)
        stop at the first candidate whose estimate reaches the threshold
    make the chosen model the index's default, store the estimate for the query footer

Candidates are tried fewest layers first, so the first one that passes is the fastest that passes.
"""

from __future__ import annotations

import statistics
import tempfile
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Callable

import numpy as np

from ..config import is_store_url
from ..embed.models import INT8_SUFFIX, resolve, split_spec
from ..errors import SbsearchError
from ..index.location import open_store
from ..index.store import Store, now, write_chunks_file
from ..progress import NullProgress
from ..quality import labelfree


LABEL = "est. nDCG@10 (label-free)"


@dataclass
class Candidate:
    name: str
    layers: int
    estimate: dict
    speedup: float | None = None
    train_seconds: float = 0.0
    passed: bool = False


@dataclass
class TuneResult:
    index: str
    reference: str
    threshold_pct: float
    chosen: str | None
    candidates: list[Candidate] = field(default_factory=list)
    pseudo_queries: int = 0
    seconds: float = 0.0

    def as_dict(self) -> dict:
        return asdict(self)


def default_layer_counts(total: int) -> list[int]:
    """A third, a half and two thirds of the reference's layers (minilm 6: 2, 3, 4; full 12: 4, 6, 8)."""
    return sorted({max(1, round(total / 3)), max(1, total // 2), max(1, round(2 * total / 3))} - {total})


def reference_name(store: Store, reference: str | None) -> str:
    """--reference, else the index's default model, reduced to the fp32 model whose vectors it searches."""
    name = reference or store.get_meta("default_model")
    if not name:
        raise SbsearchError("the index has no default model yet; run `sbsearch index DIR` first")
    name = split_spec(name)[1]
    return name[: -len(INT8_SUFFIX)] if name.endswith(INT8_SUFFIX) else name


def stored_corpus(store: Store, model: str) -> tuple[np.ndarray, np.ndarray, list[str], list[str]]:
    """A model's stored vectors with their chunk ids, and each chunk's text and document path, in
    the same order: what the label-free estimate ranks, with no model run."""
    parts = list(store.vectors(model))
    if not parts:
        raise SbsearchError(f"the index has no vectors for {model!r}")
    ids = np.concatenate([i for i, _ in parts])
    chunk = {cid: (text, path) for cid, text, path in store.chunk_texts()}
    return (ids, np.vstack([m for _, m in parts]), [chunk[int(i)][0] for i in ids],
            [chunk[int(i)][1] for i in ids])


def _speedup(ref_embedder, cand_embedder, texts: list[str], rounds: int = 3) -> float:
    """Encode throughput of the candidate over the reference's, measured in turns."""
    ref_embedder.encode(texts[:4])
    cand_embedder.encode(texts[:4])
    ratios = []
    for _ in range(rounds):
        t = time.perf_counter()
        ref_embedder.encode(texts)
        ref_s = time.perf_counter() - t
        t = time.perf_counter()
        cand_embedder.encode(texts)
        ratios.append(ref_s / max(time.perf_counter() - t, 1e-9))
    return round(statistics.median(ratios), 2)


def tune(index_path: Path, reference: str | None = None, keep_pct: float = 97.0,
         layer_counts: list[int] | None = None, recipe: str = "best", distil_limit: int | None = None,
         prefix: str | None = None, n_queries: int = 200, set_default: bool = True, force: bool = False,
         say: Callable[[str], None] = lambda s: None, progress=None) -> TuneResult:
    from pruning import api as pruning_api

    from ..embed import make_embedder
    from ..index.indexer import Indexer
    from ..vectors import open_vector_index

    t0 = time.perf_counter()
    if not 0 < keep_pct <= 100:
        raise SbsearchError(f"--keep must be a percentage between 0 and 100 (got {keep_pct})")
    store = open_store(index_path)  # an index folder or a PostgreSQL store; "no index at …" when none
    ref = reference_name(store, reference)
    ref_info = resolve(ref)
    total = ref_info.layers
    if not total:
        raise SbsearchError(f"model {ref!r}: its number of layers is unknown, so it cannot be cut")
    counts = sorted(set(layer_counts or default_layer_counts(total)))
    bad = [n for n in counts if not 0 < n < total]
    if bad:
        raise SbsearchError(f"cannot cut {ref!r} ({total} layers) to {bad[0]} layers: choose 1..{total - 1}")
    Indexer(index_path, ref, progress=progress).run([])  # every chunk needs a reference vector
    ref_ids, ref_mat, passages, passage_doc = stored_corpus(store, ref)
    labelfree.require_enough_documents(passage_doc)
    queries = labelfree.pseudo_queries(passages, passage_doc, n=n_queries)
    if len(queries) < 10:
        raise SbsearchError(f"the index yields only {len(queries)} pseudo-queries; tune needs more text")
    say(f"reference {ref} ({total} layers) · {len(passages)} chunks · {len(queries)} pseudo-queries")
    ref_embedder = make_embedder(ref_info)
    ref_q = ref_embedder.encode_query(labelfree.query_texts(queries))
    speed_texts = passages[:: max(1, len(passages) // 64)][:64]

    result = TuneResult(str(store.path), ref, keep_pct, None, pseudo_queries=len(queries))
    stem = prefix or f"{Path(ref).name}-tuned"
    # the text to distil on: the index folder's chunks, or a PostgreSQL store's copied to a file
    distil_source = str(index_path)
    if is_store_url(index_path):
        scratch = tempfile.TemporaryDirectory(prefix="sbsearch-tune-")
        distil_source = str(write_chunks_file(Path(scratch.name) / "chunks.db", store.chunk_texts_with_headings()))
    for n in counts:
        name = f"{stem}-{n}"
        say(f"{name}: cutting {ref} to {n} of {total} layers, distilling on the index's chunks ({recipe})")
        card = pruning_api.prune(ref, n, None, name, distil=[distil_source], recipe=recipe,
                                 distil_limit=distil_limit, evaluate=(), compare=(), force=force,
                                 progress=progress is not None and not isinstance(progress, NullProgress),
                                 quiet=progress is None, say=lambda s: say(f"  {s}"))
        say(f"{name}: embedding the index")
        Indexer(index_path, name, progress=progress).run([])
        cand_ids, cand_mat, _, _ = stored_corpus(store, name)
        if not np.array_equal(cand_ids, ref_ids):
            raise SbsearchError("the index changed while tuning; run `sbsearch tune` again")
        cand_embedder = make_embedder(resolve(name))
        est = labelfree.estimate_from_vectors(ref_q, cand_embedder.encode_query(labelfree.query_texts(queries)),
                                              ref_mat, cand_mat, passage_doc, queries)
        cand = Candidate(name, n, est, _speedup(ref_embedder, cand_embedder, speed_texts),
                         card["seconds"]["training"], est["estimate_pct"] >= keep_pct)
        result.candidates.append(cand)
        say(f"{name}: estimated nDCG@10 {est['estimate_pct']:.1f}% of {ref} (agreement with its ranking "
            f"{est['agreement_pct']:.1f}%, top-10 overlap {est['overlap@10']:.2f}) · {cand.speedup:.2f}x its "
            "encode speed · "
            + ("passes" if cand.passed else f"below {keep_pct:g}%"))
        if cand.passed:
            result.chosen = name
            break
        store.drop_model_vectors(name)  # a rejected candidate leaves nothing in the index
        open_vector_index(store, name).remove()
    result.seconds = round(time.perf_counter() - t0, 1)
    if result.chosen:
        chosen = result.candidates[-1]
        if set_default:
            store.set_meta("default_model", result.chosen)
        store.add_compare(result.chosen, ref, {
            "source": "tune", "created": now(), "a": result.chosen, "b": ref,
            "headline": {"quality_metric": LABEL, "quality_pct": chosen.estimate["estimate_pct"],
                         "speedup": chosen.speedup},
            "labelfree": chosen.estimate, "tune": result.as_dict()})
    return result
