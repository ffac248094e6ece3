"""The SQLite store's record of indexing runs and of model comparisons."""

from __future__ import annotations

import json

from ..base import now


class RunsMixin:
    """Runs and comparisons, over self.db."""

    def start_run(self, model: str, roots: list[str]) -> int:
        return self.db["runs"].insert(
            {"started": now(), "model": model, "roots": json.dumps(roots), "status": "running"}
        ).last_pk

    def finish_run(self, run_id: int, **fields) -> None:
        self.db["runs"].update(run_id, {"ended": now(), **fields})

    def mark_running_runs_interrupted(self) -> None:
        """Call while holding the writer lock: a run still marked "running" belongs to a writer that died."""
        self.db.execute("UPDATE runs SET status = 'interrupted' WHERE status = 'running'")

    def runs(self, limit: int = 10) -> list[dict]:
        return list(self.db.query("SELECT * FROM runs ORDER BY id DESC LIMIT ?", [limit]))

    def add_compare(self, model_a: str, model_b: str, result: dict) -> None:
        """A measurement of model A against reference B (a `compare`, or the label-free estimate of
        `tune`); the newest one naming a model feeds that model's query footer."""
        self.db["compares"].insert({"created": result.get("created") or now(), "model_a": model_a,
                                    "model_b": model_b, "result": json.dumps(result)})

    def latest_compare(self, model: str) -> dict | None:
        rows = list(self.db.query(
            "SELECT * FROM compares WHERE model_a = ? OR model_b = ? ORDER BY id DESC LIMIT 1", [model, model]))
        if not rows:
            return None
        row = rows[0]
        row["result"] = json.loads(row["result"])
        return row
