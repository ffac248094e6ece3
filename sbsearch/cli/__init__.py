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


@click.group(cls=SbsearchGroup)
@click.version_option(__version__, prog_name="sbsearch")
def cli():
    """Semantic search over your own documents, with layer-pruned Sentence-BERT models on a CPU."""


for command in (index, watch, migrate, query, status, check, models, compare, frontier, eval_, prune, tune, serve, users,
                tokens):
    cli.add_command(command)
