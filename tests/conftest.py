"""Test fixtures: every test gets its own home/index/models dirs; models come from local files only."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

REPO = Path(__file__).resolve().parents[1]
SAMPLE_DOCS = REPO / "sample_docs"


@pytest.fixture(scope="session")
def session_cache(tmp_path_factory) -> Path:
    """Assembled packaged weights and hash memos are shared by all tests of a run (they are read-only)."""
    env = os.environ.get("SBSEARCH_TEST_CACHE")
    return Path(env) if env else tmp_path_factory.mktemp("cache")


@pytest.fixture(autouse=True)
def isolated_home(tmp_path, monkeypatch, session_cache):
    home = tmp_path / "home"
    monkeypatch.setenv("SBSEARCH_HOME", str(home))
    monkeypatch.setenv("SBSEARCH_INDEX", str(home / "indexes" / "default"))
    monkeypatch.setenv("SBSEARCH_MODELS_DIR", str(home / "models"))
    monkeypatch.setenv("SBSEARCH_CACHE", str(session_cache))
    monkeypatch.delenv("SBSEARCH_MODEL", raising=False)
    return home


def _words() -> list[str]:
    text = (
        "the a an of to and in is for on with how do i my can what when where you your we our it this that "
        "password reset account login vpn network wifi printer print laptop computer email travel trip hotel "
        "flight expense expenses claim receipt dinner meal office parking kitchen holiday vacation leave sick "
        "policy manager approve approval request form portal days week month year euro dollar security badge "
        "data logger sensor firmware release update install software license backup restore file folder "
        "share drive meeting room book calendar phone number support ticket help desk team"
    )
    return sorted(set(text.split()))


def build_tiny_model(root: Path, hidden: int = 32, seed: int = 0, layers: int = 2,
                     words: list[str] | None = None) -> Path:
    """A random 2-layer BERT with a locally built WordPiece tokenizer, saved as a sentence-transformers
    directory: fast enough for unit tests of indexing logic (its vectors are meaningless)."""
    import torch
    from sentence_transformers import SentenceTransformer
    from sentence_transformers.sentence_transformer import modules as models
    from transformers import BertConfig, BertModel, BertTokenizerFast

    torch.manual_seed(seed)
    hf_dir = root / "hf"
    hf_dir.mkdir(parents=True)
    vocab = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"] + list("abcdefghijklmnopqrstuvwxyz0123456789")
    vocab += ["##" + c for c in "abcdefghijklmnopqrstuvwxyz0123456789"] + (words or _words()) + list(".,?!:;-'\"()/")
    (hf_dir / "vocab.txt").write_text("\n".join(dict.fromkeys(vocab)) + "\n")
    tok = BertTokenizerFast(vocab_file=str(hf_dir / "vocab.txt"), do_lower_case=True)
    tok.save_pretrained(hf_dir)
    cfg = BertConfig(vocab_size=len(tok), hidden_size=hidden, num_hidden_layers=layers, num_attention_heads=2,
                     intermediate_size=hidden * 2, max_position_embeddings=256)
    BertModel(cfg).save_pretrained(hf_dir)
    transformer = models.Transformer(str(hf_dir), max_seq_length=128)
    pooling = models.Pooling(transformer.get_embedding_dimension(), "mean")
    model = SentenceTransformer(modules=[transformer, pooling, models.Normalize()], device="cpu")
    out = root / "tiny-st"
    model.save(str(out))
    return out


@pytest.fixture(scope="session")
def tiny_model_dir(tmp_path_factory) -> Path:
    return build_tiny_model(tmp_path_factory.mktemp("tiny-model"))
