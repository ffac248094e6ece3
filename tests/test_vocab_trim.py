"""Vocabulary trimming (pruning.vocab): the kept pieces renumbered consistently (quick), and the real
multilingual-e5-small trimmed to the pieces of a few texts: those texts encode exactly as before,
other text still encodes, and the model shrinks (slow)."""

from __future__ import annotations

import json

import numpy as np
import pytest

from pruning.vocab import _renumbered_tokenizer

SPEC = {"model": {"type": "Unigram", "unk_id": 3,
                  "vocab": [["<s>", 0.0], ["<pad>", 0.0], ["</s>", 0.0], ["<unk>", 0.0], ["▁a", -1.0], ["▁b", -2.0],
                            ["c", -3.0], ["<mask>", 0.0]]},
        "added_tokens": [{"id": 0, "content": "<s>"}, {"id": 2, "content": "</s>"}, {"id": 7, "content": "<mask>"}],
        "post_processor": {"type": "TemplateProcessing",
                           "special_tokens": {"<s>": {"id": "<s>", "ids": [0], "tokens": ["<s>"]},
                                              "</s>": {"id": "</s>", "ids": [2], "tokens": ["</s>"]}}}}


def test_kept_pieces_are_renumbered_everywhere_the_tokenizer_names_an_id():
    out = _renumbered_tokenizer(SPEC, [0, 2, 3, 5, 7])
    assert out["model"]["vocab"] == [["<s>", 0.0], ["</s>", 0.0], ["<unk>", 0.0], ["▁b", -2.0], ["<mask>", 0.0]]
    assert out["model"]["unk_id"] == 2
    assert [t["id"] for t in out["added_tokens"]] == [0, 1, 4]
    assert out["post_processor"]["special_tokens"]["</s>"]["ids"] == [1]
    assert SPEC["model"]["unk_id"] == 3  # the original is left as it was


@pytest.mark.slow
def test_e5_small_trimmed_to_a_corpus_encodes_that_corpus_as_before(tmp_path):
    from pruning.vocab import trim_vocabulary
    from sbsearch.embed.models import load_model, resolve

    corpus = ["passage: 在宅勤務の申請は前日までに上長へ提出してください。", "passage: The VPN client reconnects after sleep.",
              "query: 交通費の精算方法", "query: how do I reset my password"]
    base = resolve("e5-small")
    info = trim_vocabulary(base.path, corpus, tmp_path / "trimmed")
    assert info["pieces_before"] > 250_000 and info["pieces_kept"] < 20_000  # the table has 250,037 rows, the tokenizer 250,002 pieces
    assert (tmp_path / "trimmed" / "model.safetensors").stat().st_size < 0.3 * base.weights_file.stat().st_size
    assert json.loads((tmp_path / "trimmed" / "config.json").read_text())["vocab_size"] == info["pieces_kept"]
    full, _ = load_model(base)
    trimmed, _ = load_model(str(tmp_path / "trimmed"))
    a = full.encode(corpus, normalize_embeddings=True)
    b = trimmed.encode(corpus, normalize_embeddings=True)
    assert np.allclose(a, b, atol=1e-5), (a * b).sum(1)
    # other text still encodes: new words are cut into kept pieces (single characters are kept)
    other = ["query: 稟議書の決裁ルート", "query: quarterly revenue forecast spreadsheet"]
    cos = (full.encode(other, normalize_embeddings=True) * trimmed.encode(other, normalize_embeddings=True)).sum(1)
    assert np.isfinite(cos).all() and cos.min() > 0.5, cos
    with pytest.raises(Exception, match="no model.safetensors"):
        trim_vocabulary(tmp_path / "nothing", corpus, tmp_path / "x")
