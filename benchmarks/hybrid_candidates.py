"""How many of hybrid search's vector candidates an approximate index must find with its full recall
(issue #30), on real vectors and real text at 202,598 chunks.

    .venv/bin/python benchmarks/hybrid_candidates.py [--work DIR] [--recall-target 0.98] [--no-write]

Hybrid fuses 50 candidates from each side and shows 10. A quantised index finds a vector search's
10 by rescoring factor x 10 candidates from their stored vectors; asked for hybrid's 50 it used to
rescore factor x 50, and at 1M chunks (factor 16) reading those 800 vectors was most of a hybrid
search (benchmarks/hybrid.py). With Searcher.rescore_for_shown_only the 50 are ranked among the
factor x 10 read for the 10 shown. This measures what that changes in what a user sees.

The index: benchmarks/real_vectors.py's chunks (the labelled English sets, sample_docs, StackFAQ and
STS-B paraphrases, among 200,000 docstring sentences of the installed packages), each with its real
text and the lexical index built from it, real minilm-int8 vectors. Per set, the questions are
searched as `sbsearch query` does (10 chunks, hybrid), the chunks named by their documents, and
nDCG@10 computed: hybrid over exact vector search, and over ivf-binary built to --recall-target
(sbsearch's own 0.99 is missed at this size, so it would search exactly), rescoring for the 10 shown
and for all 50. Also: how often the 10 shown differ from those of the rescoring of all 50.
Writes benchmarks/results/hybrid_candidates.json.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(REPO), str(REPO / "benchmarks")]

from ann import MODEL, make_store  # noqa: E402
from fusion import ENGLISH  # noqa: E402
from quantised import built_row, commit, save  # noqa: E402
from real_vectors import Hit, real_chunks  # noqa: E402
from sbsearch.index.store import Store  # noqa: E402
from sbsearch.quality.evaluation import evaluate  # noqa: E402
from sbsearch.search import Searcher  # noqa: E402

RESULTS = REPO / "benchmarks" / "results" / "hybrid_candidates.json"
SHOWN = 10  # chunks a query shows (`sbsearch query`'s default)


class Shown:
    """A searcher for evaluate(): each question's SHOWN hybrid results, named by their documents."""

    def __init__(self, searcher: Searcher, doc_of: dict[int, tuple[str, str]]):
        self.searcher, self.doc_of, self.shown = searcher, doc_of, {}

    def search_many(self, queries: list[str], k: int):
        out = []
        for results, q in zip(self.searcher.search_many(queries, SHOWN, mode="hybrid"), queries):
            self.shown[q] = [r.chunk_id for r in results]
            out.append([Hit(*self.doc_of.get(r.chunk_id, (f"haystack/{r.chunk_id}", f"/haystack/{r.chunk_id}.txt")))
                        for r in results])
        return out


class StoredAs:
    """The query encoder under the name the store's vectors have (ann.MODEL)."""

    def __init__(self, embedder, name: str):
        self._embedder, self.name = embedder, name

    def __getattr__(self, attr):
        return getattr(self._embedder, attr)


def text_store(work: Path, vecs: np.ndarray, texts: list[str]) -> Store:
    """The store of real_vectors.py with each chunk's own text and a lexical index over it (kept in
    `work` and reused when it holds the same chunks)."""
    path = work / f"real-text-{len(vecs)}"
    if (path / "index.db").exists():
        store = Store(path)
        if store.chunk_count() == len(vecs) and store.get_meta("bench_texts") == str(len(texts)):
            return store
        store.close()
        import shutil

        shutil.rmtree(path)
    t = time.perf_counter()
    store = make_store(path, vecs)
    with store.db.atomic():
        store.db.conn.executemany("UPDATE chunks SET text = ? WHERE id = ?", ((tx, i + 1) for i, tx in enumerate(texts)))
    store.rebuild_lexical()
    store.set_meta("bench_texts", str(len(texts)))
    print(f"store of {len(vecs):,} chunks with text and lexical index: {time.perf_counter() - t:.0f} s", flush=True)
    return store


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--distractors", type=int, default=200_000)
    ap.add_argument("--work", type=Path, default=Path(tempfile.gettempdir()) / "sbsearch-real-vectors")
    ap.add_argument("--recall-target", type=float, default=0.98)
    ap.add_argument("--no-write", action="store_true")
    args = ap.parse_args()
    os.environ["BENCH_RECALL_TARGET"] = str(args.recall_target)
    from sbsearch.embed import make_embedder

    t_all = time.perf_counter()
    embedder = make_embedder(ENGLISH)
    texts, haystack, vecs, doc_of, sets = real_chunks(args.work, embedder, args.distractors)
    store = text_store(args.work, vecs, texts + haystack)
    rows, shown = [], {}
    for kind, variants in (("exact", (False,)), ("ivf-binary", (False, True))):
        built = built_row(store, vecs.shape[1], kind)
        searcher = Searcher(store.path, embedder=StoredAs(embedder, MODEL))
        for for_shown in variants:
            searcher.rescore_for_shown_only = for_shown
            name = f"{built['type']}" + ("" if built["type"] == "exact" else
                                         f", rescoring for the {SHOWN if for_shown else 50}")
            ranked = Shown(searcher, doc_of)
            t = time.perf_counter()
            ndcg = {set_name: round(evaluate(ranked, qs)["ndcg@10"], 4) for set_name, qs in sets.items()}
            shown[name] = ranked.shown
            row = {"search": name, "params": built["params"], "recall_at_build": built["recall_at_build"],
                   "ndcg@10": ndcg, "seconds": round(time.perf_counter() - t, 1)}
            print(json.dumps(row), flush=True)
            rows.append(row)
    exact_name, all_name, shown_name = (r["search"] for r in rows)
    for row in rows:
        row["delta_vs_exact"] = {s: round(v - rows[0]["ndcg@10"][s], 4) for s, v in row["ndcg@10"].items()}
        row["questions_whose_10_differ_from_exact"] = sum(shown[row["search"]][q] != shown[exact_name][q]
                                                          for q in shown[exact_name])
    rows[2]["questions_whose_10_differ_from_rescoring_all_50"] = sum(
        shown[shown_name][q] != shown[all_name][q] for q in shown[all_name])
    cmd = " ".join(["python", "benchmarks/hybrid_candidates.py", *sys.argv[1:]])
    print(f"\n`{cmd}` · {len(vecs):,} chunks · {len(shown[exact_name]):,} questions · "
          f"run {time.perf_counter() - t_all:.0f} s\n")
    names = list(sets)
    print("| hybrid, vector side by | parameters | " + " | ".join(names) + " | questions whose 10 differ from exact |")
    print("|---|---|" + "---|" * len(names) + "---|")
    for r in rows:
        params = " ".join(f"{k}={v}" for k, v in r["params"].items()) or "–"
        print(f"| {r['search']} | {params} | " + " | ".join(f"{r['ndcg@10'][n]:.4f} ({r['delta_vs_exact'][n]:+.4f})"
                                                          for n in names)
              + f" | {r['questions_whose_10_differ_from_exact']} |")
    print(f"\nrescoring for the 10 against for all 50: the 10 shown differ on "
          f"{rows[2]['questions_whose_10_differ_from_rescoring_all_50']} questions")
    if not args.no_write:
        save(RESULTS, [{**r, "n": len(vecs), "recall_target": args.recall_target, "commit": commit()} for r in rows],
             ("n", "search", "recall_target"), cmd)


if __name__ == "__main__":
    main()
