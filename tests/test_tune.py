"""MiniLM cut and recovered, `sbsearch tune`, the frontier and the int8 default, on the real
all-MiniLM-L6-v2 and part of sample_docs, through the CLI."""

from __future__ import annotations

import json
import shutil

import pytest
from click.testing import CliRunner

from conftest import SAMPLE_DOCS
from sbsearch.cli import cli

pytestmark = pytest.mark.slow


def invoke(*args, code=0):
    """stdout only: a first use of an int8 model says "building …" on stderr, beside the JSON."""
    result = CliRunner(env={"COLUMNS": "200"}).invoke(cli, [str(a) for a in args], catch_exceptions=False)
    assert result.exit_code == code, result.output
    return result.stdout


@pytest.fixture
def it_index(tmp_path, monkeypatch):
    """sample_docs/it indexed with MiniLM-L6 in fp32, named explicitly."""
    docs = tmp_path / "docs"
    shutil.copytree(SAMPLE_DOCS / "it", docs / "it")
    index = tmp_path / "idx"
    invoke("index", docs, "-i", index, "-m", "minilm", "-q")
    return docs, index


@pytest.fixture(scope="module")
def _sample_docs_index(tmp_path_factory, session_cache):
    index = tmp_path_factory.mktemp("tune") / "idx"
    mp = pytest.MonkeyPatch()  # module scope: the per-test environment of conftest is not set up yet
    mp.setenv("SBSEARCH_CACHE", str(session_cache))
    mp.setenv("SBSEARCH_HOME", str(tmp_path_factory.mktemp("tune-home")))
    try:
        invoke("index", SAMPLE_DOCS, "-i", index, "-m", "minilm", "-q")
    finally:
        mp.undo()
    return index


@pytest.fixture
def docs_index(_sample_docs_index, tmp_path):
    """All of sample_docs indexed with MiniLM-L6 in fp32; a fresh copy per test."""
    index = tmp_path / "idx"
    shutil.copytree(_sample_docs_index, index)
    return SAMPLE_DOCS, index


def test_minilm_cut_to_3_layers_reloads_in_sentence_transformers_with_its_card(tmp_path):
    from sentence_transformers import SentenceTransformer

    from pruning.api import prune

    text = tmp_path / "text.txt"
    text.write_text("\n".join(f"Sentence number {i} about passwords, laptops and the VPN." for i in range(40)))
    card = prune("minilm", 3, None, tmp_path / "m3", recipe="best", distil=[str(text)], batch_size=16,
                 progress=False)
    model = SentenceTransformer(str(tmp_path / "m3"), device="cpu")
    assert model[0].auto_model.config.num_hidden_layers == 3
    assert len(model[0].auto_model.encoder.layer) == 3
    on_disk = json.loads((tmp_path / "m3" / "pruning.json").read_text())
    assert on_disk["base_layers"] == 6 and on_disk["layers"] == 3
    assert on_disk["kept_layers"] == card["kept_layers"] == [0, 2, 5]  # evenly spread, last layer kept
    assert on_disk["stages"][0]["stage"] == "hidden"
    vec = model.encode(["reset my password"], normalize_embeddings=True)
    assert vec.shape == (1, 384)


def test_tune_picks_indexes_and_sets_a_model_and_the_footer_shows_its_estimate(docs_index):
    docs, index = docs_index
    out = json.loads(invoke("tune", "-i", index, "--layers", "2", "--distil-limit", "150", "--keep", "1",
                            "--json", "-q"))
    assert out["reference"] == "minilm" and out["chosen"] == "minilm-tuned-2"
    cand = out["candidates"][0]
    assert cand["passed"] and 1 <= cand["estimate"]["estimate_pct"] <= 100
    assert cand["speedup"] > 1.2  # 2 of 6 layers encode faster, measured in turns
    status = json.loads(invoke("status", "-i", index, "--json"))
    assert status["default_model"] == "minilm-tuned-2"
    names = {m["name"]: m for m in status["models"]}
    assert names["minilm-tuned-2"]["vectors"] == status["chunks"] and names["minilm-tuned-2"]["layers"] == 2
    table = invoke("query", "-i", index, "my vpn keeps dropping")
    assert "model: minilm-tuned-2 (2 of 6 layers)" in table
    assert f"est. nDCG@10 (label-free) {cand['estimate']['estimate_pct']:.1f}% of minilm" in table
    assert "(tune of " in table
    assert "minilm-tuned-2" in invoke("models")


def test_tune_that_finds_nothing_keeps_the_index_as_it_was(docs_index):
    docs, index = docs_index
    before = json.loads(invoke("status", "-i", index, "--json"))
    out = invoke("tune", "-i", index, "--layers", "2", "--distil-limit", "60", "--keep", "99.9", code=3)
    assert "no candidate kept 99.9% of minilm" in out
    after = json.loads(invoke("status", "-i", index, "--json"))
    assert after["default_model"] == before["default_model"] == "minilm"
    assert [m["name"] for m in after["models"]] == ["minilm"]  # the rejected candidate's vectors are gone


@pytest.mark.parametrize("args, message", [
    (["--layers", "6"], "cannot cut 'minilm' (6 layers) to 6 layers"),
    (["--layers", "two"], "--layers takes layer counts"),
    (["--keep", "0"], "--keep must be a percentage"),
])
def test_tune_bad_input_is_one_line(docs_index, args, message):
    docs, index = docs_index
    result = CliRunner().invoke(cli, ["tune", "-i", str(index), *args])
    assert result.exit_code == 1 and message in result.output and "Traceback" not in result.output


def test_tune_without_an_index_is_one_line(tmp_path):
    result = CliRunner().invoke(cli, ["tune", "-i", str(tmp_path / "none")])
    assert result.exit_code == 1 and "no index at" in result.output


def test_tune_refuses_an_index_too_small_to_estimate_on(it_index):
    docs, index = it_index  # 8 documents: every top-10 holds all of them
    result = CliRunner().invoke(cli, ["tune", "-i", str(index), "--layers", "2"])
    assert result.exit_code == 1 and "holds 8 documents" in result.output
    assert "Traceback" not in result.output


def test_frontier_places_every_model_and_marks_the_frontier(it_index, tmp_path):
    docs, index = it_index
    queries = tmp_path / "q.jsonl"
    lines = [json.loads(x) for x in (SAMPLE_DOCS / "queries.jsonl").read_text().splitlines()]
    keep = [dict(q, relevant=[p for p in q["relevant"] if p.startswith("it/")]) for q in lines]
    queries.write_text("\n".join(json.dumps(q) for q in keep if q["relevant"]) + "\n")
    chart = tmp_path / "frontier.png"
    out = json.loads(invoke("frontier", "-i", index, "--models", "minilm,minilm-int8", "--queries", queries,
                            "--chart", chart, "--json", "-q"))
    assert set(out["models"]) == {"minilm", "minilm-int8"}
    assert out["quality"]["metric"] == "nDCG@10"
    assert 0.5 < out["models"]["minilm"]["quality"] <= 1.0
    assert out["frontier"] and set(out["frontier"]) <= set(out["models"])
    assert chart.stat().st_size > 10_000
    # without labels on 8 documents: refused, since any two rankings of them agree
    result = CliRunner().invoke(cli, ["frontier", "-i", str(index), "--reference", "minilm"])
    assert result.exit_code == 1 and "holds 8 documents" in result.output


def test_frontier_without_labels_judges_every_model_against_the_reference(docs_index):
    docs, index = docs_index
    out = json.loads(invoke("frontier", "-i", index, "--models", "minilm,minilm-int8", "--reference", "minilm",
                            "--json", "-q"))
    assert out["quality"]["metric"].startswith("est. nDCG@10 (label-free)")
    assert out["models"]["minilm"]["quality"] == pytest.approx(100.0)
    assert 80.0 < out["models"]["minilm-int8"]["quality"] <= 100.0


def test_new_index_uses_int8_when_it_measured_free_and_minilm_still_means_fp32(tmp_path, monkeypatch):
    from sbsearch.embed import models

    record = tmp_path / "int8.json"
    monkeypatch.setattr(models, "INT8_RECORD", record)
    docs = tmp_path / "docs"
    shutil.copytree(SAMPLE_DOCS / "it", docs / "it")

    record.write_text(json.dumps({"models": {"minilm": {
        "sample_docs_ndcg10": 0.88, "int8_sample_docs_ndcg10": 0.878, "stackfaq_ndcg10": 0.95,
        "int8_stackfaq_ndcg10": 0.951}}}))
    assert models.int8_loss("minilm") == pytest.approx(0.002)
    invoke("index", docs, "-i", tmp_path / "a", "-q")
    status = json.loads(invoke("status", "-i", tmp_path / "a", "--json"))
    assert status["default_model"] == "minilm-int8"
    assert "model: minilm-int8" in invoke("query", "-i", tmp_path / "a", "printer on floor 3")
    # asked for by name, minilm is fp32, on a new index and for a query
    invoke("index", docs, "-i", tmp_path / "b", "-m", "minilm", "-q")
    assert json.loads(invoke("status", "-i", tmp_path / "b", "--json"))["default_model"] == "minilm"
    result = CliRunner().invoke(cli, ["query", "-i", str(tmp_path / "a"), "-m", "minilm", "printer"])
    assert result.exit_code == 1 and "no vectors for model 'minilm'" in result.output

    # a loss above 0.005 on one set keeps fp32; so does SBSEARCH_INT8_DEFAULT=0
    record.write_text(json.dumps({"models": {"minilm": {
        "sample_docs_ndcg10": 0.88, "int8_sample_docs_ndcg10": 0.87, "stackfaq_ndcg10": 0.95,
        "int8_stackfaq_ndcg10": 0.951}}}))
    assert models.default_model() == "minilm"
    record.write_text(json.dumps({"models": {}}))
    assert models.int8_loss("minilm") is None and models.default_model() == "minilm"
    record.write_text(json.dumps({"models": {"minilm": {"sample_docs_ndcg10": 0.9, "int8_sample_docs_ndcg10": 0.9}}}))
    monkeypatch.setenv("SBSEARCH_INT8_DEFAULT", "0")
    assert models.default_model() == "minilm"
