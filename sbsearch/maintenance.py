"""`sbsearch check`: verify an index (SQLite integrity, FAISS ↔ SQLite agreement, vector coverage,
model weights) and, with repair, rebuild the derived parts from SQLite."""

from __future__ import annotations

from pathlib import Path

from . import vectorindex
from .errors import SbsearchError
from .locking import writer_lock
from .store import Store


def check(index_path: Path, repair: bool = False, verify_models: bool = True) -> dict:
    store = Store(index_path)
    problems: list[str] = []
    repaired: list[str] = []
    integrity = store.db.execute("PRAGMA integrity_check").fetchone()[0]
    if integrity != "ok":
        problems.append(f"SQLite integrity check: {integrity}")
    orphans = store.db.execute(
        "SELECT count(*) FROM embeddings e LEFT JOIN chunks c ON c.id = e.chunk_id WHERE c.id IS NULL").fetchone()[0]
    if orphans:
        problems.append(f"{orphans} vectors belong to no chunk")
    dangling = store.db.execute(
        "SELECT count(*) FROM chunks c LEFT JOIN documents d ON d.id = c.doc_id WHERE d.id IS NULL").fetchone()[0]
    if dangling:
        problems.append(f"{dangling} chunks belong to no document")
    n_chunks = store.db.execute("SELECT count(*) FROM chunks").fetchone()[0]
    models = []
    for row in store.models():
        name = row["name"]
        info = {"model": name, "vectors": store.vector_count(name), "chunks": n_chunks}
        if info["vectors"] < n_chunks:
            problems.append(f"{name}: {n_chunks - info['vectors']} chunks have no vector "
                            f"(run `sbsearch index DIR --model {name}`)")
        chunk_ids = {r["id"] for r in store.db.query(
            "SELECT chunk_id AS id FROM embeddings WHERE model = ?", [name])}
        faiss_state = _faiss_state(store, name, row["dim"], chunk_ids)
        info["faiss"] = faiss_state
        # A missing or stale FAISS file is a normal derived state (the next query rebuilds it from
        # SQLite); only a file that claims to be current and is wrong is a problem.
        lazily_fixed = faiss_state == "missing" or faiss_state.startswith("stale")
        if faiss_state != "ok":
            if repair:
                with writer_lock(store.path, wait=True):
                    vectorindex.build(store, name, row["dim"])
                repaired.append(f"{name}: FAISS rebuilt from SQLite ({faiss_state})")
            elif not lazily_fixed:
                problems.append(f"{name}: FAISS file {faiss_state} (run `sbsearch check --repair`)")
        info["faiss_index"] = vectorindex.describe(store, name)  # type, parameters, measured recall
        if verify_models:
            info["weights"] = _weights_state(row)
            if info["weights"] not in ("ok", "unknown"):
                problems.append(f"{name}: {info['weights']}")
        models.append(info)
    return {"index": str(store.path), "generation": store.generation, "sqlite": integrity,
            "documents": len(store.documents()), "chunks": n_chunks, "models": models,
            "problems": problems, "repaired": repaired, "ok": not problems}


def _faiss_state(store: Store, model: str, dim: int, chunk_ids: set[int]) -> str:
    import faiss

    meta = vectorindex._read_meta(store, model)
    index_file = vectorindex.current_file(store, model)
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
    kind = vectorindex.kind_of(index)
    if kind != vectorindex._kind(meta):
        return f"is {kind} but its meta says {vectorindex._kind(meta)}"
    held = vectorindex.index_ids(index)  # IndexIDMap2 (exact, HNSW) or IVF lists
    ids = set(held.tolist())
    if len(ids) != len(held):
        return f"holds {len(held) - len(ids)} duplicate ids"
    if ids != chunk_ids:
        return f"disagrees with SQLite ({len(ids - chunk_ids)} extra, {len(chunk_ids - ids)} missing ids)"
    return "ok"


def _weights_state(row: dict) -> str:
    from .models import resolve

    try:
        info = resolve(row["name"])
    except SbsearchError as exc:
        return f"model not available here ({exc})"
    got = info.weights_sha256()
    if not row["sha256"] or not got:
        return "unknown"
    return "ok" if got == row["sha256"] else "weights changed since indexing (sha256 differs)"
