"""`sbsearch tune`: the fastest model that keeps a stated share of a reference model's quality on
an index's own documents, found without labels.

    for n in candidate layer counts, fewest first:
        cut the reference to n layers, start recovering it by hidden-state distillation on the
            index's chunks; a quarter of the way, probe it: its label-free estimate on part of the
            index; when even the upper end of the probe's interval plus the headroom a recovery
            still gains (PROBE_HEADROOM) is below the threshold, the candidate is hopeless: skip it
        else finish the recovery, embed the index with it (its vectors are kept only if it is chosen)
        estimate its quality against the reference, label-free (sbsearch.quality.labelfree), with a
            90% bootstrap interval over the pseudo-queries
        stop at the first candidate whose interval's lower end reaches the threshold
    build the chosen model's int8 variant, embed the index with it, estimate it the same way;
        when it loses at most INT8_MAX_LOSS points against the fp32 candidate it is served
    make the served model the index's default, store its estimate for the query footer

Candidates are tried fewest layers first, so the first one that passes is the fastest that passes;
skipping a hopeless one changes nothing but the time spent (`--exhaustive` recovers every one
fully, as tune did before the probe, and records what the probe would have decided).
"""

from __future__ import annotations

import statistics
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Callable

import numpy as np

from ..embed.models import INT8_SUFFIX, resolve, split_spec
from ..errors import SbsearchError
from ..index.location import open_store
from ..index.store import Store, now
from ..progress import NullProgress
from ..quality import labelfree
from .prune_inputs import index_texts


LABEL = "est. nDCG@10 (label-free)"

# The probe: at this share of a recovery's steps, the partly recovered model is estimated on at most
# PROBE_CHUNKS chunks of the index (every document that gave a pseudo-query, then others as
# distractors; a smaller corpus agrees more, so the probe errs toward continuing).
PROBE_AT = 0.25
PROBE_CHUNKS = 600
# How many estimate points a recovery still gains after the probe, at most. Measured (upper end of the
# interval, finished model minus probe; benchmarks/results/tune.json and docs/BENCHMARKS.md): +0.3 and
# +0.7 for the 3- and 4-layer MiniLM cuts recovered on a 3,015-chunk index (~190 steps), +3.2 and +6.9
# for 3 and 2 layers with --distil-limit 150 on sample_docs (19 steps: the probe after 5). 8 is above
# every one of them. A candidate whose probe interval's upper end plus this is below --keep is skipped.
PROBE_HEADROOM = 8.0
# The int8 variant of the chosen model is served when its estimate is at most this many points
# below the fp32 candidate's (the same pseudo-queries, the same reference).
INT8_MAX_LOSS = 0.5


@dataclass
class Candidate:
    name: str
    layers: int
    estimate: dict
    speedup: float | None = None
    train_seconds: float = 0.0
    passed: bool = False
    status: str = "rejected"  # "chosen", "rejected" (recovered, below the threshold), "skipped" (probe)
    reason: str = ""
    probes: list[dict] = field(default_factory=list)  # estimates of the partly recovered model


@dataclass
class TuneResult:
    index: str
    reference: str
    threshold_pct: float
    chosen: str | None  # the fp32 candidate that passed
    candidates: list[Candidate] = field(default_factory=list)
    pseudo_queries: int = 0
    seconds: float = 0.0
    served: str | None = None  # the index's default after tune: the chosen model or its int8 variant
    int8: dict | None = None  # the int8 variant's estimate, its loss against fp32, and why it is (not) served
    speedup: float | None = None  # of the served model, in its runtime (int8: against the reference's int8)
    speedup_against: str | None = None
    interval_level: float = labelfree.INTERVAL_LEVEL
    exhaustive: bool = False
    timings: dict = field(default_factory=dict)  # seconds by phase

    def as_dict(self) -> dict:
        return asdict(self)

    @property
    def skipped(self) -> list[Candidate]:
        return [c for c in self.candidates if c.status == "skipped"]


def lower(est: dict) -> float:
    """The lower end of an estimate's interval (the estimate itself when it has none)."""
    return (est.get("interval_pct") or [est["estimate_pct"]])[0]


def passes(est: dict, keep_pct: float) -> bool:
    """A candidate passes when even the lower end of its estimate's interval keeps --keep."""
    return est.get("estimate_pct") is not None and lower(est) >= keep_pct


def skip_decision(probe: dict, keep_pct: float, headroom: float | None = None) -> tuple[bool, str]:
    """Whether a candidate is hopeless after its probe, and why: the upper end of the probe's
    interval, plus the most a recovery gains after the probe, still below the threshold."""
    headroom = PROBE_HEADROOM if headroom is None else headroom
    est = probe.get("estimate") or {}
    if est.get("estimate_pct") is None:
        return False, "the probe gave no estimate"
    hi = (est.get("interval_pct") or [None, est["estimate_pct"]])[1]
    reach = min(100.0, hi + headroom)
    at = f"after {probe.get('fraction', PROBE_AT):.0%} of its recovery"
    if reach < keep_pct:
        return True, (f"hopeless {at}: estimate {est['estimate_pct']:.1f}% (upper end {hi:.1f}%) + "
                      f"{headroom:g} points still to gain at most = {reach:.1f}% < {keep_pct:g}%")
    return False, (f"worth finishing {at}: estimate {est['estimate_pct']:.1f}% (upper end {hi:.1f}%) + "
                   f"{headroom:g} points could reach {keep_pct:g}%")


def probe_subset(passage_doc: list[str], queries: list, max_chunks: int = PROBE_CHUNKS,
                 seed: int = 0) -> np.ndarray:
    """Indices of the passages a probe ranks: every document a pseudo-query was cut from, then other
    documents (a seeded draw) as distractors, whole documents up to about max_chunks passages."""
    import random

    if len(passage_doc) <= max_chunks:
        return np.arange(len(passage_doc))
    by_doc: dict[str, list[int]] = {}
    for i, d in enumerate(passage_doc):
        by_doc.setdefault(d, []).append(i)
    sources = list(dict.fromkeys(q.source for q in queries))
    others = sorted(set(by_doc) - set(sources))
    random.Random(seed).shuffle(others)
    keep: list[int] = []
    n_docs = 0
    for d in sources + others:
        if len(keep) >= max_chunks and n_docs >= labelfree.MIN_DOCUMENTS and d not in sources:
            break
        keep += by_doc[d]
        n_docs += 1
    return np.array(sorted(keep))


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


def _estimate_line(est: dict) -> str:
    """`97.2% (90% interval 96.4–97.9%)`"""
    lo, hi = est.get("interval_pct") or (est["estimate_pct"], est["estimate_pct"])
    return f"{est['estimate_pct']:.1f}% ({est.get('interval_level', labelfree.INTERVAL_LEVEL):g}% interval {lo:.1f}–{hi:.1f}%)"


def tune(index_path: Path, reference: str | None = None, keep_pct: float = 97.0,
         layer_counts: list[int] | None = None, recipe: str = "best", distil_limit: int | None = None,
         prefix: str | None = None, n_queries: int = 200, set_default: bool = True, force: bool = False,
         exhaustive: bool = False, probe_at: float | None = None, headroom: float | None = None,
         observe: tuple[float, ...] = (), int8: bool = True, int8_max_loss: float | None = None,
         say: Callable[[str], None] = lambda s: None, progress=None) -> TuneResult:
    """exhaustive: recover every candidate fully (fewest layers first, until one passes), recording
    what the probe would have decided; observe: more fractions of each recovery to probe at, for
    the record only (benchmarks/tune_time.py measures PROBE_HEADROOM with them); int8=False: serve
    the fp32 candidate without trying its int8 variant; int8_max_loss: estimate points the int8
    variant may lose against the fp32 candidate and still be served [INT8_MAX_LOSS]."""
    from pruning import api as pruning_api
    from pruning.train import RecoveryStopped

    from ..embed import make_embedder
    from ..index.indexer import Indexer
    from ..vectors import open_vector_index

    t0 = time.perf_counter()
    timings: dict[str, float] = {}
    probe_at = PROBE_AT if probe_at is None else probe_at
    headroom = PROBE_HEADROOM if headroom is None else headroom

    def lap(phase: str, since: float) -> None:
        timings[phase] = round(timings.get(phase, 0.0) + time.perf_counter() - since, 1)

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
    previous_default = store.get_meta("default_model")
    t = time.perf_counter()
    Indexer(index_path, ref, progress=progress).run([])  # every chunk needs a reference vector
    ref_ids, ref_mat, passages, passage_doc = stored_corpus(store, ref)
    labelfree.require_enough_documents(passage_doc)
    queries = labelfree.pseudo_queries(passages, passage_doc, n=n_queries)
    if len(queries) < 10:
        raise SbsearchError(f"the index yields only {len(queries)} pseudo-queries; tune needs more text")
    say(f"reference {ref} ({total} layers) · {len(passages)} chunks · {len(queries)} pseudo-queries")
    ref_embedder = make_embedder(ref_info)
    query_texts = labelfree.query_texts(queries)
    ref_q = ref_embedder.encode_query(query_texts)
    speed_texts = passages[:: max(1, len(passages) // 64)][:64]
    # the probe's corpus: part of the index, with the reference's vectors already stored
    sub = probe_subset(passage_doc, queries)
    sub_docs = [passage_doc[i] for i in sub]
    sub_passages = [passages[i] for i in sub]
    sub_docset = set(sub_docs)
    sub_q = [j for j, q in enumerate(queries) if q.source in sub_docset]
    sub_queries = [queries[j] for j in sub_q]
    sub_texts = [query_texts[j] for j in sub_q]
    lap("reference", t)

    result = TuneResult(str(store.path), ref, keep_pct, None, pseudo_queries=len(queries), exhaustive=exhaustive)
    stem = prefix or f"{Path(ref).name}-tuned"
    distil_source = index_texts(store)  # the text to distil on: the index's chunks, as the index embeds them
    fractions = sorted({probe_at, *observe} - {0.0})
    for n in counts:
        name = f"{stem}-{n}"
        say(f"{name}: cutting {ref} to {n} of {total} layers, distilling on the index's chunks ({recipe})")
        probes: list[dict] = []
        verdict: dict = {}

        def on_step(step: int, steps: int, model, n=n, probes=probes, verdict=verdict) -> None:
            due = [f for f in fractions if step == max(1, min(steps, round(f * steps)))]
            if not due or step == steps:
                return
            tp = time.perf_counter()
            cq = np.asarray(model.encode_query(sub_texts, batch_size=32, normalize_embeddings=True,
                                               convert_to_numpy=True, show_progress_bar=False), dtype=np.float32)
            cp = np.asarray(model.encode_document(sub_passages, batch_size=32, normalize_embeddings=True,
                                                  convert_to_numpy=True, show_progress_bar=False), dtype=np.float32)
            est = labelfree.estimate_from_vectors(ref_q[sub_q], cq, ref_mat[sub], cp, sub_docs, sub_queries)
            probe = {"fraction": due[0], "step": step, "steps": steps, "chunks": len(sub),
                     "queries": len(sub_queries), "estimate": est,
                     "seconds": round(time.perf_counter() - tp, 1)}
            probes.append(probe)
            lap("probes", tp)
            if probe_at in due:
                skip, why = skip_decision(probe, keep_pct, headroom)
                verdict.update(skip=skip, why=why)
                say(f"  probe at step {step}/{steps}: {_estimate_line(est)} on {len(sub)} chunks · {why}"
                    + (" (recovering it anyway: --exhaustive)" if skip and exhaustive else ""))
                if skip and not exhaustive:
                    raise RecoveryStopped(why)

        t = time.perf_counter()
        try:
            card = pruning_api.prune(ref, n, None, name, distil=[distil_source], recipe=recipe,
                                     distil_limit=distil_limit, evaluate=(), compare=(), force=force,
                                     progress=progress is not None and not isinstance(progress, NullProgress),
                                     quiet=progress is None, say=lambda s: say(f"  {s}"), on_step=on_step)
        except RecoveryStopped as stop:
            lap("recoveries", t)
            seconds = round(time.perf_counter() - t, 1)
            result.candidates.append(Candidate(name, n, {}, None, seconds, False, "skipped", str(stop), probes))
            say(f"{name}: skipped ({stop})")
            continue
        lap("recoveries", t)
        t = time.perf_counter()
        say(f"{name}: embedding the index")
        Indexer(index_path, name, progress=progress).run([])
        cand_ids, cand_mat, _, _ = stored_corpus(store, name)
        if not np.array_equal(cand_ids, ref_ids):
            raise SbsearchError("the index changed while tuning; run `sbsearch tune` again")
        cand_embedder = make_embedder(resolve(name))
        est = labelfree.estimate_from_vectors(ref_q, cand_embedder.encode_query(query_texts),
                                              ref_mat, cand_mat, passage_doc, queries)
        lap("candidates", t)
        t = time.perf_counter()
        ok = passes(est, keep_pct)
        cand = Candidate(name, n, est, _speedup(ref_embedder, cand_embedder, speed_texts),
                         card["seconds"]["training"], ok, "chosen" if ok else "rejected",
                         verdict.get("why", ""), probes)
        lap("speed", t)
        result.candidates.append(cand)
        say(f"{name}: estimated nDCG@10 {_estimate_line(est)} of {ref} ("
            f"agreement with its ranking {est['agreement_pct']:.1f}%, top-10 overlap {est['overlap@10']:.2f}) · "
            f"{cand.speedup:.2f}x its encode speed (fp32) · "
            + ("passes" if ok else f"lower end below {keep_pct:g}%"))
        if ok:
            result.chosen = name
            break
        store.drop_model_vectors(name)  # a rejected candidate leaves nothing in the index
        open_vector_index(store, name).remove()
    if result.chosen:
        chosen = result.candidates[-1]
        result.served, result.speedup, result.speedup_against = chosen.name, chosen.speedup, ref
        t = time.perf_counter()
        if int8:
            _serve_int8(index_path, store, result, chosen, ref, ref_q, ref_mat, ref_ids, passage_doc, queries,
                        query_texts, speed_texts, say, progress,
                        INT8_MAX_LOSS if int8_max_loss is None else int8_max_loss)
        lap("int8", t)
        served_est = result.int8["estimate"] if result.served != chosen.name else chosen.estimate
        if set_default:
            store.set_meta("default_model", result.served)
        result.seconds = round(time.perf_counter() - t0, 1)
        result.timings = timings
        store.add_compare(chosen.name, ref, {
            "source": "tune", "created": now(), "a": chosen.name, "b": ref,
            "headline": _headline(chosen.estimate, chosen.speedup, ref),
            "labelfree": chosen.estimate, "tune": result.as_dict()})
        if result.served != chosen.name:
            # the footer under answers of the served model (added last: the newest row naming the reference)
            store.add_compare(result.served, ref, {
                "source": "tune", "created": now(), "a": result.served, "b": ref,
                "headline": _headline(served_est, result.speedup, result.speedup_against),
                "labelfree": served_est, "tune": result.as_dict()})
        if set_default and previous_default and previous_default != result.served:
            say(f"default search model: {previous_default} -> {result.served}")
    result.seconds = round(time.perf_counter() - t0, 1)
    result.timings = timings
    return result


def _headline(est: dict, speedup: float | None, speedup_against: str | None) -> dict:
    return {"quality_metric": LABEL, "quality_pct": est["estimate_pct"],
            "quality_interval": est.get("interval_pct"), "interval_level": est.get("interval_level"),
            "speedup": speedup, "speedup_against": speedup_against}


def _serve_int8(index_path, store: Store, result: TuneResult, chosen: Candidate, ref: str, ref_q, ref_mat,
                ref_ids, passage_doc, queries, query_texts, speed_texts, say, progress,
                max_loss: float = INT8_MAX_LOSS) -> None:
    """Build the chosen model's int8 variant, embed the index with it, estimate it against the same
    reference on the same pseudo-queries; serve it when it loses at most INT8_MAX_LOSS points, with
    the speed-up measured against the reference's own int8 variant."""
    from ..embed import make_embedder
    from ..index.indexer import Indexer

    name8 = chosen.name + INT8_SUFFIX
    say(f"{name8}: building the int8 variant and embedding the index with it")
    try:
        emb8 = make_embedder(resolve(name8))
    except SbsearchError as exc:
        result.int8 = {"name": name8, "served": False, "why": f"no int8 variant: {exc}"}
        say(f"{name8}: {result.int8['why']}; serving {chosen.name} (fp32)")
        return
    Indexer(index_path, name8, progress=progress).run([])
    ids8, mat8, _, _ = stored_corpus(store, name8)
    if not np.array_equal(ids8, ref_ids):
        raise SbsearchError("the index changed while tuning; run `sbsearch tune` again")
    est8 = labelfree.estimate_from_vectors(ref_q, emb8.encode_query(query_texts), ref_mat, mat8, passage_doc, queries)
    loss = round(chosen.estimate["estimate_pct"] - est8["estimate_pct"], 1)
    served = loss <= max_loss
    why = (f"its estimate is {-loss:+.1f} points from {chosen.name}'s (at most {max_loss:g} lost)" if served else
           f"it loses {loss:.1f} points of the estimate against {chosen.name} (more than {max_loss:g}; "
           "--int8-max-loss raises the limit)")
    result.int8 = {"name": name8, "estimate": est8, "loss_points": loss, "served": served, "why": why}
    if not served:
        say(f"{name8}: estimated nDCG@10 {_estimate_line(est8)}; {why}: serving {chosen.name} (fp32)")
        return
    # the speed-up in the runtime that serves it: against the reference's int8 variant
    against = ref + INT8_SUFFIX
    try:
        ref8 = make_embedder(resolve(against))
    except SbsearchError:
        ref8, against = make_embedder(resolve(ref)), ref  # e.g. full-int8, refused by its export check
    result.served, result.speedup_against = name8, against
    result.speedup = _speedup(ref8, emb8, speed_texts)
    result.int8["speedup"] = result.speedup
    result.int8["speedup_against"] = against
    say(f"{name8}: estimated nDCG@10 {_estimate_line(est8)} of {ref}; {why}: served, "
        f"{result.speedup:.2f}x {against}'s encode speed")
