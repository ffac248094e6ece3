"""Query sets with relevance judgements, and retrieval quality of one model on an index.

Two input forms:
  * simple JSONL: {"id": ..., "query": ..., "relevant": [paths relative to the indexed folder]}
    ("relevant" may also be {"path": grade}); lines without "relevant" are unlabelled queries
  * a BEIR folder: corpus.jsonl, queries.jsonl, qrels/<split>.tsv (query-id, corpus-id, score);
    the corpus is materialised as one text file per document (see beir_corpus_folder) so it is
    indexed like any other folder, and a document's id is its file name without ".txt".
"""

from __future__ import annotations

import csv
import json
from dataclasses import dataclass, field
from pathlib import Path

from ..errors import SbsearchError
from .metrics import dedupe, summarize


@dataclass
class QuerySet:
    queries: dict[str, str]  # id -> text
    qrels: dict[str, dict[str, float]] = field(default_factory=dict)  # id -> {doc id: grade}
    doc_id: str = "relpath"  # how a result names its document: "relpath" or "stem" (BEIR)
    source: str = ""

    @property
    def labelled(self) -> bool:
        return bool(self.qrels)


def _query_lines(path: Path) -> list[tuple[int, dict | None, str]]:
    """(line number, the JSON object or None for a plain text line, query text) per non-blank line."""
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError) as exc:
        raise SbsearchError(f"cannot read queries file {path}: {getattr(exc, 'strerror', None) or exc}") from None
    out = []
    for n, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        if not line.lstrip().startswith("{"):
            out.append((n, None, line.strip()))
            continue
        try:
            obj = json.loads(line)
            text = str(obj["query"])
        except (ValueError, KeyError, TypeError):
            raise SbsearchError(f"{path}:{n}: expected a JSON object with a \"query\" field") from None
        out.append((n, obj, text))
    if not out:
        raise SbsearchError(f"no queries in {path}")
    return out


def read_queries(path: Path) -> list[tuple[str | None, str]]:
    """Queries to answer in one batch, in file order, as (id or None, text): text lines, or JSONL
    objects with "query" and an optional "id"."""
    return [(str(obj["id"]) if obj is not None and obj.get("id") is not None else None, text)
            for _, obj, text in _query_lines(Path(path))]


def load_query_set(path: Path) -> QuerySet:
    path = Path(path)
    if path.is_dir():
        return _load_beir(path)
    queries: dict[str, str] = {}
    qrels: dict[str, dict[str, float]] = {}
    for n, obj, text in _query_lines(path):
        if obj is None:
            queries[f"q{n}"] = text
            continue
        qid = str(obj.get("id", f"q{n}"))
        queries[qid] = text
        rel = obj.get("relevant")
        if isinstance(rel, list):
            qrels[qid] = {str(p): 1.0 for p in rel}
        elif isinstance(rel, dict):
            qrels[qid] = {str(p): float(g) for p, g in rel.items()}
    return QuerySet(queries, qrels, "relpath", str(path))


def _load_beir(folder: Path) -> QuerySet:
    qfile = folder / "queries.jsonl"
    qrel_files = sorted((folder / "qrels").glob("*.tsv")) if (folder / "qrels").is_dir() else []
    if not qfile.exists() or not qrel_files:
        raise SbsearchError(f"{folder} is not a BEIR folder (needs queries.jsonl and qrels/*.tsv)")
    queries = {}
    for line in qfile.read_text(encoding="utf-8").splitlines():
        if line.strip():
            obj = json.loads(line)
            queries[str(obj["_id"])] = obj["text"]
    # test.tsv is the standard split when several exist
    qrel_file = next((f for f in qrel_files if f.stem == "test"), qrel_files[0])
    qrels: dict[str, dict[str, float]] = {}
    with open(qrel_file, encoding="utf-8") as f:
        for row in csv.reader(f, delimiter="\t"):
            if len(row) < 3 or row[0] in ("query-id", "qid"):
                continue
            if float(row[2]) > 0:
                qrels.setdefault(row[0], {})[row[1]] = float(row[2])
    queries = {q: t for q, t in queries.items() if q in qrels}
    return QuerySet(queries, qrels, "stem", str(folder))


def beir_corpus_folder(beir_dir: Path, out: Path) -> Path:
    """Write a BEIR corpus.jsonl as one .txt per document (title as first line), once."""
    out.mkdir(parents=True, exist_ok=True)
    corpus = Path(beir_dir) / "corpus.jsonl"
    if not corpus.exists():
        raise SbsearchError(f"{beir_dir} has no corpus.jsonl")
    for line in corpus.read_text(encoding="utf-8").splitlines():
        if not line.strip():
            continue
        doc = json.loads(line)
        safe = "".join(c if c.isalnum() or c in "-_." else "_" for c in str(doc["_id"]))
        target = out / f"{safe}.txt"
        text = (doc.get("title", "") + "\n\n" + doc.get("text", "")).strip() + "\n"
        if not target.exists() or target.read_text(encoding="utf-8") != text:
            target.write_text(text, encoding="utf-8")
    return out


def document_rankings(searcher, query_set: QuerySet, k: int = 10, depth: int = 5) -> dict[str, list[str]]:
    """Top-k documents per query: k*depth chunks searched, collapsed to documents at their best chunk."""
    qids = list(query_set.queries)
    results = searcher.search_many([query_set.queries[q] for q in qids], k * depth)
    out = {}
    for qid, res in zip(qids, results):
        if query_set.doc_id == "stem":
            ids = [Path(r.path).stem for r in res]
        else:
            ids = [r.relpath for r in res]
        out[qid] = dedupe(ids)[:k]
    return out


def evaluate(searcher, query_set: QuerySet, k: int = 10) -> dict:
    """recall@1/5/10, MRR@10, nDCG@10 of one model on one index."""
    if not query_set.labelled:
        raise SbsearchError(f"{query_set.source} has no relevance judgements (\"relevant\" fields)")
    rankings = document_rankings(searcher, query_set, k)
    return summarize(rankings, query_set.qrels)
