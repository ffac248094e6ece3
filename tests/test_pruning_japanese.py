"""The Japanese side of pruning (issue #27, part 3): JGLUE-shaped readers, the jsts / jsquad /
sample_docs_ja suites, and models with prompts (E5's "query: " / "passage: ") measured and trained
as they read. Quick: files written here in JGLUE's shapes, no model download, no training."""

from __future__ import annotations

import json

import numpy as np
import pytest

from pruning import data, measures
from pruning.suites import SUITES
from sbsearch.errors import SbsearchError


def _squad(path, paragraphs):
    """A SQuAD v1 file: paragraphs = [(title, text, [questions])]."""
    qid = 0
    articles = []
    for title, text, questions in paragraphs:
        qas = []
        for q in questions:
            qas.append({"id": f"q{qid}", "question": q, "answers": [], "is_impossible": False})
            qid += 1
        articles.append({"title": title, "paragraphs": [{"context": f"{title} [SEP] {text}", "qas": qas}]})
    path.write_text(json.dumps({"data": articles}, ensure_ascii=False), encoding="utf-8")
    return path


def test_jsquad_reader_makes_each_paragraph_a_document_and_samples_questions_reproducibly(tmp_path):
    f = _squad(tmp_path / "squad.json", [("東京", "東京は日本の首都である。", ["日本の首都は?", "首都はどこ?"]),
                                         ("富士山", "富士山は日本一高い山である。", ["一番高い山は?"])])
    rs = data.read_jsquad(f, questions=None)
    assert rs.passages == ["東京\n\n東京は日本の首都である。", "富士山\n\n富士山は日本一高い山である。"]
    assert rs.qrels == {"q0": {"p0000": 1.0}, "q1": {"p0000": 1.0}, "q2": {"p0001": 1.0}}
    two = data.read_jsquad(f, questions=2)
    assert len(two.queries) == 2 and two.queries == data.read_jsquad(f, questions=2).queries
    assert len(two.passages) == 2  # every paragraph stays a document whatever is sampled
    (tmp_path / "bad.json").write_text("{}")
    with pytest.raises(SbsearchError, match="not a SQuAD-style json"):
        data.read_jsquad(tmp_path / "bad.json")


def test_jsts_lines_read_as_sts_pairs(tmp_path):
    f = tmp_path / "jsts.jsonl"
    f.write_text("\n".join(json.dumps(r, ensure_ascii=False) for r in [
        {"sentence_pair_id": "0", "sentence1": "猫が寝ている。", "sentence2": "猫が眠っている。", "label": 4.6},
        {"sentence_pair_id": "1", "sentence1": "犬が走る。", "sentence2": "空が青い。", "label": 0.0}]), encoding="utf-8")
    pairs = data.read_sts(f)
    assert [(a, b) for a, b, _ in pairs] == [("猫が寝ている。", "猫が眠っている。"), ("犬が走る。", "空が青い。")]
    assert pairs[0][2] == pytest.approx(4.6 / 5) and pairs[1][2] == 0.0


def test_sample_docs_ja_keeps_every_passage_and_only_the_japanese_paraphrases(tmp_path):
    (tmp_path / "queries.jsonl").write_text("\n".join(json.dumps(r, ensure_ascii=False) for r in [
        {"id": "e1", "query": "vpn drops", "relevant": ["a.md"]},
        {"id": "j1", "query": "在宅勤務の申請", "relevant": ["b.md"], "kind": "japanese-paraphrase"},
        {"id": "j2", "query": "通勤手当", "relevant": ["b.md"], "kind": "japanese"}]), encoding="utf-8")
    whole = data.read_sample_docs(tmp_path, lambda root: [("vpn text", "a.md"), ("在宅勤務 text", "b.md")])
    ja = data.only_kind(whole, measures.SAMPLE_DOCS_JA_KIND, "sample_docs_ja")
    assert list(ja.queries) == ["j1"] and ja.passages == whole.passages and ja.name == "sample_docs_ja"
    with pytest.raises(SbsearchError, match="no questions of kind"):
        data.only_kind(whole, "klingon", "x")


def test_the_japanese_suites_are_registered_with_their_metrics():
    assert {n: SUITES[n].primary_metric for n in ("jsts", "jsquad", "sample_docs_ja")} == {
        "jsts": "jsts_valid", "jsquad": "jsquad_ndcg10", "sample_docs_ja": "sample_docs_ja_ndcg10"}


class _Recorder:
    """A stand-in encoder that records the texts it is given (what a prompt changes is the text)."""

    def __init__(self, prompts):
        self.prompts, self.seen = prompts, []

    def encode(self, texts, **kw):
        self.seen.append(list(texts))
        return np.ones((len(texts), 2), dtype=np.float32) / np.sqrt(2)


def test_queries_and_documents_are_encoded_with_the_models_own_prompts():
    e5 = _Recorder({"query": "query: ", "document": "passage: "})
    rs = data.RetrievalSet("t", ["body one", "body two"], ["d1", "d2"], {"q": "a question"}, {"q": {"d1": 1.0}})
    measures.retrieval(e5, rs)
    assert e5.seen == [["passage: body one", "passage: body two"], ["query: a question"]]
    measures.sts_spearman(e5, [("a", "b", 1.0), ("c", "d", 0.0), ("e", "f", 0.5)])
    assert all(t.startswith("query: ") for t in e5.seen[-1])
    # a model without prompts (MiniLM: every prompt "") encodes the texts exactly as given
    minilm = _Recorder({"query": "", "document": ""})
    measures.retrieval(minilm, rs)
    assert minilm.seen == [["body one", "body two"], ["a question"]]


def _tiny_jnli(tmp_path):
    """JNLI's shape: one hypothesis per premise (so no triplet), labels as words, JSON lines."""
    from test_pruning import WORDS

    rng = __import__("random").Random(1)
    rows = []
    for i in range(90):
        premise = " ".join(rng.choice(WORDS) for _ in range(6)) + "."
        label = ("entailment", "neutral", "contradiction")[i % 3]
        hypothesis = premise if label == "entailment" else " ".join(rng.choice(WORDS) for _ in range(5)) + "."
        rows.append(json.dumps({"sentence_pair_id": str(i), "sentence1": premise, "sentence2": hypothesis,
                                "label": label}))
    f = tmp_path / "jnli.jsonl"
    f.write_text("\n".join(rows) + "\n")
    return f


@pytest.mark.slow  # it trains a tiny BERT: torch, which the quick tier must not import
def test_paper_softmax_recovers_on_nli_pairs_without_triplets_and_paper_says_why_it_cannot(tmp_path):
    """JNLI yields no triplet for the ranking loss: `--recipe paper` refuses in one line naming the
    recipe that can, and `--recipe paper-softmax` trains Sentence-BERT's classifier on its pairs."""
    from click.testing import CliRunner

    from sbsearch import config
    from sbsearch.cli.prune import prune
    from test_pruning import _tiny_bert

    tiny = _tiny_bert(tmp_path / "tiny")
    jnli = _tiny_jnli(tmp_path)
    sts = tmp_path / "sts.jsonl"
    sts.write_text("\n".join(json.dumps({"sentence1": f"man {w} a dog.", "sentence2": f"woman {w} a cat.",
                                         "label": float(i % 6)}) for i, w in enumerate(["runs", "eats", "plays"] * 20)))
    base = ["--base", str(tiny), "--layers", "2", "--nli", str(jnli), "--sts", str(sts), "--sts-dev", str(sts),
            "--eval", "none", "--no-compare", "-q", "--batch-size", "8", "--epochs", "0.3"]
    r = CliRunner().invoke(prune, base + ["--recipe", "paper", "--out", "tiny-paper"])
    assert r.exit_code == 1 and "no (premise, entailment, contradiction) triplet" in r.output, r.output
    assert "paper-softmax" in r.output and "Traceback" not in r.output
    r = CliRunner().invoke(prune, base + ["--recipe", "paper-softmax", "--out", "tiny-softmax", "--json"])
    assert r.exit_code == 0, r.output
    card = json.loads((config.models_dir() / "tiny-softmax" / "pruning.json").read_text())
    assert [s["stage"] for s in card["stages"]] == ["nli-softmax", "sts"]
    assert card["stages"][0]["rows"] == 90 and card["stages"][0]["steps"] > 0
