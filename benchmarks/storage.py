"""What an index folder holds, per chunk, before and after compact vectors (issue #30), and what
the compact vectors cost in nDCG@10.

    .venv/bin/python benchmarks/storage.py [--before-code /work/main] [--work DIR] [--no-quality]

1. Bytes. Each corpus is indexed three ways: "before", by the sbsearch at --before-code (a
   checkout from before compact vectors: float32 in index.db, no incremental vacuum), in a process
   of its own; "migrated", a copy of that index opened by this sbsearch as a writer, which migrates
   it in place (m007 converts the vectors, m008 vacuums; timed, no model runs), its FAISS files
   then rebuilt from the migrated vectors as the first run that changes a document rebuilds a file
   of the version before (the bytes of the file it replaced are kept as "faiss_as_left"); "new",
   indexed from scratch by this sbsearch. For each: bytes per chunk of every table and index of index.db
   (SQLite's dbstat: pages, so each row's share of its page's unused bytes counts), grouped (the
   vectors, chunk text, the FTS5 shadow tables, documents, the rest), the free pages, the WAL and
   the faiss/ folder. Corpora: sample_docs/ (the model sbsearch picks) and StackFAQ answers, 1,000
   .txt files written at run time from $SBSEARCH_SHARED_DATA (benchmarks/indexing.py's folder).
2. Quality. Vector-only nDCG@10 (and MRR@10) of the "before" index (float32), of a copy whose
   vectors are float16, and of the migrated one (int8), each searched with its FAISS file rebuilt
   from its own stored vectors (exact search at these sizes: the difference is the encoding's
   alone). Sets: sample_docs/queries.jsonl and the StackFAQ answers (queries: each thread's user
   rephrasings; relevant: that thread's answers) with minilm-int8, and JSQuAD valid (1,145
   Japanese paragraphs, 1,000 questions; benchmarks/japanese.py's set) with e5-small-int8.

3. Loading an exact index (--exact-load N): a searcher's load of an exact index of N synthetic
   384-d vectors (int8 values, as a SQLite store holds them), from a float32 FAISS file (as written
   before int8 exact files) and from its int8 file: median seconds of 15 loads, page cache warm.

Writes benchmarks/results/storage.json (a full run keeps the sections of the --migration-chunks,
--pg and --exact-load runs already there); docs/SCALING.md ("What an index folder holds, per
chunk") quotes it.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import sqlite3
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(REPO), str(REPO / "benchmarks")]

RESULTS = REPO / "benchmarks" / "results" / "storage.json"
MODELS = {"sample_docs": None, "stackfaq-1000": None, "jsquad": "e5-small-int8"}  # None: sbsearch picks

# dbstat names (tables, their indexes, FTS5's shadow tables) in the groups the table prints
GROUPS = {
    "vectors (embeddings)": ("embeddings",),
    "embeddings' key index": ("sqlite_autoindex_embeddings_1",),
    "pending vectors": ("pending_vectors", "sqlite_autoindex_pending_vectors_1"),
    "chunks (text, heading, location)": ("chunks",),
    "chunks' indexes (doc_id, text_sha)": ("idx_chunks_doc_id", "idx_chunks_text_sha"),
    "FTS5 content (its copy of the text)": ("lexical_content",),
    "FTS5 index (terms, positions)": ("lexical_data", "lexical_idx"),
    "FTS5 docsize, config": ("lexical_docsize", "lexical_config"),
    "documents (+ indexes)": ("documents", "idx_documents_path", "documents_access_null"),
}


# ----------------------------------------------------------------------------------- building

def index_with(code: Path, folder: Path, index: Path, model: str | None) -> float:
    """`sbsearch index` by the sbsearch at `code`, in a process of its own; its seconds."""
    env = {**os.environ, "PYTHONPATH": str(code)}
    cmd = [sys.executable, "-m", "sbsearch", "index", str(folder), "-i", str(index), "-q"]
    if model:
        cmd += ["-m", model]
    t = time.perf_counter()
    subprocess.run(cmd, check=True, env=env, cwd=str(code))
    return time.perf_counter() - t


def migrate_copy(before: Path, target: Path) -> float:
    """Copy an index and let this sbsearch migrate it (what its next `sbsearch index` does first)."""
    from sbsearch.index.store import Store

    shutil.rmtree(target, ignore_errors=True)
    shutil.copytree(before, target)
    t = time.perf_counter()
    Store(target, create=True).close()
    return time.perf_counter() - t


def rewrite_faiss(index: Path) -> int:
    """Rebuild every model's FAISS file of a migrated index from its vectors, as the first run that
    changes a document does with an exact file of the version before, and remove that file, as the
    run after it does (a write keeps the previous generation's file one write longer, for a reader
    that may be opening it). The bytes of faiss/ as the migration left it."""
    from sbsearch.index.store import Store
    from sbsearch.vectors import faiss_index, open_vector_index

    folder = index / "faiss"
    as_left = sum(p.stat().st_size for p in folder.glob("*") if p.is_file())
    store = Store(index)
    for row in store.models():
        open_vector_index(store, row["name"], row["dim"]).build()
    current = {faiss_index.current_file(store, row["name"]).name for row in store.models()}
    store.close()
    for p in folder.iterdir():
        if p.suffix in (".faiss", ".int8") and p.name not in current:
            p.unlink()
    return as_left


def float16_copy(before: Path, target: Path) -> None:
    """A copy of a float32 index whose vectors are float16 (read by the store's codec as they are)."""
    from sbsearch.index.store import vector_codec as codec

    shutil.rmtree(target, ignore_errors=True)
    shutil.copytree(before, target)
    con = sqlite3.connect(target / "index.db")
    with con:
        rows = con.execute("SELECT rowid, vector FROM embeddings").fetchall()
        con.executemany("UPDATE embeddings SET vector = ? WHERE rowid = ?",
                        [(codec.recode(blob, codec.FLOAT32, codec.FLOAT16), rowid) for rowid, blob in rows])
        con.execute("INSERT OR REPLACE INTO meta (key, value) VALUES (?, ?)", [codec.ENCODING_KEY, codec.FLOAT16])
    con.close()
    shutil.rmtree(target / "faiss", ignore_errors=True)


# ----------------------------------------------------------------------------------- measuring

def components(index: Path) -> dict:
    """Bytes of every part of an index folder, and the chunk count."""
    db = index / "index.db"
    con = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
    try:
        by_name = dict(con.execute("SELECT name, sum(pgsize) FROM dbstat GROUP BY name").fetchall())
        page = con.execute("PRAGMA page_size").fetchone()[0]
        free = con.execute("PRAGMA freelist_count").fetchone()[0] * page
        chunks = con.execute("SELECT count(*) FROM chunks").fetchone()[0]
        columns = dict(zip(("text", "heading", "location", "text_sha"), con.execute(
            "SELECT sum(length(CAST(text AS BLOB))), sum(length(CAST(heading AS BLOB))), "
            "sum(length(CAST(location AS BLOB))), sum(length(text_sha)) FROM chunks").fetchone()))
        encoding = con.execute("SELECT value FROM meta WHERE key = 'vector_encoding'").fetchone()
        auto_vacuum = con.execute("PRAGMA auto_vacuum").fetchone()[0]
    finally:
        con.close()
    grouped = {g: sum(by_name.get(n, 0) for n in names) for g, names in GROUPS.items()}
    named = {n for names in GROUPS.values() for n in names}
    grouped["other tables (models, runs, meta, users…)"] = sum(v for n, v in by_name.items() if n not in named)
    grouped["free pages"] = free
    wal = index / "index.db-wal"
    grouped["WAL"] = wal.stat().st_size if wal.exists() else 0
    grouped["faiss/"] = sum(p.stat().st_size for p in (index / "faiss").glob("*") if p.is_file())
    files = sum(p.stat().st_size for p in index.rglob("*") if p.is_file())
    return {"chunks": chunks, "bytes": grouped, "dbstat": by_name, "chunk_columns": columns,
            "index_db_bytes": db.stat().st_size, "folder_bytes": files, "page_size": page,
            "vector_encoding": encoding[0] if encoding else "float32", "auto_vacuum": auto_vacuum}


def per_chunk(c: dict) -> dict:
    n = max(1, c["chunks"])
    return {"groups": {g: round(b / n) for g, b in c["bytes"].items()},
            "index_db": round(c["index_db_bytes"] / n), "folder": round(c["folder_bytes"] / n)}


# ----------------------------------------------------------------------------------- query sets

def stackfaq_queries(folder: Path):
    """Each thread's rephrasings, relevant: that thread's answers among the files written."""
    from indexing import stackfaq_folder  # noqa: F401 (the folder is made by it; the order is its)
    from sbsearch import config
    from sbsearch.quality.evaluation import QuerySet

    data = json.loads((config.shared_data_dir() / "stackfaq" / "stackExchange-FAQ.json").read_text())
    n_files = len(list(folder.glob("answer-*.txt")))
    queries, qrels, i = {}, {}, 0

    def ok(s) -> bool:
        return bool(s) and s.strip() not in ("", "*")

    for t, qa in enumerate(data["root"]["qapair"]):
        answers = []
        for a in qa.get("answer") or []:
            if ok(a):
                if i < n_files:
                    answers.append(f"answer-{i:04d}")
                i += 1
        if not answers:
            continue
        for j, r in enumerate(qa.get("rephr") or []):
            if ok(r):
                queries[f"t{t}-q{j}"] = r.strip()
                qrels[f"t{t}-q{j}"] = {a: 1.0 for a in answers}
    return QuerySet(queries, qrels, "stem", "StackFAQ rephrasings -> answers")


def quality(indexes: dict[str, Path], qs, model: str) -> dict:
    from japanese import CachedQueries
    from sbsearch.embed import make_embedder
    from sbsearch.quality.evaluation import evaluate
    from sbsearch.search import Searcher

    emb = CachedQueries(make_embedder(model))
    out = {}
    for label, index in indexes.items():
        m = evaluate(Searcher(index, embedder=emb, mode="vector"), qs)
        out[label] = {k: round(m[k], 4) for k in ("ndcg@10", "mrr@10")}
    return out


# ----------------------------------------------------------------------------------- report

def table(result: dict) -> str:
    lines = []
    for corpus, r in result["bytes"].items():
        kinds = [k for k in ("before", "migrated", "new") if k in r]
        lines.append(f"\n{corpus}: {r['before']['chunks']} chunks; bytes per chunk")
        lines.append(f"| part | {' | '.join(kinds)} |")
        lines.append("|---|" + "---:|" * len(kinds))
        for g in r["before"]["per_chunk"]["groups"]:
            lines.append(f"| {g} | " + " | ".join(f"{r[k]['per_chunk']['groups'][g]:,}" for k in kinds) + " |")
        lines.append("| **index.db** | " + " | ".join(f"**{r[k]['per_chunk']['index_db']:,}**" for k in kinds) + " |")
        lines.append("| **folder** | " + " | ".join(f"**{r[k]['per_chunk']['folder']:,}**" for k in kinds) + " |")
        lines.append("| folder, share of before | " + " | ".join(
            f"{r[k]['folder_bytes'] / r['before']['folder_bytes']:.1%}" for k in kinds) + " |")
        lines.append(f"migration: {r['migration_s']} s")
        if "faiss_as_left" in r:
            lines.append(f"migrated: faiss/ as the migration left it (the version before's file): "
                         f"{round(r['faiss_as_left'] / max(1, r['migrated']['chunks'])):,} bytes per chunk, "
                         "until a run that changes a document rebuilds it")
    if result.get("quality"):
        lines.append("\n| set | model | queries | nDCG@10 float32 | float16 (Δ) | int8 (Δ) |")
        lines.append("|---|---|---:|---:|---:|---:|")
        for name, q in result["quality"].items():
            base = q["float32"]["ndcg@10"]
            lines.append(f"| {name} | {q['model']} | {q['queries']} | {base:.4f} | "
                         f"{q['float16']['ndcg@10']:.4f} ({q['float16']['ndcg@10'] - base:+.4f}) | "
                         f"{q['int8']['ndcg@10']:.4f} ({q['int8']['ndcg@10'] - base:+.4f}) |")
    return "\n".join(lines)


def corpus_folders(work: Path, with_jsquad: bool) -> dict:
    from indexing import stackfaq_folder

    folders = {"sample_docs": REPO / "sample_docs", "stackfaq-1000": stackfaq_folder(work)}
    if with_jsquad:
        from japanese import jsquad_set

        folders["jsquad"] = jsquad_set(work, 1000)[0]
    return folders


def query_set(corpus: str, folder: Path, work: Path):
    from sbsearch.quality.evaluation import load_query_set

    if corpus == "sample_docs":
        return load_query_set(folder / "queries.jsonl")
    if corpus == "stackfaq-1000":
        return stackfaq_queries(folder)
    from japanese import jsquad_set

    return jsquad_set(work, 1000)[1]


def measure_corpus(corpus: str, folder: Path, work: Path, before_code: Path, do_quality: bool) -> tuple[dict, dict]:
    from sbsearch.index.store import Store

    idx = {k: work / f"{corpus}-{k}" for k in ("before", "migrated", "new", "float16")}
    for p in idx.values():
        shutil.rmtree(p, ignore_errors=True)
    model = MODELS[corpus]
    r: dict = {"before_index_s": round(index_with(before_code, folder, idx["before"], model), 1)}
    r["migration_s"] = round(migrate_copy(idx["before"], idx["migrated"]), 2)
    r["faiss_as_left"] = rewrite_faiss(idx["migrated"])
    kinds = ("before", "migrated") if corpus == "jsquad" else ("before", "migrated", "new")  # (e5 is slow)
    if "new" in kinds:
        r["new_index_s"] = round(index_with(REPO, folder, idx["new"], model), 1)
    for k in kinds:
        c = components(idx[k])
        r[k] = {**c, "per_chunk": per_chunk(c)}
    print(f"[{corpus}] bytes per chunk: " + ", ".join(f"{k} {r[k]['per_chunk']['folder']:,}" for k in kinds),
          flush=True)
    q = {}
    if do_quality:
        model_name = Store(idx["before"]).get_meta("default_model")
        float16_copy(idx["before"], idx["float16"])
        shutil.rmtree(idx["migrated"] / "faiss")  # rebuilt from the int8 vectors
        qs = query_set(corpus, folder, work)
        q = {"model": model_name, "queries": len(qs.queries),
             **quality({"float32": idx["before"], "float16": idx["float16"], "int8": idx["migrated"]}, qs, model_name)}
        print(f"[{corpus}] {json.dumps(q)}", flush=True)
    return r, q


SYNTHETIC_BUILD = """
import sys, numpy as np
from pathlib import Path
from sbsearch.index.store import NewChunk, NewDocument, Store
n, path = int(sys.argv[1]), Path(sys.argv[2])
rng = np.random.default_rng(0)
words = np.array("travel hotel flight expense claim receipt vpn password laptop printer office parking kitchen "
                 "holiday leave policy manager approval portal badge firmware release backup meeting".split())
store = Store(path, create=True)
store.register_model("synthetic", "-", None, 384, 6, 6)
for start in range(0, n, 5000):  # one run per 5,000 chunks: pending vectors first, then publish
    vecs = rng.normal(size=(min(5000, n - start), 384)).astype(np.float32)
    vecs /= np.linalg.norm(vecs, axis=1, keepdims=True)
    docs, by_sha = [], {}
    for d in range(0, len(vecs), 5):
        k = start + d
        chunks = [NewChunk(text=" ".join(rng.choice(words, 60)), text_sha=f"{k + i:064x}") for i in range(5)]
        docs.append(NewDocument(path=f"/docs/{k // 5}.txt", root="/docs", sha256=str(k), status="ok", chunks=chunks))
        by_sha.update({c.text_sha: v.tobytes() for c, v in zip(chunks, vecs[d:d + 5])})
    store.save_pending("synthetic", by_sha)
    store.publish(docs, [], {"synthetic": by_sha})
store.checkpoint(truncate=True)
"""


def migration_cost(work: Path, before_code: Path, n: int) -> dict:
    """A synthetic float32 index of n chunks (one model, 384-d, written by the before code as its
    runs write: pending vectors, then publish), migrated in place: each step's seconds and the
    bytes of index.db and its WAL after it."""
    from sbsearch.index.store.sqlite.schema import migrations, sqlite_utils

    index = work / f"synthetic-{n}"
    shutil.rmtree(index, ignore_errors=True)
    t = time.perf_counter()
    subprocess.run([sys.executable, "-c", SYNTHETIC_BUILD, str(n), str(index)], check=True,
                   env={**os.environ, "PYTHONPATH": str(before_code)}, cwd=str(before_code))
    out: dict = {"chunks": n, "build_s": round(time.perf_counter() - t, 1)}

    def sizes() -> dict:
        wal = index / "index.db-wal"
        return {"index_db": (index / "index.db").stat().st_size, "wal": wal.stat().st_size if wal.exists() else 0}

    out["before"] = sizes()
    # the same runs written by this sbsearch (int8, each publish giving its pending pages back)
    new_index = work / f"synthetic-{n}-new"
    shutil.rmtree(new_index, ignore_errors=True)
    t = time.perf_counter()
    subprocess.run([sys.executable, "-c", SYNTHETIC_BUILD, str(n), str(new_index)], check=True,
                   env={**os.environ, "PYTHONPATH": str(REPO)}, cwd=str(REPO))
    out["new_build_s"] = round(time.perf_counter() - t, 1)
    out["new_index_db"] = (new_index / "index.db").stat().st_size
    shutil.rmtree(new_index, ignore_errors=True)
    db = sqlite_utils.Database(sqlite3.connect(str(index / "index.db"), isolation_level=None))
    t = time.perf_counter()
    migrations.apply(db, stop_before="m008_reclaim_space")
    out["m007_convert_s"] = round(time.perf_counter() - t, 2)
    out["after_convert"] = sizes()
    # m008's steps one by one, to see the WAL at its largest (before the checkpoint)
    t = time.perf_counter()
    db.execute("PRAGMA auto_vacuum = INCREMENTAL")
    db.execute("VACUUM")
    out["m008_vacuum_s"] = round(time.perf_counter() - t, 2)
    out["after_vacuum_before_checkpoint"] = sizes()
    t = time.perf_counter()
    db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    out["m008_checkpoint_s"] = round(time.perf_counter() - t, 2)
    out["after_vacuum"] = sizes()
    db.close()
    return out


class _Vectors:
    """The little of a store that building an exact index reads (faiss_index's VectorSource)."""

    def __init__(self, path: Path, ids, mat):
        self.path, self.ids, self.mat, self.generation = path, ids, mat, 1

    def vectors(self, model: str):
        yield self.ids, self.mat

    def vector_count(self, model: str) -> int:
        return len(self.ids)


def exact_load(work: Path, n: int, repeats: int = 15) -> dict:
    """Median seconds of a searcher's load (faiss_index.load_generation: meta, size and checksum
    checks, reading) of an exact index of n 384-d vectors, from a float32 FAISS file and from its
    int8 file; the two answer the same queries with the same scores and ids."""
    import faiss
    import numpy as np
    from sbsearch.index.store.vector_codec import INT8, decode_matrix, encode_matrix
    from sbsearch.vectors import faiss_index

    rng = np.random.default_rng(0)
    mat = rng.normal(size=(n, 384)).astype(np.float32)
    mat = decode_matrix(encode_matrix(mat / np.linalg.norm(mat, axis=1, keepdims=True), INT8), INT8)
    folder = work / f"exact-load-{n}"
    shutil.rmtree(folder, ignore_errors=True)
    source = _Vectors(folder, np.arange(1, n + 1, dtype=np.int64), mat)
    faiss_index.build(source, "synthetic", 384)
    meta_file = faiss_index._meta_path(source, "synthetic")
    int8_meta = json.loads(meta_file.read_text())
    old = faiss_index.faiss_dir(source) / int8_meta["file"].replace(".int8", ".faiss")
    faiss.write_index(faiss_index.load_generation(source, "synthetic", 384, 1), str(old))
    float32_meta = {k: v for k, v in int8_meta.items() if k != "file_format"} | {"file": old.name} \
        | faiss_index._file_facts(old)
    out: dict = {"vectors": n, "dim": 384}
    loaded = {}
    for label, meta in (("float32_faiss", float32_meta), ("int8", int8_meta)):
        meta_file.write_text(json.dumps(meta))
        times = []
        for _ in range(repeats):
            t = time.perf_counter()
            loaded[label] = faiss_index.load_generation(source, "synthetic", 384, 1)
            times.append(time.perf_counter() - t)
        out[label] = {"file_bytes": meta["file_bytes"], "load_s_median": round(sorted(times)[repeats // 2], 4)}
    queries = mat[:100] + 0.01
    out["same_answers"] = all(np.array_equal(a, b) for a, b in
                              zip(loaded["float32_faiss"].search(queries, 10), loaded["int8"].search(queries, 10)))
    shutil.rmtree(folder, ignore_errors=True)
    return out


def pg_components(index: Path) -> dict:
    """Bytes per chunk of the PostgreSQL store an index folder becomes (`sbsearch migrate` into a
    fresh pgserver database): every relation of the schema (heap, TOAST, indexes: HNSW included)."""
    import pgserver
    import psycopg

    data = Path(tempfile.mkdtemp(prefix="sbsearch-storage-pg-"))
    server = pgserver.get_server(data, cleanup_mode="stop")
    try:
        url = server.get_uri()
        subprocess.run([sys.executable, "-m", "sbsearch", "migrate", "-i", str(index), "--to", url], check=True,
                       env={**os.environ, "PYTHONPATH": str(REPO)})
        with psycopg.connect(url, autocommit=True) as con:
            con.execute("VACUUM ANALYZE")
            chunks = con.execute("SELECT count(*) FROM sbsearch.chunks").fetchone()[0]
            rows = con.execute(
                "SELECT c.relname, c.relkind, pg_relation_size(c.oid), coalesce(pg_relation_size(c.reltoastrelid), 0) "
                "FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace WHERE n.nspname = 'sbsearch' "
                "AND c.relkind IN ('r', 'i') ORDER BY 3 DESC").fetchall()
    finally:
        server.cleanup()
        shutil.rmtree(data, ignore_errors=True)
    relations = {name: {"kind": kind, "bytes": size + toast, "per_chunk": round((size + toast) / chunks)}
                 for name, kind, size, toast in rows}
    total = sum(r["bytes"] for r in relations.values())
    return {"chunks": chunks, "relations": relations, "total_per_chunk": round(total / chunks)}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--before-code", type=Path, default=Path("/work/main"),
                    help="an sbsearch checkout from before compact vectors (makes the 'before' indexes)")
    ap.add_argument("--work", type=Path, help="folder for corpora and indexes (default: a temporary one)")
    ap.add_argument("--no-quality", action="store_true")
    ap.add_argument("--report", action="store_true", help="print the tables of the last results file")
    ap.add_argument("--migration-chunks", type=int, default=0, metavar="N",
                    help="only: the cost of migrating a synthetic float32 index of N chunks, added to the results")
    ap.add_argument("--exact-load", type=int, default=0, metavar="N",
                    help="only: seconds to load an exact index of N vectors from a float32 and an int8 file, "
                         "added to the results")
    ap.add_argument("--pg", action="store_true",
                    help="only: the PostgreSQL store of the 'new' StackFAQ index of --work (pgserver), added to the results")
    args = ap.parse_args()
    if args.report:
        print(table(json.loads(RESULTS.read_text())))
        return
    if args.migration_chunks:
        result = json.loads(RESULTS.read_text())
        work = args.work or Path(tempfile.mkdtemp(prefix="sbsearch-storage-"))
        result["migration_cost"] = migration_cost(work, args.before_code, args.migration_chunks)
        RESULTS.write_text(json.dumps(result, indent=1) + "\n")
        print(json.dumps(result["migration_cost"], indent=1))
        return
    if args.exact_load:
        result = json.loads(RESULTS.read_text())
        work = args.work or Path(tempfile.mkdtemp(prefix="sbsearch-storage-"))
        result["exact_load"] = exact_load(work, args.exact_load)
        RESULTS.write_text(json.dumps(result, indent=1) + "\n")
        print(json.dumps(result["exact_load"], indent=1))
        return
    if args.pg:
        result = json.loads(RESULTS.read_text())
        result["postgresql"] = pg_components(args.work / "stackfaq-1000-new")
        RESULTS.write_text(json.dumps(result, indent=1) + "\n")
        print(json.dumps(result["postgresql"], indent=1))
        return
    work = args.work or Path(tempfile.mkdtemp(prefix="sbsearch-storage-"))
    work.mkdir(parents=True, exist_ok=True)
    before_commit = subprocess.run(["git", "-C", str(args.before_code), "rev-parse", "--short", "HEAD"],
                                   capture_output=True, text=True).stdout.strip()
    result: dict = {"command": " ".join([Path(sys.argv[0]).name] + sys.argv[1:]), "before_commit": before_commit,
                    "machine": platform.machine(), "sqlite": sqlite3.sqlite_version, "bytes": {}, "quality": {}}
    if RESULTS.exists():  # measured by their own options, not by this run: kept
        previous = json.loads(RESULTS.read_text())
        result.update({k: previous[k] for k in ("migration_cost", "postgresql", "exact_load") if k in previous})
    for corpus, folder in corpus_folders(work, not args.no_quality).items():
        r, q = measure_corpus(corpus, folder, work, args.before_code, not args.no_quality)
        result["bytes"][corpus] = r
        if q:
            result["quality"][corpus] = q
        RESULTS.write_text(json.dumps(result, indent=1) + "\n")
    print(table(result))


if __name__ == "__main__":
    main()
