"""What every command shares: the group that turns errors into one line, the common options,
progress and console output."""

from __future__ import annotations

import sqlite3
import sys
from pathlib import Path

import click

from ..errors import SbsearchError
from ..textsafe import visible


class SbsearchGroup(click.Group):
    """Turns library errors into one line and a non-zero exit, never a traceback."""

    def invoke(self, ctx):
        try:
            return self._invoke(ctx)
        except click.ClickException as exc:
            # a message may name a file or quote a document: shown, never sent to the terminal as is
            exc.message = visible(exc.message, newlines=True)
            raise

    def _invoke(self, ctx):
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
        except Exception as exc:
            if type(exc).__module__.split(".")[0] != "psycopg":
                raise
            # a PostgreSQL store that went away or refused a statement mid-command
            reason = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
            raise click.ClickException(f"PostgreSQL store error: {reason}; the previous index state is kept") from None


def index_option(f):
    """--index DIR, and --store URL: a PostgreSQL store instead of an index folder (it wins when
    both are given); the command receives either as `index_path`."""
    import functools

    @functools.wraps(f)
    def with_store(*args, store: str | None = None, **kwargs):
        if store:
            from ..config import IndexLocation

            if not IndexLocation.of(store).shared:
                raise click.BadParameter(f"{store!r} is not a postgresql:// URL", param_hint="--store")
            kwargs["index_path"] = store
        return f(*args, **kwargs)

    with_store = click.option("--store", envvar="SBSEARCH_STORE", default=None, metavar="URL",
                              help="A PostgreSQL store (postgresql://user:pass@host/db) instead of an index "
                                   "directory; many search servers can share it [env SBSEARCH_STORE].")(with_store)
    return click.option("-i", "--index", "index_path", type=click.Path(path_type=Path), envvar="SBSEARCH_INDEX",
                        default=None, help="Index directory [env SBSEARCH_INDEX; default indexes/default].")(with_store)


def model_option(f):
    return click.option("-m", "--model", envvar="SBSEARCH_MODEL", default=None,
                        help="Model name (full, minilm, a pruned model) or directory [env SBSEARCH_MODEL; "
                             "default: the index's search model].")(f)


def mode_option(f):
    return click.option("--mode", type=click.Choice(["hybrid", "vector", "lexical"]), envvar="SBSEARCH_MODE",
                        default=None, help="hybrid: words and meaning fused; vector: meaning only; lexical: words "
                                           "only (BM25) [env SBSEARCH_MODE; default: hybrid].")(f)


def filter_options(f):
    """--path, --type, --folder, --modified-after: which documents may be returned (applied before
    ranking, so a narrow filter still gives up to k results)."""
    f = click.option("--modified-after", default=None, metavar="DATE",
                     help="Only documents modified after DATE (YYYY-MM-DD).")(f)
    f = click.option("--folder", "folders", multiple=True, metavar="DIR",
                     help="Only documents under DIR (relative to the indexed folder, or a path). Repeatable.")(f)
    f = click.option("--type", "types", multiple=True, metavar="EXT",
                     help="Only files of this type (pdf, md, txt, html, docx, ...). Repeatable.")(f)
    return click.option("--path", "paths", multiple=True, metavar="GLOB",
                        help="Only documents whose path (relative to the indexed folder) matches GLOB, e.g. "
                             "'handbooks/*' or '*.pdf'. Repeatable.")(f)


def json_option(f):
    return click.option("--json", "as_json", is_flag=True, help="Machine-readable JSON output.")(f)


def quiet_option(f):
    return click.option("-q", "--quiet", is_flag=True, help="No progress output.")(f)


def progress_for(quiet: bool):
    from ..progress import NullProgress, RichProgress

    if quiet or not sys.stderr.isatty():
        return NullProgress()
    return RichProgress()


def console():
    from rich.console import Console

    # emoji=False: a ":name:" in a file name stays text
    return Console(emoji=False)


def shown(text) -> str:
    """Text from a document, a file name or an error, for a rich markup string: control characters
    made visible (sbsearch.textsafe), markup escaped. Every such text the CLI prints goes through
    this or cell()."""
    from rich.markup import escape

    return escape(visible(text))


def cell(text, newlines: bool = False):
    """The same as a rich Text (a table cell, a line): shown as it is, never read as markup."""
    from rich.text import Text

    return Text(visible(text, newlines=newlines))


def echo_json(data) -> None:
    import json

    click.echo(json.dumps(data, indent=2, default=str))
