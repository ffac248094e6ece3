"""The `sbsearch` command: a thin click layer over the library.

Heavy imports (torch, sentence-transformers, faiss) happen inside the commands that need them,
so `sbsearch --help` and `sbsearch status` start fast.
"""

from __future__ import annotations

import json
import sqlite3
import sys
from pathlib import Path

import click

from . import __version__, config
from .errors import SbsearchError


class SbsearchGroup(click.Group):
    """Turns library errors into one line and a non-zero exit, never a traceback."""

    def invoke(self, ctx):
        try:
            return super().invoke(ctx)
        except SbsearchError as exc:
            raise click.ClickException(str(exc)) from None
        except KeyboardInterrupt:
            click.echo("Interrupted; the index keeps its last complete state.", err=True)
            sys.exit(130)
        except sqlite3.DatabaseError as exc:
            raise click.ClickException(f"index database error: {exc} (disk full, read-only or damaged?); "
                                       "the previous index state is kept") from None
        except MemoryError:
            raise click.ClickException("out of memory") from None
        except OSError as exc:
            if exc.errno == 28:  # ENOSPC
                raise click.ClickException(f"disk full while writing {exc.filename or 'the index'}; "
                                           "the previous index state is intact") from None
            if exc.errno in (13, 30):  # EACCES, EROFS
                raise click.ClickException(f"cannot write {exc.filename or 'the index'}: {exc.strerror}") from None
            raise


def index_option(f):
    return click.option("-i", "--index", "index_path", type=click.Path(path_type=Path), envvar="SBSEARCH_INDEX",
                        default=None, help="Index directory [env SBSEARCH_INDEX; default indexes/default].")(f)


def model_option(f):
    return click.option("-m", "--model", envvar="SBSEARCH_MODEL", default=None,
                        help="Model name (full, minilm, a pruned model) or directory [env SBSEARCH_MODEL; "
                             "default: the index's search model].")(f)


def json_option(f):
    return click.option("--json", "as_json", is_flag=True, help="Machine-readable JSON output.")(f)


def quiet_option(f):
    return click.option("-q", "--quiet", is_flag=True, help="No progress output.")(f)


def _index_path(index_path: Path | None) -> Path:
    return index_path if index_path is not None else config.default_index_path()


def _progress(quiet: bool):
    from .progress import NullProgress, RichProgress

    if quiet or not sys.stderr.isatty():
        return NullProgress()
    return RichProgress()


def _console():
    from rich.console import Console

    return Console()


@click.group(cls=SbsearchGroup)
@click.version_option(__version__, prog_name="sbsearch")
def cli():
    """Semantic search over your own documents, with layer-pruned Sentence-BERT models on a CPU."""


# ------------------------------------------------------------------------------------------ index

@cli.command()
@click.argument("paths", nargs=-1, required=True, type=click.Path(path_type=Path))
@index_option
@model_option
@click.option("--reembed", is_flag=True, help="Drop this model's vectors and embed everything again.")
@click.option("--set-default", is_flag=True, help="Make this model the index's default search model.")
@click.option("--wait", is_flag=True, help="If another process is writing to the index, wait for it.")
@click.option("--max-file-mb", type=click.FloatRange(min=0, min_open=True), default=32, show_default=True,
              help="Larger files are reported and not read.")
@json_option
@quiet_option
def index(paths, index_path, model, reembed, set_default, wait, max_file_mb, as_json, quiet):
    """Index files and folders; re-running it only re-embeds what changed and removes deleted files."""
    from .indexer import Indexer

    indexer = Indexer(_index_path(index_path), model, progress=_progress(quiet or as_json), max_file_mb=max_file_mb)
    summary = indexer.run(list(paths), reembed=reembed, wait=wait)
    if set_default:
        indexer.store.set_meta("default_model", indexer.model_name)
    if as_json:
        click.echo(json.dumps(summary.as_dict(), indent=2))
        return
    c = _console()
    c.print(
        f"[bold]{summary.model}[/bold] → {summary.index}: "
        f"[green]{summary.added} added[/green], {summary.updated} updated, {summary.removed} removed, "
        f"{summary.unchanged} unchanged, [red]{summary.failed} failed[/red], {summary.skipped} skipped · "
        f"{summary.chunks_embedded} chunks embedded, {summary.chunks_reused} reused, "
        f"{summary.chunks_total} in index · {summary.seconds:.1f}s"
    )
    for f in summary.failures:
        c.print(f"  [red]failed[/red] {f['path']}: {f['error']}", highlight=False)
    for f in summary.skipped_files[:20]:
        c.print(f"  [dim]skipped {f['path']}: {f['error']}[/dim]", highlight=False)
    if len(summary.skipped_files) > 20:
        c.print(f"  [dim]… and {len(summary.skipped_files) - 20} more skipped[/dim]")


def _parse_interval(text: str) -> float:
    import re

    m = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*([smhd]?)\s*", text)
    if not m:
        raise SbsearchError(f"cannot read interval {text!r}: use e.g. 30s, 15m, 2h")
    seconds = float(m.group(1)) * {"": 1, "s": 1, "m": 60, "h": 3600, "d": 86400}[m.group(2)]
    if seconds <= 0:
        raise SbsearchError("the interval must be positive")
    return seconds


@cli.command()
@click.argument("paths", nargs=-1, required=True, type=click.Path(path_type=Path))
@index_option
@model_option
@click.option("--every", default="15m", show_default=True, help="Time between runs: 30s, 15m, 2h …")
@click.option("--max-runs", type=int, default=0, help="Stop after this many runs (0: run until stopped).")
@quiet_option
def watch(paths, index_path, model, every, max_runs, quiet):
    """Re-index PATHS on a schedule, in the foreground; Ctrl-C or SIGTERM stops cleanly."""
    import signal
    import time

    from .indexer import Indexer

    interval = _parse_interval(every)

    def on_term(signum, frame):
        raise KeyboardInterrupt  # same path as Ctrl-C: the current run's transaction rolls back

    signal.signal(signal.SIGTERM, on_term)
    indexer = Indexer(_index_path(index_path), model, progress=_progress(quiet))
    runs = 0
    c = _console()
    try:
        while True:
            started = time.monotonic()
            try:
                s = indexer.run(list(paths), wait=True)
                c.print(f"{time.strftime('%H:%M:%S')} {s.added} added, {s.updated} updated, {s.removed} removed, "
                        f"{s.unchanged} unchanged, {s.failed} failed · {s.seconds:.1f}s", highlight=False)
            except SbsearchError as exc:  # e.g. a folder briefly missing: report, keep watching
                c.print(f"{time.strftime('%H:%M:%S')} run failed: {exc}", highlight=False)
            runs += 1
            if max_runs and runs >= max_runs:
                return
            time.sleep(max(0.0, interval - (time.monotonic() - started)))
    except KeyboardInterrupt:
        c.print("stopped; the index keeps its last complete state")


# ------------------------------------------------------------------------------------------ query

def _read_queries(path: Path) -> list[tuple[str | None, str]]:
    """Text lines, or JSONL objects with "query" and optional "id"."""
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError) as exc:
        raise SbsearchError(f"cannot read queries file {path}: {getattr(exc, 'strerror', None) or exc}") from None
    out = []
    for n, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        if line.lstrip().startswith("{"):
            try:
                obj = json.loads(line)
                text = obj["query"]
            except (ValueError, KeyError, TypeError):
                raise SbsearchError(f"{path}:{n}: expected a JSON object with a \"query\" field") from None
            qid = obj.get("id")
            out.append((str(qid) if qid is not None else None, str(text)))
        else:
            out.append((None, line.strip()))
    if not out:
        raise SbsearchError(f"no queries in {path}")
    return out


@cli.command()
@click.argument("text", required=False)
@index_option
@model_option
@click.option("-k", "--top", "k", default=5, show_default=True, type=click.IntRange(1, 1000), help="Results to show.")
@click.option("--queries", "queries_file", type=click.Path(path_type=Path),
              help="Answer every query of a file (text lines or JSONL with query/id) as JSON lines.")
@click.option("--compare", "compare_model", is_flag=False, flag_value="full", default=None,
              help="Also answer with another model (default: full) and show both lists side by side.")
@json_option
def query(text, index_path, model, k, queries_file, compare_model, as_json):
    """Search the index with a natural-language question."""
    from .render import print_json_lines, results_table, side_by_side
    from .report import footer
    from .search import Searcher

    if queries_file is None and (text is None or not text.strip()):
        raise SbsearchError("empty query: give a question, or --queries FILE")
    queries = _read_queries(queries_file) if queries_file is not None else None
    searcher = Searcher(_index_path(index_path), model)
    if queries is not None:
        results = searcher.search_many([q for _, q in queries], k)
        for (qid, q), res in zip(queries, results):
            print_json_lines(res, q, qid)
        return
    results = searcher.search(text, k)
    if as_json:
        print_json_lines(results, text)
        return
    c = _console()
    other = None
    if compare_model:
        other = Searcher(_index_path(index_path), compare_model).search(text, k)
        c.print(side_by_side(results, other, searcher.model_name, compare_model, text))
    c.print(results_table(results, text))
    c.print(footer(searcher, results, other, compare_model), highlight=False)


# ------------------------------------------------------------------------------------------ status

@cli.command()
@index_option
@click.option("--runs", "n_runs", type=int, default=None, help="Show the history of the last N indexing runs.")
@json_option
def status(index_path, n_runs, as_json):
    """What the index holds: documents, chunks, vectors per model, last runs, failed files."""
    from .store import Store
    from .vectorindex import describe  # reads the FAISS meta JSON; imports no FAISS

    store = Store(_index_path(index_path))
    info = store.summary(runs=n_runs or 5)
    for m in info["models"]:
        m["faiss"] = describe(store, m["name"])
    if as_json:
        click.echo(json.dumps(info, indent=2, default=str))
        return
    from rich.table import Table

    from .render import human_bytes

    c = _console()
    c.print(f"[bold]index[/bold] {info['index']} · generation {info['generation']} · {human_bytes(info['size_bytes'])}")
    c.print(f"documents {info['documents']} ({info['documents_ok']} ok, {info['documents_failed']} failed) · "
            f"chunks {info['chunks']} · default model {info['default_model']}")
    t = Table(title="models")
    for col in ("model", "dim", "layers", "vectors", "FAISS index"):
        t.add_column(col)
    for m in info["models"]:
        layers = f"{m['layers']} of {m['total_layers']}" if m["layers"] != m["total_layers"] else str(m["layers"])
        t.add_row(m["name"], str(m["dim"]), layers, f"{m['vectors']}/{info['chunks']}", _faiss_summary(m["faiss"]))
    c.print(t)
    if info["last_runs"]:
        cols = ("started", "ended", "model", "status", "added", "updated", "removed", "unchanged", "failed",
                "seconds", "error") if n_runs else ("started", "model", "status", "added", "updated", "removed",
                                                    "unchanged", "failed", "seconds")
        t = Table(title="indexing runs" if n_runs else "last runs")
        for col in cols:
            t.add_column(col, overflow="fold")
        for r in info["last_runs"]:
            t.add_row(*(str(r.get(col)) if r.get(col) is not None else "-" for col in cols))
        c.print(t)
    for f in info["failed_files"]:
        c.print(f"  [red]failed[/red] {f['path']}: {f['error']}", highlight=False)


def _faiss_summary(f: dict | None) -> str:
    """e.g. "ivf nlist=316 nprobe=8 · recall@10 0.995 (measured at 100,000)"."""
    if not f:
        return "not built yet"
    params = " ".join(f"{k}={v}" for k, v in (f.get("params") or {}).items())
    text = f"{f['type']} {params}".strip()
    if f["type"] == "exact":
        text += " · recall@10 1"
        if f.get("fallback"):
            text += f" (fallback: {f['fallback']})"
    elif f.get("recall_at_10") is not None:
        text += f" · recall@10 {f['recall_at_10']:.3f}"
        if f.get("measured_at_count") is not None:
            text += f" (measured at {f['measured_at_count']:,})"
    if not f.get("current"):
        text += f" · generation {f.get('generation')}, rebuilt by the next query"
    return text


@cli.command()
@index_option
@click.option("--repair", is_flag=True, help="Rebuild the derived FAISS files from SQLite.")
@json_option
def check(index_path, repair, as_json):
    """Verify the index: SQLite integrity, FAISS agrees with SQLite, every chunk has vectors, model hashes."""
    from .maintenance import check as run_check

    report = run_check(_index_path(index_path), repair=repair)
    if as_json:
        click.echo(json.dumps(report, indent=2))
    else:
        c = _console()
        for m in report["models"]:
            c.print(f"{m['model']}: {m['vectors']}/{m['chunks']} vectors · FAISS {m['faiss']} "
                    f"({_faiss_summary(m.get('faiss_index'))}) · weights {m.get('weights', '-')}", highlight=False)
        for line in report["repaired"]:
            c.print(f"[green]repaired[/green] {line}", highlight=False)
        for line in report["problems"]:
            c.print(f"[red]problem[/red] {line}", highlight=False)
        c.print("index OK" if report["ok"] else f"{len(report['problems'])} problem(s)")
    if not report["ok"]:
        sys.exit(1)


# ------------------------------------------------------------------------------------------ models

@cli.command()
@json_option
def models(as_json):
    """Models available offline, with the headline numbers of pruned models' cards."""
    from .models import BUILTIN, list_local_names, resolve

    rows = [{"name": n, "kind": "builtin", "description": d} for n, d in BUILTIN.items()]
    for name in list_local_names():
        info = resolve(name)
        metrics = info.card.get("metrics", {})
        rows.append({"name": name, "kind": "pruned" if info.card else "local", "description": info.description,
                     "layers": info.layers, "base_layers": info.card.get("base_layers"), "metrics": metrics,
                     "path": str(info.path)})
    if as_json:
        click.echo(json.dumps(rows, indent=2))
        return
    from rich.table import Table

    t = Table(title=f"models (pruned models live in {config.models_dir()})")
    for col in ("name", "kind", "description"):
        t.add_column(col, overflow="fold")
    for r in rows:
        desc = r["description"] or ""
        if r.get("layers"):
            desc = f"{r['layers']} of {r.get('base_layers') or r['layers']} layers. " + desc
        t.add_row(r["name"], r["kind"], desc)
    c = _console()
    c.print(t)
    c.print("Any model name + '-int8' (e.g. minilm-int8) is its int8 ONNX variant, built on first use.")


# ------------------------------------------------------------------------------------------ compare / eval

def _query_set(queries):
    from .evaluation import load_query_set

    return load_query_set(queries) if queries is not None else None


def _beir_roots(queries, paths, index_path: Path):
    """A BEIR folder brings its own corpus: materialise it beside the index and index that."""
    from .evaluation import beir_corpus_folder

    if queries is not None and Path(queries).is_dir() and not paths:
        return [beir_corpus_folder(Path(queries), index_path / "beir-corpus" / Path(queries).name)]
    return list(paths)


@cli.command()
@click.argument("paths", nargs=-1, type=click.Path(path_type=Path))
@click.option("--a", "model_a", envvar="SBSEARCH_MODEL", default=None,
              help="Model A, usually the pruned one [default: the index's search model].")
@click.option("--b", "model_b", default="full", show_default=True, help="Model B, the reference.")
@click.option("--queries", type=click.Path(exists=True, path_type=Path),
              help="JSONL with query/relevant (paths relative to the indexed folder), or a BEIR folder. "
                   "Without it, the index's section headings serve as unlabelled queries.")
@index_option
@click.option("--chart", type=click.Path(path_type=Path), help="Where to write the PNG chart "
              "[default: compare-A-vs-B.png in the index folder].")
@click.option("--no-memory", is_flag=True, help="Skip the per-model peak-memory probe (two extra model loads).")
@click.option("--latency-queries", type=click.IntRange(1), default=30, show_default=True,
              help="Queries timed one at a time (each timed 3 times per model).")
@click.option("--throughput-chunks", type=click.IntRange(1), default=128, show_default=True,
              help="Chunks of the index encoded to time throughput (3 times per model).")
@json_option
@quiet_option
def compare(paths, model_a, model_b, queries, index_path, chart, no_memory, latency_queries, throughput_chunks,
            as_json, quiet):
    """Compare two models side by side: quality, agreement, latency, throughput, memory, size.

    PATHS (optional) are indexed with both models first; otherwise the existing index is used."""
    from .compare import compare as run_compare, result_table, write_chart
    from .search import model_for_index
    from .store import Store, model_key

    index_path = _index_path(index_path)
    qs = _query_set(queries)
    roots = _beir_roots(queries, paths, index_path)
    if model_a is None:
        model_a = model_for_index(Store(index_path), None) if (index_path / "index.db").exists() else None
        if model_a is None:
            raise SbsearchError("name model A with --a")
    result = run_compare(index_path, model_a, model_b, qs, roots, progress=_progress(quiet or as_json),
                         measure_memory=not no_memory, latency_queries=latency_queries,
                         throughput_chunks=throughput_chunks)
    chart = chart or index_path / f"compare-{model_key(model_a)}-vs-{model_key(model_b)}.png"
    result["chart"] = str(write_chart(result, chart))
    if as_json:
        click.echo(json.dumps(result, indent=2))
        return
    c = _console()
    c.print(result_table(result))
    h = result["headline"]
    c.print(f"{model_a}: {h['quality_metric']} {h['quality_pct']:.1f}% of {model_b}"
            + (f", encodes {h['speedup']:.2f}x as fast" if h.get("speedup") else "") + f" · chart: {chart}")


@cli.command()
@click.option("--models", "models_", default=None,
              help="Comma-separated models to place [default: every model with vectors in the index]; "
                   "models without vectors are embedded first.")
@click.option("--queries", type=click.Path(exists=True, path_type=Path),
              help="JSONL with query/relevant: quality is nDCG@10. Without it: the label-free estimate.")
@click.option("--reference", default=None,
              help="Without --queries: the model the others are judged against [default: the largest].")
@click.option("--chart", type=click.Path(path_type=Path), help="PNG [default: frontier.png in the index folder].")
@index_option
@json_option
@quiet_option
def frontier(models_, queries, reference, chart, index_path, as_json, quiet):
    """Quality against speed for several models on this index, with the frontier marked."""
    from .frontier import frontier as run_frontier, result_table, write_chart

    index_path = _index_path(index_path)
    names = [m.strip() for m in models_.split(",") if m.strip()] if models_ else None
    result = run_frontier(index_path, names, _query_set(queries), reference, progress=_progress(quiet or as_json))
    result["chart"] = str(write_chart(result, chart or index_path / "frontier.png"))
    if as_json:
        click.echo(json.dumps(result, indent=2))
        return
    c = _console()
    c.print(result_table(result))
    c.print(f"frontier: {', '.join(result['frontier'])} · chart: {result['chart']}")


@cli.command(name="eval")
@click.option("--queries", required=True, type=click.Path(exists=True, path_type=Path),
              help="JSONL with query/relevant, or a BEIR folder.")
@click.argument("paths", nargs=-1, type=click.Path(path_type=Path))
@index_option
@model_option
@json_option
@quiet_option
def eval_(queries, paths, index_path, model, as_json, quiet):
    """Retrieval quality of one model: recall@1/5/10, MRR@10, nDCG@10."""
    from .evaluation import evaluate
    from .indexer import Indexer
    from .search import Searcher

    index_path = _index_path(index_path)
    qs = _query_set(queries)
    roots = _beir_roots(queries, paths, index_path)
    if roots:
        Indexer(index_path, model, progress=_progress(quiet or as_json)).run(roots)
    searcher = Searcher(index_path, model)
    metrics = evaluate(searcher, qs)
    metrics = {"model": searcher.model_name, "queries_source": qs.source, **metrics}
    if as_json:
        click.echo(json.dumps(metrics, indent=2))
        return
    from rich.table import Table

    t = Table(title=f"{searcher.model_name} on {qs.source}")
    for key in metrics:
        t.add_column(key, justify="right")
    t.add_row(*[f"{v:.3f}" if isinstance(v, float) else str(v) for v in metrics.values()])
    _console().print(t)


from .cli_prune import prune  # noqa: E402 - lives in its own module; imports torch only when run

cli.add_command(prune)


# ------------------------------------------------------------------------------------------ tune

def _layer_counts(value: str | None) -> list[int] | None:
    if not value:
        return None
    try:
        return [int(v) for v in value.replace(",", " ").split()]
    except ValueError:
        raise SbsearchError(f"--layers takes layer counts such as 2,3,4 (got {value!r})") from None


@cli.command()
@index_option
@click.option("--reference", default=None, help="Model whose quality to keep [default: the index's search model].")
@click.option("--keep", "keep_pct", type=float, default=97.0, show_default=True,
              help="Share of the reference's quality to keep, in percent (label-free estimate).")
@click.option("--layers", "layers_", default=None,
              help="Layer counts to try, fewest first [default: a third, half and two thirds of the reference's].")
@click.option("--recipe", type=click.Choice(["best", "best-long"]), default="best", show_default=True,
              help="Recovery recipe (see `sbsearch prune --help`).")
@click.option("--distil-limit", type=click.IntRange(1), default=None,
              help="At most this many sentences of the index's chunks for distillation [default: the recipe's].")
@click.option("--name", "prefix", default=None, help="Name stem of the new models [default: REFERENCE-tuned].")
@click.option("--queries", "n_queries", type=click.IntRange(10, 5000), default=200, show_default=True,
              help="Pseudo-queries drawn from the documents for the estimate.")
@click.option("--no-default", is_flag=True, help="Do not make the chosen model the index's default.")
@click.option("--force", is_flag=True, help="Replace models of the same names.")
@json_option
@quiet_option
def tune(index_path, reference, keep_pct, layers_, recipe, distil_limit, prefix, n_queries, no_default, force,
         as_json, quiet):
    """Build the fastest model that keeps --keep % of the reference's quality on this index's own
    documents, without labels; index with it and make it the default search model."""
    from . import tune as tune_mod

    say = (lambda s: None) if (quiet or as_json) else (lambda s: click.echo(s, err=True))
    result = tune_mod.tune(_index_path(index_path), reference, keep_pct, _layer_counts(layers_), recipe,
                           distil_limit, prefix, n_queries, not no_default, force, say=say,
                           progress=None if (quiet or as_json) else _progress(quiet))
    if as_json:
        click.echo(tune_mod.to_json(result))
    else:
        for line in tune_mod.result_lines(result):
            click.echo(line)
    if result.chosen is None:
        sys.exit(3)


def main():  # pragma: no cover - console entry point
    cli()
