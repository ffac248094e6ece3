"""What BM25 over the reader's own documents costs, measured in one run.

    .venv/bin/python benchmarks/reader_bm25.py [--chunks 100000] [--rounds 2] [--no-write]

A Store of N chunks (benchmarks/hybrid.py's synthetic corpus: shared STS-B/SNLI sentences read at
run time, clustered 384-d vectors stored as `minilm-int8`), 1% of its documents readable by group
`rare`, the rest by group `staff` (as benchmarks/serve.py). For the sample_docs questions, p50 ms
of whole searches (query encoding included) in hybrid and lexical mode, for three readers:

- `admin`: no reader (the CLI): the whole index;
- `everyone`: groups staff and rare, who may read every chunk;
- `one percent`: group rare.

Each is measured with the lexical side as sbsearch computes it now (statistics of the reader's
chunks: sbsearch.index.store.sqlite.reader_lexical) and as it did before (FTS5's bm25() over the whole table,
the statistics of every chunk: the leak of issue #26), interleaved query by query so the machine's
noise falls on both alike. Writes benchmarks/results/reader_bm25.json; appends the table to
docs/BENCHMARKS.md (not with --no-write).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(REPO), str(REPO / "benchmarks")]

from report import publish  # noqa: E402
from sbsearch.index.filters import DocumentFilter  # noqa: E402
from sbsearch.search import Searcher  # noqa: E402

RESULTS = REPO / "benchmarks" / "results" / "reader_bm25.json"
READERS = {"admin": None, "everyone": ("staff", "rare"), "one percent": ("rare",)}


def whole_table_bm25(store, match: str, limit: int, doc_filter=None) -> list[tuple[int, float]]:
    """The lexical search of sbsearch before #26: FTS5's bm25(), statistics of the whole table, for
    every reader (today it serves only readers who may read everything)."""
    return store._whole_table_bm25(match, limit, doc_filter)


def whole_table_counts(store, tokens, reader=None):
    return type(store).token_row_counts(store, tokens)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--chunks", type=int, default=100_000)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--no-write", action="store_true")
    args = parser.parse_args()
    from hybrid import build_scale_index

    from sbsearch.embed import make_embedder

    work = Path(tempfile.mkdtemp(prefix="sbsearch-reader-bm25-"))
    store, _, model = build_scale_index(work / "scale", args.chunks, rare_share=0.01)
    access = {path: json.dumps(["rare"] if "/rare/" in path else ["staff"]) for path in store.document_access()}
    store.set_document_access(access)
    embedder = make_embedder(model)
    queries = [json.loads(line)["query"] for line in (REPO / "sample_docs" / "queries.jsonl").read_text().splitlines()
               if line.strip()]
    queries = [q for q in queries if not any("\u3040" <= ch <= "\u9fff" for ch in q)][:60]

    searchers = {}
    for way in ("reader", "whole table"):
        s = Searcher(store.path, embedder=embedder)
        if way == "whole table":
            s.store.lexical_search = lambda match, limit, doc_filter=None, st=s.store: whole_table_bm25(
                st, match, limit, doc_filter)
            s.store.token_row_counts = lambda tokens, reader=None, st=s.store: whole_table_counts(st, tokens)
        searchers[way] = s
    cells = [(way, reader, mode) for reader in READERS for mode in ("hybrid", "lexical") for way in searchers]
    filters = {name: None if groups is None else DocumentFilter().for_reader(groups) for name, groups in READERS.items()}
    first = {}
    for way, reader, mode in cells:  # warm-up: FAISS built, lengths and readers' rows read
        t = time.perf_counter()
        searchers[way].search(queries[0], 10, mode=mode, doc_filter=filters[reader])
        first[(way, reader, mode)] = (time.perf_counter() - t) * 1000
    times: dict = {cell: [] for cell in cells}
    for _ in range(args.rounds):
        for q in queries:
            for cell in cells:
                way, reader, mode = cell
                t = time.perf_counter()
                searchers[way].search(q, 10, mode=mode, doc_filter=filters[reader])
                times[cell].append((time.perf_counter() - t) * 1000)
    p50 = {cell: float(np.percentile(ts, 50)) for cell, ts in times.items()}
    p95 = {cell: float(np.percentile(ts, 95)) for cell, ts in times.items()}
    command = " ".join([".venv/bin/python", "benchmarks/reader_bm25.py", *sys.argv[1:]])
    machine = f"{platform.machine()}, {os.cpu_count()} cores (shared)"
    lines = [f"\n## BM25 over the reader's documents: the cost ({time.strftime('%Y-%m-%d')})\n",
             f"`{command}` · {machine} · {args.chunks:,} synthetic chunks, 1% readable by the `one percent` reader · "
             f"{len(queries)} sample_docs questions x {args.rounds} rounds, interleaved · query encoding "
             f"({model}) included\n",
             "| reader | mode | p50 ms, reader's statistics (now) | p50 ms, whole-table statistics (before) | ratio | "
             "p95 ms now / before |", "|---|---|---|---|---|---|"]
    rows = []
    for reader in READERS:
        for mode in ("hybrid", "lexical"):
            now, before = p50[("reader", reader, mode)], p50[("whole table", reader, mode)]
            rows.append({"reader": reader, "mode": mode, "p50_ms_now": now, "p50_ms_before": before,
                         "ratio": now / before, "p95_ms_now": p95[("reader", reader, mode)],
                         "p95_ms_before": p95[("whole table", reader, mode)],
                         "first_search_ms_now": first[("reader", reader, mode)],
                         "first_search_ms_before": first[("whole table", reader, mode)]})
            lines.append(f"| {reader} | {mode} | {now:.1f} | {before:.1f} | {now / before:.2f}x | "
                         f"{rows[-1]['p95_ms_now']:.1f} / {rows[-1]['p95_ms_before']:.1f} |")
    lines.append(f"\nFirst search after a change of the index (row lengths read from FTS5, the reader's rows "
                 f"listed): " + ", ".join(f"{r['reader']} {r['mode']} {r['first_search_ms_now']:.0f} ms "
                                           f"(before {r['first_search_ms_before']:.0f} ms)" for r in rows) + ".")
    publish("\n".join(lines), write=not args.no_write)
    RESULTS.write_text(json.dumps({"command": command, "date": time.strftime("%Y-%m-%d %H:%M"), "machine": machine,
                                   "chunks": args.chunks, "rows": rows}, indent=1) + "\n")


if __name__ == "__main__":
    main()
