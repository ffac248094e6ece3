"""The quality footer under every answer: which model answered, how it compares to the full model."""

from __future__ import annotations

from .metrics import overlap_at_k


def latest_compare(store, model: str) -> dict | None:
    """The newest stored comparison (or tune estimate) that has `model` on one side."""
    return store.latest_compare(model)


def _layers(layers, total) -> str:
    if layers and total and layers != total:
        return f"{layers} of {total} layers"
    return f"{layers} layers" if layers else ""


def footer(searcher, results, other_results=None, other_name: str | None = None) -> str:
    row = searcher.model_row
    parts = [f"model: {searcher.model_name}"]
    if searcher.query_model != searcher.doc_model:
        q = searcher.embedder.info
        parts[0] += (f" (queries: {searcher.query_model}, {_layers(q.layers, q.total_layers)}; "
                     f"documents: {searcher.doc_model}, {_layers(row.get('layers'), row.get('total_layers'))})")
    elif row.get("layers"):
        parts[0] += f" ({_layers(row['layers'], row.get('total_layers'))})"
    cmp_row = latest_compare(searcher.store, searcher.model_name)
    if cmp_row is not None:
        headline = cmp_row["result"].get("headline", {})
        if cmp_row["model_a"] == searcher.model_name and headline:
            if headline.get("speedup"):
                parts.append(f"{headline['speedup']:.1f}x faster than {cmp_row['model_b']}")
            if headline.get("quality_metric"):
                parts.append(f"{headline['quality_metric']} {headline['quality_pct']:.1f}% of {cmp_row['model_b']}")
            source = cmp_row["result"].get("source", "compare")
            parts.append(f"({source} of {cmp_row['created'][:10]})")
    else:
        parts.append("no comparison stored (run `sbsearch compare`)")
    if other_results is not None:
        shared = overlap_at_k([r.path for r in results], [r.path for r in other_results], len(other_results))
        parts.append(f"this query: {round(shared * len(other_results))}/{len(other_results)} of {other_name}'s "
                     "results shared")
    return " · ".join(parts)
