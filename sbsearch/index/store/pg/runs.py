"""The PostgreSQL store's record of indexing runs and of model comparisons."""

from __future__ import annotations

import json

from ..base import now

_RUN_COLUMNS = {"ended", "status", "error", "seconds", "added", "updated", "removed", "unchanged", "failed",
                "chunks_embedded", "model"}


def _column(name: str) -> str:
    if name not in _RUN_COLUMNS:
        raise ValueError(f"no run column {name!r}")
    return name


class RunsMixin:
    """Runs and comparisons, over self.conn."""

    def start_run(self, model: str, roots: list[str]) -> int:
        if not self.has_lexical():  # lexical rows of an older format: rebuilt by the writer, first
            self.rebuild_lexical()
        return self._value("INSERT INTO runs (started, model, roots, status) VALUES (%s, %s, %s, 'running') "
                           "RETURNING id", [now(), model, json.dumps(roots)])

    def finish_run(self, run_id: int, **fields) -> None:
        fields = {"ended": now(), **fields}
        cols = ", ".join(f"{_column(k)} = %s" for k in fields)
        self.conn.execute(f"UPDATE runs SET {cols} WHERE id = %s", [*fields.values(), run_id])

    def mark_running_runs_interrupted(self) -> None:
        self.conn.execute("UPDATE runs SET status = 'interrupted' WHERE status = 'running'")

    def runs(self, limit: int = 10) -> list[dict]:
        return self._rows("SELECT * FROM runs ORDER BY id DESC LIMIT %s", [limit])

    def add_compare(self, model_a: str, model_b: str, result: dict) -> None:
        self.conn.execute("INSERT INTO compares (created, model_a, model_b, result) VALUES (%s, %s, %s, %s)",
                          [result.get("created") or now(), model_a, model_b, json.dumps(result)])

    def latest_compare(self, model: str) -> dict | None:
        row = self.conn.execute("SELECT * FROM compares WHERE model_a = %s OR model_b = %s ORDER BY id DESC LIMIT 1",
                                [model, model]).fetchone()
        if row is None:
            return None
        row["result"] = json.loads(row["result"])
        return row
