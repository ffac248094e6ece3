"""The FAISS implementation of VectorIndex: files derived from the vectors in SQLite, built,
updated, loaded, searched and verified, always replaceable.

Each FAISS file holds one generation of the index and is never modified once written
(`<model-key>-g<generation>.faiss`); a small JSON file, replaced atomically, names the current one.
A reader therefore never pairs the metadata of one generation with the vectors of another. A file
that is missing, unreadable or stale is rebuilt from SQLite without touching the model.

An exact index is written as `<model-key>-g<generation>.int8` instead (exact_file.py): its vectors
in the int8 form the store keeps them in, a quarter of the float32 file, decoded into the same
IndexFlatIP at load. Where its vectors are not of that form (a store of float32 vectors) it is
written as a FAISS file, as every exact index was before; such a file from an older version is
searched as it is, and the next update rebuilds it from the store (meta `file_format`).

Index types, chosen at build time from the number of vectors (numbers in docs/BENCHMARKS.md,
`benchmarks/ann.py`); all use inner product on L2-normalised vectors, i.e. cosine similarity:

- "exact": IndexIDMap2(IndexFlatIP), up to EXACT_UP_TO vectors. Recall 1, nothing to tune.
- "ivf": IndexIVFFlat (flat inner-product quantizer, ~sqrt(N) lists) above it. At build time its
  recall@10 against exact search is measured on a sample of the stored vectors, and nprobe is raised
  until it reaches RECALL_TARGET; if that needs more than IVF_MAX_PROBE_FRACTION of the lists, the
  approximate index is not worth it and the build falls back to exact.
- "hnsw": IndexIDMap2(IndexHNSWFlat), only on request (SBSEARCH_INDEX_TYPE=hnsw), tuned the same way
  with efSearch.
- "ivf-binary" and "ivf-sq8" (quantised.py): IVF lists of codes instead of vectors (binary: one sign
  bit per dimension, 48 bytes at 384-d; SQ8: one byte per dimension), each search asking for
  `factor` times the results wanted and rescoring those candidates exactly with their stored float
  vectors. nprobe and factor are tuned together at build time on the rescored results. The
  automatic choice takes them once the collection's float32 vectors would pass
  FLOAT_INDEX_MAX_BYTES in a searcher's memory: binary first, then SQ8, then the float IVF, the
  first that reaches RECALL_TARGET. Measured at 1M 384-d vectors (real MiniLM embeddings, perturbed;
  benchmarks/quantised.py, docs/SCALING.md): ivf-binary nprobe 161/1000, factor 4: 54 MB file,
  113 MB resident in the search process, p50 2.3-4.4 ms (two runs), held-out recall@10 0.991; ivf-sq8 375 MB,
  405 MB, 3.9 ms, 0.982; float IVF 1,474 MB, 1,385 MB, 4.6 ms, 0.982; exact 1,472 MB, 143 ms.

Why IVF and not HNSW by default (measured on this machine, 2 cores): at 100k 768-d vectors an IVF
build took 3 s against 34 s for HNSW (M=32), and both answer a single query far below the query
encoder's cost (about 1 ms vs 0.2 ms). IVF removes ids natively, so an incremental re-index patches
the file in place, whereas HNSW cannot remove and would rebuild on almost every run (an edited file
removes its old chunks). FAISS also memory-maps IVF lists (IO_FLAG_MMAP), so concurrent searchers
share the page cache; flat and HNSW files are read into memory.

The meta JSON records the type, its parameters, the measured recall, the number of vectors it was
measured at and the threshold in force; the search parameter (nprobe / efSearch) is applied again
on every load, not left to what write_index happened to persist.
"""

from __future__ import annotations

import json
import math
import os
import time
import zlib
from pathlib import Path
from typing import Iterable, NamedTuple

import numpy as np

from ..config import model_key
from ..errors import SbsearchError
from . import exact_file
from .protocol import VectorSource
from .quantised import BINARY, QUANTISED, RESCORE_FACTORS, SQ8, RescoredIndex, kind_of_inner, new_index

FAISS_DIR = "faiss"  # beside the index's database

# Exact search up to this many vectors. Measured single-query p50 of IndexFlatIP on this machine:
# 20k vectors 2.8 ms at 384-d, 7.3 ms at 768-d; 50k: 7.6 / 17.5 ms; 100k: 19 / 34 ms. Below 20k the
# saving of an approximate index is a few ms against a query encoding of 45 ms or more, and exact
# search costs no training, no tuning and no recall loss.
EXACT_UP_TO = 20_000
# An approximate index needs enough vectors to train its lists and to measure its recall.
APPROX_MIN = 1_000
RECALL_TARGET = 0.99
RECALL_K = 10
RECALL_QUERIES = 200  # stored vectors used as queries to measure recall (deterministic sample)
RECALL_SEED = 0
# Lists per sqrt(N). 2*sqrt(N) lists answered ~1.8x faster at 200k x 768 but took 2.4x longer to
# build (9.7 s vs 4.0 s); at 1 ms or so per query the build time matters more (a reader rebuilds a
# missing file while the user waits).
IVF_LISTS_PER_SQRT_N = 1.0
IVF_TRAIN_PER_LIST = 50  # k-means sample; the recall measurement, not the k-means, guards quality
IVF_KMEANS_ITERS = 10
IVF_MAX_PROBE_FRACTION = 0.25  # needing to scan more than this of the lists: use exact search
# Binary codes are 32x smaller than float vectors, so scanning twice the share of lists still reads
# 16x fewer bytes than the float IVF at its limit; their Hamming lists also split the collection
# less well than float k-means (1M vectors: nprobe 161 of 1,000 against 13 for the float IVF at
# the same recall), which is what the wider limit is for.
BINARY_MAX_PROBE_FRACTION = 0.5
HNSW_M = 32
HNSW_EF_CONSTRUCTION = 64
HNSW_MAX_EF = 1024
# An incremental update keeps the index (and its measured recall) while the number of vectors stays
# within this factor of the count it was measured at, and the vectors added and removed since then
# stay below REBUILD_CHURN of that count; beyond, the IVF lists were trained on a different
# collection and the file is rebuilt and measured again.
REBUILD_GROWTH = 1.5
REBUILD_CHURN = 0.5
# Quantised types (quantised.py). An automatic choice quantises once the float32 vectors of the
# collection would take more than this (n x dim x 4 bytes) in the searcher's memory; it tries the
# types in AUTO_QUANTISED in turn (the smallest codes first) and keeps the first that reaches
# RECALL_TARGET after rescoring.
FLOAT_INDEX_MAX_BYTES = 1 << 30
AUTO_QUANTISED = (BINARY, SQ8)

KINDS = ("exact", "ivf", "hnsw") + QUANTISED
ENV_TYPE = "SBSEARCH_INDEX_TYPE"


def _faiss():
    import faiss

    return faiss


def faiss_dir(store: VectorSource) -> Path:
    return Path(store.path) / FAISS_DIR


def disk_bytes(store: VectorSource) -> int:
    folder = faiss_dir(store)
    return sum(p.stat().st_size for p in folder.glob("*")) if folder.exists() else 0


def _meta_path(store: VectorSource, model: str) -> Path:
    return faiss_dir(store) / f"{model_key(model)}.json"


# How a file is written, recorded in the meta as `file_format` and in the file's suffix: "faiss" by
# FAISS's own writer (every type; every file of a version before file_format), "int8" by exact_file
# (the exact type whose vectors are the store's int8 vectors decoded).
FAISS_FILE, EXACT_INT8 = "faiss", exact_file.SUFFIX.lstrip(".")
FILE_FORMATS = (FAISS_FILE, EXACT_INT8)


def _index_path(store: VectorSource, model: str, generation: int, file_format: str = FAISS_FILE) -> Path:
    return faiss_dir(store) / f"{model_key(model)}-g{generation}.{file_format}"


def _generation_files(store: VectorSource, model: str) -> list[Path]:
    """Every generation's file of a model, whatever its format."""
    return [p for fmt in FILE_FORMATS for p in faiss_dir(store).glob(f"{model_key(model)}-g*.{fmt}")]


def current_file(store: VectorSource, model: str) -> Path | None:
    meta = _read_meta(store, model)
    return faiss_dir(store) / meta["file"] if meta and meta.get("file") else None


# ------------------------------------------------------------------------------ choosing a type

def requested_kind() -> str:
    """$SBSEARCH_INDEX_TYPE: one of KINDS, or auto (the default: chosen from the count)."""
    value = (os.environ.get(ENV_TYPE) or "auto").strip().lower()
    if value not in KINDS + ("auto",):
        raise SbsearchError(f"{ENV_TYPE}={value!r}: expected one of {', '.join(KINDS)}, auto")
    return value


def choose_kind(n: int, requested: str | None = None, dim: int | None = None) -> str:
    """The type for n vectors of `dim` dimensions: exact up to EXACT_UP_TO, the float IVF while its
    vectors take at most FLOAT_INDEX_MAX_BYTES, quantised (AUTO_QUANTISED[0]) above."""
    requested = requested or requested_kind()
    if requested != "auto":
        kind = requested
    elif n <= EXACT_UP_TO:
        kind = "exact"
    else:
        kind = AUTO_QUANTISED[0] if dim and n * dim * 4 > FLOAT_INDEX_MAX_BYTES else "ivf"
    return "exact" if n < APPROX_MIN else kind


def _attempts(kind: str, requested: str) -> list[str]:
    """The approximate types a build tries in turn until one reaches the recall target (exact
    search after them all): an automatic quantised choice goes on to the larger codes, then to the
    float IVF; a type asked for by name is tried alone."""
    if kind == "exact":
        return []
    if requested == "auto" and kind in AUTO_QUANTISED:
        return [*AUTO_QUANTISED[AUTO_QUANTISED.index(kind):], "ivf"]
    return [kind]


def _kind(meta: dict) -> str:
    # Files written before index types existed have type "IndexIDMap2(IndexFlatIP)": exact.
    return meta.get("type") if meta.get("type") in KINDS else "exact"


def _ivf_nlist(n: int) -> int:
    # FAISS wants >= 39 training points per list; stay well clear of it for small collections.
    return max(1, min(int(IVF_LISTS_PER_SQRT_N * math.sqrt(n)), n // 39))


def _new_exact(dim: int):
    faiss = _faiss()
    return faiss.IndexIDMap2(faiss.IndexFlatIP(dim))


def _set_search_param(index, kind: str, params: dict) -> None:
    faiss = _faiss()
    if kind in QUANTISED:
        index.nprobe = int(params.get("nprobe") or index.nprobe)
        index.factor = int(params.get("factor") or index.factor)
    elif kind == "ivf" and params.get("nprobe"):
        faiss.extract_index_ivf(index).nprobe = int(params["nprobe"])
    elif kind == "hnsw" and params.get("efSearch"):
        inner = faiss.downcast_index(index.index if hasattr(index, "id_map") else index)
        inner.hnsw.efSearch = int(params["efSearch"])


def kind_of(index) -> str:
    """The type (one of KINDS) of a FAISS index object, or of a quantised index with its rescoring."""
    faiss = _faiss()
    if isinstance(index, RescoredIndex):
        return index.kind
    quantised = kind_of_inner(index)
    if quantised:
        return quantised
    if faiss.try_extract_index_ivf(index) is not None:
        return "ivf"
    inner = faiss.downcast_index(index.index) if hasattr(index, "id_map") else index
    return "hnsw" if isinstance(inner, faiss.IndexHNSW) else "exact"


def index_ids(index) -> np.ndarray:
    """Every id an index holds, whatever its type (IndexIDMap2 keeps them in id_map; an IVF index,
    float, scalar-quantised or binary, keeps them in its inverted lists, as its own ids)."""
    faiss = _faiss()
    if isinstance(index, RescoredIndex):
        index = index.inner
    if hasattr(index, "id_map"):
        return faiss.vector_to_array(index.id_map)
    ivf = index if isinstance(index, faiss.IndexBinaryIVF) else faiss.extract_index_ivf(index)
    invlists = ivf.invlists
    parts = []
    for lst in range(ivf.nlist):
        size = invlists.list_size(lst)
        if size:
            ptr = invlists.get_ids(lst)
            parts.append(faiss.rev_swig_ptr(ptr, size).copy())
            invlists.release_ids(lst, ptr)
    return np.concatenate(parts) if parts else np.zeros(0, dtype=np.int64)


# ------------------------------------------------------------------------------ recall

class _Sample(NamedTuple):
    """What a build reads of the stored vectors before it fills an index: how many there are, the
    recall queries (stored vectors, with their ids) and the IVF training vectors."""

    total: int
    query_ids: np.ndarray
    queries: np.ndarray
    train: np.ndarray


def _sample_positions(count: int) -> tuple[np.ndarray, np.ndarray]:
    """Sorted positions, in the store's order, of the recall queries and of the IVF training sample
    (IVF_TRAIN_PER_LIST per list) among `count` vectors: the same draw for every type tried, so
    the same collection always gives the same index."""
    rng = np.random.default_rng(RECALL_SEED)
    queries = np.sort(rng.choice(count, min(RECALL_QUERIES, count), replace=False))
    train = np.sort(rng.choice(count, min(count, IVF_TRAIN_PER_LIST * _ivf_nlist(count)), replace=False))
    return queries, train


def _read_sample(batches: Iterable[tuple[np.ndarray, np.ndarray]], count: int, dim: int) -> _Sample:
    """The sample of `count` stored vectors, in one pass over their (ids, matrix) batches: only the
    rows drawn are copied, each batch is dropped once read (10M 384-d vectors would be 15 GB)."""
    wanted = _sample_positions(count)
    picked: list[tuple[list, list]] = [([], []) for _ in wanted]
    start = 0
    for ids, mat in batches:
        for (got_ids, got_rows), positions in zip(picked, wanted):
            sel = positions[(positions >= start) & (positions < start + len(ids))] - start
            got_ids.append(ids[sel])
            got_rows.append(np.asarray(mat[sel], dtype=np.float32))  # a copy: the batch is not kept
        start += len(ids)
    (query_ids, queries), (_, train) = [
        (np.concatenate(i), np.vstack(r)) if i else (np.zeros(0, np.int64), np.zeros((0, dim), np.float32))
        for i, r in picked]
    return _Sample(start, query_ids, queries, train)


class _ExactTopK:
    """Exact top-k of a few queries, accumulated batch by batch over the whole collection."""

    def __init__(self, queries: np.ndarray, k: int):
        self.q, self.k = queries, k
        self.scores = np.full((len(queries), k), -np.inf, dtype=np.float32)
        self.ids = np.full((len(queries), k), -1, dtype=np.int64)

    def add(self, ids: np.ndarray, mat: np.ndarray) -> None:
        s = np.concatenate([self.scores, self.q @ mat.T], axis=1)
        i = np.concatenate([self.ids, np.broadcast_to(ids, (len(self.q), len(ids)))], axis=1)
        top = np.argpartition(-s, self.k - 1, axis=1)[:, :self.k]
        self.scores, self.ids = np.take_along_axis(s, top, 1), np.take_along_axis(i, top, 1)

    def result(self) -> tuple[np.ndarray, np.ndarray]:
        order = np.argsort(-self.scores, axis=1)
        return np.take_along_axis(self.scores, order, 1), np.take_along_axis(self.ids, order, 1)


def recall_at_k(ann: tuple[np.ndarray, np.ndarray], exact: tuple[np.ndarray, np.ndarray],
                query_ids: np.ndarray | None = None, k: int = RECALL_K) -> float:
    """Share of the exact top-k found by the approximate search, both given as (scores, ids) with
    at least k+1 columns. A query that is itself a stored vector is left out of its own results
    (finding itself is free). A result scoring at least the k-th exact score counts as found: with
    duplicate texts many vectors tie, and either of two equal neighbours is a right answer."""
    (a_s, a_i), (e_s, e_i) = ann, exact
    found = wanted = 0
    for j in range(len(e_i)):
        own = int(query_ids[j]) if query_ids is not None else None
        gold = [(int(i), float(s)) for s, i in zip(e_s[j], e_i[j]) if i >= 0 and i != own][:k]
        got = [(int(i), float(s)) for s, i in zip(a_s[j], a_i[j]) if i >= 0 and i != own][:k]
        if not gold:
            continue
        kth = gold[-1][1] - 1e-5  # inner products summed in another order differ in the last bits
        gold_ids = {i for i, _ in gold}
        found += sum(1 for i, s in got if i in gold_ids or s >= kth)
        wanted += len(gold)
    return found / wanted if wanted else 1.0


def _tune(index, kind: str, values: list[int], queries: np.ndarray, query_ids: np.ndarray,
          exact: tuple[np.ndarray, np.ndarray]) -> tuple[int | None, float]:
    """The smallest search parameter among `values` (increasing; bisected between the last failing
    and the first passing one) whose recall@10 reaches RECALL_TARGET; (None, best recall) if none."""
    name = _param_name(kind)
    measured: dict[int, float] = {}

    def recall(v: int) -> float:
        if v not in measured:
            _set_search_param(index, kind, {name: v})
            d, i = index.search(queries, RECALL_K + 1)
            measured[v] = recall_at_k((d, i), exact, query_ids)
        return measured[v]

    failed = None  # the largest value known to miss the target
    for v in values:
        if recall(v) < RECALL_TARGET:
            failed = v
            continue
        passed = v
        while failed is not None and passed - failed > 1:
            mid = (failed + passed) // 2
            failed, passed = (failed, mid) if recall(mid) >= RECALL_TARGET else (mid, passed)
        return passed, recall(passed)
    return None, max(measured.values())


def _tune_rescored(index: RescoredIndex, values: list[int], queries: np.ndarray, query_ids: np.ndarray,
                   exact: tuple[np.ndarray, np.ndarray]) -> tuple[dict | None, float]:
    """The smallest rescoring factor, and with it the smallest nprobe, whose rescored recall@10
    reaches RECALL_TARGET: ({"factor", "nprobe"}, recall), or (None, best recall) if none does."""
    best = 0.0
    for factor in RESCORE_FACTORS[index.kind]:
        index.factor = factor
        # one measurement at the most lists allowed tells whether this factor can pass at all
        nprobe, recall = _tune(index, index.kind, values[-1:], queries, query_ids, exact)
        if nprobe is not None:
            nprobe, recall = _tune(index, index.kind, values, queries, query_ids, exact)
            return {"nprobe": nprobe, "factor": factor}, recall
        best = max(best, recall)
    return None, best


def _param_name(kind: str) -> str:
    return "efSearch" if kind == "hnsw" else "nprobe"


def _doublings(start: int, stop: int) -> list[int]:
    out, v = [], start
    while v < stop:
        out.append(v)
        v *= 2
    return out + [stop]


# ------------------------------------------------------------------------------ build

def _new_approx(kind: str, sample: _Sample, dim: int,
                rescore_from: tuple[VectorSource, str] | None) -> tuple[object, dict, list[int]]:
    """An empty (trained on the sample, for the IVF types) index of `kind`, its fixed parameters
    and the values of its search parameter to try. A quantised index rescores from `rescore_from`
    (store, model)."""
    faiss = _faiss()
    if kind == "hnsw":
        inner = faiss.IndexHNSWFlat(dim, HNSW_M, faiss.METRIC_INNER_PRODUCT)
        inner.hnsw.efConstruction = HNSW_EF_CONSTRUCTION
        return (faiss.IndexIDMap2(inner), {"M": HNSW_M, "efConstruction": HNSW_EF_CONSTRUCTION},
                _doublings(16, HNSW_MAX_EF))
    nlist = _ivf_nlist(sample.total)
    if kind == "ivf":
        index = faiss.IndexIVFFlat(faiss.IndexFlatIP(dim), dim, nlist, faiss.METRIC_INNER_PRODUCT)
        index.cp.niter = IVF_KMEANS_ITERS
        index.train(sample.train)
    else:
        index = RescoredIndex(kind, new_index(kind, dim, nlist), *rescore_from)
        index.inner.cp.niter = IVF_KMEANS_ITERS
        index.train(sample.train)
    fraction = BINARY_MAX_PROBE_FRACTION if kind == BINARY else IVF_MAX_PROBE_FRACTION
    return index, {"nlist": nlist}, _doublings(1, max(1, int(nlist * fraction)))


def _build_approx(kind: str, sample: _Sample, batches: Iterable[tuple[np.ndarray, np.ndarray]], dim: int,
                  rescore_from: tuple[VectorSource, str] | None = None) -> tuple[object | None, dict]:
    """Train (IVF types, on the sample), fill and tune an approximate index: the (ids, matrix)
    batches are added one at a time as they come, and the exact top-k of the sample's queries is
    accumulated over the same batches, so no more than a batch of them is held at once. A quantised
    kind rescores from `rescore_from` (store, model), and its rescored recall is what is measured.
    Returns (None, info) when the recall target cannot be reached at a worthwhile cost."""
    if sample.total < APPROX_MIN:  # fewer than counted (a writer in between): not worth an approximate index
        return None, {"fallback": f"{sample.total} vectors are too few for {kind}"}
    index, params, values = _new_approx(kind, sample, dim, rescore_from)
    exact = _ExactTopK(sample.queries, RECALL_K + 1)
    for ids, mat in batches:
        exact.add(ids, mat)
        index.add_with_ids(mat, ids)
    name = _param_name(kind)
    queries, query_ids = sample.queries, sample.query_ids
    if kind in QUANTISED:
        tuned, recall = _tune_rescored(index, values, queries, query_ids, exact.result())
        tried = f"{name} {values[-1]}, factor {RESCORE_FACTORS[kind][-1]}"
    else:
        value, recall = _tune(index, kind, values, queries, query_ids, exact.result())
        tuned, tried = ({name: value} if value is not None else None), f"{name} {values[-1]}"
    if tuned is None:
        return None, {"fallback": f"{kind} reached recall@10 {recall:.3f} < {RECALL_TARGET} at {tried} ({params})"}
    params.update(tuned)
    _set_search_param(index, kind, params)
    return index, {"params": params, "recall_at_10": round(recall, 4), "recall_queries": len(query_ids)}


def _first_approx(store: VectorSource, model: str, dim: int, attempts: list[str], count: int,
                  info: dict) -> tuple[str | None, object | None]:
    """The first of `attempts` that reaches the recall target, built and tuned: (kind, index), or
    (None, None). One pass over the store draws the sample they share, then one pass per type tried
    fills its index; `info` gets the measurements, and why each type before it missed."""
    sample = _read_sample(store.vectors(model), count, dim) if attempts else None
    found, missed = (None, None), []
    for attempt in attempts:
        index, measured = _build_approx(attempt, sample, store.vectors(model), dim, (store, model))
        if index is not None:
            info.update(measured)
            found = attempt, index
            break
        missed.append(measured["fallback"])
    if missed:
        info["fallback"] = "; ".join(missed)
    return found


def build(store: VectorSource, model: str, dim: int) -> object:
    """Rebuild a model's FAISS index from every vector stored for it, of the type its size calls
    for (or $SBSEARCH_INDEX_TYPE), with its recall measured when it is approximate. The vectors are
    read from the store batch by batch, never all at once (an approximate type: one pass for its
    sample, one to fill it; exact: one, into the index's own array)."""
    t0 = time.perf_counter()
    generation = store.generation
    requested = requested_kind()
    count = store.vector_count(model)
    info: dict = {"chosen_by": "auto" if requested == "auto" else f"{ENV_TYPE}={requested}"}
    kind, index = _first_approx(store, model, dim, _attempts(choose_kind(count, requested, dim), requested), count, info)
    if index is None:
        kind, index = "exact", _new_exact(dim)
        for ids, mat in store.vectors(model):
            index.add_with_ids(mat, ids)
        info.update(params={}, recall_at_10=1.0, recall_queries=0)
    info.update(type=kind, measured_at_count=int(index.ntotal), changed_since_build=0,
                build_seconds=round(time.perf_counter() - t0, 2))
    _write(store, model, index, generation, info)
    return index


_BUILD_FIELDS = ("type", "params", "recall_at_10", "recall_queries", "measured_at_count", "changed_since_build",
                 "build_seconds", "chosen_by", "fallback", "centre")
_ENDS = 1 << 16  # bytes at each end of a file covered by the check made at every load
# A file up to this size is checksummed in full when a searcher loads it (about 0.3 s a GB), so a
# damaged quantised file (1M vectors: 48 MB binary, 400 MB SQ8) is rebuilt rather than searched;
# a larger one has its size and ends compared at load, and its whole checksum by `check`.
FULL_CHECK_AT_LOAD_MAX = 1 << 30


def _describe(index) -> str:
    faiss = _faiss()
    if isinstance(index, RescoredIndex):
        return f"{type(index.inner).__name__} + exact rescoring from the store"
    if hasattr(index, "id_map"):
        return f"IndexIDMap2({type(faiss.downcast_index(index.index)).__name__})"
    return f"{type(index).__name__}(IndexFlatIP)"


def _write_file(index, path: Path) -> str:
    """Write the index to `path` in the smallest format that keeps it exactly; which (FILE_FORMATS)."""
    faiss = _faiss()
    inner = index.inner if isinstance(index, RescoredIndex) else index
    if isinstance(inner, faiss.IndexBinary):
        faiss.write_index_binary(inner, str(path))
        return FAISS_FILE
    if exact_file.write(inner, path):  # writes an exact index of int8 vectors, nothing else
        return EXACT_INT8
    faiss.write_index(inner, str(path))
    return FAISS_FILE


def _crc32(path: Path, ends_only: bool) -> int:
    """CRC-32 of a file, or of its first and last _ENDS bytes only (cheap enough for every load)."""
    crc = 0
    with open(path, "rb") as f:
        if ends_only:
            size = os.fstat(f.fileno()).st_size
            crc = zlib.crc32(f.read(_ENDS), crc)
            f.seek(max(0, size - _ENDS))
            return zlib.crc32(f.read(_ENDS), crc)
        while block := f.read(1 << 22):
            crc = zlib.crc32(block, crc)
    return crc


def _file_facts(path: Path) -> dict:
    """What the meta records of a written file, so that a truncated, damaged or swapped file (one of
    another generation under this name) is told apart from the one the meta describes."""
    return {"file_bytes": path.stat().st_size, "file_crc32": _crc32(path, False), "file_ends_crc32": _crc32(path, True)}


def _file_problem(path: Path, meta: dict, full: bool) -> str | None:
    """What is wrong with the file against the facts its meta recorded (None: nothing seen). The
    size and the ends are compared on every load (a memory-mapped file shorter than its lists
    would crash the reader); `full` compares the checksum of the whole file (check)."""
    try:
        size = path.stat().st_size
        if "file_bytes" in meta and size != meta["file_bytes"]:
            return f"truncated or replaced ({size:,} bytes, its meta says {meta['file_bytes']:,})"
        if "file_ends_crc32" in meta and _crc32(path, True) != meta["file_ends_crc32"]:
            return "corrupt or replaced (its checksum differs from its meta's)"
        if full and "file_crc32" in meta and _crc32(path, False) != meta["file_crc32"]:
            return "corrupt or replaced (its checksum differs from its meta's)"
    except OSError:
        return "missing"
    return None


def _write(store: VectorSource, model: str, index, generation: int, info: dict | None = None) -> None:
    meta_file = _meta_path(store, model)
    meta_file.parent.mkdir(parents=True, exist_ok=True)
    previous = current_file(store, model)
    if info is None:  # a file written as it is (tests): keep what the current meta says of it
        old = _read_meta(store, model) or {}
        info = {k: old[k] for k in _BUILD_FIELDS if k in old}
    tmp = _index_path(store, model, generation).with_suffix(f".tmp{os.getpid()}")
    file_format = _write_file(index, tmp)
    index_file = _index_path(store, model, generation, file_format)
    facts = _file_facts(tmp)
    os.replace(tmp, index_file)
    kind = kind_of(index)  # the object written is the truth, whatever `info` carried over
    centre = getattr(index, "centre", None)
    meta = {"model": model, "generation": generation, "file": index_file.name, "count": int(index.ntotal),
            "dim": int(index.d), "faiss": _describe(index), "exact_up_to": EXACT_UP_TO,
            **{k: v for k, v in info.items() if v is not None}, "type": kind, "file_format": file_format,
            **facts}
    if centre is not None:
        meta["centre"] = [float(x) for x in centre]
    tmp_meta = meta_file.with_suffix(f".tmp{os.getpid()}")
    tmp_meta.write_text(json.dumps(meta))
    os.replace(tmp_meta, meta_file)
    # Keep the current and the previous file (a reader may be about to open it); older ones go.
    # A reader that already opened a removed file keeps reading it: Linux frees it on close.
    keep = {index_file.name, previous.name if previous else None}
    for old in _generation_files(store, model):
        if old.name not in keep:
            old.unlink(missing_ok=True)


def _read_meta(store: VectorSource, model: str) -> dict | None:
    meta_file = _meta_path(store, model)
    try:
        return json.loads(meta_file.read_text())
    except (OSError, ValueError):
        return None


def describe(store: VectorSource, model: str) -> dict | None:
    """What `sbsearch status` shows of a model's FAISS file, from its meta JSON (no FAISS import).
    memory_bytes is what a searcher holds of it: the whole file (flat and HNSW files are read into
    memory, IVF lists memory-mapped and shared by searchers; a quantised file holds codes, not
    vectors: the rescoring reads its few candidates' vectors from the store), except for an int8
    exact file, decoded into float32 vectors and their ids."""
    meta = _read_meta(store, model)
    if not meta:
        return None
    memory = meta.get("file_bytes")
    if meta.get("file_format") == EXACT_INT8 and meta.get("count") is not None and meta.get("dim"):
        memory = meta["count"] * (4 * meta["dim"] + 8)
    return {"type": _kind(meta), "params": meta.get("params", {}), "recall_at_10": meta.get("recall_at_10"),
            "measured_at_count": meta.get("measured_at_count"), "count": meta.get("count"),
            "generation": meta.get("generation"), "current": meta.get("generation") == store.generation,
            "exact_up_to": meta.get("exact_up_to"), "fallback": meta.get("fallback"),
            "memory_bytes": memory, "file_bytes": meta.get("file_bytes"), "file_format": meta.get("file_format")}


# ------------------------------------------------------------------------------ update / load

def _rebuild_reason(meta: dict, n_after: int, changed: int, removing: bool) -> str | None:
    """Why an incremental update should rebuild (re-choose the type, re-train, re-measure) instead."""
    kind = _kind(meta)
    if kind == "exact" and "file_format" not in meta:
        # float32, and holding the vectors as embedded, not as the (int8) store keeps them now
        return "an exact file of a version before int8 files: rebuilt once, from the store's vectors"
    wanted = choose_kind(n_after, dim=meta.get("dim"))
    measured = meta.get("measured_at_count") or meta.get("count") or 0
    drifted = (n_after > measured * REBUILD_GROWTH or n_after < measured / REBUILD_GROWTH
               or changed > REBUILD_CHURN * measured)
    if meta.get("fallback") and wanted != kind:
        # The wanted type missed the recall target at this collection (the file is what the build
        # fell back to): try again only once the collection has changed enough, not on every run.
        return f"{n_after} vectors since the fallback to {kind} at {measured}" if drifted else None
    if wanted != kind:
        return f"{n_after} vectors call for {wanted} (file is {kind})"
    if kind == "hnsw" and removing:
        return "HNSW cannot remove vectors"
    if kind != "exact" and drifted:
        return f"{n_after} vectors, {changed} changed since recall was measured at {measured}"
    return None


def update(store: VectorSource, model: str, dim: int, previous_generation: int, generation: int,
           removed_ids: list[int], added_ids: list[int], added_vectors: np.ndarray | None) -> None:
    """Apply one run's changes to the FAISS file if it reflects the state before the run;
    otherwise rebuild it. Either way the file ends at `generation`.

    An IVF file takes removals and additions in place and keeps the recall measured at its build
    (its lists stay as trained); it is rebuilt, and its type chosen again, when the count crosses
    EXACT_UP_TO either way, drifts past REBUILD_GROWTH of the measured count, or when the vectors
    changed since that measurement exceed REBUILD_CHURN of it."""
    meta = _read_meta(store, model)
    index = None
    if meta and meta.get("generation") == previous_generation and meta.get("dim") == dim:
        try:
            index = _open(store, model, meta, current_file(store, model), shared=False)
        except RuntimeError:
            index = None
    if index is None:
        build(store, model, dim)
        return
    n_after = store.vector_count(model)
    changed = int(meta.get("changed_since_build", 0)) + len(removed_ids) + len(added_ids)
    if _rebuild_reason(meta, n_after, changed, bool(removed_ids)):
        build(store, model, dim)
        return
    if removed_ids:
        index.remove_ids(np.asarray(removed_ids, dtype=np.int64))
    if added_ids:
        index.add_with_ids(np.asarray(added_vectors, dtype=np.float32), np.asarray(added_ids, dtype=np.int64))
    if index.ntotal != n_after:
        build(store, model, dim)  # disagreement with SQLite: trust SQLite
        return
    info = {k: meta[k] for k in _BUILD_FIELDS if k in meta}
    info.update(type=_kind(meta), changed_since_build=changed)
    if choose_kind(n_after, dim=dim) == info["type"]:
        info.pop("fallback", None)  # the type is now the choice, not a fallback
    _write(store, model, index, generation, info)


def load(store: VectorSource, model: str, dim: int):
    """The model's FAISS index at the store's current generation (rebuilt if stale)."""
    index = load_generation(store, model, dim, store.generation)
    return index if index is not None else build(store, model, dim)


def _read_shared(path: str):
    """IO_FLAG_MMAP maps the inverted lists of an IVF file (read-only: FAISS raises on a change),
    so searchers of one index share the page cache; FAISS reads flat and HNSW files into memory
    under the same flag. (IO_FLAG_MMAP_IFC would map flat codes too, but FAISS 1.15 crashes with a
    segfault when such an index is then modified, which callers of load() may do.)"""
    faiss = _faiss()
    try:
        return faiss.read_index(path, faiss.IO_FLAG_MMAP)
    except RuntimeError:
        return faiss.read_index(path)


def _read_file(path: Path, kind: str, shared: bool):
    """The raw FAISS object in `path`, read by the reader of `kind` (binary indexes have their own)
    or, for an int8 exact file, by exact_file. RuntimeError when the file cannot be read."""
    faiss = _faiss()
    if path.suffix == f".{EXACT_INT8}":
        return exact_file.read(path)  # decoded into memory: the same as a flat file read
    if kind == BINARY:
        return faiss.read_index_binary(str(path))  # small (48 bytes a vector at 384-d): read whole
    return _read_shared(str(path)) if shared else faiss.read_index(str(path))


def _open(store: VectorSource, model: str, meta: dict, path: Path, shared: bool):
    """The usable index in `path` as its meta describes it: checked against the meta's record of
    the file, of the meta's type and count, a quantised one wrapped with its rescoring, its search
    parameters applied. RuntimeError for anything that does not match (the caller rebuilds)."""
    kind = _kind(meta)
    problem = _file_problem(path, meta, full=meta.get("file_bytes", 0) <= FULL_CHECK_AT_LOAD_MAX)
    if problem:
        raise RuntimeError(problem)
    index = _read_file(path, kind, shared)
    if kind_of(index) != kind or ("count" in meta and index.ntotal != meta["count"]):
        raise RuntimeError(f"{path.name} is not the {kind} index of {meta.get('count')} vectors its meta describes")
    if kind in QUANTISED:
        index = RescoredIndex(kind, index, store, model, meta.get("centre"))
    # nprobe / efSearch are persisted by write_index in FAISS 1.15, but the meta is the record
    # of what was measured: apply it rather than depend on the file format.
    _set_search_param(index, kind, meta.get("params") or {})
    return index


def load_generation(store: VectorSource, model: str, dim: int, generation: int):
    """The FAISS index of exactly `generation`, or None if the current file is of another one (or
    damaged: the caller rebuilds it)."""
    meta = _read_meta(store, model)
    if meta and meta.get("generation") == generation and meta.get("dim") == dim and meta.get("file"):
        try:
            return _open(store, model, meta, faiss_dir(store) / meta["file"], shared=True)
        except RuntimeError:
            return None
    return None


def newer_than(store: VectorSource, model: str, generation: int) -> bool:
    meta = _read_meta(store, model)
    return bool(meta) and int(meta.get("generation", -1)) > generation


def remove_files(store: VectorSource, model: str) -> None:
    _meta_path(store, model).unlink(missing_ok=True)
    for p in _generation_files(store, model):
        p.unlink(missing_ok=True)


# ------------------------------------------------------------------------------ search / verify

def search(index, vecs: np.ndarray, k: int, recall_depth: int | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Top-k (scores, ids) of each query vector; a few queries run on one thread. FAISS splits even a
    single query of an exact index over its OpenMP threads, and on a small, shared CPU the hand-off
    costs more than it saves (measured by benchmarks/ann.py: exact search 2.5-8x slower on two
    threads than on one). recall_depth: see VectorIndex.search."""
    faiss = _faiss()
    k = min(k, index.ntotal)
    if k <= 0:
        return np.zeros((len(vecs), 0), dtype=np.float32), np.zeros((len(vecs), 0), dtype=np.int64)
    vecs = np.asarray(vecs, dtype=np.float32)
    options = {"recall_depth": recall_depth} if isinstance(index, RescoredIndex) else {}
    if len(vecs) >= 16:
        return index.search(vecs, k, **options)
    before = faiss.omp_get_max_threads()
    faiss.omp_set_num_threads(1)
    try:
        return index.search(vecs, k, **options)
    finally:
        faiss.omp_set_num_threads(before)


# Up to this many allowed chunks, a filtered search scores them exactly (their vectors read from
# SQLite: a few ms); above, FAISS searches with an id selector.
EXACT_FILTER_MAX = 2000


def _exact_among(store: VectorSource, model: str, vecs: np.ndarray, k: int,
                 allowed: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    topk = None
    for start in range(0, len(allowed), 2000):  # bounded memory whatever the number allowed
        ids, mat = store.vectors_for_ids(model, allowed[start:start + 2000])
        if not len(ids):
            continue
        if topk is None:
            topk = _ExactTopK(np.asarray(vecs, dtype=np.float32), k)
        topk.add(ids, mat)
    if topk is None:
        return np.zeros((len(vecs), 0), dtype=np.float32), np.zeros((len(vecs), 0), dtype=np.int64)
    scores, ids = topk.result()
    return scores, ids


def search_allowed(store: VectorSource, model: str, index, vecs: np.ndarray, k: int,
                   allowed: np.ndarray, recall_depth: int | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Top-k among the allowed chunk ids only: the filter is applied before ranking, so a filter
    that leaves few chunks still gets up to k of them (never "top-k, then filter, then nothing")."""
    faiss = _faiss()
    k = min(k, len(allowed))
    if k <= 0:
        return np.zeros((len(vecs), 0), dtype=np.float32), np.zeros((len(vecs), 0), dtype=np.int64)
    if len(allowed) <= EXACT_FILTER_MAX:
        return _exact_among(store, model, vecs, k, allowed)
    kind = kind_of(index)
    if kind in QUANTISED:
        found = index.search(np.asarray(vecs, dtype=np.float32), k, allowed=np.ascontiguousarray(allowed, dtype=np.int64),
                             recall_depth=recall_depth)
        return found if not (found[1] < 0).any() else _exact_among(store, model, vecs, k, allowed)
    selector = faiss.IDSelectorBatch(np.ascontiguousarray(allowed, dtype=np.int64))
    if kind == "ivf":
        params = faiss.SearchParametersIVF(sel=selector, nprobe=faiss.extract_index_ivf(index).nprobe)
    elif kind == "hnsw":
        inner = faiss.downcast_index(index.index if hasattr(index, "id_map") else index)
        params = faiss.SearchParametersHNSW(sel=selector, efSearch=inner.hnsw.efSearch)
    else:
        params = faiss.SearchParameters(sel=selector)
    scores, ids = index.search(np.asarray(vecs, dtype=np.float32), k, params=params)
    if (ids < 0).any():  # an approximate index saw too few allowed vectors in the lists it probed
        return _exact_among(store, model, vecs, k, allowed)
    return scores, ids


def verify(store: VectorSource, model: str, dim: int, chunk_ids: set[int]) -> str:
    """"ok", or what is wrong with the model's FAISS file against the ids stored in SQLite:
    "missing", "stale (…)", truncated or corrupt (against the size and checksum its meta recorded),
    "unreadable", a wrong dimension or type, duplicate or disagreeing ids."""
    meta = _read_meta(store, model)
    index_file = current_file(store, model)
    if meta is None or index_file is None or not index_file.exists():
        return "missing"
    if meta.get("generation") != store.generation:
        return f"stale (generation {meta.get('generation')} of {store.generation})"
    problem = _file_problem(index_file, meta, full=True)
    if problem:
        return problem
    try:
        index = _read_file(index_file, _kind(meta), shared=False)
    except RuntimeError:
        return "unreadable"
    if index.d != dim:
        return f"has dimension {index.d}, expected {dim}"
    kind = kind_of(index)
    if kind != _kind(meta):
        return f"is {kind} but its meta says {_kind(meta)}"
    held = index_ids(index)  # IndexIDMap2 (exact, HNSW) or IVF lists
    ids = set(held.tolist())
    if len(ids) != len(held):
        return f"holds {len(held) - len(ids)} duplicate ids"
    if ids != chunk_ids:
        return f"disagrees with SQLite ({len(ids - chunk_ids)} extra, {len(chunk_ids - ids)} missing ids)"
    return "ok"


class FaissVectorIndex:
    """VectorIndex of one model of one index, over the functions above. It keeps the FAISS index of
    the generation it last searched, so a long-lived searcher reads the file once per generation."""

    def __init__(self, store: VectorSource, model: str, dim: int | None = None):
        self.store, self.model, self.dim = store, model, dim
        self._index = None
        self._generation: int | None = None

    def build(self):
        return build(self.store, self.model, self.dim)

    def update(self, previous_generation: int, generation: int, removed_ids: list[int], added_ids: list[int],
               added_vectors: np.ndarray | None) -> None:
        update(self.store, self.model, self.dim, previous_generation, generation, removed_ids, added_ids,
               added_vectors)

    def load(self):
        """The index of the store's current generation (built from SQLite when missing or stale)."""
        if self._index is None or self._generation != self.store.generation:
            self._generation = self.store.generation
            self._index = load(self.store, self.model, self.dim)
        return self._index

    def _index_for(self, generation: int):
        """The index of exactly `generation` (the SQLite snapshot being read), or None when the
        FAISS file already reflects a newer generation than the snapshot."""
        if self._index is not None and self._generation == generation:
            return self._index
        index = load_generation(self.store, self.model, self.dim, generation)
        if index is None:
            if newer_than(self.store, self.model, generation):
                return None
            index = build(self.store, self.model, self.dim)  # reads this same snapshot
        self._index, self._generation = index, generation
        return index

    def search(self, vecs: np.ndarray, k: int, generation: int, allowed: np.ndarray | None = None,
               recall_depth: int | None = None) -> tuple[np.ndarray, np.ndarray] | None:
        index = self._index_for(generation)
        if index is None:
            return None
        if allowed is None:
            return search(index, vecs, k, recall_depth)
        return search_allowed(self.store, self.model, index, vecs, k, allowed, recall_depth)

    def verify(self, chunk_ids: set[int]) -> str:
        return verify(self.store, self.model, self.dim, chunk_ids)

    def describe(self) -> dict | None:
        return describe(self.store, self.model)

    def remove(self) -> None:
        remove_files(self.store, self.model)
