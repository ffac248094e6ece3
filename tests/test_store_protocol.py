"""Both stores implement the store contract (sbsearch.index.store.IndexStore): every member the
protocol declares exists on SqliteStore and on PgStore, every method with a signature a caller of
the protocol can use, every property as a property; and every public method the two stores share
is declared there, so that the contract cannot silently fall behind what callers use."""

from __future__ import annotations

import inspect

import pytest

from sbsearch.index.location import open_store
from sbsearch.index.store import IndexStore, SqliteStore, Store
from sbsearch.index.store.pg import PgStore

STORES = [SqliteStore, PgStore]
# What only one store has, on purpose: the SQLite store is exported from (`sbsearch migrate`),
# the PostgreSQL store imported into and holds its own vector index (pgvector's HNSW)
ONE_STORE_ONLY = {"EXPORTED", "export_rows", "IMPORTED", "is_empty", "import_rows", "finish_import", "hnsw_index",
                  "build_hnsw", "drop_hnsw", "nearest"}


def protocol_members(protocol: type) -> dict[str, object]:
    """name -> the protocol's declaration (function, property, or the annotation of an attribute)."""
    members = {name: value for name, value in vars(protocol).items()
               if not name.startswith("_") and (inspect.isfunction(value) or isinstance(value, property))}
    members.update({name: annotation for name, annotation in vars(protocol).get("__annotations__", {}).items()})
    return members


def signature_problems(declared, implemented) -> list[str]:
    """Why a call that the declared signature allows could fail on the implementation: a parameter
    missing, renamed, moved or of another kind; a default the declaration has and it lacks; a
    parameter of its own without a default. Empty when compatible."""
    want = list(inspect.signature(declared).parameters.values())
    have = list(inspect.signature(implemented).parameters.values())
    problems = []
    for i, p in enumerate(want):
        if p.kind is p.VAR_KEYWORD:
            if not any(q.kind is q.VAR_KEYWORD for q in have):
                problems.append(f"no **{p.name}")
            continue
        if i >= len(have) or have[i].name != p.name or have[i].kind != p.kind:
            problems.append(f"parameter {i} should be {p}, is {have[i] if i < len(have) else 'missing'}")
        elif p.default is not p.empty and have[i].default != p.default:
            problems.append(f"{p.name} should default to {p.default!r}")
    for q in have[len(want):]:
        if q.default is q.empty and q.kind not in (q.VAR_POSITIONAL, q.VAR_KEYWORD):
            problems.append(f"extra parameter {q} has no default")
    return problems


def contract_problems(cls: type, protocol: type = IndexStore) -> list[str]:
    problems = []
    for name, declared in protocol_members(protocol).items():
        if isinstance(declared, property):
            if not isinstance(inspect.getattr_static(cls, name, None), property):
                problems.append(f"{name}: not a property")
        elif inspect.isfunction(declared):
            implemented = inspect.getattr_static(cls, name, None)
            if not inspect.isfunction(implemented):
                problems.append(f"{name}: missing")
            else:
                problems += [f"{name}: {p}" for p in signature_problems(declared, implemented)]
        elif name not in ("path",) and not hasattr(cls, name):  # path is set per instance (checked below)
            problems.append(f"{name}: attribute missing")
    return problems


@pytest.mark.parametrize("cls", STORES, ids=lambda c: c.__name__)
def test_store_implements_the_protocol(cls):
    assert contract_problems(cls) == []


def test_what_both_stores_offer_is_declared():
    shared = {n for n in dir(SqliteStore) if not n.startswith("_")} & {n for n in dir(PgStore) if not n.startswith("_")}
    assert shared - set(protocol_members(IndexStore)) == set()
    for cls in STORES:
        own = {n for n in dir(cls) if not n.startswith("_")} - set(protocol_members(IndexStore))
        assert own <= ONE_STORE_ONLY, f"{cls.__name__} has public methods outside the protocol: {own - ONE_STORE_ONLY}"


def test_the_check_finds_a_missing_method_and_an_incompatible_signature():
    class Broken(SqliteStore):
        def runs(self, count: int = 10) -> list[dict]:  # renamed parameter: runs(limit=3) would fail
            return []

        def headings(self, limit: int, min_length: int = 8, max_length: int = 120, *, sort: str) -> list[str]:
            return []

        summary = None  # no longer a method

    problems = contract_problems(Broken)
    assert any(p.startswith("runs: parameter 1") for p in problems)
    assert any(p.startswith("headings: extra parameter") for p in problems)
    assert "summary: missing" in problems
    assert len(problems) == 3


def test_an_opened_folder_store_is_an_index_store(tmp_path):
    store = open_store(tmp_path / "index", create=True)
    try:
        assert isinstance(store, Store) and isinstance(store, IndexStore)
        assert store.path == tmp_path / "index"
    finally:
        store.close()


def test_an_opened_postgresql_store_is_an_index_store(pg_url):
    store = open_store(pg_url, create=True)
    try:
        assert isinstance(store, PgStore) and isinstance(store, IndexStore)
        assert "***" in store.path or "@" not in store.path  # the URL without its password
    finally:
        store.close()
