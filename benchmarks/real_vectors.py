"""Real vectors at 200,000+ chunks (issue #30): what the quantised vector indexes cost in quality
where every vector is a real minilm-int8 embedding of real text, measured against exact search over
the float32 vectors.

    .venv/bin/python benchmarks/real_vectors.py [--distractors 200000] [--work DIR] [--kinds auto exact ivf-binary ivf-sq8]

The chunks: the labelled English sets of benchmarks/fusion.py (sample_docs, StackFAQ, STS-B
paraphrases), indexed by sbsearch with minilm-int8, their chunk texts encoded again in float32; and,
as the haystack, real English sentences no one here wrote: the docstrings of the Python packages
installed in this environment (sentences of 5-80 words, deduplicated, in a fixed order), encoded
by the same model (cached under $SBSEARCH_CACHE/bench, ~10 min the first time). One real SQLite
store holds them all, int8 as sbsearch keeps them (benchmarks/ann.py's bulk insert).

Per index type: `faiss_index.build` forced with SBSEARCH_INDEX_TYPE ("auto": the type sbsearch picks
at this size), in a child process (time, peak memory, parameters, recall measured at build); then the
labelled questions, encoded as the searcher encodes them, searched through FaissVectorIndex (the
quantised types rescore their candidates from the stored vectors), 50 chunks each, collapsed to
documents as `sbsearch eval` does: nDCG@10 per set, against the same questions ranked by exact
search over the float32 vectors, and recall@10 of the chunk ids against that exact ranking.
Writes benchmarks/results/real_vectors.json; prints the table.
"""

from __future__ import annotations

import argparse
import ast
import hashlib
import json
import os
import re
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(REPO), str(REPO / "benchmarks")]

from ann import MODEL, make_store  # noqa: E402  (MODEL: the store's model name)
from fusion import ENGLISH, corpora  # noqa: E402
from quantised import built_row, commit, save  # noqa: E402
from sbsearch import config  # noqa: E402
from sbsearch.index.indexer import Indexer  # noqa: E402
from sbsearch.index.store import Store  # noqa: E402
from sbsearch.ingest.chunking import embedding_text  # noqa: E402
from sbsearch.quality.evaluation import evaluate  # noqa: E402

RESULTS = REPO / "benchmarks" / "results" / "real_vectors.json"
DEPTH = 50  # chunks searched per question, collapsed to documents (as `sbsearch eval`: k * 5)
SENTENCE_END = re.compile(r"(?<=[.!?])\s+(?=[A-Z])")
NOT_PROSE = re.compile(r"^\s*(>>>|[-=~]{3,}|\w+\s*:\s*$|\.\.|\*|\|)", re.M)


def docstring_sentences(limit: int) -> list[str]:
    """Real English sentences: the docstrings of the installed Python packages, cut into sentences
    (prose paragraphs only: no doctests, tables or parameter lists), deduplicated, in the order of
    their sha1 (fixed, and mixed across packages). Cached."""
    cache = config.cache_dir() / "bench" / "docstring-sentences.json"
    if cache.exists():
        found = json.loads(cache.read_text())
        if len(found) >= limit:
            return found[:limit]
    import site

    seen: set[str] = set()
    for base in sorted({*site.getsitepackages(), os.path.dirname(os.__file__)}):
        for folder, dirs, files in os.walk(base):
            dirs.sort()
            for name in sorted(files):
                if not name.endswith(".py"):
                    continue
                try:
                    tree = ast.parse(Path(folder, name).read_text(encoding="utf-8"))
                except (OSError, SyntaxError, UnicodeDecodeError, ValueError, RecursionError):
                    continue
                for node in ast.walk(tree):
                    if isinstance(node, (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)):
                        seen.update(_prose_sentences(ast.get_docstring(node) or ""))
    found = sorted(seen, key=lambda s: hashlib.sha1(s.encode()).hexdigest())
    cache.parent.mkdir(parents=True, exist_ok=True)
    cache.write_text(json.dumps(found))
    print(f"{len(found):,} docstring sentences found", flush=True)
    if len(found) < limit:
        sys.exit(f"only {len(found):,} sentences in the installed packages' docstrings, {limit:,} asked")
    return found[:limit]


def _prose_sentences(doc: str):
    for para in re.split(r"\n\s*\n", doc):
        if NOT_PROSE.search(para):
            continue
        for s in SENTENCE_END.split(" ".join(para.split())):
            if 5 <= len(s.split()) <= 80 and s[:1].isupper():
                yield s


def encoded(texts: list[str], embedder, cache_name: str | None = None) -> np.ndarray:
    cache = config.cache_dir() / "bench" / cache_name if cache_name else None
    if cache is not None and cache.exists():
        vecs = np.load(cache)
        if len(vecs) == len(texts):
            return vecs
    t = time.perf_counter()
    vecs = np.vstack([np.asarray(embedder.encode(texts[s:s + 256]), dtype=np.float32)
                      for s in range(0, len(texts), 256)])
    print(f"encoded {len(texts):,} texts in {time.perf_counter() - t:.0f} s", flush=True)
    if cache is not None:
        cache.parent.mkdir(parents=True, exist_ok=True)
        np.save(cache, vecs)
    return vecs


@dataclass
class Hit:
    """What evaluate() reads of a result: its document's path (relative, and whole)."""

    relpath: str
    path: str


class RankedBy:
    """A searcher for evaluate(): questions encoded once, chunks ranked by `rank(vectors, k)`
    (chunk ids), each chunk named by its document in the labelled corpus (other chunks: a
    document of their own)."""

    def __init__(self, query_vectors: dict[str, np.ndarray], rank, doc_of: dict[int, tuple[str, str]]):
        self.query_vectors, self.rank, self.doc_of = query_vectors, rank, doc_of

    def search_many(self, queries: list[str], k: int):
        ids = self.rank(np.vstack([self.query_vectors[q] for q in queries]), k)
        return [[Hit(*self.doc_of.get(int(c), (f"haystack/{c}", f"/haystack/{c}.txt"))) for c in row if c > 0]
                for row in ids]


def labelled_chunks(work: Path, embedder) -> tuple[list[str], list[tuple[str, str]], dict]:
    """The English labelled sets' chunk texts and (relpath, path) of their documents, and per
    set its questions."""
    texts, docs, sets = [], [], {}
    for corpus, (model, roots, corpus_sets) in corpora(work, 1000).items():
        if model != ENGLISH:
            continue
        index = work / f"index-{corpus}"
        Indexer(index, model).run(roots)
        store = Store(index)
        for text, heading, path, root in store.db.execute(
                "SELECT c.text, c.heading, d.path, d.root FROM chunks c JOIN documents d ON d.id = c.doc_id ORDER BY c.id"):
            texts.append(embedding_text(text, heading))  # what the indexer encoded
            docs.append((os.path.relpath(path, root) if root else path, path))
        sets.update({name: qs for name, qs in corpus_sets.items()})
    return texts, docs, sets


def real_chunks(work: Path, embedder, distractors: int):
    """(labelled chunk texts, haystack sentences, every chunk's vector in that order (chunk id = row + 1),
    {chunk id: its labelled document}, the sets' questions)."""
    texts, docs, sets = labelled_chunks(work, embedder)
    haystack = docstring_sentences(distractors)
    vecs = np.vstack([encoded(texts, embedder),
                      encoded(haystack, embedder, f"docstrings-{len(haystack)}-{ENGLISH}.npy")])
    return texts, haystack, vecs, {i + 1: d for i, d in enumerate(docs)}, sets


def exact_ranking(vecs: np.ndarray):
    def rank(queries: np.ndarray, k: int) -> np.ndarray:
        scores = queries @ vecs.T
        top = np.argpartition(-scores, k - 1, axis=1)[:, :k]
        order = np.argsort(-np.take_along_axis(scores, top, 1), axis=1)
        return np.take_along_axis(top, order, 1) + 1  # chunk ids start at 1
    return rank


def index_ranking(store_path: Path):
    from sbsearch.search import Searcher

    searcher = Searcher(store_path, model=MODEL, embedder=None)
    store, vi = searcher.store, searcher.vector_index
    vi.load()

    def rank(queries: np.ndarray, k: int) -> np.ndarray:
        with store.snapshot():
            found = vi.search(queries.astype(np.float32), k, store.generation)
        return found[1]
    return rank


def recall_at_10(got: np.ndarray, exact: np.ndarray) -> float:
    return float(np.mean([len(set(g[:10]) & set(e[:10])) / 10 for g, e in zip(got, exact)]))


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--distractors", type=int, default=200_000)
    ap.add_argument("--kinds", nargs="+", default=["auto", "exact", "ivf-binary", "ivf-sq8"])
    ap.add_argument("--work", type=Path, default=Path(tempfile.gettempdir()) / "sbsearch-real-vectors")
    ap.add_argument("--recall-target", type=float, default=None,
                    help="build to this recall@10 instead of sbsearch's 0.99 (to see a type that misses it)")
    ap.add_argument("--no-write", action="store_true")
    args = ap.parse_args()
    if args.recall_target:
        os.environ["BENCH_RECALL_TARGET"] = str(args.recall_target)
    from sbsearch.embed import make_embedder

    t_all = time.perf_counter()
    embedder = make_embedder(ENGLISH)
    texts, haystack, vecs, doc_of, sets = real_chunks(args.work, embedder, args.distractors)
    questions = sorted({q for qs in sets.values() for q in qs.queries.values()})
    qvecs = dict(zip(questions, np.asarray(embedder.encode_query(questions), dtype=np.float32)))
    qmatrix = np.vstack([qvecs[q] for q in questions])
    exact = exact_ranking(vecs)
    exact_ids = exact(qmatrix, DEPTH)
    quality = {"fp32 exact": {name: round(evaluate(RankedBy(qvecs, exact, doc_of), qs)["ndcg@10"], 4)
                              for name, qs in sets.items()}}
    print(json.dumps(quality), flush=True)
    store_dir = args.work / f"real-{len(vecs)}"
    if store_dir.exists():
        import shutil

        shutil.rmtree(store_dir)
    t = time.perf_counter()
    store = make_store(store_dir, vecs)
    print(f"store of {len(vecs):,} vectors: {time.perf_counter() - t:.0f} s", flush=True)
    rows = []
    for kind in args.kinds:
        row = built_row(store, vecs.shape[1], kind)  # "auto": the type sbsearch picks at this size
        rank = index_ranking(store_dir)
        row["recall_at_10_vs_fp32_exact"] = round(recall_at_10(rank(qmatrix, DEPTH), exact_ids), 4)
        row["ndcg@10"] = {name: round(evaluate(RankedBy(qvecs, rank, doc_of), qs)["ndcg@10"], 4)
                          for name, qs in sets.items()}
        row["delta_vs_fp32_exact"] = {name: round(v - quality["fp32 exact"][name], 4) for name, v in row["ndcg@10"].items()}
        row.update(n=len(vecs), asked=kind, commit=commit(), recall_target=args.recall_target or 0.99)
        print(json.dumps(row), flush=True)
        rows.append(row)
    cmd = " ".join(["python", "benchmarks/real_vectors.py", *sys.argv[1:]])
    print(f"\n`{cmd}` · {len(texts):,} labelled chunks + {len(haystack):,} docstring sentences · "
          f"{len(questions):,} questions · run {time.perf_counter() - t_all:.0f} s\n")
    names = list(sets)
    print(f"recall target at build: {args.recall_target or 0.99}")
    print("| index | parameters | build s | file MB | recall@10 vs fp32 exact | " + " | ".join(names) + " |")
    print("|---|---|---|---|---|" + "---|" * len(names))
    print("| fp32 exact (numpy) | – | – | – | 1 | " + " | ".join(f"{quality['fp32 exact'][n]:.4f}" for n in names) + " |")
    for r in rows:
        params = " ".join(f"{k}={v}" for k, v in r["params"].items()) or "–"
        print(f"| {r['asked']} → {r['type']} | {params} | {r['build_s']:.0f} | {r['file_mb']:.0f} | "
              f"{r['recall_at_10_vs_fp32_exact']:.3f} | "
              + " | ".join(f"{r['ndcg@10'][n]:.4f} ({r['delta_vs_fp32_exact'][n]:+.4f})" for n in names) + " |")
    if not args.no_write:
        save(RESULTS, [{**r, "fp32_exact": quality["fp32 exact"], "labelled_chunks": len(texts),
                        "haystack": len(haystack)} for r in rows], ("n", "asked", "recall_target"), cmd)


if __name__ == "__main__":
    main()
