"""What sbsearch hands pruning: text, read where sbsearch keeps it.

pruning takes texts and plain data files ("text in, model out"); an index (a folder's index.db or a
PostgreSQL store) and a folder of documents are sbsearch's to read. Here they become pruning.data.Texts:
an index's chunks as the indexer embedded them (heading and text), a folder's documents read by
sbsearch's scanner, readers and chunker. Used by `sbsearch prune` (app.prune) and `sbsearch tune`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Sequence

from pruning.data import Texts

from ..config import is_store_url
from ..errors import SbsearchError
from ..index.location import open_store
from ..ingest.chunking import embedding_text
from ..ingest.folder import folder_chunks

INDEX_FILE = "index.db"


def index_texts(store) -> Texts:
    """Every chunk of an index, as the model saw it when indexing, in chunk order."""
    texts = tuple(embedding_text(text, heading) for _, text, heading in store.chunk_texts_with_headings() if text)
    return Texts(str(store.path), texts)


def folder_texts(root: Path) -> Texts:
    return Texts(str(root), tuple(text for text, _ in folder_chunks(root)))


def stored_texts(location) -> Texts:
    """The chunks of the index at `location` (a folder or a postgresql:// URL)."""
    store = open_store(location)
    try:
        return index_texts(store)
    finally:
        store.close()


def text_source(spec) -> str | Texts:
    """One --distil value as pruning takes it: an index or a folder read into Texts, a file as is."""
    if isinstance(spec, Texts) or str(spec).startswith("hf:"):
        return spec
    if is_store_url(str(spec)):
        return stored_texts(str(spec))
    p = Path(str(spec)).expanduser()
    if p.is_dir():
        return stored_texts(p) if (p / INDEX_FILE).exists() else folder_texts(p)
    if p.name == INDEX_FILE:
        return stored_texts(p.parent)
    if p.suffix.lower() == ".db":
        raise SbsearchError(f"{p}: not an sbsearch index (give its folder, the one holding {INDEX_FILE})")
    return str(spec)


def text_sources(specs: Sequence) -> list:
    return [text_source(s) for s in specs]


def eval_data(sample_docs: str | Path | None = None):
    """pruning's evaluation data (an EvalData), with sbsearch's folder reader for the sample_docs suite;
    sbsearch's own suites (int8, labelfree) join the registry."""
    from pruning.evaluate import EvalData

    from .prune_suites import register

    register()
    return EvalData.default(sample_docs, read_folder=folder_chunks)
