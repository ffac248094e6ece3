"""What both stores do alike over their own SQL: the generation, the model registry's refusals,
the summary `status` shows, and the WHERE condition of a DocumentFilter in either dialect."""

from __future__ import annotations

import datetime as dt
import json

from ...errors import SbsearchError
from ..filters import DocumentFilter


def now() -> str:
    return dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds")


def new_session_key() -> str:
    import secrets

    return secrets.token_urlsafe(24)


def filter_where(doc_filter: DocumentFilter | None, relpath: str, mark: str, glob_op: str, glob_value,
                 groups_sql, none: str) -> tuple[str, list]:
    """A WHERE condition over documents d (and its parameters) for a DocumentFilter, in either
    store's dialect: relpath (SQL of the path below its root), mark (a parameter's placeholder),
    glob_op and glob_value (how a path matches a glob), groups_sql (groups -> SQL, parameters of the
    reader-trimming clause), none (the condition that keeps everything)."""
    if doc_filter is None or not doc_filter.active:
        return none, []
    clauses, params = [], []
    if doc_filter.paths:
        clauses.append("(" + " OR ".join(f"{relpath} {glob_op} {mark} OR d.path {glob_op} {mark}"
                                         for _ in doc_filter.paths) + ")")
        for glob in doc_filter.paths:
            params += [glob_value(glob)] * 2
    if doc_filter.types:
        clauses.append("(" + " OR ".join(f"lower(d.path) LIKE {mark}" for _ in doc_filter.types) + ")")
        params += [f"%.{t}" for t in doc_filter.types]
    if doc_filter.folders:
        clauses.append("(" + " OR ".join(
            f"substr({relpath}, 1, length({mark}) + 1) = {mark} || '/' OR substr(d.path, 1, length({mark}) + 1) = {mark} || '/'"
            for _ in doc_filter.folders) + ")")
        for folder in doc_filter.folders:
            params += [folder] * 4
    if doc_filter.modified_after is not None:
        clauses.append(f"d.mtime > {mark}")
        params.append(doc_filter.modified_after)
    if doc_filter.groups is not None:  # the reader's groups; "*" marks documents for everyone
        clause, group_params = groups_sql(sorted({*doc_filter.groups, "*"}))
        clauses.append(clause)
        params += group_params
    return " AND ".join(clauses), params


class StoreBase:
    """A store provides get_meta/set_meta, model_row, models, chunk_count, vector_counts,
    lexical_summary, disk_bytes, vector_encoding, runs, _insert_model, _document_totals and _document_lists."""

    @property
    def generation(self) -> int:
        return int(self.get_meta("generation", "0"))

    def _bump_generation(self) -> int:
        gen = self.generation + 1
        self.set_meta("generation", str(gen))
        return gen

    @property
    def access_version(self) -> int:
        """Counts changes of documents' readers that published nothing (a rules change): what a
        reader may read is a function of (generation, access_version), and caches of it are keyed
        by both."""
        return int(self.get_meta("access_version", "0"))

    @property
    def state(self) -> tuple[int, int]:
        """(generation, access_version): the state of the index as a reader sees it."""
        return self.generation, self.access_version

    def register_model(self, name: str, path: str, sha256: str | None, dim: int, layers: int | None,
                       total_layers: int | None, info: dict | None = None) -> None:
        """Remember which weights produced a model's vectors; refuse a silent change of model."""
        row = self.model_row(name)
        if row is not None:
            if row["dim"] != dim:
                raise SbsearchError(
                    f"model {name!r} gives {dim}-d vectors but this index holds {row['dim']}-d vectors "
                    f"for it; use another --index or `sbsearch index --reembed`"
                )
            if sha256 and row["sha256"] and row["sha256"] != sha256:
                raise SbsearchError(
                    f"model {name!r} has changed since it indexed these documents (weights sha256 "
                    f"{sha256[:12]}… vs {row['sha256'][:12]}…); re-embed with `sbsearch index --reembed`"
                )
            return
        self._insert_model({"name": name, "path": path, "sha256": sha256, "dim": dim, "layers": layers,
                            "total_layers": total_layers, "added_at": now(), "info": json.dumps(info or {})})

    def summary(self, runs: int = 5) -> dict:
        totals = self._document_totals()
        counts = self.vector_counts()
        return {
            "index": str(self.path),
            "generation": self.generation,
            **totals,
            "chunks": self.chunk_count(),
            "models": [
                {"name": m["name"], "dim": m["dim"], "layers": m["layers"], "total_layers": m["total_layers"],
                 "vectors": counts.get(m["name"], 0)}
                for m in self.models()
            ],
            "default_model": self.get_meta("default_model"),
            "model_reason": self.get_meta("model_reason"),  # why a new index got it (index/language.py)
            "lexical": self.lexical_summary(),
            "size_bytes": self.disk_bytes(),  # of the store (FAISS files are not the SQLite store's)
            "vector_encoding": self.vector_encoding(),
            "last_runs": self.runs(runs),
            **self._document_lists(),
        }
