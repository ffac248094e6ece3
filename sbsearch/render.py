"""Terminal and JSON rendering of results and summaries (rich is imported lazily)."""

from __future__ import annotations

import json
import re

from .search import Result

_STOP = set("""a an and are as at be by can do does for from how i if in is it me my of on or our so that the
this to was we what when where which who why will with you your""".split())


def query_terms(query: str) -> list[str]:
    return [w for w in re.findall(r"\w+", query.lower()) if len(w) > 2 and w not in _STOP]


def snippet(text: str, query: str, width: int = 260) -> str:
    """A window of the chunk around the first query word found, on one line."""
    flat = " ".join(text.split())
    if len(flat) <= width:
        return flat
    low = flat.lower()
    hits = [low.find(t) for t in query_terms(query) if low.find(t) >= 0]
    centre = min(hits) if hits else 0
    start = max(0, min(centre - width // 3, len(flat) - width))
    out = flat[start:start + width]
    return ("…" if start else "") + out + ("…" if start + width < len(flat) else "")


def result_json(result: Result, query: str, query_id: str | None = None) -> dict:
    row = {"query": query, "rank": result.rank, "score": round(result.score, 6), "path": result.display_path(),
           "page": result.page, "heading": result.heading, "text": result.text}
    if query_id is not None:
        row["query_id"] = query_id
    return row


def print_json_lines(results: list[Result], query: str, query_id: str | None = None, out=None) -> None:
    import sys

    out = out or sys.stdout
    for r in results:
        out.write(json.dumps(result_json(r, query, query_id), ensure_ascii=False) + "\n")


def results_table(results: list[Result], query: str, title: str | None = None):
    from rich.table import Table
    from rich.text import Text

    table = Table(title=title, show_lines=False, expand=True)
    table.add_column("#", justify="right", no_wrap=True)
    table.add_column("score", justify="right", no_wrap=True)
    table.add_column("source", overflow="fold", ratio=3, min_width=18)
    table.add_column("section", overflow="fold", ratio=2, min_width=10)
    table.add_column("snippet", ratio=6)
    terms = query_terms(query)
    for r in results:
        source = r.display_path() + (f" p.{r.page}" if r.page else "")
        snip = Text(snippet(r.text, query))
        if terms:
            snip.highlight_words(terms, style="bold yellow", case_sensitive=False)
        heading = (r.heading or "").split(" > ")[-1]
        table.add_row(str(r.rank), f"{r.score:.2f}", source, heading, snip)
    return table


def side_by_side(a: list[Result], b: list[Result], name_a: str, name_b: str, query: str):
    """Two result lists next to each other; rows whose document the other list also has are marked."""
    from rich.table import Table

    paths_a = {r.path for r in a}
    paths_b = {r.path for r in b}
    table = Table(title=f"{name_a} vs {name_b}", expand=True)
    table.add_column("#", justify="right")
    table.add_column(name_a, ratio=1, overflow="fold")
    table.add_column(name_b, ratio=1, overflow="fold")
    for i in range(max(len(a), len(b))):
        def cell(rs, others, i=i):
            if i >= len(rs):
                return ""
            r = rs[i]
            mark = "[green]=[/green] " if r.path in others else "  "
            return f"{mark}{r.score:.2f} {r.display_path()}" + (f" p.{r.page}" if r.page else "")
        table.add_row(str(i + 1), cell(a, paths_b), cell(b, paths_a))
    return table


def human_bytes(n: int | float | None) -> str:
    if n is None:
        return "-"
    for unit in ("B", "KB", "MB", "GB"):
        if abs(n) < 1024 or unit == "GB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return str(n)
