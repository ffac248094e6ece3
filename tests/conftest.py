"""Test fixtures: every test gets its own home/index/models dirs; models come from local files only.

Two tiers: `pytest -m "not slow"` runs on the fake embedder (sbsearch.embed.fake, models named
`fake`, `fake-b`, `fake-48` ...) and must not import torch; the slow tier holds every test that
needs a real model. A test that builds a torch model through a fixture, or sits in a module that
imports torch at the top, is slow whatever its markers say.
"""

from __future__ import annotations

import functools
import itertools
import os
import re
import sys
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
    # `fake` model names resolve (in this process and the sbsearch subprocesses it starts)
    monkeypatch.setenv("SBSEARCH_FAKE_MODELS", "1")
    return home


@pytest.fixture
def fake_embedder(isolated_home):
    """The 64-d fake model `fake`, ready for Indexer(..., embedder=) or Searcher(..., embedder=)."""
    from sbsearch.embed.fake import FakeEmbedder

    return FakeEmbedder("fake")


# ------------------------------------------------------------------------------------ PostgreSQL

@pytest.fixture(scope="session")
def pg_server(tmp_path_factory):
    """A real PostgreSQL 16 with pgvector (the pgserver package), one per test run; skipped where
    the scale extra is not installed. Set SBSEARCH_TEST_PG to a server URL to use that instead."""
    env = os.environ.get("SBSEARCH_TEST_PG")
    if env:
        yield env
        return
    pgserver = pytest.importorskip("pgserver")
    pytest.importorskip("psycopg")
    pytest.importorskip("pgvector")
    # Not under pytest's basetemp: run as root, pgserver runs postgres as the `pgserver` user and
    # opens the data dir's parents to it, and every other pytest session that starts on this
    # machine (parallel runs, other checkouts) sets /tmp/pytest-of-<user> back to 0700, locking the
    # running server out of its own files (backends crash, "database system is in recovery mode").
    import shutil
    import tempfile

    data = Path(tempfile.mkdtemp(prefix="sbsearch-test-pg-"))
    server = pgserver.get_server(data, cleanup_mode="stop")
    try:
        yield server.get_uri()
    finally:
        server.cleanup()
        shutil.rmtree(data, ignore_errors=True)


def _fresh_database(pg_server):
    import re as _re

    import psycopg

    name = f"t{os.getpid()}_{next(_pg_counter)}"
    with psycopg.connect(pg_server, autocommit=True) as conn:
        conn.execute(f"CREATE DATABASE {name}")
    yield _re.sub(r"(://[^/?]*/)[^?]*", lambda m: m.group(1) + name, pg_server, count=1)
    with psycopg.connect(pg_server, autocommit=True) as conn:
        conn.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")


@pytest.fixture
def pg_url(pg_server):
    """The URL of a fresh, empty database on the test server (each test has its own)."""
    yield from _fresh_database(pg_server)


@pytest.fixture
def pg_url_2(pg_server):
    """A second fresh database, for a test that compares two indexes (a clean build)."""
    yield from _fresh_database(pg_server)


_pg_counter = itertools.count()


# ------------------------------------------------------------------------------------ tiers

TORCH_MODEL_FIXTURES = {"tiny_model_dir", "tiny_bert"}  # each builds a BERT with torch
_TORCH_AT_IMPORT = re.compile(r"^(import|from) torch\b", re.MULTILINE)
_torch_first_loaded_by: list[str] = []


def _quick_tier(config) -> bool:
    return " ".join((config.getoption("markexpr") or "").split()) == "not slow"


@functools.lru_cache(maxsize=None)
def _imports_torch_at_import(path: Path) -> bool:
    try:
        return bool(_TORCH_AT_IMPORT.search(path.read_text(encoding="utf-8")))
    except (OSError, UnicodeDecodeError):
        return False


def pytest_ignore_collect(collection_path: Path, config):
    # Collecting a module runs its imports whatever -m says. A test module that imports torch at
    # the top holds only slow tests (below), so the quick tier does not collect it at all.
    if (_quick_tier(config) and collection_path.name.startswith("test_") and collection_path.suffix == ".py"
            and _imports_torch_at_import(collection_path)):
        return True
    return None


@pytest.hookimpl(tryfirst=True)  # before -m deselects by marker
def pytest_collection_modifyitems(config, items):
    for item in items:
        if TORCH_MODEL_FIXTURES & set(getattr(item, "fixturenames", ())) or _imports_torch_at_import(item.path):
            item.add_marker(pytest.mark.slow)


def pytest_collection_finish(session):
    if "torch" in sys.modules and not _torch_first_loaded_by:
        _torch_first_loaded_by.append("collecting the tests")


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_protocol(item, nextitem):
    loaded_before = "torch" in sys.modules
    yield
    if not loaded_before and "torch" in sys.modules and not _torch_first_loaded_by:
        _torch_first_loaded_by.append(item.nodeid)


def pytest_sessionfinish(session, exitstatus):
    if _quick_tier(session.config) and "torch" in sys.modules:
        where = _torch_first_loaded_by[0] if _torch_first_loaded_by else "setup"
        message = (f'the quick tier (-m "not slow") imported torch, first in {where}; '
                   "move that test onto a fake model or mark it @pytest.mark.slow")
        reporter = session.config.pluginmanager.get_plugin("terminalreporter")
        if reporter is not None:
            reporter.write("\n")  # the progress line may still be open
            reporter.write_line(message, red=True, bold=True)
        else:
            sys.stderr.write(message + "\n")
        session.exitstatus = pytest.ExitCode.TESTS_FAILED


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
