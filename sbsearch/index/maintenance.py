"""`sbsearch check`: verify an index (SQLite integrity, FAISS ↔ SQLite agreement, vector coverage,
model weights) and, with repair, rebuild the derived parts from SQLite."""

from __future__ import annotations

from pathlib import Path

from ..embed.models import resolve
from ..errors import SbsearchError
from ..vectors import open_vector_index
from .location import open_store


def check(index_path: Path, repair: bool = False, verify_models: bool = True) -> dict:
    store = open_store(index_path)
    problems: list[str] = []
    repaired: list[str] = []
    integrity = store.integrity_check()
    if integrity != "ok":
        problems.append(f"SQLite integrity check: {integrity}")
    orphans = store.orphan_vector_count()
    if orphans:
        problems.append(f"{orphans} vectors belong to no chunk")
    dangling = store.dangling_chunk_count()
    if dangling:
        problems.append(f"{dangling} chunks belong to no document")
    orphan_attachments = store.orphan_attachments()
    if orphan_attachments:
        problems.append(f"{len(orphan_attachments)} attachments belong to no indexed message, e.g. "
                        f"{orphan_attachments[0]} (the next `sbsearch index` of their folder removes them)")
    n_chunks = store.chunk_count()
    lexical_state = store.lexical_problems()
    if lexical_state:
        if repair:
            with store.writer_lock(wait=True):
                rows = store.rebuild_lexical()
            repaired.append(f"lexical index rebuilt from the chunks ({'; '.join(lexical_state)}): {rows} rows")
        else:
            problems += [f"{p} (run `sbsearch check --repair`)" for p in lexical_state]
    # FAISS files are rebuilt from SQLite; pgvector's HNSW index from the vectors in its own database
    rebuilt = "FAISS rebuilt from SQLite" if store.vector_backend == "faiss" else "HNSW index rebuilt"
    derived = "FAISS file" if store.vector_backend == "faiss" else "HNSW index"
    models = []
    for row in store.models():
        name = row["name"]
        info = {"model": name, "vectors": store.vector_count(name), "chunks": n_chunks}
        if info["vectors"] < n_chunks:
            problems.append(f"{name}: {n_chunks - info['vectors']} chunks have no vector "
                            f"(run `sbsearch index DIR --model {name}`)")
        malformed = store.malformed_vector_count(name, row["dim"])
        if malformed:
            problems.append(f"{name}: {malformed} stored vectors are not {row['dim']}-d {store.vector_encoding()} "
                            f"(damaged; `sbsearch index DIR --model {name} --reembed` embeds them again)")
        vector_index = open_vector_index(store, name, row["dim"])
        faiss_state = vector_index.verify(store.vector_ids(name))
        info["faiss"] = faiss_state
        # A missing or stale FAISS file is a normal derived state (the next query rebuilds it from
        # SQLite); only a file that claims to be current and is wrong is a problem.
        lazily_fixed = faiss_state == "missing" or faiss_state.startswith("stale")
        if faiss_state != "ok":
            if repair:
                with store.writer_lock(wait=True):
                    vector_index.build()
                repaired.append(f"{name}: {rebuilt} ({faiss_state})")
            elif not lazily_fixed:
                problems.append(f"{name}: {derived} {faiss_state} (run `sbsearch check --repair`)")
        info["faiss_index"] = vector_index.describe()  # type, parameters, measured recall
        if verify_models:
            info["weights"] = _weights_state(row)
            if info["weights"] not in ("ok", "unknown"):
                problems.append(f"{name}: {info['weights']}")
        models.append(info)
    return {"index": str(store.path), "generation": store.generation, "sqlite": integrity,
            "documents": len(store.documents()), "chunks": n_chunks, "lexical": store.lexical_summary(),
            "vector_encoding": store.vector_encoding(),
            "orphan_attachments": orphan_attachments,
            "models": models,
            "problems": problems, "repaired": repaired, "ok": not problems}


def _weights_state(row: dict) -> str:
    try:
        info = resolve(row["name"])
    except SbsearchError as exc:
        return f"model not available here ({exc})"
    got = info.weights_sha256()
    if not row["sha256"] or not got:
        return "unknown"
    return "ok" if got == row["sha256"] else "weights changed since indexing (sha256 differs)"
