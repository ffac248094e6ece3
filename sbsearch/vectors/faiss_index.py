"""The FAISS implementation of VectorIndex: files derived from the vectors in SQLite, built,
updated, loaded, searched and verified, always replaceable.

Each FAISS file holds one generation of the index and is never modified once written
(`<model-key>-g<generation>.faiss`); a small JSON file, replaced atomically, names the current one.
A reader therefore never pairs the metadata of one generation with the vectors of another. A file
that is missing, unreadable or stale is rebuilt from SQLite without touching the model.

Index types, chosen at build time from the number of vectors (numbers in docs/BENCHMARKS.md,
`benchmarks/ann.py`); all use inner product on L2-normalised vectors, i.e. cosine similarity:

- "exact": IndexIDMap2(IndexFlatIP), up to EXACT_UP_TO vectors. Recall 1, nothing to tune.
- "ivf": IndexIVFFlat (flat inner-product quantizer, ~sqrt(N) lists) above it. At build time its
  recall@10 against exact search is measured on a sample of the stored vectors, and nprobe is raised
  until it reaches RECALL_TARGET; if that needs more than IVF_MAX_PROBE_FRACTION of the lists, the
  approximate index is not worth it and the build falls back to exact.
- "hnsw": IndexIDMap2(IndexHNSWFlat), only on request (SBSEARCH_INDEX_TYPE=hnsw), tuned the same way
  with efSearch.

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
from pathlib import Path

import numpy as np

from ..config import model_key
from ..errors import SbsearchError
from .protocol import VectorSource

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
HNSW_M = 32
HNSW_EF_CONSTRUCTION = 64
HNSW_MAX_EF = 1024
# An incremental update keeps the index (and its measured recall) while the number of vectors stays
# within this factor of the count it was measured at, and the vectors added and removed since then
# stay below REBUILD_CHURN of that count; beyond, the IVF lists were trained on a different
# collection and the file is rebuilt and measured again.
REBUILD_GROWTH = 1.5
REBUILD_CHURN = 0.5

KINDS = ("exact", "ivf", "hnsw")
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


def _index_path(store: VectorSource, model: str, generation: int) -> Path:
    return faiss_dir(store) / f"{model_key(model)}-g{generation}.faiss"


def current_file(store: VectorSource, model: str) -> Path | None:
    meta = _read_meta(store, model)
    return faiss_dir(store) / meta["file"] if meta and meta.get("file") else None


# ------------------------------------------------------------------------------ choosing a type

def requested_kind() -> str:
    """$SBSEARCH_INDEX_TYPE: exact, ivf, hnsw, or auto (the default: chosen from the count)."""
    value = (os.environ.get(ENV_TYPE) or "auto").strip().lower()
    if value not in KINDS + ("auto",):
        raise SbsearchError(f"{ENV_TYPE}={value!r}: expected one of exact, ivf, hnsw, auto")
    return value


def choose_kind(n: int, requested: str | None = None) -> str:
    requested = requested or requested_kind()
    kind = requested if requested != "auto" else ("exact" if n <= EXACT_UP_TO else "ivf")
    return "exact" if n < APPROX_MIN else kind


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
    if kind == "ivf" and params.get("nprobe"):
        faiss.extract_index_ivf(index).nprobe = int(params["nprobe"])
    elif kind == "hnsw" and params.get("efSearch"):
        inner = faiss.downcast_index(index.index if hasattr(index, "id_map") else index)
        inner.hnsw.efSearch = int(params["efSearch"])


def kind_of(index) -> str:
    """The type ("exact", "ivf", "hnsw") of a FAISS index object."""
    faiss = _faiss()
    if faiss.try_extract_index_ivf(index) is not None:
        return "ivf"
    inner = faiss.downcast_index(index.index) if hasattr(index, "id_map") else index
    return "hnsw" if isinstance(inner, faiss.IndexHNSW) else "exact"


def index_ids(index) -> np.ndarray:
    """Every id an index holds, whatever its type (IndexIDMap2 keeps them in id_map; an IVF index
    keeps them in its inverted lists, as its own ids)."""
    faiss = _faiss()
    if hasattr(index, "id_map"):
        return faiss.vector_to_array(index.id_map)
    ivf = faiss.extract_index_ivf(index)
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

def _gather(batches: list[tuple[np.ndarray, np.ndarray]], positions: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Rows at sorted global `positions` of a list of (ids, matrix) batches."""
    ids, rows, start = [], [], 0
    for bid, mat in batches:
        sel = positions[(positions >= start) & (positions < start + len(bid))] - start
        ids.append(bid[sel])
        rows.append(mat[sel])
        start += len(bid)
    return np.concatenate(ids), np.vstack(rows).astype(np.float32)


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
    name = "nprobe" if kind == "ivf" else "efSearch"
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


def _doublings(start: int, stop: int) -> list[int]:
    out, v = [], start
    while v < stop:
        out.append(v)
        v *= 2
    return out + [stop]


# ------------------------------------------------------------------------------ build

def _build_approx(kind: str, batches: list[tuple[np.ndarray, np.ndarray]], dim: int) -> tuple[object | None, dict]:
    """Train (IVF), fill and tune an approximate index from all (ids, matrix) batches, which it
    consumes (each batch is freed once it is in the index, so memory stays near one copy).
    Returns (None, info) when the recall target cannot be reached at a worthwhile cost."""
    faiss = _faiss()
    total = sum(len(ids) for ids, _ in batches)
    if total < APPROX_MIN:  # fewer than counted (a writer in between): not worth an approximate index
        return None, {"fallback": f"{total} vectors are too few for {kind}"}
    rng = np.random.default_rng(RECALL_SEED)
    query_ids, queries = _gather(batches, np.sort(rng.choice(total, min(RECALL_QUERIES, total), replace=False)))
    if kind == "ivf":
        nlist = _ivf_nlist(total)
        _, train = _gather(batches, np.sort(rng.choice(total, min(total, IVF_TRAIN_PER_LIST * nlist), replace=False)))
        quantizer = faiss.IndexFlatIP(dim)
        index = faiss.IndexIVFFlat(quantizer, dim, nlist, faiss.METRIC_INNER_PRODUCT)
        index.cp.niter = IVF_KMEANS_ITERS
        index.train(train)
        del train
        params = {"nlist": nlist}
        values = _doublings(1, max(1, int(nlist * IVF_MAX_PROBE_FRACTION)))
    else:
        inner = faiss.IndexHNSWFlat(dim, HNSW_M, faiss.METRIC_INNER_PRODUCT)
        inner.hnsw.efConstruction = HNSW_EF_CONSTRUCTION
        index = faiss.IndexIDMap2(inner)
        params = {"M": HNSW_M, "efConstruction": HNSW_EF_CONSTRUCTION}
        values = _doublings(16, HNSW_MAX_EF)
    exact = _ExactTopK(queries, RECALL_K + 1)
    while batches:
        ids, mat = batches.pop(0)
        exact.add(ids, mat)
        index.add_with_ids(mat, ids)
    value, recall = _tune(index, kind, values, queries, query_ids, exact.result())
    name = "nprobe" if kind == "ivf" else "efSearch"
    if value is None:
        return None, {"fallback": f"{kind} reached recall@10 {recall:.3f} < {RECALL_TARGET} at {name} "
                                  f"{values[-1]} ({params}); exact search instead"}
    params[name] = value
    _set_search_param(index, kind, params)
    return index, {"params": params, "recall_at_10": round(recall, 4), "recall_queries": len(query_ids)}


def build(store: VectorSource, model: str, dim: int) -> object:
    """Rebuild a model's FAISS index from every vector stored for it, of the type its size calls
    for (or $SBSEARCH_INDEX_TYPE), with its recall measured when it is approximate."""
    t0 = time.perf_counter()
    generation = store.generation
    requested = requested_kind()
    kind = choose_kind(store.vector_count(model), requested)
    info: dict = {"chosen_by": "auto" if requested == "auto" else f"{ENV_TYPE}={requested}"}
    index = None
    if kind != "exact":
        index, measured = _build_approx(kind, list(store.vectors(model)), dim)
        info.update(measured)
        if index is None:
            kind = "exact"
    if index is None:
        index = _new_exact(dim)
        for ids, mat in store.vectors(model):
            index.add_with_ids(mat, ids)
        info.update(params={}, recall_at_10=1.0, recall_queries=0)
    info.update(type=kind, measured_at_count=int(index.ntotal), changed_since_build=0,
                build_seconds=round(time.perf_counter() - t0, 2))
    _write(store, model, index, generation, info)
    return index


_BUILD_FIELDS = ("type", "params", "recall_at_10", "recall_queries", "measured_at_count", "changed_since_build",
                 "build_seconds", "chosen_by", "fallback")


def _describe(index) -> str:
    faiss = _faiss()
    if hasattr(index, "id_map"):
        return f"IndexIDMap2({type(faiss.downcast_index(index.index)).__name__})"
    return f"{type(index).__name__}(IndexFlatIP)"


def _write(store: VectorSource, model: str, index, generation: int, info: dict | None = None) -> None:
    faiss = _faiss()
    index_file, meta_file = _index_path(store, model, generation), _meta_path(store, model)
    index_file.parent.mkdir(parents=True, exist_ok=True)
    previous = current_file(store, model)
    if info is None:  # a file written as it is (tests): keep what the current meta says of it
        old = _read_meta(store, model) or {}
        info = {k: old[k] for k in _BUILD_FIELDS if k in old}
    tmp = index_file.with_suffix(f".tmp{os.getpid()}")
    faiss.write_index(index, str(tmp))
    os.replace(tmp, index_file)
    kind = kind_of(index)  # the object written is the truth, whatever `info` carried over
    meta = {"model": model, "generation": generation, "file": index_file.name, "count": int(index.ntotal),
            "dim": int(index.d), "faiss": _describe(index), "exact_up_to": EXACT_UP_TO,
            **{k: v for k, v in info.items() if v is not None}, "type": kind}
    tmp_meta = meta_file.with_suffix(f".tmp{os.getpid()}")
    tmp_meta.write_text(json.dumps(meta))
    os.replace(tmp_meta, meta_file)
    # Keep the current and the previous file (a reader may be about to open it); older ones go.
    # A reader that already opened a removed file keeps reading it: Linux frees it on close.
    keep = {index_file.name, previous.name if previous else None}
    for old in faiss_dir(store).glob(f"{model_key(model)}-g*.faiss"):
        if old.name not in keep:
            old.unlink(missing_ok=True)


def _read_meta(store: VectorSource, model: str) -> dict | None:
    meta_file = _meta_path(store, model)
    try:
        return json.loads(meta_file.read_text())
    except (OSError, ValueError):
        return None


def describe(store: VectorSource, model: str) -> dict | None:
    """What `sbsearch status` shows of a model's FAISS file, from its meta JSON (no FAISS import)."""
    meta = _read_meta(store, model)
    if not meta:
        return None
    return {"type": _kind(meta), "params": meta.get("params", {}), "recall_at_10": meta.get("recall_at_10"),
            "measured_at_count": meta.get("measured_at_count"), "count": meta.get("count"),
            "generation": meta.get("generation"), "current": meta.get("generation") == store.generation,
            "exact_up_to": meta.get("exact_up_to"), "fallback": meta.get("fallback")}


# ------------------------------------------------------------------------------ update / load

def _rebuild_reason(meta: dict, n_after: int, changed: int, removing: bool) -> str | None:
    """Why an incremental update should rebuild (re-choose the type, re-train, re-measure) instead."""
    kind = _kind(meta)
    wanted = choose_kind(n_after)
    measured = meta.get("measured_at_count") or meta.get("count") or 0
    drifted = (n_after > measured * REBUILD_GROWTH or n_after < measured / REBUILD_GROWTH
               or changed > REBUILD_CHURN * measured)
    if kind == "exact" and meta.get("fallback") and wanted != "exact":
        # The approximate index missed the recall target at this collection: try again only once
        # the collection has changed enough, not on every run.
        return f"{n_after} vectors since exact fallback at {measured}" if drifted else None
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
            index = _faiss().read_index(str(current_file(store, model)))
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
    if info["type"] == "exact" and choose_kind(n_after) == "exact":
        info.pop("fallback", None)  # exact is now the choice, not a fallback
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


def load_generation(store: VectorSource, model: str, dim: int, generation: int):
    """The FAISS index of exactly `generation`, or None if the current file is of another one."""
    meta = _read_meta(store, model)
    if meta and meta.get("generation") == generation and meta.get("dim") == dim and meta.get("file"):
        try:
            index = _read_shared(str(faiss_dir(store) / meta["file"]))
        except RuntimeError:
            return None
        # nprobe / efSearch are persisted by write_index in FAISS 1.15, but the meta is the record
        # of what was measured: apply it rather than depend on the file format.
        _set_search_param(index, _kind(meta), meta.get("params") or {})
        return index
    return None


def newer_than(store: VectorSource, model: str, generation: int) -> bool:
    meta = _read_meta(store, model)
    return bool(meta) and int(meta.get("generation", -1)) > generation


def remove_files(store: VectorSource, model: str) -> None:
    _meta_path(store, model).unlink(missing_ok=True)
    for p in faiss_dir(store).glob(f"{model_key(model)}-g*.faiss"):
        p.unlink(missing_ok=True)


# ------------------------------------------------------------------------------ search / verify

def search(index, vecs: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """Top-k (scores, ids) of each query vector; a few queries run on one thread. FAISS splits even a
    single query of an exact index over its OpenMP threads, and on a small, shared CPU the hand-off
    costs more than it saves (measured by benchmarks/ann.py: exact search 2.5-8x slower on two
    threads than on one)."""
    faiss = _faiss()
    k = min(k, index.ntotal)
    if k <= 0:
        return np.zeros((len(vecs), 0), dtype=np.float32), np.zeros((len(vecs), 0), dtype=np.int64)
    vecs = np.asarray(vecs, dtype=np.float32)
    if len(vecs) >= 16:
        return index.search(vecs, k)
    before = faiss.omp_get_max_threads()
    faiss.omp_set_num_threads(1)
    try:
        return index.search(vecs, k)
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
                   allowed: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Top-k among the allowed chunk ids only: the filter is applied before ranking, so a filter
    that leaves few chunks still gets up to k of them (never "top-k, then filter, then nothing")."""
    faiss = _faiss()
    k = min(k, len(allowed))
    if k <= 0:
        return np.zeros((len(vecs), 0), dtype=np.float32), np.zeros((len(vecs), 0), dtype=np.int64)
    if len(allowed) <= EXACT_FILTER_MAX:
        return _exact_among(store, model, vecs, k, allowed)
    selector = faiss.IDSelectorBatch(np.ascontiguousarray(allowed, dtype=np.int64))
    kind = kind_of(index)
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
    "missing", "stale (…)", "unreadable", a wrong dimension or type, duplicate or disagreeing ids."""
    faiss = _faiss()
    meta = _read_meta(store, model)
    index_file = current_file(store, model)
    if meta is None or index_file is None or not index_file.exists():
        return "missing"
    if meta.get("generation") != store.generation:
        return f"stale (generation {meta.get('generation')} of {store.generation})"
    try:
        index = faiss.read_index(str(index_file))
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

    def search(self, vecs: np.ndarray, k: int, generation: int,
               allowed: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray] | None:
        index = self._index_for(generation)
        if index is None:
            return None
        if allowed is None:
            return search(index, vecs, k)
        return search_allowed(self.store, self.model, index, vecs, k, allowed)

    def verify(self, chunk_ids: set[int]) -> str:
        return verify(self.store, self.model, self.dim, chunk_ids)

    def describe(self) -> dict | None:
        return describe(self.store, self.model)

    def remove(self) -> None:
        remove_files(self.store, self.model)
