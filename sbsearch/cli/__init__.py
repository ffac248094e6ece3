"""The `sbsearch` command: parses options, calls sbsearch.app, renders what it returns.

One module per command group; heavy imports (torch, sentence-transformers, faiss) happen inside
the commands that need them, so `sbsearch --help` and `sbsearch status` start fast.
"""

from __future__ import annotations

import click

from .. import __version__
from .common import SbsearchGroup
from .indexing import check, index, migrate, watch
from .info import models, status
from .measure import compare, eval_, frontier, tune
from .prune import prune
from .query import query
from .serve import serve, tokens, users


QUICK_START = """sbsearch: semantic search over your own documents, on a CPU (every command: sbsearch --help)
  sbsearch index DIR               index a folder (run it again later: only what changed)
  sbsearch query "a question"      search it, by words and by meaning
  sbsearch tune --keep 97          a lighter model for these documents, found without labels
  sbsearch serve                   the search page on http://127.0.0.1:8080 (users: sbsearch users add)"""


@click.group(cls=SbsearchGroup, invoke_without_command=True)
@click.version_option(__version__, prog_name="sbsearch")
@click.pass_context
def cli(ctx):
    """Semantic search over your own documents, with layer-pruned Sentence-BERT models on a CPU."""
    if ctx.invoked_subcommand is None:  # a first `sbsearch` says where to start, not the full help
        click.echo(QUICK_START)


for command in (index, watch, migrate, query, status, check, models, compare, frontier, eval_, prune, tune, serve, users,
                tokens):
    cli.add_command(command)
