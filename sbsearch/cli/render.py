"""Terminal and JSON rendering of what the use cases return (rich is imported lazily).

Every text that came from a document or a file name (path, heading, snippet, location, errors) is
shown through common.shown (in a markup string) or common.cell (a rich Text): control characters
made visible, rich markup never read from it.
"""

from __future__ import annotations

import json

from ..search import Result
from ..textsafe import json_visible, visible
from ..wording import footer, human_bytes  # noqa: F401 - shared by both faces (terminal, web)
from .common import cell, shown

def result_json(result: Result, query: str, query_id: str | None = None) -> dict:
    row = {"query": query, "path": result.display_path(), **result.fields()}
    if query_id is not None:
        row["query_id"] = query_id
    return row


def print_json_lines(results: list[Result], query: str, query_id: str | None = None, out=None) -> None:
    import sys

    out = out or sys.stdout
    for r in results:
        out.write(json_visible(json.dumps(result_json(r, query, query_id), ensure_ascii=False)) + "\n")


def marked_snippet(result: Result):
    """The result's snippet as rich Text, the query's words in bold yellow."""
    from rich.text import Text

    snip = result.snippet
    text, pos = Text(), 0
    for start, end in snip.highlights:  # offsets into the raw text: each piece made visible alone
        text.append(visible(snip.text[pos:start], newlines=True))
        text.append(visible(snip.text[start:end], newlines=True), style="bold yellow")
        pos = end
    text.append(visible(snip.text[pos:], newlines=True))
    return text


def results_list(results: list[Result], query: str):
    """One result per block: rank, score and source on one line, the section on the next, then the
    snippet wrapped under them. Paths and sections are never cut into pieces (a terminal wraps a
    long one as a whole; a log keeps it on one line), so results read alike in 80 columns, in a
    wide terminal and in a log."""
    from rich.console import Group
    from rich.padding import Padding
    from rich.text import Text

    blocks = []
    for r in results:
        source = r.display_path() + (f" {r.location}" if r.location else "")
        score = f"{r.score:.3f}" if r.score < 0.1 else f"{r.score:.2f}"  # fused (RRF) scores are small
        head = Text(f"{r.rank:>2}  {score:>5}  ", no_wrap=True, overflow="ignore")
        head.append(visible(source), style="bold")
        head.no_wrap, head.overflow = True, "ignore"
        blocks.append(head)
        if r.heading:
            blocks.append(Text(" " * 11 + visible(r.heading), style="cyan", no_wrap=True, overflow="ignore"))
        blocks.append(Padding(marked_snippet(r), (0, 0, 1, 11), expand=False))
    return Group(*blocks)


def side_by_side(a: list[Result], b: list[Result], name_a: str, name_b: str, query: str):
    """Two result lists next to each other; rows whose document the other list also has are marked."""
    from rich.table import Table

    paths_a = {r.path for r in a}
    paths_b = {r.path for r in b}
    table = Table(title=f"{shown(name_a)} vs {shown(name_b)}", expand=True)
    table.add_column("#", justify="right")
    table.add_column(shown(name_a), ratio=1, overflow="fold")
    table.add_column(shown(name_b), ratio=1, overflow="fold")
    for i in range(max(len(a), len(b))):
        def cell(rs, others, i=i):
            if i >= len(rs):
                return ""
            r = rs[i]
            mark = "[green]=[/green] " if r.path in others else "  "
            return f"{mark}{r.score:.2f} {shown(r.display_path())}" + (f" {shown(r.location)}" if r.location else "")
        table.add_row(str(i + 1), cell(a, paths_b), cell(b, paths_a))
    return table


# ------------------------------------------------------------------------------------------ status, check, models

def vector_index_summary(f: dict | None) -> str:
    """e.g. "ivf-binary nlist=316 nprobe=8 factor=16 · recall@10 0.995 (measured at 100,000) · 5.2 MB in memory"."""
    if not f:
        return "not built yet"
    params = " ".join(f"{k}={v}" for k, v in (f.get("params") or {}).items())
    text = f"{f['type']} {params}".strip()
    if f["type"] == "exact":
        text += " · recall@10 1"
    elif f.get("recall_at_10") is not None:
        text += f" · recall@10 {f['recall_at_10']:.3f}"
        if f.get("measured_at_count") is not None:
            text += f" (measured at {f['measured_at_count']:,})"
    if f.get("fallback"):
        text += f" (fallback: {f['fallback']})"
    if f.get("memory_bytes") is not None:
        text += f" · {human_bytes(f['memory_bytes'])} in memory"
    if not f.get("current"):
        text += f" · generation {f.get('generation')}, rebuilt by the next query"
    return text


def print_status(c, info: dict, history: bool) -> None:
    """`sbsearch status`: the index line, models, last runs (all columns with --runs), failed files."""
    from rich.table import Table

    per_chunk = f" ({human_bytes(info['size_bytes'] / info['chunks'])} per chunk)" if info["chunks"] else ""
    c.print(f"[bold]index[/bold] {shown(info['index'])} · generation {info['generation']} · "
            f"{human_bytes(info['size_bytes'])}{per_chunk} · vectors stored as {info.get('vector_encoding', 'float32')}")
    c.print(f"documents {info['documents']} ({info['documents_ok']} ok, {info['documents_failed']} failed) · "
            f"chunks {info['chunks']} · default model {shown(info['default_model'])}"
            + (f" ({shown(info['model_reason'])})" if info.get("model_reason") else ""))
    lexical = info.get("lexical")
    if lexical is None:
        c.print("lexical index: missing (made by an older sbsearch; `sbsearch check --repair` adds it)")
    else:
        c.print(f"lexical index ({lexical.get('engine', 'FTS5, BM25')}): {lexical['rows']:,} rows · {human_bytes(lexical['size_bytes'])}")
    t = Table(title="models")
    pgvector = any((m["faiss"] or {}).get("type", "").endswith("(pgvector)") for m in info["models"])
    for col in ("model", "dim", "layers", "vectors", "vector index" if pgvector else "FAISS index"):
        t.add_column(col)
    for m in info["models"]:
        layers = f"{m['layers']} of {m['total_layers']}" if m["layers"] != m["total_layers"] else str(m["layers"])
        t.add_row(cell(m["name"]), str(m["dim"]), layers, f"{m['vectors']}/{info['chunks']}",
                  cell(vector_index_summary(m["faiss"])))
    c.print(t)
    if info["last_runs"]:
        cols = ("started", "ended", "model", "status", "added", "updated", "removed", "unchanged", "failed",
                "seconds", "error") if history else ("started", "model", "status", "added", "updated", "removed",
                                                     "unchanged", "failed", "seconds")
        t = Table(title="indexing runs" if history else "last runs")
        for col in cols:
            t.add_column(col, overflow="fold")
        for r in info["last_runs"]:
            t.add_row(*(cell(r.get(col)) if r.get(col) is not None else "-" for col in cols))
        c.print(t)
    for f in info["failed_files"]:
        c.print(f"  [red]failed[/red] {shown(f['path'])}: {shown(f['error'])}", highlight=False)
    for f in info.get("partly_read_files", []):
        c.print(f"  [yellow]partly read[/yellow] {shown(f['path'])}: {shown(f['warning'])}", highlight=False)


def models_table(rows: list[dict], models_dir):
    from rich.table import Table

    t = Table(title=f"models (pruned models live in {shown(models_dir)})")
    for col in ("name", "kind", "description"):
        t.add_column(col, overflow="fold")
    for r in rows:
        desc = r["description"] or ""
        if r.get("layers"):
            desc = f"{r['layers']} of {r.get('base_layers') or r['layers']} layers. " + desc
        t.add_row(cell(r["name"]), cell(r["kind"]), cell(desc))
    return t


# ------------------------------------------------------------------------------------------ measuring models

def metrics_table(metrics: dict):
    from rich.table import Table

    t = Table(title=f"{shown(metrics['model'])} on {shown(metrics['queries_source'])}")
    for key in metrics:
        t.add_column(key, justify="right")
    t.add_row(*[f"{v:.3f}" if isinstance(v, float) else cell(v) for v in metrics.values()])
    return t


def compare_table(result: dict):
    from rich.table import Table

    from ..model_choice.compare import QUALITY_KEYS

    a, b = result["a"], result["b"]
    ra, rb = result["models"][a], result["models"][b]
    t = Table(title=f"{shown(a)} (A) vs {shown(b)} (B) · {result['chunks']} chunks · {result['queries']['count']} "
                    f"queries ({shown(result['queries']['source'])})")
    t.add_column("metric")
    t.add_column(f"A: {shown(a)}", justify="right")
    t.add_column(f"B: {shown(b)}", justify="right")
    t.add_column("A vs B", justify="right")

    def fmt(v, digits=3):
        if v is None:
            return "-"
        if isinstance(v, float):
            return f"{v:.{digits}f}"
        return f"{v:,}" if isinstance(v, int) else cell(v)

    if "quality" in ra:
        for key in QUALITY_KEYS:
            pct = result["ratios"].get(f"{key} % of B")
            t.add_row(key, fmt(ra["quality"][key]), fmt(rb["quality"][key]), f"{pct:.1f}%" if pct else "-")
    ag = result["agreement"]
    t.add_row("top-10 overlap with B", fmt(ag["overlap@10"]), "", "")
    t.add_row("top-1 agreement with B", fmt(ag["top1_agreement"]), "", "")
    t.add_row("Kendall τ on shared docs", fmt(ag["kendall_tau"]), "", "")
    for key, label, digits in [("query_ms_p50", "query ms p50", 1), ("query_ms_p95", "query ms p95", 1),
                               ("encode_chunks_per_s", "encode chunks/s", 1), ("peak_rss_mb", "peak RSS MB", 0),
                               ("parameters", "parameters", 0), ("disk_mb", "MB on disk", 1), ("layers", "layers", 0)]:
        ratio = result["ratios"].get(f"{key} A/B")
        t.add_row(label, fmt(ra["cost"].get(key), digits), fmt(rb["cost"].get(key), digits),
                  f"{ratio:.2f}x" if ratio else "-")
    return t


def frontier_table(result: dict):
    from rich.table import Table

    t = Table(title=f"{shown(result['quality']['metric'])} vs speed · {result['chunks']} chunks "
                    f"({shown(result['quality']['source'])})")
    for col in ("model", "quality", "encode chunks/s", "query ms p50", "layers", "MB on disk", "frontier"):
        t.add_column(col, justify="left" if col == "model" else "right")
    order = sorted(result["models"], key=lambda n: -result["models"][n]["encode_chunks_per_s"])
    for n in order:
        m = result["models"][n]
        t.add_row(cell(n), f"{m['quality']:.3f}" if m["quality"] < 2 else f"{m['quality']:.1f}",
                  f"{m['encode_chunks_per_s']:.1f}", f"{m['query_ms_p50']:.1f}", str(m.get("layers") or "-"),
                  f"{m['disk_mb']:.1f}", "yes" if n in result["frontier"] else "")
    return t


def tune_lines(result) -> list[str]:
    from ..model_choice.tune import LABEL, _estimate_line

    lines = []
    for c in result.candidates:
        if c.status == "skipped":
            lines.append(f"{c.name}: {c.layers} layers · skipped after {c.train_seconds / 60:.1f} min: {c.reason}")
            continue
        lines.append(f"{c.name}: {c.layers} layers · {LABEL} {_estimate_line(c.estimate)} of {result.reference} · "
                     f"{c.speedup:.2f}x {result.teacher or result.reference}'s speed (fp32) · trained {c.train_seconds / 60:.1f} min · "
                     + ("chosen" if c.name == result.chosen else f"rejected ({c.reason})" if c.passed
                        else f"rejected (lower end below {result.threshold_pct:g}%)"))
    for left in getattr(result, "not_tried", None) or []:
        lines.append(f"{left['layers']} layers: not tried ({left['why']}; fewer layers never estimate higher)")
    if result.int8:
        i8 = result.int8
        lines.append(f"{i8['name']}: " + (f"{LABEL} {_estimate_line(i8['estimate'])} · " if i8.get("estimate") else "")
                     + ("served" if i8["served"] else "not served") + f": {i8['why']}")
    if result.chosen:
        against = result.speedup_against or result.reference
        lines.append(f"default search model of {result.index} is now {result.served} "
                     f"({result.speedup:.2f}x {against}'s encode speed) · tune took {result.seconds / 60:.1f} min"
                     if result.served else "")
    else:
        lines.append(f"no candidate kept {result.threshold_pct:g}% of {result.reference} (the lower end of its "
                     f"{result.interval_level:g}% interval); the index keeps its default model (try more layers "
                     "with --layers, or a lower --keep)")
    return [visible(ln) for ln in lines if ln]
