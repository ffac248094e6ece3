"""The sub-vocabulary tokenizer (sbsearch/embed/subvocab_tokenizer.py) gives the whole tokenizer's ids.

Quick tier: a real Unigram tokenizer trained here with the `tokenizers` library (NFKC, a Replace
normaliser, Metaspace, a template with special tokens, like XLM-R's), against texts hypothesis
draws from the characters it knows and those it does not. Slow tier: the real e5-small-int8 export,
its 250,002 pieces, on Japanese, English and hostile text, and a cold query process that never loads
the whole vocabulary.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from sbsearch.embed import subvocab_tokenizer as sv

CORPUS = ["年次休暇の申請は上長の承認が必要です。", "パスワードを忘れた場合はヘルプデスクに連絡してください。",
          "How do I reset my VPN password?", "The expense report is due on the fifth working day.",
          "経費精算は毎月五営業日までに提出します。", "Ｆｕｌｌ－ｗｉｄｔｈ　ＡＢＣ１２３ and ｶﾀｶﾅ"] * 20


def _train_unigram(folder: Path) -> Path:
    from tokenizers import Tokenizer, decoders, models, normalizers, pre_tokenizers, processors, trainers

    tok = Tokenizer(models.Unigram())
    tok.normalizer = normalizers.Sequence([normalizers.NFKC(), normalizers.Replace(" {2,}", " ")])
    tok.pre_tokenizer = pre_tokenizers.Metaspace(replacement="▁", prepend_scheme="first", split=False)
    tok.decoder = decoders.Metaspace()
    trainer = trainers.UnigramTrainer(vocab_size=300, special_tokens=["<s>", "<pad>", "</s>", "<unk>"],
                                      unk_token="<unk>", shrinking_factor=0.75)
    tok.train_from_iterator(CORPUS, trainer)
    tok.post_processor = processors.TemplateProcessing(single="<s> $A </s>", special_tokens=[("<s>", 0), ("</s>", 2)])
    tok.add_special_tokens(["<mask>"])
    folder.mkdir(parents=True, exist_ok=True)
    tok.save(str(folder / "tokenizer.json"))
    return folder


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    folder = _train_unigram(tmp_path_factory.mktemp("unigram"))
    assert sv.write_side_files(folder)
    fast = sv.SubVocabTokenizer.open(folder, 64)
    assert isinstance(fast, sv.SubVocabTokenizer)
    return fast, fast.whole()


TEXT = st.text(alphabet=st.sampled_from(sorted(set("".join(CORPUS))) + list(" \t\n　😀éß①ｱ<>/ms")), max_size=80)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(text=TEXT)
def test_sub_vocabulary_gives_the_whole_vocabularys_ids(trained, text):
    fast, whole = trained
    assert fast.encode(text).ids == whole.encode(text).ids


def test_corpus_sentences_use_long_pieces_and_get_the_same_ids(trained):
    fast, whole = trained
    used = set()
    for text in sorted(set(CORPUS)):
        ids = whole.encode(text).ids
        assert fast.encode(text).ids == ids, text
        used |= {whole.id_to_token(i) for i in ids}
    assert max(map(len, used)) >= 4  # the test reaches pieces longer than a character or two


def test_texts_are_truncated_like_the_whole_tokenizer(trained):
    fast, whole = trained
    long = "経費精算 " * 100
    assert fast.encode(long).ids == whole.encode(long).ids
    assert len(fast.encode(long).ids) == 64


def test_a_piece_spanning_an_unknown_character_is_found(tmp_path):
    """A character with no piece of its own costs the vocabulary's lowest score minus 10; a longer
    piece that holds it is a candidate like any other substring (and the sub-vocabulary keeps the
    lowest score, so that penalty is the whole vocabulary's)."""
    folder = _train_unigram(tmp_path / "tok")
    spec = json.loads((folder / "tokenizer.json").read_text())
    vocab = spec["model"]["vocab"]
    vocab.append(["☃e", min(score for _, score in vocab)])
    (folder / "tokenizer.json").write_text(json.dumps(spec))
    sv.write_side_files(folder)
    fast = sv.SubVocabTokenizer.open(folder, 64)
    for text in ("☃e", "☃☃e", "e☃e ☃"):
        whole_ids = fast.whole().encode(text).ids
        assert len(vocab) - 1 in whole_ids
        assert fast.encode(text).ids == whole_ids


def test_added_tokens_and_long_batches_go_to_the_whole_tokenizer(tmp_path):
    folder = _train_unigram(tmp_path / "tok")
    sv.write_side_files(folder)
    fast = sv.SubVocabTokenizer.open(folder, 64)
    assert fast.encode_batch(["年次休暇"])[0].ids == fast.whole().encode("年次休暇").ids
    fresh = sv.SubVocabTokenizer.open(folder, 64)
    fresh.encode_batch(["a <mask> here"])
    assert fresh._whole is not None  # the whole tokenizer knows <mask>'s id; the sub-vocabulary does not


def test_changed_tokenizer_is_never_paired_with_stale_pieces(tmp_path):
    folder = _train_unigram(tmp_path / "tok")
    sv.write_side_files(folder)
    spec = json.loads((folder / "tokenizer.json").read_text())
    spec["model"]["vocab"][10][1] -= 1.0  # one score changed: the record's sha256 no longer matches
    (folder / "tokenizer.json").write_text(json.dumps(spec))
    assert sv.SubVocabTokenizer.open(folder, 64) is None
    assert type(sv.load_tokenizer(folder, 64)).__name__ == "Tokenizer"


def test_a_wordpiece_tokenizer_gets_no_side_files(tmp_path):
    from tokenizers import Tokenizer, models

    Tokenizer(models.WordPiece({"[UNK]": 0, "a": 1}, unk_token="[UNK]")).save(str(tmp_path / "tokenizer.json"))
    assert sv.write_side_files(tmp_path) is False
    assert not (tmp_path / sv.RECORD_FILE).exists()


# ------------------------------------------------------------------------------ slow tier

@pytest.mark.slow
def test_real_e5_small_sub_vocabulary_gives_the_same_ids():
    from sbsearch.embed import make_embedder

    embedder = make_embedder("e5-small-int8")
    folder = embedder.info.path
    assert sv.write_side_files(folder)
    fast = sv.SubVocabTokenizer.open(folder, 512)
    whole = fast.whole()
    texts = ["query: 年次休暇の申請方法を教えてください", "passage: How do I reset my VPN password?",
             "  many   spaces\tand\nlines ", "ｶﾀｶﾅ全角ＡＢＣ①②", "emoji 😀🚀 café naïve ﬁ ẞ", "", " ",
             "\u200b zero width", "中文繁體字與简体字", "🂡 𝔘𝔫𝔦", "<s> inside </s>", "x" * 700,
             "経費精算は毎月五営業日までに、所定の様式で提出します。" * 5]
    for text in texts:
        assert fast.encode(text).ids == whole.encode(text).ids, text


@pytest.mark.slow
def test_cold_query_process_never_loads_the_whole_vocabulary(tmp_path):
    from sbsearch.embed import make_embedder

    folder = make_embedder("e5-small-int8").info.path
    sv.write_side_files(folder)
    probe = ("import sys\nfrom sbsearch.embed import make_embedder, subvocab_tokenizer as sv\n"
             "e = make_embedder('e5-small-int8')\nv = e.encode_query(['年次休暇の申請方法'])\n"
             "print(type(e.tokenizer).__name__, e.tokenizer._whole is None, v.shape)\n")
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, env=os.environ.copy(), check=True)
    assert out.stdout.split() == ["SubVocabTokenizer", "True", "(1,", "384)"]
