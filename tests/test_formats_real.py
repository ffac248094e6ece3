"""The new sample documents (a scanned letter, a Japanese scanned notice, a deck, a price-list
workbook, e-mails with an attachment and a .msg) indexed with the real default model through the
CLI, and found by the questions of sample_docs/queries.jsonl that only they answer."""

import json
import shutil

import pytest
from click.testing import CliRunner

from conftest import SAMPLE_DOCS
from sbsearch.cli import cli
from sbsearch.ingest.ocr import tesseract_binary

pytestmark = [pytest.mark.slow,
              pytest.mark.skipif(tesseract_binary() is None, reason="Tesseract is not installed (scripts/setup.sh)")]

FOLDERS = ["facilities", "sales", "mail", "offices/tokyo"]


def test_scans_slides_sheets_and_mail_answer_their_questions(tmp_path):
    docs = tmp_path / "sample"
    for folder in FOLDERS:
        shutil.copytree(SAMPLE_DOCS / folder, docs / folder)
    runner = CliRunner(env={"COLUMNS": "200"})
    # named: these folders read ~40% CJK (offices/tokyo), for which a new index would get the
    # multilingual model (index/language.py); this test is about the formats, on the English default
    result = runner.invoke(cli, ["index", str(docs), "--json", "-m", "minilm-int8"])
    assert result.exit_code == 0, result.output
    summary = json.loads(result.stdout)
    assert summary["failed"] == 0 and summary["warnings"] == [], summary
    queries = [json.loads(line) for line in (SAMPLE_DOCS / "queries.jsonl").read_text(encoding="utf-8").splitlines()]
    queries = [q for q in queries if q.get("kind") == "formats"]
    assert len(queries) >= 12
    found_at = {}
    for q in queries:
        out = runner.invoke(cli, ["query", "--json", "-k", "5", q["query"]])
        assert out.exit_code == 0, out.output
        hits = [json.loads(line) for line in out.stdout.splitlines() if line.strip()]
        paths = [h["path"].split("sample/", 1)[-1] for h in hits]
        found_at[q["id"]] = next((rank for rank, p in enumerate(paths, 1) if p in q["relevant"]), None)
        if q["relevant"][0].endswith(".pptx") and found_at[q["id"]] == 1:
            assert hits[0]["location"].startswith("slide ")
    # every kind of file is found first by one of its questions, and nearly all questions are answered
    firsts = {q["relevant"][0].rsplit(".", 1)[-1] for q in queries if found_at[q["id"]] == 1}
    assert {"pdf", "pptx", "xlsx", "eml", "msg"} <= firsts, found_at
    assert sum(r is not None for r in found_at.values()) >= len(queries) - 1, found_at
    japanese = [q["id"] for q in queries if q["relevant"][0].endswith("-ja-scan.pdf")]
    assert all(found_at[i] == 1 for i in japanese), found_at
    attachment = next(q["id"] for q in queries if "#" in q["relevant"][0])
    assert found_at[attachment] is not None, found_at
