"""A folder of documents as chunk texts, without an index: the scanner picks the files (hidden
files and .sbsearchignore patterns skipped, as for indexing), the readers read them, the chunker
cuts them. For what wants the documents' text but no index of them: pruning's distillation text
and its sample_docs evaluation (sbsearch hands the texts to pruning)."""

from __future__ import annotations

from pathlib import Path

from ..errors import IngestError
from . import load_document
from .chunking import chunk_document, tokenizer_counter, word_counter
from .scan import scan

# a folder's relevance judgements (sample_docs' queries.jsonl), never one of its documents
QUERIES_FILE = "queries.jsonl"


def folder_chunks(root: Path, max_tokens: int = 200, overlap: int = 40,
                  tokenizer_json: str | None = None) -> list[tuple[str, str]]:
    """(embedding text, path relative to root) of every chunk of every supported file under root,
    in path order; a file that cannot be read is left out, as the indexer skips it."""
    root = Path(root)
    found, _unsupported = scan([root])
    count = tokenizer_counter(tokenizer_json) if tokenizer_json and Path(tokenizer_json).exists() else word_counter
    out = []
    for path in sorted(found.values()):
        if path.name == QUERIES_FILE:
            continue
        try:
            doc = load_document(path)
        except IngestError:
            continue
        rel = path.relative_to(root).as_posix()
        out.extend((chunk.embedding_text(), rel) for chunk in chunk_document(doc, max_tokens, overlap, count))
    return out
