"""`sbsearch tune`: the fastest model that keeps a stated share of the index's own model's quality on
its own documents, found without labels.

    the judge: the index's search model (e.g. minilm-int8), whose vectors the index already holds;
        the teacher: its fp32 form (minilm), the model that is cut and distilled from
    for n in candidate layer counts, bisecting (the middle one first, then the side it points to):
        cut the teacher to n layers, start recovering it by hidden-state distillation on the
            index's chunks; a quarter of the way, probe it: its label-free estimate on part of the
            index; when even the upper end of the probe's interval plus the headroom a recovery
            still gains (PROBE_HEADROOM) is below the threshold, the candidate is hopeless: skip it
        else finish the recovery, embed the index with it (its vectors are kept only if it is chosen)
        estimate its quality against the judge, label-free (sbsearch.quality.labelfree), with a
            90% bootstrap interval over the pseudo-queries; it passes when the lower end reaches
            the threshold
    the chosen candidate: the fewest layers that passed
    build the chosen model's int8 variant, embed the index with it, and estimate it with the fp32
        candidate as the judge: when it keeps all but INT8_MAX_LOSS points of the candidate's own
        rankings it is served
    make the served model the index's default, store its estimate for the query footer

Bisecting makes the choice of trying every count fewest first, as long as a candidate with more
layers never estimates lower than one with fewer (true in every row measured: docs/PRUNING.md), in
2 recoveries of the default 3 counts instead of up to 3; skipping a hopeless one changes nothing but
the time spent. `--exhaustive` tries fewest first, one by one, recovers every one fully, and records
what the probe would have decided.
"""

from __future__ import annotations

import statistics
import time
from dataclasses import asdict, dataclass, field, fields, replace
from pathlib import Path
from typing import Callable

import numpy as np

from ..embed.models import INT8_SUFFIX, base_of_export, resolve, split_spec
from ..errors import SbsearchError
from ..index.location import open_store
from ..index.store import IndexStore as Store, now  # either store: the protocol both implement
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
# The int8 variant of the chosen model is served when, judged against the fp32 candidate itself (its
# own rankings as the reference), its estimate is at most this many points below 100%. Why against
# the candidate and not against the index's model: a small, even change of rankings costs agreement
# with a third model out of proportion to quality (measured: minilm-tuned-4-int8 lost 0.8 points of
# the estimate against MiniLM-L6 where the labels say 0.14; docs/BENCHMARKS.md, tune_time.py).
INT8_MAX_LOSS = 0.5


@dataclass
class TuneOptions:
    """What `sbsearch tune` may be told (the CLI's options, one field each)."""
    reference: str | None = None  # the judge [the index's search model]
    keep_pct: float = 97.0
    layer_counts: list[int] | None = None  # [a third, half and two thirds of the teacher's layers]
    recipe: str | None = None  # [the one measured on the teacher's model: recipe_for()]
    distil_limit: int | None = None
    prefix: str | None = None  # name stem of the candidates [TEACHER-tuned]
    n_queries: int = 200
    set_default: bool = True
    force: bool = False
    exhaustive: bool = False  # recover every candidate fully, recording what the probe would decide
    probe_at: float | None = None  # [PROBE_AT]; read when tune runs, so that a test may change the constants
    headroom: float | None = None  # [PROBE_HEADROOM]
    observe: tuple[float, ...] = ()  # more fractions to probe at, for the record (benchmarks/tune_time.py)
    int8: bool = True  # False: serve the fp32 candidate without trying its int8 variant
    int8_max_loss: float = INT8_MAX_LOSS

    @classmethod
    def from_kwargs(cls, options: dict) -> "TuneOptions":
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(options) - known)
        if unknown:
            raise TypeError(f"tune: unknown options {unknown}")
        return cls(**{k: v for k, v in options.items() if v is not None or k == "reference"})


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
    reference: str  # the judge: estimates are shares of its quality
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
    teacher: str | None = None  # the fp32 model cut and distilled from (fp32 speed-ups are against it)
    timings_note: str = ""
    not_tried: list[dict] = field(default_factory=list)  # counts bisecting left out, and why
    recipe: str | None = None  # the recovery recipe every candidate was recovered with

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


def fewest_passing(counts: list[int], try_one: Callable[[int], bool], bisect: bool = True) -> int | None:
    """The fewest layer counts whose candidate passes, trying as few as it can. Fewest first, one by
    one, when bisect is False (--exhaustive). Bisecting assumes what every measured row shows: a
    candidate with more layers estimates at least as high as one with fewer, so a pass rules out
    every count above it and a failure every count below; it then tries ceil(log2(len + 1)) counts at
    most (2 of the default 3: the middle one, then the side it points to)."""
    counts = sorted(counts)
    if not bisect:
        return next((n for n in counts if try_one(n)), None)
    lo, hi, best = 0, len(counts) - 1, None
    while lo <= hi:
        mid = (lo + hi) // 2
        if try_one(counts[mid]):
            best, hi = counts[mid], mid - 1
        else:
            lo = mid + 1
    return best


def not_tried(counts: list[int], passed: dict[int, bool]) -> list[dict]:
    """Why each count bisecting did not try was left out (TuneResult.not_tried)."""
    out = []
    for n in sorted(set(counts) - set(passed)):
        failed_above = [m for m, ok in passed.items() if not ok and m > n]
        passed_below = [m for m, ok in passed.items() if ok and m < n]
        why = (f"fewer layers than {min(failed_above)}, which did not pass" if failed_above else
               f"more layers than {max(passed_below)}, which passed" if passed_below else "not needed")
        out.append({"layers": n, "why": why})
    return out


def recipe_for(teacher: str) -> str:
    """The recovery recipe measured on the teacher's model (named as the model it was first cut from):
    best-e5 for e5-small and its cuts, best for the rest (pruning.recipes.RECIPE_FOR_BASE)."""
    from pruning.recipes import recipe_for_base
    from pruning.run import original_of

    return recipe_for_base(original_of(resolve(teacher).card) or teacher)


def default_layer_counts(total: int) -> list[int]:
    """A third, a half and two thirds of the reference's layers (minilm 6: 2, 3, 4; full 12: 4, 6, 8)."""
    return sorted({max(1, round(total / 3)), max(1, total // 2), max(1, round(2 * total / 3))} - {total})


def reference_models(store: Store, reference: str | None) -> tuple[str, str]:
    """(judge, teacher): the model whose rankings the estimates are shares of — --reference, else the
    index's search model, whose vectors the index already holds (no model run) — and its fp32 form,
    which is cut and distilled from (an int8 variant has no weights to train)."""
    name = reference or store.get_meta("default_model")
    if not name:
        raise SbsearchError("the index has no default model yet; run `sbsearch index DIR` first")
    judge = split_spec(name)[1]
    teacher = base_of_export(judge)
    return judge, teacher


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


class _Timer:
    """Seconds spent by phase (TuneResult.timings)."""

    def __init__(self):
        self.seconds: dict[str, float] = {}

    def lap(self, phase: str, since: float) -> None:
        self.seconds[phase] = round(self.seconds.get(phase, 0.0) + time.perf_counter() - since, 1)


@dataclass
class _Judged:
    """The judge's side of every estimate: its stored vectors of every chunk, the pseudo-queries and
    its vectors of them, and the probe's part of the index."""
    judge: str
    teacher: str
    ids: np.ndarray
    passages_mat: np.ndarray
    passages: list[str]
    passage_doc: list[str]
    queries: list
    query_texts: list[str]
    query_mat: np.ndarray
    probe_rows: np.ndarray  # indices into passages
    probe_queries: list[int]  # indices into queries
    speed_texts: list[str]
    _teacher_embedder: object = field(default=None, repr=False)

    def teacher_embedder(self):
        """The teacher in fp32, loaded once for every candidate's speed-up."""
        if self._teacher_embedder is None:
            from ..embed import make_embedder

            self._teacher_embedder = make_embedder(resolve(self.teacher))
        return self._teacher_embedder

    def estimate(self, cand_queries: np.ndarray, cand_passages: np.ndarray) -> dict:
        return labelfree.estimate_from_vectors(self.query_mat, cand_queries, self.passages_mat, cand_passages,
                                               self.passage_doc, self.queries)

    def probe_estimate(self, model) -> dict:
        """A partly recovered (sentence-transformers) model's estimate on the probe's part of the index."""
        sub, sub_q = self.probe_rows, self.probe_queries
        enc = dict(batch_size=32, normalize_embeddings=True, convert_to_numpy=True, show_progress_bar=False)
        cq = np.asarray(model.encode_query([self.query_texts[j] for j in sub_q], **enc), dtype=np.float32)
        cp = np.asarray(model.encode_document([self.passages[i] for i in sub], **enc), dtype=np.float32)
        return labelfree.estimate_from_vectors(self.query_mat[sub_q], cq, self.passages_mat[sub], cp,
                                               [self.passage_doc[i] for i in sub],
                                               [self.queries[j] for j in sub_q])


def _judge(index_path, store: Store, options: TuneOptions, say, progress) -> _Judged:
    """Everything the estimates need from the judge, read from the index (its vectors are built
    first if the index lacks any, e.g. for an explicit --reference)."""
    from ..embed import make_embedder
    from ..index.indexer import Indexer

    judge, teacher = reference_models(store, options.reference)
    Indexer(index_path, judge, progress=progress).run([])  # a no-op when every chunk has a vector
    ids, mat, passages, passage_doc = stored_corpus(store, judge)
    labelfree.require_enough_documents(passage_doc)
    queries = labelfree.pseudo_queries(passages, passage_doc, n=options.n_queries)
    if len(queries) < 10:
        raise SbsearchError(f"the index yields only {len(queries)} pseudo-queries; tune needs more text")
    texts = labelfree.query_texts(queries)
    query_mat = np.asarray(make_embedder(resolve(judge)).encode_query(texts), dtype=np.float32)
    sub = probe_subset(passage_doc, queries)
    docs = {passage_doc[i] for i in sub}
    return _Judged(judge, teacher, ids, mat, passages, passage_doc, queries, texts, query_mat, sub,
                   [j for j, q in enumerate(queries) if q.source in docs],
                   passages[:: max(1, len(passages) // 64)][:64])


def tune(index_path: Path, options: TuneOptions | None = None, *, say: Callable[[str], None] = lambda s: None,
         progress=None, **overrides) -> TuneResult:
    """Run `sbsearch tune` on an index (a folder or a PostgreSQL URL); options as TuneOptions, or
    its fields as keywords."""
    options = options or TuneOptions.from_kwargs(overrides)
    if not 0 < options.keep_pct <= 100:
        raise SbsearchError(f"--keep must be a percentage between 0 and 100 (got {options.keep_pct})")
    t0 = time.perf_counter()
    timer = _Timer()
    store = open_store(index_path)  # an index folder or a PostgreSQL store; "no index at …" when none
    judge, teacher = reference_models(store, options.reference)
    total = resolve(teacher).layers
    if not total:
        raise SbsearchError(f"model {teacher!r}: its number of layers is unknown, so it cannot be cut")
    options = replace(options, recipe=options.recipe or recipe_for(teacher))
    counts = sorted(set(options.layer_counts or default_layer_counts(total)))
    bad = [n for n in counts if not 0 < n < total]
    if bad:
        raise SbsearchError(f"cannot cut {teacher!r} ({total} layers) to {bad[0]} layers: choose 1..{total - 1}")
    previous_default = store.get_meta("default_model")
    t = time.perf_counter()
    judged = _judge(index_path, store, options, say, progress)
    say(f"judge {judge} (its stored vectors) · teacher {teacher} ({total} layers) · "
        f"{len(judged.passages)} chunks · {len(judged.queries)} pseudo-queries")
    timer.lap("reference", t)
    result = TuneResult(str(store.path), judge, options.keep_pct, None, pseudo_queries=len(judged.queries),
                        exhaustive=options.exhaustive, teacher=teacher, recipe=options.recipe)
    from pruning.teacher_outputs import sharing_teacher_outputs

    with sharing_teacher_outputs() as shared:
        source = index_texts(store)  # the text to distil on: the index's chunks, as the index embeds them
        tried: dict[int, tuple[Candidate, tuple | None]] = {}

        def try_one(n: int) -> bool:
            tried[n] = _try_candidate(index_path, store, judged, n, total, source, options, timer, say, progress)
            result.candidates.append(tried[n][0])
            return tried[n][0].passed

        best = fewest_passing(counts, try_one, bisect=not options.exhaustive)
        result.timings_note = (f"teacher outputs reused for {shared.hits} of {shared.hits + shared.misses} "
                               f"batches ({shared.bytes / 2**20:.0f} MiB kept)")
    result.not_tried = not_tried(counts, {n: c.passed for n, (c, _) in tried.items()})
    for n, (cand, _) in tried.items():
        if cand.passed and n != best:  # passed, but fewer layers passed too: superseded, like a rejected one
            cand.status, cand.reason = "rejected", f"passed, but {best} layers pass too"
            _drop_vectors(store, cand.name)
    if best is not None:
        result.chosen = tried[best][0].name
        _serve(index_path, store, result, judged, tried[best], options, timer, say, progress)
        if options.set_default and previous_default and previous_default != result.served:
            say(f"default search model: {previous_default} -> {result.served}")
    result.seconds = round(time.perf_counter() - t0, 1)
    result.timings = timer.seconds
    if result.chosen:
        _record(store, result)
    return result


def _try_candidate(index_path, store: Store, judged: _Judged, n: int, total: int, source,
                   options: TuneOptions, timer: _Timer, say, progress) -> tuple[Candidate, tuple | None]:
    """Cut the teacher to n layers and recover it (or stop at a hopeless probe), embed the index with
    it and estimate it; a rejected candidate leaves nothing in the index. Returns the candidate and
    its (query, passage) vectors, which its int8 variant is judged against."""
    from pruning import api as pruning_api
    from pruning.train import RecoveryStopped

    from ..embed import make_embedder
    from ..index.indexer import Indexer

    name = f"{options.prefix or Path(judged.teacher).name + '-tuned'}-{n}"
    say(f"{name}: cutting {judged.teacher} to {n} of {total} layers, distilling on the index's chunks "
        f"({options.recipe})")
    probes: list[dict] = []
    verdict: dict = {}
    on_step = _prober(judged, options, probes, verdict, timer, say)
    t = time.perf_counter()
    try:
        card = pruning_api.prune(judged.teacher, n, None, name, distil=[source], recipe=options.recipe,
                                 distil_limit=options.distil_limit, evaluate=(), compare=(), force=options.force,
                                 progress=progress is not None and not isinstance(progress, NullProgress),
                                 quiet=progress is None, say=lambda s: say(f"  {s}"), on_step=on_step)
    except RecoveryStopped as stop:
        timer.lap("recoveries", t)
        say(f"{name}: skipped ({stop})")
        return Candidate(name, n, {}, None, round(time.perf_counter() - t, 1), False, "skipped", str(stop),
                         probes), None
    timer.lap("recoveries", t)
    t = time.perf_counter()
    say(f"{name}: embedding the index")
    Indexer(index_path, name, progress=progress).run([])
    cand_ids, cand_mat, _, _ = stored_corpus(store, name)
    if not np.array_equal(cand_ids, judged.ids):
        raise SbsearchError("the index changed while tuning; run `sbsearch tune` again")
    cand_embedder = make_embedder(resolve(name))
    cand_q = np.asarray(cand_embedder.encode_query(judged.query_texts), dtype=np.float32)
    est = judged.estimate(cand_q, cand_mat)
    timer.lap("candidates", t)
    t = time.perf_counter()
    ok = passes(est, options.keep_pct)
    speedup = _speedup(judged.teacher_embedder(), cand_embedder, judged.speed_texts)
    timer.lap("speed", t)
    cand = Candidate(name, n, est, speedup, card["seconds"]["training"], ok, "chosen" if ok else "rejected",
                     verdict.get("why", ""), probes)
    say(f"{name}: estimated nDCG@10 {_estimate_line(est)} of {judged.judge} ("
        f"agreement with its ranking {est['agreement_pct']:.1f}%, top-10 overlap {est['overlap@10']:.2f}) · "
        f"{speedup:.2f}x {judged.teacher}'s encode speed (fp32) · "
        + ("passes" if ok else f"lower end below {options.keep_pct:g}%"))
    if not ok:
        _drop_vectors(store, name)
    return cand, (cand_q, cand_mat)


def _drop_vectors(store: Store, name: str) -> None:
    """A candidate that is not served leaves nothing in the index."""
    from ..vectors import open_vector_index

    store.drop_model_vectors(name)
    open_vector_index(store, name).remove()


def _prober(judged: _Judged, options: TuneOptions, probes: list, verdict: dict, timer: _Timer, say):
    """The on_step hook of a recovery: probe at options.probe_at (and the observed fractions), and
    stop the recovery when the probe finds it hopeless (unless exhaustive)."""
    from pruning.train import RecoveryStopped

    probe_at = PROBE_AT if options.probe_at is None else options.probe_at
    headroom = PROBE_HEADROOM if options.headroom is None else options.headroom
    fractions = sorted({probe_at, *options.observe} - {0.0})

    def on_step(step: int, steps: int, model) -> None:
        due = [f for f in fractions if step == max(1, min(steps, round(f * steps)))]
        if not due or step == steps:
            return
        tp = time.perf_counter()
        est = judged.probe_estimate(model)
        probe = {"fraction": due[0], "step": step, "steps": steps, "chunks": len(judged.probe_rows),
                 "queries": len(judged.probe_queries), "estimate": est,
                 "seconds": round(time.perf_counter() - tp, 1)}
        probes.append(probe)
        timer.lap("probes", tp)
        if probe_at in due:
            skip, why = skip_decision(probe, options.keep_pct, headroom)
            verdict.update(skip=skip, why=why)
            say(f"  probe at step {step}/{steps}: {_estimate_line(est)} on {len(judged.probe_rows)} chunks · {why}"
                + (" (recovering it anyway: --exhaustive)" if skip and options.exhaustive else ""))
            if skip and not options.exhaustive:
                raise RecoveryStopped(why)

    return on_step


def _serve(index_path, store: Store, result: TuneResult, judged: _Judged, chosen_with_vectors: tuple,
           options: TuneOptions, timer: _Timer, say, progress) -> None:
    """The served model: the chosen candidate, or its int8 variant when that measures free; it
    becomes the index's default."""
    chosen = chosen_with_vectors[0]
    result.served, result.speedup, result.speedup_against = chosen.name, chosen.speedup, judged.teacher
    t = time.perf_counter()
    if options.int8:
        _serve_int8(index_path, store, result, chosen_with_vectors, judged, say, progress, options.int8_max_loss)
    timer.lap("int8", t)
    if options.set_default:
        store.set_meta("default_model", result.served)


def _record(store: Store, result: TuneResult) -> None:
    """The compare rows the query footer reads: the chosen model's estimate, and the served int8
    variant's (added last: the newest row naming the reference)."""
    chosen = next(c for c in result.candidates if c.name == result.chosen)
    ref = result.reference
    store.add_compare(chosen.name, ref, {
        "source": "tune", "created": now(), "a": chosen.name, "b": ref,
        "headline": _headline(chosen.estimate, chosen.speedup, result.teacher),
        "labelfree": chosen.estimate, "tune": result.as_dict()})
    if result.served != chosen.name:
        served_est = result.int8["estimate"]
        store.add_compare(result.served, ref, {
            "source": "tune", "created": now(), "a": result.served, "b": ref,
            "headline": _headline(served_est, result.speedup, result.speedup_against),
            "labelfree": served_est, "tune": result.as_dict()})


def _headline(est: dict, speedup: float | None, speedup_against: str | None) -> dict:
    return {"quality_metric": LABEL, "quality_pct": est["estimate_pct"],
            "quality_interval": est.get("interval_pct"), "interval_level": est.get("interval_level"),
            "speedup": speedup, "speedup_against": speedup_against}


def _serve_int8(index_path, store: Store, result: TuneResult, chosen_with_vectors: tuple, judged: _Judged, say,
                progress, max_loss: float = INT8_MAX_LOSS) -> None:
    """Build the chosen model's int8 variant, embed the index with it and estimate it twice: against
    the fp32 candidate (does int8 change what this model finds? that decides) and against the judge
    (the share of the index's model it keeps, which the footer shows). Served when the first loses at
    most max_loss points; its speed-up is measured against the teacher's own int8 variant."""
    from ..embed import make_embedder
    from ..index.indexer import Indexer

    chosen, (cand_q, cand_mat) = chosen_with_vectors
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
    if not np.array_equal(ids8, judged.ids):
        raise SbsearchError("the index changed while tuning; run `sbsearch tune` again")
    q8 = np.asarray(emb8.encode_query(judged.query_texts), dtype=np.float32)
    est8 = judged.estimate(q8, mat8)
    against_fp32 = labelfree.estimate_from_vectors(cand_q, q8, cand_mat, mat8, judged.passage_doc, judged.queries)
    loss = round(100.0 - against_fp32["estimate_pct"], 1)
    served = loss <= max_loss
    why = (f"judged against {chosen.name} it keeps {against_fp32['estimate_pct']:.1f}% "
           f"(agreement {against_fp32['agreement_pct']:.1f}%): {loss:.1f} points lost, at most {max_loss:g}")
    if not served:
        why += " allowed (--int8-max-loss raises the limit)"
    result.int8 = {"name": name8, "estimate": est8, "against_fp32": against_fp32, "loss_points": loss,
                   "served": served, "why": why}
    if not served:
        say(f"{name8}: {why}: serving {chosen.name} (fp32)")
        return
    against = judged.teacher + INT8_SUFFIX  # the speed-up in the runtime that serves it
    try:
        ref8 = make_embedder(resolve(against))
    except SbsearchError:
        ref8, against = make_embedder(resolve(judged.teacher)), judged.teacher  # e.g. full-int8, refused by its export check
    result.served, result.speedup_against = name8, against
    result.speedup = _speedup(ref8, emb8, judged.speed_texts)
    result.int8["speedup"] = result.speedup
    result.int8["speedup_against"] = against
    say(f"{name8}: estimated nDCG@10 {_estimate_line(est8)} of {judged.judge}; {why}: served, "
        f"{result.speedup:.2f}x {against}'s encode speed")
