"""Commands that describe: status (the index), models (what can be used offline)."""

from __future__ import annotations

import click

from .common import console, echo_json, index_option, json_option


@click.command()
@index_option
@click.option("--runs", "n_runs", type=int, default=None, help="Show the history of the last N indexing runs.")
@json_option
def status(index_path, n_runs, as_json):
    """What the index holds: documents, chunks, vectors per model, last runs, failed files."""
    from .. import app

    info = app.status(index_path, runs=n_runs or 5)
    if as_json:
        echo_json(info)
        return
    from .render import print_status

    print_status(console(), info, history=bool(n_runs))


@click.command()
@click.option("--build", "build", multiple=True, metavar="NAME",
              help="Make NAME ready now (assemble, convert or export it into the cache) rather than on first "
                   "use; repeatable. scripts/setup.sh builds the default model and full-onnx.")
@json_option
def models(build, as_json):
    """Models available offline, with the headline numbers of pruned models' cards."""
    from .. import app, config

    if build:
        built = app.build_models(list(build))
        if as_json:
            echo_json(built)
        for row in [] if as_json else built:
            click.echo(f"{row['name']}: ready ({row['seconds']:g} s) in {row['path']}")
        return
    rows = app.models()
    if as_json:
        echo_json(rows)
        return
    from .render import models_table

    c = console()
    c.print(models_table(rows, config.models_dir()))
    c.print("Any model name + '-int8' (e.g. minilm-int8) is its int8 ONNX variant, + '-onnx' (e.g. full-onnx) "
            "the same model in fp32 on ONNX Runtime; each is built on first use, or by `sbsearch models --build NAME`.")
