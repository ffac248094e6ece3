"""The query command."""

from __future__ import annotations

from pathlib import Path

import click

from .common import console, filter_options, index_option, json_option, mode_option, model_option, shown


@click.command()
@click.argument("text", required=False)
@index_option
@model_option
@mode_option
@filter_options
@click.option("-k", "--top", "k", default=5, show_default=True, type=click.IntRange(1, 1000), help="Results to show.")
@click.option("--queries", "queries_file", type=click.Path(path_type=Path),
              help="Answer every query of a file (text lines or JSONL with query/id) as JSON lines.")
@click.option("--compare", "compare_model", is_flag=False, flag_value="full", default=None,
              help="Also answer with another model (default: full) and show both lists side by side.")
@click.option("--as", "as_user", default=None, metavar="USER",
              help="Show only what USER may read (access rules); without it the CLI, run by the server's "
                   "admin, sees every document.")
@json_option
def query(text, index_path, model, mode, paths, types, folders, modified_after, k, queries_file, compare_model,
          as_user, as_json):
    """Search the index with a natural-language question, keywords or an identifier."""
    from .. import app
    from ..index.filters import DocumentFilter
    from .render import footer, print_json_lines, results_list, side_by_side

    doc_filter = app.search_filter(paths, types, folders, modified_after)
    if as_user is not None:
        doc_filter = (doc_filter or DocumentFilter()).for_reader(app.user_groups(index_path, as_user))
    if queries_file is not None:
        for qid, q, results in app.search_file(queries_file, index_path, model, k, mode, doc_filter):
            print_json_lines(results, q, qid)
        return
    answer = app.search(text, index_path, model, k, compare_model=None if as_json else compare_model, mode=mode,
                        doc_filter=doc_filter)
    if as_json:
        print_json_lines(answer.results, text)
        return
    c = console()
    if answer.other_results is not None:
        c.print(side_by_side(answer.results, answer.other_results, answer.model, answer.other_model, text))
    c.print(results_list(answer.results, text), crop=False)  # a long path or section stays whole
    if not answer.results and doc_filter is not None:
        c.print("no document passes the filter", highlight=False)
    c.print(shown(footer(answer)), highlight=False, soft_wrap=True)  # one line in a log; a terminal wraps it
