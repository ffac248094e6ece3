"""Tests of the pruning library and `sbsearch prune` (tiny random BERT; the real MiniLM is @slow)."""

from __future__ import annotations

import json
import os
import random
from pathlib import Path

import pytest
from click.testing import CliRunner

from pruning import data
from pruning.layers import choose_layers, parse_layer_list
from sbsearch import config
from sbsearch.errors import SbsearchError

SHARED = config.shared_data_dir()


def need_shared(rel: str) -> Path:
    p = SHARED / rel
    if not p.exists():
        if os.environ.get("CI") == "true":
            pytest.fail(f"shared data {p} missing (CI=true)")
        pytest.skip(f"shared data {p} not present (set SBSEARCH_SHARED_DATA)")
    return p


# ------------------------------------------------------------------------------------ fixtures

WORDS = ("man woman dog cat child car ball guitar horse bird plane train boat pizza bread river street "
         "park beach kitchen runs plays eats drives rides sings sleeps jumps cooks walks reads a the is "
         "on in at with small big red blue old young happy").split()


def _tiny_bert(root: Path, layers: int = 4, hidden: int = 32) -> Path:
    from conftest import build_tiny_model

    return build_tiny_model(root, hidden=hidden, layers=layers, words=sorted(set(WORDS)))


@pytest.fixture(scope="module")
def tiny_bert(tmp_path_factory) -> Path:
    return _tiny_bert(tmp_path_factory.mktemp("tiny-bert"))


def _sentence(rng) -> str:
    return " ".join(rng.choice(WORDS) for _ in range(rng.randint(4, 9))) + "."


@pytest.fixture
def tiny_data(tmp_path) -> dict:
    """~100 STS pairs (STS-B's headerless tab format), NLI pairs (SNLI-style header), a text file."""
    rng = random.Random(0)
    sts = tmp_path / "sts.csv"
    rows = []
    for i in range(100):
        a = _sentence(rng)
        b = a if i % 3 == 0 else _sentence(rng)
        rows.append(f"main-captions\tMSRvid\t2012test\t{i:04d}\t{5.0 if a == b else rng.uniform(0, 3):.3f}\t{a}\t{b}")
    sts.write_text("\n".join(rows) + "\n")
    nli = tmp_path / "nli.tsv"
    lines = ["split\tpremise\thypothesis\tlabel"]
    for i in range(60):
        p = _sentence(rng)
        lines += [f"dev\t{p}\t{p.split('.')[0]} today.\tentailment", f"dev\t{p}\t{_sentence(rng)}\tcontradiction",
                  f"dev\t{p}\t{_sentence(rng)}\tneutral"]
    nli.write_text("\n".join(lines) + "\n")
    txt = tmp_path / "texts.txt"
    txt.write_text("\n".join(_sentence(rng) for _ in range(80)) + "\n")
    return {"sts": sts, "nli": nli, "txt": txt}


# ------------------------------------------------------------------------------------ layers

@pytest.mark.parametrize("strategy,expected", [
    ("top", [0, 1, 2, 3, 4, 5]),
    ("bottom", [6, 7, 8, 9, 10, 11]),
    ("middle", [0, 1, 2, 9, 10, 11]),
    ("alternate", [0, 2, 4, 7, 9, 11]),
])
def test_choose_layers_12_to_6(strategy, expected):
    assert choose_layers(12, 6, strategy) == expected


@pytest.mark.parametrize("strategy", ["top", "bottom", "middle", "alternate"])
@pytest.mark.parametrize("total,keep", [(12, 1), (12, 2), (12, 3), (12, 4), (12, 12), (6, 3), (4, 4), (5, 2)])
def test_choose_layers_properties(strategy, total, keep):
    kept = choose_layers(total, keep, strategy)
    assert len(kept) == keep and kept == sorted(set(kept)) and all(0 <= i < total for i in kept)


def test_choose_layers_middle_and_alternate_odd():
    assert choose_layers(12, 3, "middle") == [0, 1, 11]
    assert choose_layers(12, 3, "alternate") == [0, 6, 11]  # round(5.5) == 6 (banker's rounding)
    assert choose_layers(12, 1, "alternate") == [0]


def test_choose_layers_explicit():
    assert choose_layers(12, None, "explicit", [0, 3, 11]) == [0, 3, 11]
    assert choose_layers(12, 3, "top", [1, 2, 3]) == [1, 2, 3]  # an explicit list wins
    assert parse_layer_list("0, 2 4") == [0, 2, 4]


@pytest.mark.parametrize("args,message", [
    ((12, 0, "top"), "at least 1"),
    ((12, -2, "alternate"), "at least 1"),
    ((12, 13, "top"), "only 12"),
    ((12, 2, "sideways"), "unknown layer strategy"),
    ((12, None, "explicit", [0, 12]), "out of range"),
    ((12, None, "explicit", [3, 3]), "repeats"),
    ((12, None, "explicit", [4, 2]), "ascending"),
    ((12, 2, "explicit", [1, 2, 3]), "does not match"),
    ((12, None, "explicit", []), "needs a list"),
])
def test_choose_layers_errors(args, message):
    with pytest.raises(SbsearchError, match=message):
        choose_layers(*args)
    with pytest.raises(SbsearchError):
        parse_layer_list("0,two")


def test_cut_saves_and_reloads_identically(tiny_bert, tmp_path):
    import numpy as np
    from sentence_transformers import SentenceTransformer

    from pruning.layers import count_layers, cut_model

    model = SentenceTransformer(str(tiny_bert), device="cpu")
    assert count_layers(model) == 4
    cut_model(model, [0, 2])
    texts = ["a man plays the guitar.", "the dog runs in the park with a ball."]
    before = model.encode(texts)
    model.save(str(tmp_path / "cut"))
    cfg = json.loads((tmp_path / "cut" / "config.json").read_text())
    assert cfg["num_hidden_layers"] == 2
    again = SentenceTransformer(str(tmp_path / "cut"), device="cpu")
    assert count_layers(again) == 2
    np.testing.assert_allclose(again.encode(texts), before, atol=1e-6)


# ------------------------------------------------------------------------------------ data

def test_read_tiny_files(tiny_data, tmp_path):
    pairs = data.read_sts(tiny_data["sts"])
    assert len(pairs) == 100 and all(0 <= s <= 1 for *_, s in pairs)
    nli = data.read_nli(tiny_data["nli"])
    assert len(nli) == 180 and {l for *_, l in nli} == set(data.LABELS)
    trip = data.nli_triplets(nli)
    assert len(trip) == 60 and len(set(trip)) == 60
    # generic formats with named columns
    j = tmp_path / "pairs.jsonl"
    j.write_text('{"sentence1": "a b", "sentence2": "c d", "score": 4}\n{"sentence1": "e", "sentence2": "f", "score": 1}\n')
    assert data.read_sts(j) == [("a b", "c d", 0.8), ("e", "f", 0.2)]
    c = tmp_path / "nli.csv"
    c.write_text('premise,hypothesis,label\n"A man, tall",A man,0\nx,y,2\nz,w,-\n')
    assert data.read_nli(c) == [("A man, tall", "A man", "entailment"), ("x", "y", "contradiction")]
    t = tmp_path / "trip.tsv"
    t.write_text("anchor\tpositive\tnegative\na\tb\tc\n")
    assert data.read_triplets(t) == [("a", "b", "c")]
    assert len(data.read_sentences([tiny_data["txt"], tiny_data["sts"]])) > 80


def test_distil_texts_both_keeps_passages_whole(tmp_path):
    from pruning.api import distil_texts
    from sbsearch.model_choice.prune_inputs import text_source

    f = tmp_path / "docs"
    f.mkdir()
    long = ("The printer in room four jams on thick paper. Use the manual feed tray for card stock. "
            "Call facilities if the error light stays on.")
    (f / "a.txt").write_text(long + "\n")
    docs = text_source(str(f))  # sbsearch reads the folder; pruning gets its text
    whole = data.read_sentences([docs])
    split = distil_texts([docs], True, None, seed=0)
    both = distil_texts([docs], "both", None, seed=0)
    assert len(split) == 3 and all(len(s.split()) < 12 for s in split)
    assert set(both) == set(split) | set(whole) and len(both) == len(split) + len(whole)


def test_split_sentences_keeps_japanese():
    """Japanese has no spaces between words: its sentences end at 。！？ and are measured in characters,
    not dropped for having fewer than three whitespace words (which left a Japanese distillation with
    no sentence at all), while English splits as before."""
    ja = "会議室の予約は前日までに済ませてください。急ぎの場合は総務に電話！明日は休み？はい"
    assert data.split_sentences([ja]) == ["会議室の予約は前日までに済ませてください。", "急ぎの場合は総務に電話！",
                                          "明日は休み？"]  # "はい" is below 3 words' worth of characters
    long = "あ" * 250
    assert [len(w) for w in data.split_sentences([long])] == [96, 96, 58]
    assert data.split_sentences(["The cat sat on the mat. It was warm!  Two words\nhere we go again"]) == [
        "The cat sat on the mat.", "It was warm!", "here we go again"]


def test_distillation_prompts_follow_the_role_of_each_text():
    """A model with prompts is distilled on sentences as it reads questions (query prompt) and on
    passages as it reads documents; a model without prompts sees its texts unchanged."""
    from types import SimpleNamespace

    from pruning.train import prompted_for_distillation

    rows = ["会議室の予約は前日までに。", "A printer jams on thick paper.",
            "First sentence here. Second one follows it. And a third."]
    e5 = SimpleNamespace(prompts={"query": "query: ", "document": "passage: "})
    assert prompted_for_distillation(e5, rows) == ["query: " + rows[0], "query: " + rows[1], "passage: " + rows[2]]
    assert prompted_for_distillation(SimpleNamespace(prompts=None), rows) == rows


def test_pruning_reads_plain_files_only(tmp_path):
    """Folders and index files are sbsearch's to read (sbsearch.model_choice.prune_inputs): pruning
    says so in one line instead of reading them its own way."""
    (tmp_path / "docs").mkdir()
    (tmp_path / "docs" / "a.txt").write_text("some words here\n")
    (tmp_path / "index.db").write_bytes(b"")
    for spec in (tmp_path / "docs", tmp_path / "index.db"):
        with pytest.raises(SbsearchError, match="not a text or data file"):
            data.read_sentences([spec])
    texts = data.Texts("handed over", ("first passage here", "second passage here", "first passage here"))
    assert data.read_sentences([texts]) == ["first passage here", "second passage here"]


@pytest.mark.parametrize("content,reader,message", [
    ("sentence1\tsentence2\nx\ty\n", data.read_sts, "no score column"),
    ("premise\thypo\tlabel\nx\ty\t0\n", data.read_nli, "no hypothesis column"),
    ("premise\thypothesis\tlabel\nx\ty\tmaybe\n", data.read_nli, "no rows labelled"),
    ("just some text\nmore text\n", data.read_sts, "no first-sentence column"),
    ("1\t2\n3\t4\n", data.read_sts, "not an STS file"),
    ("", data.read_nli, "empty file"),
])
def test_bad_data_files(tmp_path, content, reader, message):
    f = tmp_path / "bad.tsv"
    f.write_text(content)
    with pytest.raises(SbsearchError, match=message):
        reader(f)
    with pytest.raises(SbsearchError, match="not found"):
        reader(tmp_path / "missing.tsv")


def test_hf_ids_need_online(monkeypatch):
    monkeypatch.delenv("SBSEARCH_ONLINE", raising=False)
    with pytest.raises(SbsearchError, match="SBSEARCH_ONLINE=1"):
        data.read_sts("hf:sentence-transformers/stsb")


def test_shared_data_readers():
    stsb = data.read_sts(need_shared("stsb/sts-train.csv"))
    assert len(stsb) == 5749 and max(s for *_, s in stsb) == 1.0
    assert len(data.read_sts(need_shared("stsb/sts-test.csv"))) == 1379
    assert len(data.read_sts(need_shared("sick/SICK_train.txt"))) == 4500
    snli = data.read_nli(need_shared("nli/snli_dev_test.tsv"))
    xnli = data.read_nli(need_shared("nli/xnli_validation_en.tsv"))
    assert len(xnli) == 2490 and {l for *_, l in xnli} == set(data.LABELS)
    assert 7000 < len(data.nli_triplets(snli + xnli)) < 9000
    faq = data.read_stackfaq(need_shared("stackfaq/stackExchange-FAQ.json"))
    assert len(faq.passages) == 125 and 1200 < len(faq.queries) < 1300
    assert all(q != "*" for q in faq.queries.values())


# ------------------------------------------------------------------------------------ training

def test_prune_nli_sts_end_to_end(tiny_bert, tiny_data, tmp_path):
    from sentence_transformers import SentenceTransformer

    from pruning.api import prune

    card = prune(str(tiny_bert), 2, "top", str(tmp_path / "out"), nli=[str(tiny_data["nli"])],
                 sts=[str(tiny_data["sts"])], sts_dev=str(tiny_data["sts"]), recipe="paper",
                 batch_size=16, progress=False, evaluate=())
    out = Path(card["path"])
    saved = json.loads((out / "pruning.json").read_text())
    assert saved["kept_layers"] == [0, 1] and saved["base_layers"] == 4 and saved["layers"] == 2
    assert [s["stage"] for s in saved["stages"]] == ["nli", "sts"]
    assert [s["epochs"] for s in saved["stages"]] == [1.0, 2.0]  # the paper recipe: 1 NLI epoch, 2 STS epochs
    assert all(s["seconds"] > 0 and s["steps"] > 0 for s in saved["stages"])
    assert "dev_spearman" in saved["stages"][1] and saved["summary"]
    assert {d["role"] for d in saved["data"]} == {"nli", "sts", "sts-dev"} and all(len(d["sha256"]) == 64 for d in saved["data"])
    assert (out / "README.md").exists() and not (tmp_path / ".out.stages").exists()
    model = SentenceTransformer(str(out), device="cpu")
    assert model.encode(["a dog runs."]).shape == (1, 32)


def test_prune_distil_resumes(tiny_bert, tiny_data, tmp_path, monkeypatch):
    """Interrupt after the first stage: the same call resumes after it; teacher vectors are cached."""
    from pruning import train
    from pruning.api import prune

    calls = []
    real = train.train_stage

    def flaky(model, stage, cfg, *a, **k):
        calls.append(stage.name)
        if len(calls) == 2:
            raise KeyboardInterrupt
        return real(model, stage, cfg, *a, **k)

    monkeypatch.setattr(train, "train_stage", flaky)
    kwargs = dict(distil=[str(tiny_data["txt"])], sts=[str(tiny_data["sts"])], sts_dev=str(tiny_data["sts"]),
                  stages="distil,sts", batch_size=16, progress=False)
    with pytest.raises(KeyboardInterrupt):
        prune(str(tiny_bert), 3, "alternate", "tiny-distil", **kwargs)
    assert (config.models_dir() / ".tiny-distil.stages" / "0-distil" / "stage.json").exists()
    card = prune(str(tiny_bert), 3, "alternate", "tiny-distil", **kwargs)
    assert calls == ["distil", "sts", "sts"]  # distil was not run again
    assert Path(card["path"]) == config.models_dir() / "tiny-distil"
    assert card["kept_layers"] == [0, 2, 3] and [s["stage"] for s in card["stages"]] == ["distil", "sts"]
    assert list((config.cache_dir() / "pruning-teacher").glob("*.npy"))
    # pruning a pruned model again: layer numbers and counts refer to the original model
    again = prune(str(config.models_dir() / "tiny-distil"), 2, "bottom", "tiny-again", sts=[str(tiny_data["sts"])],
                  sts_dev=str(tiny_data["sts"]), batch_size=16, progress=False)
    assert again["base_layers"] == 4 and again["kept_layers"] == [2, 3] and again["cut_from"]["kept"] == [1, 2]


def test_cli_bad_inputs(tiny_bert, tiny_data, tmp_path):
    from sbsearch.cli.prune import prune

    runner = CliRunner()
    base = ["--base", str(tiny_bert), "--out", str(tmp_path / "o"), "--eval", "none", "-q"]
    cases = [
        (["--layers", "5"], "cannot keep 5 layers: the model has only 4"),
        (["--layers", "0"], "at least 1"),
        (["--layers", "2", "--nli", str(tmp_path / "nope.tsv"), "--sts", str(tiny_data["sts"])], "not found"),
        (["--layers", "2", "--sts", str(tiny_data["nli"])], "numeric score"),
        (["--layers", "2", "--stages", "nli"], "needs --nli"),
        (["--layers", "2", "--stages", "dance"], "unknown stage"),
        (["--keep-layers", "0,9"], "out of range"),
        (["--layers", "2", "--eval", "bogus"], "unknown evaluation suite"),
        (["--layers", "2", "--stages", "distil", "--distil", str(tiny_data["txt"]), "--distil-whole",
          "--no-distil-split"], "needs --distil-split"),
    ]
    for args, message in cases:
        r = runner.invoke(prune, base + args)
        assert r.exit_code == 1, (args, r.output)
        lines = [ln for ln in r.output.strip().splitlines() if ln.strip()]
        assert len(lines) == 1 and message in lines[0], (args, r.output)
        assert "Traceback" not in r.output
    r = runner.invoke(prune, ["--base", "no-such-model", "--out", "x", "-q", "--eval", "none"])
    assert r.exit_code == 1 and "unknown model" in r.output


def test_cli_prune_tiny_and_out_exists(tiny_bert, tiny_data):
    from sbsearch.cli.prune import prune

    runner = CliRunner()
    args = ["--base", str(tiny_bert), "--layers", "1", "--strategy", "bottom", "--sts", str(tiny_data["sts"]),
            "--sts-dev", str(tiny_data["sts"]), "--out", "tiny1", "--eval", "size", "--no-compare", "-q",
            "--batch-size", "16"]
    r = runner.invoke(prune, args)
    assert r.exit_code == 0, r.output
    card = json.loads((config.models_dir() / "tiny1" / "pruning.json").read_text())
    assert card["kept_layers"] == [3] and card["recipe"] == "sts" and card["metrics"]["model"]["params"] > 0
    r = runner.invoke(prune, args)
    assert r.exit_code == 1 and "--force" in r.output


# ------------------------------------------------------------------------------------ real model

@pytest.mark.slow
def test_cli_prune_minilm_6_to_3(tmp_path):
    """The real MiniLM cut 6 -> 3 through the CLI, a short NLI -> STS recovery, STS-B evaluated."""
    from sbsearch.cli.prune import prune

    nli = need_shared("nli/xnli_validation_en.tsv")
    sts_dev = need_shared("stsb/sts-dev.csv")
    small_sts = tmp_path / "sts-small.csv"  # 200 pairs of STS-B train, written to tmp only
    small_sts.write_text("".join(need_shared("stsb/sts-train.csv").read_text().splitlines(keepends=True)[:200]))
    small_nli = tmp_path / "nli-small.tsv"
    small_nli.write_text("".join(nli.read_text().splitlines(keepends=True)[:301]))
    r = CliRunner().invoke(prune, ["--base", "minilm", "--layers", "3", "--recipe", "paper", "--nli", str(small_nli),
                                   "--sts", str(small_sts), "--sts-dev", str(sts_dev), "--out", "minilm-3",
                                   "--eval", "stsb,size", "--no-compare", "--json", "-q"])
    assert r.exit_code == 0, r.output
    card = json.loads(r.stdout)
    assert card["base_layers"] == 6 and card["kept_layers"] == [0, 1, 2] and card["layers"] == 3
    assert 0.4 < card["metrics"]["model"]["stsb_test"] <= 1.0  # 200 pairs only: a pipeline check, not a quality bar
    from sbsearch.embed.models import resolve

    info = resolve("minilm-3")
    assert info.layers == 3 and info.total_layers == 6


def test_prune_mix_stage_and_card_readme(tiny_bert, tiny_data, tmp_path):
    from pruning.api import prune

    card = prune(str(tiny_bert), 2, "middle", str(tmp_path / "mix"), distil=[str(tiny_data["txt"])],
                 sts=[str(tiny_data["sts"])], sts_dev=str(tiny_data["sts"]), stages="mix:1", batch_size=16,
                 progress=False, evaluate=("size",), compare=())
    assert card["kept_layers"] == [0, 3] and card["stages"][0]["stage"] == "mix"
    assert card["stages"][0]["max_length"] <= 48 and "dev_spearman" in card["stages"][0]
    assert card["metrics"]["model"]["mb"] > 0
    assert "cut to 2 of 4 layers" in (tmp_path / "mix" / "README.md").read_text()


def test_cli_default_recipe_is_best(tiny_bert, tiny_data):
    from pruning.api import RECIPE_SETTINGS, RECIPES
    from sbsearch.cli.prune import prune

    r = CliRunner().invoke(prune, ["--base", str(tiny_bert), "--layers", "2", "--nli", str(tiny_data["nli"]),
                                   "--sts", str(tiny_data["sts"]), "--sts-dev", str(tiny_data["sts"]),
                                   "--out", "tiny-best", "--eval", "none", "-q", "--json"])
    assert r.exit_code == 0, r.output
    card = json.loads(r.stdout)
    assert card["recipe"] == "best" and [s["stage"] for s in card["stages"]] == RECIPES["best"]
    assert card["strategy"] == "alternate" and card["kept_layers"] == [0, 3]
    assert card["hyperparameters"]["distil_split"] == RECIPE_SETTINGS["best"]["distil_split"] and card["hyperparameters"]["batch_size"] == RECIPE_SETTINGS["best"]["batch_size"]
    assert card["hyperparameters"]["distil_texts"] > 100  # sentences of the --nli/--sts files


def test_layer_targets_map_each_kept_layer_to_the_next_kept_input():
    from pruning.train import layer_targets

    # 12 -> alternate 6: student layer j reproduces the teacher's state just before kept[j+1]
    assert layer_targets([0, 2, 4, 7, 9, 11], 12) == [2, 4, 7, 9, 11, 12]
    assert layer_targets([0, 1, 2], 12) == [1, 2, 12]  # top cut: the last kept layer must jump to the end
    assert layer_targets([11], 12) == [12]


def test_prune_hidden_stage_moves_student_toward_teacher(tiny_bert, tiny_data, tmp_path):
    """Hidden-state distillation really trains: on held-out text the student's final token states get
    closer to the teacher's than the untrained cut's were, and the card records the layer mapping."""
    from sentence_transformers import SentenceTransformer

    from pruning.api import prune
    from pruning.layers import cut_model

    teacher = SentenceTransformer(str(tiny_bert), device="cpu")
    held = [_sentence(random.Random(i + 1000)) for i in range(40)]
    import torch

    def token_gap(student) -> float:
        """Relative squared distance of the student's final token states to the teacher's (held text)."""
        feats = teacher.preprocess(held)
        with torch.no_grad():
            t_tok = teacher(dict(feats))["token_embeddings"]
            s_tok = student(dict(feats))["token_embeddings"]
        return float(((s_tok - t_tok) ** 2).sum() / (t_tok ** 2).sum())

    cut = SentenceTransformer(str(tiny_bert), device="cpu")
    cut_model(cut, [0, 3])
    before = token_gap(cut)
    card = prune(str(tiny_bert), 2, "alternate", str(tmp_path / "hid"), distil=[str(tiny_data["txt"])],
                 stages="hidden:6", batch_size=16, lr=1e-3, progress=False, evaluate=())
    assert card["kept_layers"] == [0, 3]
    stage = card["stages"][0]
    assert stage["stage"] == "hidden" and stage["layer_targets"] == [3, 4] and stage["steps"] == 30
    assert stage["final_loss"] < stage["train_loss"]
    student = SentenceTransformer(card["path"], device="cpu")
    after = token_gap(student)
    assert after < 0.7 * before, (before, after)


def test_the_embedding_weight_reaches_the_hidden_stage(tiny_bert, tiny_data, tmp_path):
    """--embedding-weight is the hidden stage's weight of the sentence-embedding term: the card
    records it, and the same run with the term weighted 0 and 50 trains differently (a weight that
    never reached the loss would give the same losses); a negative weight is refused."""
    from sbsearch.cli.prune import prune

    losses = {}
    for weight in (0, 50):
        r = CliRunner().invoke(prune, ["--base", str(tiny_bert), "--layers", "2", "--stages", "hidden:2",
                                       "--distil", str(tiny_data["txt"]), "--batch-size", "16", "--lr", "1e-3",
                                       "--embedding-weight", str(weight), "--eval", "none", "--no-compare",
                                       "--out", str(tmp_path / f"w{weight}"), "--json", "-q"])
        assert r.exit_code == 0, r.output
        stage = json.loads(r.stdout)["stages"][0]
        assert stage["embedding_weight"] == weight
        losses[weight] = stage["train_loss"]
    assert losses[0] != losses[50], losses
    bad = CliRunner().invoke(prune, ["--base", str(tiny_bert), "--embedding-weight", "-1", "--out", "x"])
    assert bad.exit_code == 2 and "Traceback" not in bad.output


def test_prune_hidden_needs_a_teacher_with_the_base_layers(tiny_bert, tiny_data, tmp_path):
    from pruning.api import prune

    small = _tiny_bert(tmp_path / "small", layers=2)
    with pytest.raises(SbsearchError, match="teacher has 2 layers"):
        prune(str(tiny_bert), 2, "alternate", str(tmp_path / "x"), distil=[str(tiny_data["txt"])],
              stages="hidden", teacher=str(small), batch_size=16, progress=False, evaluate=())


def test_a_cut_of_a_cut_learns_from_the_original(tiny_bert, tiny_data, tmp_path):
    """Progressive pruning: a 3-layer cut of the 4-layer model, cut again to 2 with the 4-layer model as
    teacher, has its kept layers numbered in the original's stack, so the hidden stage's targets are the
    original's states (a numbering in the 3-layer stack would give other targets), and the card says
    which of the original's layers survive."""
    from pruning.api import prune

    first = prune(str(tiny_bert), 3, "alternate", str(tmp_path / "three"), distil=[str(tiny_data["txt"])],
                  stages="hidden:1", batch_size=16, lr=1e-3, progress=False, evaluate=())
    assert first["kept_layers"] == [0, 2, 3]
    # through the CLI, as a user cuts again
    from sbsearch.cli.prune import prune as prune_command

    r = CliRunner().invoke(prune_command, ["--base", first["path"], "--keep-layers", "1,2", "--teacher", str(tiny_bert),
                                           "--distil", str(tiny_data["txt"]), "--stages", "hidden:1", "--batch-size", "16",
                                           "--lr", "1e-3", "--eval", "none", "--no-compare", "--out", str(tmp_path / "two"),
                                           "--json", "-q"])
    assert r.exit_code == 0, r.output
    again = json.loads(r.stdout)
    assert again["kept_layers"] == [2, 3] and again["base_layers"] == 4
    assert again["stages"][0]["layer_targets"] == [3, 4]  # in the 3-layer stack it would be [2, 3]
    # a model of the original's size that is not the original is no teacher for the cut's layers
    other = _tiny_bert(tmp_path / "other", layers=4)
    with pytest.raises(SbsearchError, match="teacher has 4 layers"):
        prune(first["path"], 2, "explicit", str(tmp_path / "x"), keep_layers=[1, 2], teacher=str(other),
              distil=[str(tiny_data["txt"])], stages="hidden:1", batch_size=16, progress=False, evaluate=())
    # the cut's own layers as teacher still work, numbered in its own stack
    own = prune(first["path"], 2, "explicit", str(tmp_path / "own"), keep_layers=[1, 2],
                distil=[str(tiny_data["txt"])], stages="hidden:1", batch_size=16, progress=False, evaluate=())
    assert own["stages"][0]["layer_targets"] == [2, 3]
    # a third cut still knows the original, and learns from it
    third = prune(again["path"], 1, "explicit", str(tmp_path / "one"), keep_layers=[1], teacher=str(tiny_bert),
                  distil=[str(tiny_data["txt"])], stages="hidden:1", batch_size=16, progress=False, evaluate=())
    assert third["kept_layers"] == [3] and third["cut_from"]["original_base"] == again["cut_from"]["original_base"]
    assert third["stages"][0]["layer_targets"] == [4]


def test_best_recipe_adds_sts_sentences_to_the_distil_text(tiny_bert, tiny_data):
    from sbsearch.cli.prune import prune

    base = ["--base", str(tiny_bert), "--layers", "2", "--distil", str(tiny_data["txt"]), "--sts", str(tiny_data["sts"]),
            "--sts-dev", str(tiny_data["sts"]), "--recipe", "best", "--eval", "none", "-q", "--json", "--epochs", "0.2"]
    r = CliRunner().invoke(prune, base + ["--out", "tiny-best-a", "--sts-sentences", "0"])
    assert r.exit_code == 0, r.output
    alone = json.loads(r.stdout)["hyperparameters"]["distil_texts"]
    r = CliRunner().invoke(prune, base + ["--out", "tiny-best-b"])
    assert r.exit_code == 0, r.output
    card = json.loads(r.stdout)
    assert card["stages"][0]["stage"] == "hidden" and card["hyperparameters"]["sts_sentences"] == 3000
    assert card["hyperparameters"]["distil_texts"] > alone + 50  # the ~100 STS pairs' sentences joined in


def test_distil_whole_adds_the_passages_to_their_sentences(tiny_bert, tiny_data, tmp_path):
    from sbsearch.cli.prune import prune

    docs = tmp_path / "docs"
    docs.mkdir()
    for i in range(4):
        (docs / f"d{i}.txt").write_text(f"Order {i} ships on Monday. Returns take {i + 2} weeks. "
                                        f"Invoices for order {i} go to the finance team.\n")
    base = ["--base", str(tiny_bert), "--layers", "2", "--distil", str(docs), "--stages", "distil",
            "--distil-split", "--eval", "none", "-q", "--json", "--epochs", "0.5", "--batch-size", "4"]
    r = CliRunner().invoke(prune, base + ["--out", "tiny-split"])
    assert r.exit_code == 0, r.output
    split = json.loads(r.stdout)["hyperparameters"]
    r = CliRunner().invoke(prune, base + ["--out", "tiny-whole", "--distil-whole"])
    assert r.exit_code == 0, r.output
    whole = json.loads(r.stdout)["hyperparameters"]
    assert split["distil_split"] is True and whole["distil_split"] == "both"
    assert whole["distil_texts"] == split["distil_texts"] + 4  # each document's chunk joins its sentences


def test_on_stage_sees_each_stage_model(tiny_bert, tiny_data, tmp_path):
    seen = []

    def on_stage(i, name, model, infos):
        seen.append((i, name, len(infos), round(float(model.encode(["a test sentence"])[0][0]), 6)))

    from pruning import api

    card = api.prune(str(tiny_bert), 2, "top", str(tmp_path / "m"), nli=[tiny_data["nli"]], sts=[tiny_data["sts"]],
                     sts_dev=tiny_data["sts"], recipe="paper", batch_size=16, progress=False, on_stage=on_stage)
    assert [(i, n, k) for i, n, k, _ in seen] == [(0, "nli", 1), (1, "sts", 2)]
    assert seen[0][3] != seen[1][3]  # the first call saw the model before its STS stage
    assert card["stages"][0]["stage"] == "nli"


def test_distil_limit_samples_sentences_but_keeps_passages_and_extra(tmp_path):
    from pruning.api import distil_texts
    from sbsearch.model_choice.prune_inputs import text_source

    folder = tmp_path / "docs"
    folder.mkdir()
    for i in range(3):
        (folder / f"d{i}.txt").write_text(" ".join(f"Sentence {j} of memo {i} is about topic {j * i}." for j in range(6)) + "\n")
    docs = text_source(str(folder))
    extra = [f"a short extra sentence number {k}" for k in range(7)]
    every = distil_texts([docs], "both", None, seed=1, extra=extra)
    some = distil_texts([docs], "both", 4, seed=1, extra=extra)
    passages = data.read_sentences([docs])
    assert len(every) == 18 + 7 + 3 and len(some) == 4 + 7 + 3
    assert set(passages) <= set(some) and set(extra) <= set(some)
    assert some == distil_texts([docs], "both", 4, seed=1, extra=extra)  # seeded
    assert distil_texts([docs], False, 2, seed=1) == random.Random(1).sample(passages, 2)
    assert len(distil_texts([docs], "both", 2, seed=1)) == 2 + 2  # whole passages are sampled too


def test_pruning_table_side_row_never_replaces_a_row_measured_by_its_own_command():
    """benchmarks/pruning_table.py: a recipe's first stage, measured on the way, fills a missing row
    or refreshes an earlier side measurement, but leaves a row that its own command measured alone."""
    import importlib.util

    path = Path(__file__).resolve().parents[1] / "benchmarks" / "pruning_table.py"
    spec = importlib.util.spec_from_file_location("pruning_table", path)
    table = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(table)
    own = {"id": "6-top-distil", "metrics": {"stackfaq_asym_mrr10": 0.7}, "minutes": 27.9}
    earlier_side = {"id": "4-top-distil", "metrics": {}, "minutes": 9.0, "side": True}
    results = {"6-top-distil": own, "4-top-distil": earlier_side}
    row = {"id": "6-top-distil-nli-sts", "metrics": {"stsb_test": 0.85}, "minutes": 72.9}
    side = {"6-top-distil": {"id": "6-top-distil", "metrics": {}, "minutes": 26.2, "side": True},
            "4-top-distil": {"id": "4-top-distil", "metrics": {}, "minutes": 8.0, "side": True},
            "3-top-distil": {"id": "3-top-distil", "metrics": {}, "minutes": 7.0, "side": True}}
    merged = table.merge_row(results, row, side)
    assert merged["6-top-distil"] is own
    assert merged["4-top-distil"]["minutes"] == 8.0
    assert merged["3-top-distil"]["minutes"] == 7.0
    assert merged["6-top-distil-nli-sts"] is row
    assert results == {"6-top-distil": own, "4-top-distil": earlier_side}  # the input is not changed


def test_shared_teacher_outputs_give_the_same_models_and_skip_the_teachers_passes(tiny_bert, tiny_data, tmp_path):
    """tune recovers several cuts in turn: inside sharing_teacher_outputs the second recovery reads
    the teacher's outputs back (every batch a hit) and ends with the very weights it gets alone
    (where, alone, its second epoch reads back what its first computed)."""
    import torch
    from sentence_transformers import SentenceTransformer

    from pruning.api import prune
    from pruning.teacher_outputs import sharing_teacher_outputs

    def run(out: str, layers: int) -> dict:
        return prune(str(tiny_bert), layers, "alternate", str(tmp_path / out), distil=[str(tiny_data["txt"])],
                     stages="hidden:2", batch_size=16, lr=1e-3, progress=False, evaluate=())

    alone = SentenceTransformer(run("alone-3", 3)["path"], device="cpu")
    with sharing_teacher_outputs() as shared:
        first = run("shared-2", 2)["stages"][0]
        misses = shared.misses
        assert misses == first["steps"] // 2 and shared.hits == first["steps"] - misses and shared.bytes > 0
        card = run("shared-3", 3)
        assert shared.misses == misses and shared.hits == first["steps"] + card["stages"][0]["steps"] - misses
    again = SentenceTransformer(card["path"], device="cpu")
    for a, b in zip(alone.state_dict().values(), again.state_dict().values()):
        assert torch.equal(a, b)
    with sharing_teacher_outputs(max_bytes=0) as none_kept:  # over the bound: recomputed, nothing kept
        run("bounded", 2)
        assert none_kept.bytes == 0 and none_kept.hits == 0


def test_a_recovery_of_several_epochs_runs_the_teacher_once_per_text(tiny_bert, tiny_data, tmp_path, monkeypatch):
    """From its second epoch on, a hidden-state recovery reads the teacher's outputs back, in batches
    of other texts than they were computed in, and trains as it does with the teacher recomputed
    every step, to within float rounding."""
    import torch
    from sentence_transformers import SentenceTransformer

    from pruning import teacher_outputs
    from pruning.api import prune

    def run(out: str) -> dict:
        return prune(str(tiny_bert), 2, "alternate", str(tmp_path / out), distil=[str(tiny_data["txt"])],
                     stages="hidden:3", batch_size=16, lr=1e-3, progress=False, evaluate=())

    card = run("kept")
    stage = card["stages"][0]
    assert stage["steps"] == 15 and stage["teacher_batches_read_back"] == 10
    monkeypatch.setattr(teacher_outputs, "default_max_bytes", lambda: 0)  # nothing kept: recomputed each step
    recomputed = run("recomputed")
    assert recomputed["stages"][0]["teacher_batches_read_back"] == 0
    from pruning.layers import cut_model

    untrained = SentenceTransformer(str(tiny_bert), device="cpu")
    cut_model(untrained, card["kept_layers"])
    untrained = untrained.state_dict()
    kept = SentenceTransformer(card["path"], device="cpu").state_dict()
    again = SentenceTransformer(recomputed["path"], device="cpu").state_dict()
    assert kept.keys() == again.keys() == untrained.keys()
    for name, a in kept.items():
        assert torch.allclose(a, again[name], atol=1e-5), name
    assert any(not torch.equal(a, untrained[name]) for name, a in kept.items())  # the recovery trained
