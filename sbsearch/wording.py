"""Sentences both faces (terminal and web) show: the line under every answer, sizes in bytes."""

from __future__ import annotations


def human_bytes(n: int | float | None) -> str:
    if n is None:
        return "-"
    for unit in ("B", "KB", "MB", "GB"):
        if abs(n) < 1024 or unit == "GB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return str(n)


def _layers(layers, total) -> str:
    if layers and total and layers != total:
        return f"{layers} of {total} layers"
    return f"{layers} layers" if layers else ""


def _interval(headline: dict) -> str:
    """` (90% interval 96.4–97.9%)` for an estimate stored with one (sbsearch tune), else nothing."""
    iv = headline.get("quality_interval")
    if not iv or len(iv) != 2:
        return ""
    return f" ({headline.get('interval_level') or 90:g}% interval {iv[0]:.1f}–{iv[1]:.1f}%)"


def footer(answer) -> str:
    """The line under every answer: which model answered, how it compares to its reference
    (from app.quality_facts), e.g. `model: m (6 of 12 layers) · 1.9x faster than full · …`; for
    the index's own model, why the index has it (`chosen for Japanese documents (62% CJK …)`)."""
    facts = answer.quality
    docs = facts["documents"]
    mode = facts.get("mode", "vector")
    if mode == "lexical":
        parts = ["mode: lexical (BM25, no model)"]
        parts += [f"filter: {', '.join(facts['filter'])}"] if facts.get("filter") else []
        return " · ".join(parts)
    parts = [f"mode: {mode}", f"model: {facts['model']}"]
    if facts.get("notice"):
        parts[0] = facts["notice"]
    if "queries" in facts:
        q = facts["queries"]
        parts[1] += (f" (queries: {facts['query_model']}, {_layers(q['layers'], q['total_layers'])}; "
                     f"documents: {facts['doc_model']}, {_layers(docs['layers'], docs['total_layers'])})")
    elif docs["layers"]:
        parts[1] += f" ({_layers(docs['layers'], docs['total_layers'])})"
    if facts.get("model_reason"):
        parts.append(facts["model_reason"])
    cmp = facts["comparison"]
    if cmp is not None:
        headline = cmp["headline"]
        if cmp["model_a"] == facts["model"] and headline:
            if headline.get("speedup"):
                # tune measures an int8 model against the reference's int8 variant (the runtime it serves in)
                parts.append(f"{headline['speedup']:.1f}x faster than {headline.get('speedup_against') or cmp['model_b']}")
            if headline.get("quality_metric"):
                parts.append(f"{headline['quality_metric']} {headline['quality_pct']:.1f}% of {cmp['model_b']}"
                             + _interval(headline)
                             # stored by tunes of a Japanese index before its pseudo-queries were cut to
                             # question length (2026-12-07), whose estimates read 4-8 points high
                             + (f", {headline['quality_caveat']}" if headline.get("quality_caveat") else ""))
            parts.append(f"({cmp['source']} of {cmp['created'][:10]})")
    else:
        parts.append("no comparison stored (run `sbsearch compare`)")
    if facts.get("filter"):
        parts.append(f"filter: {', '.join(facts['filter'])}")
    if "other" in facts:
        other = facts["other"]
        parts.append(f"this query: {other['shared']}/{other['count']} of {answer.other_model}'s results shared")
    return " · ".join(parts)
