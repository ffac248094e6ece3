"""Commands that write the index: index, watch, check."""

from __future__ import annotations

import sys
from pathlib import Path

import click

from ..errors import SbsearchError
from ..textsafe import visible
from .common import console, echo_json, index_option, json_option, model_option, progress_for, quiet_option, shown

ocr_lang_option = click.option(
    "--ocr-lang", default=None, metavar="LANGS",
    help="Tesseract languages for scans and images, e.g. eng+jpn  [default: eng and jpn, those installed]")


@click.command()
@click.argument("paths", nargs=-1, required=True, type=click.Path(path_type=Path))
@index_option
@model_option
@click.option("--reembed", is_flag=True, help="Drop this model's vectors and embed everything again.")
@click.option("--set-default", is_flag=True, help="Make this model the index's default search model.")
@click.option("--wait", is_flag=True, help="If another process is writing to the index, wait for it.")
@click.option("--max-file-mb", type=click.FloatRange(min=0, min_open=True), default=32, show_default=True,
              help="Larger files are reported and not read.")
@click.option("--access", "access_rules", default=None, metavar="FILE",
              help="Access rules (TOML: folders/globs -> groups) resolved per document; remembered by the "
                   "index and re-read by every later run ('none' drops them). See README, access rules.")
@click.option("--chunk-tokens", type=click.IntRange(min=32), default=None, metavar="N",
              help="A new index's passage length in word pieces (capped at the model's length)  [default: 200]")
@click.option("--chunk-overlap", type=click.IntRange(min=0), default=None, metavar="N",
              help="A new index's overlap between passages, at most a third of --chunk-tokens  [default: 0]")
@ocr_lang_option
@json_option
@quiet_option
@click.option("--ray", "ray_address", default=None, metavar="auto|ADDRESS",
              help="Embed on a Ray cluster: 'auto' (this machine's cluster, else a local one) or the head's "
                   "address (host:6379). Reading, chunking and saving stay here.")
def index(paths, index_path, model, reembed, set_default, wait, max_file_mb, access_rules, chunk_tokens, chunk_overlap,
          ocr_lang, ray_address, as_json, quiet):
    """Index files and folders; re-running it only re-embeds what changed and removes deleted files.

    A new index with no model named gets one by its documents' language: from 25% CJK characters in
    a sample of the files, the multilingual e5-small; otherwise the default (minilm-int8). `sbsearch
    status` says which and why; an existing index keeps its model."""
    from .. import app

    summary = app.index(list(paths), index_path, model, reembed=reembed, set_default=set_default, wait=wait,
                        max_file_mb=max_file_mb, progress=progress_for(quiet or as_json), access_rules=access_rules,
                        ocr_languages=ocr_lang, ray=ray_address, chunk_tokens=chunk_tokens,
                        chunk_overlap=chunk_overlap)
    if as_json:  # the summary says it all (chunks_total, failures) to a program; nothing else on the output
        echo_json(summary.as_dict())
        return
    c = console()
    c.print(
        f"[bold]{shown(summary.model)}[/bold] → {shown(summary.index)}: "
        f"[green]{summary.added} added[/green], {summary.updated} updated, {summary.removed} removed, "
        f"{summary.unchanged} unchanged, [red]{summary.failed} failed[/red], {summary.skipped} skipped · "
        f"{summary.chunks_embedded} chunks embedded, {summary.chunks_reused} reused, "
        f"{summary.chunks_total} in index · {summary.seconds:.1f}s", soft_wrap=True
    )
    ocr = summary.ocr
    if ocr.get("pages_read") or ocr.get("cache_hits"):
        c.print(f"  OCR: {ocr['pages_read']} pages read in {ocr['seconds']:.1f}s, {ocr['cache_hits']} from the cache "
                f"· {shown(ocr['engine'])}", highlight=False)
    for f in summary.failures:
        c.print(f"  [red]failed[/red] {shown(f['path'])}: {shown(f['error'])}", highlight=False)
    for f in summary.warnings:
        c.print(f"  [yellow]partly read[/yellow] {shown(f['path'])}: {shown(f['warning'])}", highlight=False)
    for f in summary.skipped_files[:20]:
        c.print(f"  [dim]skipped {shown(f['path'])}: {shown(f['error'])}[/dim]", highlight=False)
    if len(summary.skipped_files) > 20:
        c.print(f"  [dim]… and {len(summary.skipped_files) - 20} more skipped[/dim]")
    _nothing_to_search(summary, paths)
    if summary.added and not (summary.updated or summary.unchanged or summary.removed) and not quiet:
        # a first index: the one next thing to try
        where = "" if index_path is None else f" -i {shown(str(index_path))}"
        c.print(f'next: sbsearch query "a question about these documents"{where}', highlight=False, soft_wrap=True)


def _nothing_to_search(summary, paths) -> None:
    """An index run that leaves nothing to search says so in one line, and fails."""
    if summary.chunks_total == 0:
        what = ", ".join(shown(str(p)) for p in paths)
        raise click.ClickException(
            f"nothing to search in {what}: {summary.skipped} file(s) of types sbsearch does not read, "
            f"{summary.failed} that could not be read (see above; supported: text, Markdown, PDF, Word, "
            "PowerPoint, Excel, HTML, e-mail, images, FAQ files)")


def parse_interval(text: str) -> float:
    """Seconds of an interval such as 30s, 15m, 2h, 1d (a bare number is seconds)."""
    import re

    m = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*([smhd]?)\s*", text)
    if not m:
        raise SbsearchError(f"cannot read interval {text!r}: use e.g. 30s, 15m, 2h")
    seconds = float(m.group(1)) * {"": 1, "s": 1, "m": 60, "h": 3600, "d": 86400}[m.group(2)]
    if seconds <= 0:
        raise SbsearchError("the interval must be positive")
    return seconds


@click.command()
@click.argument("paths", nargs=-1, required=True, type=click.Path(path_type=Path))
@index_option
@model_option
@click.option("--every", default="15m", show_default=True, help="Time between runs: 30s, 15m, 2h …")
@click.option("--max-runs", type=int, default=0, help="Stop after this many runs (0: run until stopped).")
@ocr_lang_option
@quiet_option
def watch(paths, index_path, model, every, max_runs, ocr_lang, quiet):
    """Re-index PATHS on a schedule, in the foreground; Ctrl-C or SIGTERM stops cleanly."""
    import signal
    import time

    from .. import app

    interval = parse_interval(every)

    def on_term(signum, frame):
        raise KeyboardInterrupt  # same path as Ctrl-C: the current run's transaction rolls back

    signal.signal(signal.SIGTERM, on_term)
    c = console()

    def on_run(s, error):
        if error is not None:  # e.g. a folder briefly missing: report, keep watching
            c.print(f"{time.strftime('%H:%M:%S')} run failed: {shown(error)}", highlight=False)
        else:
            c.print(f"{time.strftime('%H:%M:%S')} {s.added} added, {s.updated} updated, {s.removed} removed, "
                    f"{s.unchanged} unchanged, {s.failed} failed · {s.seconds:.1f}s", highlight=False)

    try:
        app.watch(list(paths), index_path, model, interval, max_runs, progress=progress_for(quiet), on_run=on_run,
                  ocr_languages=ocr_lang)
    except KeyboardInterrupt:
        c.print("stopped; the index keeps its last complete state")


@click.command()
@index_option
@click.option("--repair", is_flag=True, help="Rebuild the derived FAISS files from SQLite.")
@json_option
def check(index_path, repair, as_json):
    """Verify the index: SQLite integrity, FAISS agrees with SQLite, every chunk has vectors, model hashes."""
    from .. import app
    from .render import vector_index_summary

    report = app.check(index_path, repair=repair)
    if as_json:
        echo_json(report)
    else:
        c = console()
        for m in report["models"]:
            kind = "pgvector" if (m.get("faiss_index") or {}).get("type", "").endswith("(pgvector)") else "FAISS"
            c.print(f"{shown(m['model'])}: {m['vectors']}/{m['chunks']} vectors · {kind} {shown(m['faiss'])} "
                    f"({shown(vector_index_summary(m.get('faiss_index')))}) · weights {shown(m.get('weights', '-'))}",
                    highlight=False)
        for line in report["repaired"]:
            c.print(f"[green]repaired[/green] {shown(line)}", highlight=False)
        for line in report["problems"]:
            c.print(f"[red]problem[/red] {shown(line)}", highlight=False)
        c.print("index OK" if report["ok"] else f"{len(report['problems'])} problem(s)")
    if not report["ok"]:
        sys.exit(1)


@click.command()
@click.option("-i", "--index", "index_path", type=click.Path(path_type=Path), envvar="SBSEARCH_INDEX", default=None,
              help="The index directory to copy [env SBSEARCH_INDEX; default indexes/default].")
@click.option("--to", "target", required=True, metavar="URL",
              help="An empty PostgreSQL database with pgvector: postgresql://user:pass@host/db.")
@json_option
@quiet_option
def migrate(index_path, target, as_json, quiet):
    """Copy an index folder into a PostgreSQL store, vectors included (nothing is re-embedded)."""
    from .. import app

    result = app.migrate(index_path, target, progress=progress_for(quiet))
    if as_json:
        echo_json(result)
        return
    rows = result["rows"]
    click.echo(f"{visible(result['from'])} → {visible(result['to'])}: {rows['documents']} documents, {rows['chunks']} chunks, "
               f"{rows['embeddings']} vectors, {rows['runs']} runs, {rows['users']} users · {result['seconds']:.1f}s; "
               f"search it with --store (or SBSEARCH_STORE)")
