"""Quality against speed for several models on one index, with the frontier marked.

Every model embeds the same chunks of the index; quality is the labelled nDCG@10 when queries
with judgements are given, else the label-free estimate against a reference model
(sbsearch.quality.labelfree); speed is encode throughput on the index's own chunks and query latency,
measured in turns (compare.measure_costs) so that a noisy machine hurts every model alike. A model
is on the frontier when no other model is at least as good on both axes and better on one.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ..errors import SbsearchError
from ..index.indexer import Indexer
from ..index.location import open_store
from ..index.store import IndexStore as Store, now  # either store: the protocol both implement
from ..progress import NullProgress, Progress
from ..quality import labelfree
from ..quality.evaluation import QuerySet, evaluate
from ..search import Searcher
from .compare import measure_costs, sample_chunks
from .tune import LABEL, stored_corpus


def pareto(points: dict[str, tuple[float, float]]) -> list[str]:
    """Names whose (quality, speed) no other point dominates."""
    out = []
    for name, (q, s) in points.items():
        dominated = any(q2 >= q and s2 >= s and (q2 > q or s2 > s)
                        for other, (q2, s2) in points.items() if other != name)
        if not dominated:
            out.append(name)
    return out


def _labelfree_quality(store: Store, searchers: dict[str, Searcher], reference: str):
    """The label-free estimate of every model against `reference` (as `sbsearch tune` computes
    it), and the pseudo-queries it used."""
    corpus = {name: stored_corpus(store, s.doc_model) for name, s in searchers.items()}
    ids, _, passages, docs = corpus[reference]
    if any(not np.array_equal(c[0], ids) for c in corpus.values()):
        raise SbsearchError("the models do not cover the same chunks; run `sbsearch index` first")
    labelfree.require_enough_documents(docs)
    queries = labelfree.pseudo_queries(passages, docs)
    texts = labelfree.query_texts(queries)
    qv = {name: s.embedder.encode_query(texts) for name, s in searchers.items()}
    return {name: labelfree.estimate_from_vectors(qv[reference], qv[name], corpus[reference][1], corpus[name][1],
                                                  docs, queries)
            for name in searchers}, queries


def frontier(index_path: Path, models: list[str] | None = None, query_set: QuerySet | None = None,
             reference: str | None = None, progress: Progress | None = None,
             latency_queries: int = 20, throughput_chunks: int = 96) -> dict:
    progress = progress or NullProgress()
    store = open_store(index_path)  # an index folder or a PostgreSQL store; "no index at …" when none
    names = list(dict.fromkeys(models or [m["name"] for m in store.models() if store.vector_count(m["name"])]))
    if len(names) < 2:
        raise SbsearchError("the frontier needs at least two models: name them with --models, or index with more")
    for name in names:
        progress.message(f"making sure every chunk has a {name} vector")
        Indexer(index_path, name, progress=progress).run([])
    searchers = {n: Searcher(index_path, n) for n in names}
    result: dict = {"created": now(), "index": str(store.path), "chunks": store.chunk_count(), "models": {}}
    if query_set is not None and query_set.labelled:
        progress.message("labelled quality of every model")
        quality = {n: evaluate(s, query_set) for n, s in searchers.items()}
        result["quality"] = {"metric": "nDCG@10", "source": query_set.source}
        qvalue = {n: q["ndcg@10"] for n, q in quality.items()}
        latency_texts = list(query_set.queries.values())
    else:
        reference = reference or max(names, key=lambda n: (searchers[n].model_row.get("layers") or 0,
                                                            searchers[n].dim))
        if reference not in searchers:
            raise SbsearchError(f"--reference {reference!r} is not one of the models compared")
        progress.message(f"label-free estimate of every model against {reference}")
        quality, queries = _labelfree_quality(store, searchers, reference)
        result["quality"] = {"metric": f"{LABEL}, % of {reference}", "source": "pseudo-queries"}
        qvalue = {n: q["estimate_pct"] for n, q in quality.items()}
        latency_texts = [q.text for q in queries]
    progress.message("timing every model in turns")
    costs = measure_costs(searchers, latency_texts[:latency_queries],
                          [t for _, t in sample_chunks(store, throughput_chunks)])
    for n in names:
        result["models"][n] = {"quality": qvalue[n], "quality_detail": quality[n], **costs[n]}
    points = {n: (qvalue[n], costs[n]["encode_chunks_per_s"]) for n in names}
    result["frontier"] = pareto(points)
    return result


def write_chart(result: dict, path: Path) -> Path:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    models = result["models"]
    fig, ax = plt.subplots(figsize=(7, 4.5))
    front = sorted(result["frontier"], key=lambda n: models[n]["encode_chunks_per_s"])
    for name, m in models.items():
        on = name in result["frontier"]
        ax.scatter(m["encode_chunks_per_s"], m["quality"], s=60 if on else 30,
                   color="tab:red" if on else "tab:grey", zorder=3)
        ax.annotate(name, (m["encode_chunks_per_s"], m["quality"]), fontsize=7, xytext=(4, 4),
                    textcoords="offset points")
    ax.plot([models[n]["encode_chunks_per_s"] for n in front], [models[n]["quality"] for n in front],
            color="tab:red", lw=1, ls="--", label="frontier (no model is both better and faster)")
    ax.set_xlabel("encode speed, index chunks per second (measured in turns)")
    ax.set_ylabel(result["quality"]["metric"])
    ax.set_title(f"quality vs speed on {Path(result['index']).name} ({result['chunks']} chunks)", fontsize=10)
    ax.legend(fontsize=8, loc="lower left")
    ax.grid(alpha=0.3)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path
