"""FAQ files (.csv, .jsonl, .json with question/answer fields): one section per pair."""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path

from ..errors import IngestError
from .document import Document, Section, paragraph_sections
from .options import ReadOptions
from .text import decode_text

SUFFIXES = {".csv", ".jsonl", ".json"}
QUESTION_KEYS = ("question", "q", "query", "title", "frage")
ANSWER_KEYS = ("answer", "a", "response", "body", "antwort")


def load(path: Path, data: bytes, options: ReadOptions) -> Document:
    text, encoding = decode_text(data)
    return Document(str(path), "faq", _faq_sections(path.suffix.lower(), text), encoding)


def _pick(record: dict, keys: tuple[str, ...]) -> str | None:
    lowered = {str(k).strip().lower(): v for k, v in record.items()}
    for key in keys:
        value = lowered.get(key)
        if isinstance(value, list):
            value = "\n".join(str(v) for v in value if v)
        if value is not None and str(value).strip():
            return str(value).strip()
    return None


def _qa_records(records: list) -> list[Section]:
    sections = []
    for rec in records:
        if not isinstance(rec, dict):
            continue
        q, a = _pick(rec, QUESTION_KEYS), _pick(rec, ANSWER_KEYS)
        if q and a:
            sections.append(Section(f"Q: {q}\nA: {a}", None, q))
    return sections


def _faq_sections(suffix: str, text: str) -> list[Section]:
    if suffix == ".csv":
        try:
            dialect = csv.Sniffer().sniff(text[:4096], delimiters=",;\t")
        except csv.Error:
            dialect = csv.excel
        try:  # newline="": the csv module wants line splitting left to it (a lone \r ends a row)
            rows = list(csv.DictReader(io.StringIO(text, newline=""), dialect=dialect))
        except csv.Error:  # not parseable as CSV at all: still text
            return paragraph_sections(text)
        sections = _qa_records(rows)
        if sections:
            return sections
        # A CSV that is not an FAQ is still text: one line per row, "column: value".
        lines = ["; ".join(f"{k}: {v}" for k, v in row.items() if k and v) for row in rows]
        return paragraph_sections("\n".join(line for line in lines if line))
    if suffix == ".jsonl":
        records = []
        for n, line in enumerate(text.splitlines(), start=1):
            if not line.strip():
                continue
            try:
                records.append(json.loads(line))
            except ValueError:
                raise IngestError(f"invalid JSON on line {n}") from None
    else:
        try:
            data = json.loads(text)
        except ValueError as exc:
            raise IngestError(f"invalid JSON: {exc.msg} (line {exc.lineno})") from None
        records = _find_record_list(data)
    sections = _qa_records(records)
    if not sections:
        raise IngestError("no question/answer pairs (expected 'question' and 'answer' fields)")
    return sections


def _find_record_list(data) -> list:
    """A list of objects at the top level or under any key ({"faq": [...]}, {"items": [...]})."""
    if isinstance(data, list):
        return data
    if isinstance(data, dict):
        for value in data.values():
            found = _find_record_list(value)
            if found and any(isinstance(r, dict) for r in found):
                return found
    return []
