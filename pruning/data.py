"""Readers for training and evaluation data: local files first, Hugging Face ids only when online.

Everything returns plain Python lists/dicts; nothing here imports torch.

  read_sts(path)        -> [(sentence1, sentence2, score in 0..1)]   STS-B (headerless tab), SICK, tsv/csv/jsonl
  read_nli(path)        -> [(premise, hypothesis, label)]           SNLI, XNLI (0/1/2), SICK, tsv/csv/jsonl
  nli_triplets(pairs)   -> [(anchor, entailment, contradiction)]    one per premise group, for MNRL
  read_sentences(specs) -> [text]                                   Texts (given by the caller), text and data files
  read_stackfaq(path)   -> RetrievalSet                              StackFAQ json: threads as documents
  read_sample_docs(dir, read_folder) -> RetrievalSet                 a folder of documents + queries.jsonl

Text in, model out: pruning reads plain files only. Where other text comes from (an index, a
PostgreSQL store, a folder of documents read and chunked like the indexer does) is the caller's
business: sbsearch reads it and hands it over as Texts (sbsearch.model_choice.texts).
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
import os
import random
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

from .host import SbsearchError, mostly_cjk

LABELS = ("entailment", "neutral", "contradiction")
_LABEL_ALIASES = {
    "entailment": "entailment", "entails": "entailment", "0": "entailment",
    "neutral": "neutral", "1": "neutral",
    "contradiction": "contradiction", "contradicts": "contradiction", "2": "contradiction",
}
_S1 = ("sentence1", "sentence_a", "sentence_1", "text1", "text_a", "s1", "premise", "anchor", "query")
_S2 = ("sentence2", "sentence_b", "sentence_2", "text2", "text_b", "s2", "hypothesis", "positive")
_SCORE = ("score", "relatedness_score", "similarity", "similarity_score", "label", "gold")
_NLI_LABEL = ("label", "gold_label", "entailment_judgment", "entailment_label")
_TEXT = ("text", "sentence", "content", "passage", "question", "query", "body")


# ------------------------------------------------------------------------------------ files

def file_sha256(path: str | Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while block := f.read(1 << 20):
            h.update(block)
    return h.hexdigest()


def texts_hash(texts: list[str]) -> str:
    h = hashlib.sha256()
    for t in texts:
        h.update(t.encode("utf-8"))
        h.update(b"\0")
    return h.hexdigest()


@dataclass(frozen=True)
class Texts:
    """Text handed over by the caller instead of a file: `name` says where it came from (recorded
    in the model card), `texts` are the passages themselves."""
    name: str
    texts: tuple[str, ...]

    @property
    def sha256(self) -> str:
        return texts_hash(list(self.texts))

    def __str__(self) -> str:
        return self.name


def _check_file(path) -> Path:
    p = Path(path).expanduser()
    if not p.exists():
        raise SbsearchError(f"data file not found: {p}")
    if p.is_dir():
        raise SbsearchError(f"expected a data file, got a folder: {p}")
    return p


def _is_hf_id(spec: str) -> bool:
    return spec.startswith("hf:")


def _load_hf(spec: str) -> list[dict]:
    """'hf:owner/name[:config][@split]' -> rows. Only with SBSEARCH_ONLINE=1."""
    if os.environ.get("SBSEARCH_ONLINE") != "1":
        raise SbsearchError(f"{spec}: Hugging Face data sets need SBSEARCH_ONLINE=1 (or give a local file)")
    from datasets import load_dataset

    name, _, split = spec[3:].partition("@")
    name, _, subset = name.partition(":")
    ds = load_dataset(name, subset or None, split=split or "train")
    return [dict(r) for r in ds]


def _rows(path: Path) -> tuple[list[str] | None, list[list[str]] | list[dict]]:
    """(header, rows). jsonl gives dicts (header None); tsv/txt split on tabs without quoting
    (STS-B and SICK are not CSV-quoted); .csv is sniffed: tabs -> plain split, else csv module."""
    text = path.read_text(encoding="utf-8", errors="replace")
    lines = [ln for ln in text.splitlines() if ln.strip()]
    if not lines:
        raise SbsearchError(f"{path}: empty file")
    if path.suffix.lower() in (".jsonl", ".json") or lines[0].lstrip().startswith("{"):
        try:
            return None, [json.loads(ln) for ln in lines]
        except ValueError as exc:
            raise SbsearchError(f"{path}: not JSON lines ({exc})") from None
    if "\t" in lines[0]:
        rows = [ln.split("\t") for ln in lines]
    else:
        rows = [r for r in csv.reader(io.StringIO(text)) if r]
    first = [c.strip().lower() for c in rows[0]]
    numeric = sum(_is_float(c) for c in first)
    if numeric == 0 and len(set(first)) == len(first):
        return first, rows[1:]
    return None, rows


def _is_float(s: str) -> bool:
    try:
        float(s)
        return True
    except ValueError:
        return False


def _pick(header: list[str], names: tuple[str, ...], path: Path, what: str, exclude: tuple[int, ...] = ()) -> int:
    for n in names:
        if n in header and header.index(n) not in exclude:
            return header.index(n)
    raise SbsearchError(f"{path}: no {what} column (have: {', '.join(header)}; expected one of {', '.join(names)})")


def _dict_rows(path: Path, header, rows) -> tuple[list[str], list[list]]:
    if header is None and rows and isinstance(rows[0], dict):
        header = [str(k).lower() for k in rows[0].keys()]
        keys = list(rows[0].keys())
        rows = [[r.get(k) for k in keys] for r in rows]
    return header, rows


# ------------------------------------------------------------------------------------ STS

def read_sts(spec: str | Path) -> list[tuple[str, str, float]]:
    """Sentence pairs with a similarity score normalised to 0..1."""
    spec = str(spec)
    if _is_hf_id(spec):
        rows = _load_hf(spec)
        out = [(r.get("sentence1"), r.get("sentence2"), float(r.get("score", r.get("label")))) for r in rows]
        return _normalise_scores(out, Path(spec))
    path = _check_file(spec)
    header, rows = _dict_rows(path, *_rows(path))
    if header is None:
        # STS-B official release: genre, file, year, id, score, sentence1, sentence2 [, source, source]
        if rows and len(rows[0]) >= 7 and _is_float(rows[0][4]):
            out = []
            for r in rows:
                if len(r) >= 7 and _is_float(r[4]):
                    out.append((r[5].strip(), r[6].strip(), float(r[4]) / 5.0))
            return out
        if rows and len(rows[0]) == 3 and _is_float(rows[0][2]):
            return _normalise_scores([(r[0], r[1], float(r[2])) for r in rows if len(r) >= 3], path)
        raise SbsearchError(f"{path}: not an STS file (expected STS-B's tab format or a header with "
                            "sentence1, sentence2, score)")
    i1 = _pick(header, _S1, path, "first-sentence")
    i2 = _pick(header, _S2, path, "second-sentence", exclude=(i1,))
    isc = _pick(header, _SCORE, path, "score")
    out = []
    for r in rows:
        if len(r) <= max(i1, i2, isc) or not _is_float(str(r[isc])):
            continue
        out.append((str(r[i1]).strip(), str(r[i2]).strip(), float(r[isc])))
    if not out:
        raise SbsearchError(f"{path}: no rows with a numeric score in column {header[isc]!r}")
    if "relatedness_score" in header:  # SICK: 1..5
        return [(a, b, (s - 1.0) / 4.0) for a, b, s in out]
    return _normalise_scores(out, path)


def _normalise_scores(pairs, path: Path):
    hi = max(s for _, _, s in pairs)
    lo = min(s for _, _, s in pairs)
    if lo < 0:
        raise SbsearchError(f"{path}: negative similarity scores; expected 0..1 or 0..5")
    scale = 1.0 if hi <= 1.0 else 5.0 if hi <= 5.0 else hi
    return [(a, b, s / scale) for a, b, s in pairs]


# ------------------------------------------------------------------------------------ NLI

def read_nli(spec: str | Path) -> list[tuple[str, str, str]]:
    """(premise, hypothesis, label) with label in entailment/neutral/contradiction; other labels
    (SNLI's '-' for no consensus) are dropped."""
    spec = str(spec)
    if _is_hf_id(spec):
        rows = _load_hf(spec)
        header = list(rows[0].keys())
        rows = [[r[k] for k in header] for r in rows]
        path = Path(spec)
    else:
        path = _check_file(spec)
        header, rows = _dict_rows(path, *_rows(path))
    if header is None:
        raise SbsearchError(f"{path}: an NLI file needs a header with premise, hypothesis, label")
    header = [h.lower() for h in header]
    ip = _pick(header, ("premise", "sentence_a", "sentence1", "anchor", "text_a"), path, "premise")
    ih = _pick(header, ("hypothesis", "sentence_b", "sentence2", "text_b"), path, "hypothesis", exclude=(ip,))
    il = _pick(header, _NLI_LABEL, path, "label")
    out = []
    for r in rows:
        if len(r) <= max(ip, ih, il):
            continue
        label = _LABEL_ALIASES.get(str(r[il]).strip().lower())
        if label and r[ip] and r[ih]:
            out.append((str(r[ip]).strip(), str(r[ih]).strip(), label))
    if not out:
        raise SbsearchError(f"{path}: no rows labelled entailment/neutral/contradiction (or 0/1/2)")
    return out


def read_triplets(spec: str | Path) -> list[tuple[str, str, str]]:
    """An NLI file (made into triplets) or a ready triplet file with anchor, positive, negative columns."""
    path = Path(str(spec))
    if not _is_hf_id(str(spec)):
        path = _check_file(spec)
        header, _ = _dict_rows(path, *_rows(path))
        if header and {"anchor", "positive", "negative"} <= set(header):
            header, rows = _dict_rows(path, *_rows(path))
            ia, ip, ine = header.index("anchor"), header.index("positive"), header.index("negative")
            return [(r[ia], r[ip], r[ine]) for r in rows if len(r) > max(ia, ip, ine)]
    return nli_triplets(read_nli(spec))


def nli_triplets(pairs: list[tuple[str, str, str]], seed: int = 0) -> list[tuple[str, str, str]]:
    """(anchor, entailment, contradiction) per premise group: each entailed hypothesis of a premise is
    paired with one of the premise's contradictions (cycled). Duplicates are removed."""
    groups: dict[str, dict[str, list[str]]] = {}
    for premise, hypothesis, label in pairs:
        g = groups.setdefault(premise, {"entailment": [], "contradiction": []})
        if label in g and hypothesis not in g[label]:
            g[label].append(hypothesis)
    rng = random.Random(seed)
    out, seen = [], set()
    for premise, g in groups.items():
        ents, cons = g["entailment"], g["contradiction"]
        if not ents or not cons:
            continue
        cons = cons[:]
        rng.shuffle(cons)
        for i, ent in enumerate(ents):
            t = (premise, ent, cons[i % len(cons)])
            if t not in seen:
                seen.add(t)
                out.append(t)
    return out


# ------------------------------------------------------------------------------------ sentences

# a sentence ends at . ! ? before a space, at a Japanese or Chinese full stop (no space follows one), or a line end
_SPLIT = re.compile(r"(?<=[.!?])\s+|(?<=[。！？])|\n+")
# Japanese and Chinese are written without spaces between words: counted in whitespace words, a whole
# sentence is one "word" and fell below min_words, so every Japanese sentence was dropped (the JSTS
# sentences and the document sentences of a Japanese distillation: only passages whole were left).
# Such text is measured in characters instead, at roughly two characters a word.
CJK_CHARS_PER_WORD = 2


def split_sentences(texts: list[str], min_words: int = 3, max_words: int = 48) -> list[str]:
    """Cut passages into sentences/lines (short, query-like, cheap to train on: little padding);
    long ones are cut into windows of max_words (of max_words × 2 characters where the sentence is
    mostly Japanese or Chinese)."""
    out = []
    for t in texts:
        for s in _SPLIT.split(t):
            if mostly_cjk(s):
                s = " ".join(s.split())
                lo, hi = min_words * CJK_CHARS_PER_WORD, max_words * CJK_CHARS_PER_WORD
                out.extend(w for w in (s[i:i + hi] for i in range(0, len(s), hi)) if len(w) >= lo)
                continue
            words = s.split()
            for i in range(0, len(words), max_words):
                w = words[i:i + max_words]
                if len(w) >= min_words:
                    out.append(" ".join(w))
    return out


def dedupe(texts: list[str], min_chars: int = 3) -> list[str]:
    """Whitespace-normalised texts of at least min_chars, duplicates dropped, first-seen order."""
    seen, uniq = set(), []
    for t in texts:
        t = " ".join(str(t).split())
        if len(t) >= min_chars and t not in seen:
            seen.add(t)
            uniq.append(t)
    return uniq


def read_sentences(specs, limit: int | None = None, seed: int = 0, min_chars: int = 3,
                   split: bool = False) -> list[str]:
    """Unlabelled text for distillation, deduplicated in first-seen order. Each spec can be:
    Texts (passages given by the caller), an STS/NLI data file (both sentence columns), a StackFAQ
    json (questions and answers, never the rephrasings), or any text file (one text per non-empty
    line). split: cut everything into sentences first (see split_sentences)."""
    out: list[str] = []
    for spec in ([specs] if isinstance(specs, (str, Path, Texts)) else specs):
        out.extend(spec.texts if isinstance(spec, Texts) else _sentences_from(str(spec)))
    if split:
        out = split_sentences(out)
    uniq = dedupe(out, min_chars)
    if limit and len(uniq) > limit:
        rng = random.Random(seed)
        uniq = rng.sample(uniq, limit)
    if not uniq:
        raise SbsearchError(f"no text found in {', '.join(map(str, specs if not isinstance(specs, (str, Path, Texts)) else [specs]))}")
    return uniq


def _sentences_from(spec: str) -> list[str]:
    p = Path(spec).expanduser()
    if _is_hf_id(spec):
        rows = _load_hf(spec)
        return [str(v) for r in rows for k, v in r.items() if isinstance(v, str) and k.lower() in _S1 + _S2 + _TEXT]
    if not p.exists():
        raise SbsearchError(f"distillation source not found: {p}")
    if p.is_dir() or p.suffix.lower() == ".db":
        # folders of documents and indexes are read by sbsearch, which hands their text over as Texts
        raise SbsearchError(f"{p}: not a text or data file (give a folder of documents or an index to "
                            "`sbsearch prune --distil`, which reads them)")
    if p.suffix.lower() == ".json" and _looks_like_stackfaq(p):
        rs = read_stackfaq(p)
        return list(rs.corpus_texts)
    header, rows = _dict_rows(p, *_rows(p))
    if header is None and rows and isinstance(rows[0], list) and len(rows[0]) >= 7 and _is_float(rows[0][4]):
        return [t for a, b, _ in read_sts(p) for t in (a, b)]
    if header:
        cols = [i for i, h in enumerate(header) if h in _S1 + _S2 + _TEXT]
        if cols:
            return [str(r[i]) for r in rows for i in cols if i < len(r) and r[i]]
    return [ln for ln in p.read_text(encoding="utf-8", errors="replace").splitlines() if ln.strip()]


# ------------------------------------------------------------------------------------ retrieval sets

@dataclass
class RetrievalSet:
    """Passages (each belonging to a document), queries and document-level judgements."""
    name: str
    passages: list[str]
    passage_doc: list[str]                 # document id of each passage
    queries: dict[str, str]                # qid -> text
    qrels: dict[str, dict[str, float]]     # qid -> {doc id: grade}
    source_sha256: str = ""
    extra: dict = field(default_factory=dict)

    @property
    def corpus_texts(self) -> list[str]:
        return self.passages


def _looks_like_stackfaq(p: Path) -> bool:
    try:
        with open(p, encoding="utf-8") as f:
            head = f.read(200)
        return '"root"' in head or '"qapair"' in head or '"rephr"' in head
    except OSError:
        return False


def _ok(s) -> bool:
    return isinstance(s, str) and s.strip() not in ("", "*")


def read_stackfaq(path: str | Path) -> RetrievalSet:
    """StackFAQ: each thread is one document (question + its answers); its rephrasings are queries."""
    p = _check_file(path)
    try:
        data = json.loads(p.read_text(encoding="utf-8"))
        pairs = data["root"]["qapair"]
    except (ValueError, KeyError, TypeError) as exc:
        raise SbsearchError(f"{p}: not a StackFAQ json (root.qapair[]): {exc}") from None
    passages, docs, queries, qrels = [], [], {}, {}
    for i, qa in enumerate(pairs):
        if not isinstance(qa, dict) or not _ok(qa.get("question")):
            continue
        answers = [a for a in (qa.get("answer") or []) if _ok(a)]
        doc = f"faq{i}"
        passages.append("\n".join([qa["question"].strip()] + [a.strip() for a in answers]))
        docs.append(doc)
        for j, r in enumerate(qa.get("rephr") or []):
            if _ok(r):
                qid = f"{doc}-q{j}"
                queries[qid] = r.strip()
                qrels[qid] = {doc: 1.0}
    return RetrievalSet("stackfaq", passages, docs, queries, qrels, file_sha256(p))


FolderReader = Callable[[Path], "list[tuple[str, str]]"]  # folder -> (chunk text, relative path) per chunk


def read_sample_docs(root: str | Path, read_folder: FolderReader, queries_file: str | Path | None = None) -> RetrievalSet:
    """A folder of documents with queries.jsonl ({"id", "query", "relevant": [paths]}): passages are
    the chunks `read_folder` gives (sbsearch's: the indexer's own), relevance is per document (a
    document ranks at its best chunk)."""
    root = Path(root)
    qf = Path(queries_file) if queries_file else root / "queries.jsonl"
    if not qf.exists():
        raise SbsearchError(f"no queries file {qf}")
    queries, qrels, kinds = {}, {}, {}
    for n, line in enumerate(qf.read_text(encoding="utf-8").splitlines()):
        if not line.strip():
            continue
        row = json.loads(line)
        qid = str(row.get("id", n))
        queries[qid] = row["query"]
        qrels[qid] = {r: 1.0 for r in row.get("relevant", [])}
        kinds[qid] = row.get("kind", "")
    chunks = read_folder(root)
    if not chunks:
        raise SbsearchError(f"{root}: no documents to search")
    return RetrievalSet("sample_docs", [c for c, _ in chunks], [d for _, d in chunks], queries, qrels,
                        file_sha256(qf), extra={"kinds": kinds})


def only_kind(rs: RetrievalSet, kind: str, name: str) -> RetrievalSet:
    """The same passages, with only the questions of one kind (queries.jsonl's "kind")."""
    kinds = rs.extra.get("kinds", {})
    keep = [q for q in rs.queries if kinds.get(q) == kind]
    if not keep:
        raise SbsearchError(f"{rs.name}: no questions of kind {kind!r}")
    return RetrievalSet(name, rs.passages, rs.passage_doc, {q: rs.queries[q] for q in keep},
                        {q: rs.qrels[q] for q in keep}, rs.source_sha256, {"kind": kind})


def read_jsquad(path: str | Path, questions: int | None = 1000, seed: int = 0) -> RetrievalSet:
    """JSQuAD (SQuAD v1 JSON) as retrieval: every paragraph ("title [SEP] text") a document, a question's
    one relevant document the paragraph holding its answer; a fixed random sample of the questions
    (as benchmarks/japanese.py draws it: sorted ids, random.Random(seed).sample)."""
    p = _check_file(path)
    try:
        articles = json.loads(p.read_text(encoding="utf-8"))["data"]
    except (ValueError, KeyError, TypeError) as exc:
        raise SbsearchError(f"{p}: not a SQuAD-style json (data[].paragraphs[]): {exc}") from None
    passages, docs, queries, qrels = [], [], {}, {}
    for article in articles:
        for par in article["paragraphs"]:
            doc = f"p{len(passages):04d}"
            title, _, text = par["context"].partition(" [SEP] ")
            passages.append(f"{title}\n\n{text}")
            docs.append(doc)
            for qa in par["qas"]:
                queries[qa["id"]] = qa["question"]
                qrels[qa["id"]] = {doc: 1.0}
    ids = sorted(queries)
    if questions is not None and questions < len(ids):
        ids = sorted(random.Random(seed).sample(ids, questions))
    return RetrievalSet("jsquad", passages, docs, {q: queries[q] for q in ids}, {q: qrels[q] for q in ids},
                        file_sha256(p))
