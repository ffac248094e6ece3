"""Commands that measure and choose models: compare, frontier, eval, tune."""

from __future__ import annotations

import sys
from pathlib import Path

import click

from ..errors import SbsearchError
from ..textsafe import visible
from .common import (console, echo_json, index_option, json_option, mode_option, model_option, progress_for,
                     quiet_option, shown)


@click.command()
@click.argument("paths", nargs=-1, type=click.Path(path_type=Path))
@click.option("--a", "model_a", envvar="SBSEARCH_MODEL", default=None,
              help="Model A, usually the pruned one, as MODEL or MODEL:MODE (e.g. minilm:hybrid) "
                   "[default: the index's search model].")
@click.option("--b", "model_b", default="full", show_default=True,
              help="Model B, the reference, as MODEL or MODEL:MODE (e.g. full:vector). Without :MODE a side "
                   "searches in the default mode (hybrid).")
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
    """Compare two models (or two search modes) side by side: quality, agreement, latency, throughput,
    memory, size.

    PATHS (optional) are indexed with both models first; otherwise the existing index is used."""
    from .. import app
    from .render import compare_table

    result = app.compare(model_a, model_b, queries, list(paths), index_path, chart, measure_memory=not no_memory,
                         latency_queries=latency_queries, throughput_chunks=throughput_chunks,
                         progress=progress_for(quiet or as_json))
    if as_json:
        echo_json(result)
        return
    c = console()
    c.print(compare_table(result))
    h = result["headline"]
    c.print(f"{shown(result['a'])}: {shown(h['quality_metric'])} {h['quality_pct']:.1f}% of {shown(result['b'])}"
            + (f", encodes {h['speedup']:.2f}x as fast" if h.get("speedup") else ""))
    c.print(f"chart: {shown(result['chart'])}", soft_wrap=True)  # a path is not cut into lines
    est = result.get("tune_estimate")
    if est:
        lo, hi = est.get("interval_pct") or (est["estimate_pct"], est["estimate_pct"])
        c.print(f"without labels, tune estimated {shown(result['a'])} at {est['estimate_pct']:.1f}% "
                f"({lo:.1f}–{hi:.1f}%) of {shown(est['judge'])}'s nDCG@10 ({est['created'][:10]})")


@click.command()
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
    from .. import app
    from .render import frontier_table

    names = [m.strip() for m in models_.split(",") if m.strip()] if models_ else None
    result = app.frontier(names, queries, reference, index_path, chart, progress=progress_for(quiet or as_json))
    if as_json:
        echo_json(result)
        return
    c = console()
    c.print(frontier_table(result))
    c.print(f"frontier: {shown(', '.join(result['frontier']))} · chart: {shown(result['chart'])}")


@click.command(name="eval")
@click.option("--queries", required=True, type=click.Path(exists=True, path_type=Path),
              help="JSONL with query/relevant, or a BEIR folder.")
@click.argument("paths", nargs=-1, type=click.Path(path_type=Path))
@index_option
@model_option
@mode_option
@json_option
@quiet_option
def eval_(queries, paths, index_path, model, mode, as_json, quiet):
    """Retrieval quality of one model: recall@1/5/10, MRR@10, nDCG@10."""
    from .. import app

    metrics = app.evaluate(queries, list(paths), index_path, model, progress=progress_for(quiet or as_json), mode=mode)
    if as_json:
        echo_json(metrics)
        return
    from .render import metrics_table

    console().print(metrics_table(metrics))


def parse_layer_counts(value: str | None) -> list[int] | None:
    if not value:
        return None
    try:
        return [int(v) for v in value.replace(",", " ").split()]
    except ValueError:
        raise SbsearchError(f"--layers takes layer counts such as 2,3,4 (got {value!r})") from None


@click.command()
@index_option
@click.option("--reference", default=None,
              help="Model whose quality to keep (the judge; its fp32 form is cut) [default: the index's search model].")
@click.option("--keep", "keep_pct", type=float, default=97.0, show_default=True,
              help="Share of the reference's quality to keep, in percent (the lower end of the label-free "
                   "estimate's 90% interval).")
@click.option("--layers", "layers_", default=None,
              help="Layer counts to choose among [default: a third, half and two thirds of the reference's].")
@click.option("--recipe", type=click.Choice(["best", "best-e5", "best-long"]), default=None,
              help="Recovery recipe (see `sbsearch prune --help`) [default: the one measured on the reference's "
                   "model: best-e5 for e5-small and its cuts, else best].")
@click.option("--distil-limit", type=click.IntRange(1), default=None,
              help="At most this many sentences of the index's chunks for distillation [default: the recipe's].")
@click.option("--name", "prefix", default=None, help="Name stem of the new models [default: REFERENCE-tuned].")
@click.option("--queries", "n_queries", type=click.IntRange(10, 5000), default=200, show_default=True,
              help="Pseudo-queries drawn from the documents for the estimate.")
@click.option("--no-default", is_flag=True, help="Do not make the chosen model the index's default.")
@click.option("--exhaustive", is_flag=True,
              help="Try the layer counts fewest first, one by one, and recover each fully, instead of bisecting "
                   "and skipping those a probe a quarter of the way through their recovery finds hopeless.")
@click.option("--fp32", "fp32_only", is_flag=True,
              help="Serve the chosen model in fp32 without trying its int8 variant.")
@click.option("--int8-max-loss", type=click.FloatRange(0), default=0.5, show_default=True,
              help="Points the chosen model's int8 variant may lose, judged against the fp32 model itself, "
                   "and still be served (no torch at query time).")
@click.option("--force", is_flag=True, help="Replace models of the same names.")
@json_option
@quiet_option
def tune(index_path, reference, keep_pct, layers_, recipe, distil_limit, prefix, n_queries, no_default, exhaustive,
         fp32_only, int8_max_loss, force, as_json, quiet):
    """Build the fastest model that keeps --keep % of the reference's quality on this index's own
    documents, without labels; index with it and make it (or its int8 variant, when that measures
    as good) the default search model.

    A candidate passes when the lower end of its estimate's 90% interval (a bootstrap over the
    pseudo-queries) reaches --keep."""
    from .. import app
    from .render import tune_lines

    say = (lambda s: None) if (quiet or as_json) else (lambda s: click.echo(visible(s), err=True))
    result = app.tune(index_path, reference=reference, keep_pct=keep_pct, layer_counts=parse_layer_counts(layers_),
                      recipe=recipe, distil_limit=distil_limit, prefix=prefix, n_queries=n_queries,
                      set_default=not no_default, force=force, exhaustive=exhaustive, int8=not fp32_only,
                      int8_max_loss=int8_max_loss, say=say,
                      progress=None if (quiet or as_json) else progress_for(quiet))
    if as_json:
        echo_json(result.as_dict())
    else:
        for line in tune_lines(result):
            click.echo(line)
    if result.chosen is None:
        sys.exit(3)
