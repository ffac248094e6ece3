"""The package layout of docs/ARCHITECTURE.md, checked on the source: every import of every module
(function-level ones included: a lazy import is still a dependency) goes to the same or a lower
layer, no two modules or rooms depend on each other in a cycle, and SQL is written only in the
store. Pure ast: nothing is imported."""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]

# Rooms (sub-packages, or the top-level modules of sbsearch) and their layers, lowest first. A
# module may import modules of its own layer or below, never above.
LAYERS = {
    0: {"sbsearch", "errors", "config", "hashing", "progress", "wording", "textsafe"},
    1: {"ingest", "embed", "vectors", "quality", "lexical", "access"},
    2: {"index"},
    3: {"search", "pruning"},
    4: {"model_choice"},
    5: {"app"},
    6: {"cli", "web", "__main__"},
}
LAYER_OF = {room: layer for layer, rooms in LAYERS.items() for room in rooms}
SQL = re.compile(r"^\s*(SELECT|INSERT|UPDATE|DELETE|REPLACE|PRAGMA|BEGIN|COMMIT|ROLLBACK|CREATE|DROP|ALTER)\b")


def _modules() -> dict[str, Path]:
    """Dotted name -> file, for sbsearch and pruning."""
    out = {}
    for top in ("sbsearch", "pruning"):
        for path in sorted((REPO / top).rglob("*.py")):
            parts = list(path.relative_to(REPO).with_suffix("").parts)
            if parts[-1] == "__init__":
                parts = parts[:-1]
            out[".".join(parts)] = path
    return out


MODULES = _modules()


def room(module: str) -> str:
    parts = module.split(".")
    if parts[0] == "pruning":
        return "pruning"
    return parts[1] if len(parts) > 1 else "sbsearch"


def _is_package(module: str) -> bool:
    return MODULES[module].name == "__init__.py"


def imports(module: str) -> set[str]:
    """Project modules that `module` imports, wherever the import statement is."""
    tree = ast.parse(MODULES[module].read_text(encoding="utf-8"))
    package = module if _is_package(module) else module.rpartition(".")[0]
    found = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            targets = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")
                base = base[:len(base) - (node.level - 1)]
                origin = ".".join(base + ([node.module] if node.module else []))
            else:
                origin = node.module
            # `from a import b` names module a.b when b is a module, else something inside a
            targets = [f"{origin}.{alias.name}" if f"{origin}.{alias.name}" in MODULES else origin
                       for alias in node.names]
        else:
            continue
        for target in targets:
            while target and target not in MODULES:  # `import a.b.c` of a module a.b.c: itself
                target = target.rpartition(".")[0]
            if target and target != module:
                found.add(target)
    return found


GRAPH = {m: imports(m) for m in MODULES}


def test_every_room_has_a_layer():
    assert {room(m) for m in MODULES} <= set(LAYER_OF), \
        f"rooms without a layer (add them to LAYERS and docs/ARCHITECTURE.md): {set(map(room, MODULES)) - set(LAYER_OF)}"


def test_no_module_imports_a_higher_layer():
    bad = [f"{m} (layer {LAYER_OF[room(m)]}) imports {t} (layer {LAYER_OF[room(t)]})"
           for m, targets in GRAPH.items() for t in sorted(targets)
           if LAYER_OF[room(t)] > LAYER_OF[room(m)]]
    assert not bad, "\n".join(bad)


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one node (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    out = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in graph.get(v, ()):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                out.append(sorted(component))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return out


def test_no_import_cycles_between_modules():
    assert _cycles(GRAPH) == []


def test_no_import_cycles_between_rooms():
    rooms: dict[str, set[str]] = {}
    for m, targets in GRAPH.items():
        rooms.setdefault(room(m), set()).update(room(t) for t in targets if room(t) != room(m))
    assert _cycles(rooms) == []


# The stores: SQLite (the embedded default) and PostgreSQL + pgvector (the shared one), every module of the package
STORE_PACKAGE = "sbsearch.index.store"


def _in_store(module: str) -> bool:
    return module == STORE_PACKAGE or module.startswith(STORE_PACKAGE + ".")


@pytest.mark.parametrize("module", sorted(MODULES))
def test_only_the_store_writes_sql(module):
    if _in_store(module):
        return
    tree = ast.parse(MODULES[module].read_text(encoding="utf-8"))
    sql = [node.value for node in ast.walk(tree)
           if isinstance(node, ast.Constant) and isinstance(node.value, str) and SQL.match(node.value)]
    assert not sql, f"{module} writes SQL; add a method to the stores (sbsearch.index.store.IndexStore) instead: {sql}"


# What the faces (the terminal and the web) may import of the index: the value a filter is; the
# stores, where an index lives and the indexer are reached through sbsearch.app
FACE_MAY_IMPORT_FROM_INDEX = {"sbsearch.index.filters"}


@pytest.mark.parametrize("module", sorted(m for m in MODULES if room(m) in ("cli", "web")))
def test_the_faces_reach_the_store_only_through_app(module):
    reached = sorted(t for t in GRAPH[module] if room(t) == "index" and t not in FACE_MAY_IMPORT_FROM_INDEX)
    assert not reached, f"{module} imports {reached}; ask sbsearch.app instead"


# pruning is a library, text in and model out: it reaches sbsearch through pruning.host alone, and
# through it only for what a model is there (loading, paths, the error type) and the retrieval
# arithmetic its evaluation shares with sbsearch. Where text comes from (stores, folders, the
# scanner) and the suites that measure sbsearch's own machinery (int8, labelfree) stay in sbsearch.
PRUNING_DOOR = "pruning.host"
PRUNING_MAY_USE = {
    "sbsearch": "the package itself (`from sbsearch import config`)",
    "sbsearch.errors": "the one error type every face reports in one line",
    "sbsearch.config": "where models, caches and the shared data sets live",
    "sbsearch.embed.models": "resolve and load a model (the base, the teacher; export loads like sbsearch)",
    "sbsearch.quality.metrics": "retrieval measures shared with `sbsearch eval`, so the numbers agree",
    "sbsearch.lexical.analysis": "what counts as Japanese or Chinese text, as the index decides it",
}


@pytest.mark.parametrize("module", sorted(m for m in MODULES if m.startswith("pruning")))
def test_pruning_reaches_sbsearch_only_through_its_door(module):
    used = sorted(t for t in GRAPH[module] if t.startswith("sbsearch"))
    if module == PRUNING_DOOR:
        assert set(used) <= set(PRUNING_MAY_USE), f"{module} imports {set(used) - set(PRUNING_MAY_USE)}"
    else:
        assert not used, f"{module} imports {used}; go through {PRUNING_DOOR} (or hand pruning the data)"


@pytest.mark.parametrize("module", sorted(m for m in MODULES if m.startswith("pruning")))
def test_pruning_opens_no_database(module):
    tree = ast.parse(MODULES[module].read_text(encoding="utf-8"))
    names = {alias.name.split(".")[0] for node in ast.walk(tree) if isinstance(node, (ast.Import, ast.ImportFrom))
             for alias in (node.names if isinstance(node, ast.Import) else [ast.alias(node.module or "")])}
    assert not names & {"sqlite3", "psycopg", "psycopg2"}, f"{module} opens a database; sbsearch hands it the text"


def test_the_checker_sees_lazy_and_relative_imports():
    assert "sbsearch.embed.models" in GRAPH["sbsearch.index.indexer"]  # relative, two dots
    assert "sbsearch.embed.int8_export" in GRAPH["sbsearch.embed.models"]  # inside a function
    assert "sbsearch.index.indexer" in GRAPH["sbsearch.app"]
    assert _cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]
