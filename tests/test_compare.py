"""A/B comparison and single-model evaluation through the CLI, on a real model pair:
all-MiniLM-L6-v2 against a 3-layer cut of itself, over part of sample_docs."""

import json
import shutil

import pytest
from click.testing import CliRunner

from conftest import SAMPLE_DOCS
from sbsearch.cli import cli

pytestmark = pytest.mark.slow

SUBSET = ["faq", "it"]


@pytest.fixture
def docs_and_queries(tmp_path):
    docs = tmp_path / "docs"
    for folder in SUBSET:
        shutil.copytree(SAMPLE_DOCS / folder, docs / folder)
    lines = []
    for line in (SAMPLE_DOCS / "queries.jsonl").read_text().splitlines():
        q = json.loads(line)
        q["relevant"] = [p for p in q["relevant"] if p.split("/")[0] in SUBSET]
        if q["relevant"]:
            lines.append(json.dumps(q))
    queries = tmp_path / "queries.jsonl"
    queries.write_text("\n".join(lines) + "\n")
    return docs, queries


@pytest.fixture
def minilm_cut3(isolated_home):
    """A 3-layer top cut of MiniLM with no fine-tuning, saved by name in the models folder."""
    from pruning.layers import cut_model
    from sbsearch.embed.models import load_model

    model, _ = load_model("minilm")
    cut_model(model, [0, 1, 2])
    out = isolated_home / "models" / "minilm-cut3"
    model.save(str(out))
    (out / "pruning.json").write_text(json.dumps({"base_layers": 6, "summary": "test cut"}))
    return "minilm-cut3"


def invoke(*args):
    result = CliRunner(env={"COLUMNS": "200"}).invoke(cli, [str(a) for a in args], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    return result.output


def test_compare_pruned_against_its_base(docs_and_queries, minilm_cut3, tmp_path):
    docs, queries = docs_and_queries
    out = invoke("compare", docs, "--a", minilm_cut3, "--b", "minilm", "--queries", queries, "--json",
                 "--latency-queries", "8", "--throughput-chunks", "16")
    result = json.loads(out)
    a, b = result["models"]["minilm-cut3"], result["models"]["minilm"]
    for side in (a, b):
        assert set(side["quality"]) >= {"recall@1", "recall@5", "recall@10", "mrr@10", "ndcg@10"}
        assert 0 <= side["quality"]["mrr@10"] <= 1
        cost = side["cost"]
        assert cost["query_ms_p50"] > 0 and cost["query_ms_p95"] >= cost["query_ms_p50"]
        assert cost["encode_chunks_per_s"] > 0 and cost["peak_rss_mb"] > 100
    assert (a["cost"]["layers"], b["cost"]["layers"]) == (3, 6)
    assert a["cost"]["parameters"] < b["cost"]["parameters"]
    # an untrained cut loses quality against its base: the comparison must be able to show it
    assert a["quality"]["ndcg@10"] < b["quality"]["ndcg@10"]
    assert result["ratios"]["ndcg@10 % of B"] == pytest.approx(
        100 * a["quality"]["ndcg@10"] / b["quality"]["ndcg@10"], abs=0.1)
    assert 0 <= result["agreement"]["overlap@10"] <= 1
    with open(result["chart"], "rb") as f:
        assert f.read(8) == b"\x89PNG\r\n\x1a\n"

    # the stored comparison feeds the footer of every answer of the pruned model
    table = invoke("query", "my vpn keeps dropping", "--model", minilm_cut3)
    assert "minilm-cut3 (3 of 6 layers)" in table
    assert f"nDCG@10 {result['headline']['quality_pct']:.1f}% of minilm" in table

    side = invoke("query", "my vpn keeps dropping", "--model", minilm_cut3, "--compare", "minilm")
    assert "minilm-cut3 vs minilm" in side and "of minilm's results shared" in side


def test_compare_without_labels_uses_agreement(docs_and_queries, minilm_cut3):
    docs, _ = docs_and_queries
    result = json.loads(invoke("compare", docs, "--a", minilm_cut3, "--b", "minilm", "--json", "--no-memory",
                               "--latency-queries", "4", "--throughput-chunks", "8"))
    assert result["queries"]["labelled"] is False and result["queries"]["count"] > 10
    assert "quality" not in result["models"]["minilm"]
    assert result["headline"]["quality_metric"] == "top-10 overlap"


def test_eval_one_model(docs_and_queries):
    docs, queries = docs_and_queries
    metrics = json.loads(invoke("eval", "--queries", queries, docs, "--model", "minilm", "--json"))
    assert metrics["model"] == "minilm" and metrics["queries"] > 20
    # MiniLM finds the right IT/FAQ document for most employee questions
    assert metrics["mrr@10"] > 0.6


def test_eval_beir_folder(tmp_path):
    beir = tmp_path / "beir"
    (beir / "qrels").mkdir(parents=True)
    corpus = [{"_id": "d1", "title": "Parking", "text": "Staff park in garage B on level two."},
              {"_id": "d2", "title": "Lunch", "text": "The canteen serves lunch from noon to two."},
              {"_id": "d3", "title": "Badges", "text": "Lost badges are replaced at reception."}]
    (beir / "corpus.jsonl").write_text("\n".join(json.dumps(d) for d in corpus))
    (beir / "queries.jsonl").write_text(json.dumps({"_id": "q1", "text": "where do I park my car"}) + "\n"
                                        + json.dumps({"_id": "q2", "text": "I lost my badge"}))
    (beir / "qrels" / "test.tsv").write_text("query-id\tcorpus-id\tscore\nq1\td1\t1\nq2\td3\t1\n")
    metrics = json.loads(invoke("eval", "--queries", beir, "--model", "minilm", "--json"))
    assert metrics["queries"] == 2 and metrics["recall@1"] == 1.0


def test_compare_same_model_is_refused(docs_and_queries):
    docs, _ = docs_and_queries
    result = CliRunner().invoke(cli, ["compare", str(docs), "--a", "minilm", "--b", "minilm"])
    assert result.exit_code == 1 and "same model" in result.output
