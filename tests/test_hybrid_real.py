"""Hybrid search through the real CLI on a real model (the default, MiniLM-L6 int8) and the
sample documents that hold codes, names and Japanese text."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from click.testing import CliRunner

from sbsearch.cli import cli

REPO = Path(__file__).resolve().parents[1]
FOLDERS = ["support", "intranet", "offices", "people", "it"]


def invoke(*args):
    result = CliRunner(env={"COLUMNS": "200"}).invoke(cli, [str(a) for a in args])
    assert result.exit_code == 0, result.output
    return result


@pytest.fixture(scope="module")
def corpus(tmp_path_factory) -> tuple[Path, Path, Path]:
    root = tmp_path_factory.mktemp("hybrid-real")
    docs = root / "docs"
    for folder in FOLDERS:
        shutil.copytree(REPO / "sample_docs" / folder, docs / folder)
    queries = root / "queries.jsonl"
    lines = []
    for line in (REPO / "sample_docs" / "queries.jsonl").read_text(encoding="utf-8").splitlines():
        obj = json.loads(line)
        if obj.get("kind") in ("identifier", "japanese") and all(p.split("/")[0] in FOLDERS for p in obj["relevant"]):
            lines.append(line)
    queries.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return docs, root / "idx", queries


@pytest.mark.slow  # indexes ~30 documents with the real model
def test_hybrid_on_a_real_model(corpus):
    docs, index, queries = corpus
    invoke("index", docs, "-i", index, "-q")
    hits = [json.loads(x) for x in invoke("query", "E-4012", "-i", index, "--json", "-k", "3").output.splitlines()]
    assert hits[0]["path"].endswith("support/halden-link-error-and-warning-codes.md")
    assert "E-4012" in hits[0]["snippet"]
    hits = [json.loads(x) for x in invoke("query", "通勤手当の申請方法", "-i", index, "--json", "-k", "3").output.splitlines()]
    assert hits[0]["path"].endswith("people/tokyo-commuting-allowance-and-leave-ja.txt")
    # a filter that leaves one small folder still fills k from it
    hits = [json.loads(x) for x in invoke("query", "who do I call", "-i", index, "--json", "-k", "5",
                                         "--folder", "offices/tokyo").output.splitlines()]
    assert len(hits) == 5 and all("/offices/tokyo/" in h["path"] for h in hits)
    # identifiers and Japanese: hybrid finds what vectors alone do not
    hybrid = json.loads(invoke("eval", "--queries", queries, "-i", index, "--mode", "hybrid", "--json").output)
    vector = json.loads(invoke("eval", "--queries", queries, "-i", index, "--mode", "vector", "--json").output)
    assert hybrid["mrr@10"] >= 0.9 > vector["mrr@10"]
    assert "mode: hybrid" in invoke("query", "HX-220L price", "-i", index).output
