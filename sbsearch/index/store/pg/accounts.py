"""The PostgreSQL store's accounts: users, API tokens, and failed sign-ins for rate limiting
across workers."""

from __future__ import annotations

import json
import time

from ..base import new_session_key, now


class AccountsMixin:
    """Users, tokens and sign-in failures, over self.conn."""

    def user(self, name: str) -> dict | None:
        row = self.conn.execute("SELECT * FROM users WHERE name = %s", [name]).fetchone()
        if row is not None:
            row["groups"] = json.loads(row["groups"] or "[]")
        return row

    def users(self) -> list[dict]:
        rows = self._rows("SELECT name, groups, created FROM users ORDER BY name")
        for r in rows:
            r["groups"] = json.loads(r["groups"] or "[]")
        return rows

    def put_user(self, name: str, password_hash: str | None, groups: list[str]) -> None:
        groups_json = json.dumps(sorted(set(groups)))
        # a new user or a new password: a new session key (every earlier session ends)
        key = new_session_key() if password_hash is not None else None
        with self.atomic():
            if self._value("SELECT count(*) FROM users WHERE name = %s", [name]):
                self.conn.execute("UPDATE users SET groups = %s, password_hash = coalesce(%s, password_hash), "
                                  "session_key = coalesce(%s, session_key) WHERE name = %s",
                                  [groups_json, password_hash, key, name])
            else:
                self.conn.execute("INSERT INTO users (name, password_hash, groups, created, session_key) "
                                  "VALUES (%s, %s, %s, %s, %s)", [name, password_hash, groups_json, now(), key])

    def reset_session_key(self, name: str) -> str | None:
        key = new_session_key()
        changed = self.conn.execute("UPDATE users SET session_key = %s WHERE name = %s", [key, name]).rowcount
        return key if changed else None

    def remove_user(self, name: str) -> bool:
        with self.atomic():
            self.conn.execute("DELETE FROM tokens WHERE \"user\" = %s", [name])
            return self.conn.execute("DELETE FROM users WHERE name = %s", [name]).rowcount > 0

    def add_token(self, token_id: str, user: str, label: str, token_hash: str) -> None:
        self.conn.execute("INSERT INTO tokens (id, \"user\", label, token_hash, created, last_used) "
                          "VALUES (%s, %s, %s, %s, %s, NULL)", [token_id, user, label, token_hash, now()])

    def token(self, token_id: str) -> dict | None:
        return self.conn.execute("SELECT * FROM tokens WHERE id = %s", [token_id]).fetchone()

    def tokens(self, user: str | None = None) -> list[dict]:
        sql = "SELECT id, \"user\", label, created, last_used FROM tokens"
        if user:
            return self._rows(sql + " WHERE \"user\" = %s ORDER BY id", [user])
        return self._rows(sql + " ORDER BY \"user\", id")

    def remove_token(self, token_id: str) -> bool:
        return self.conn.execute("DELETE FROM tokens WHERE id = %s", [token_id]).rowcount > 0

    def login_failures(self, key: str, window_s: float) -> int:
        row = self.conn.execute("SELECT failures, first_at FROM login_failures WHERE key = %s", [key]).fetchone()
        if row is None or time.time() - row["first_at"] > window_s:
            return 0
        return row["failures"]

    def record_login_failure(self, key: str, window_s: float) -> None:
        t = time.time()
        # a window that has passed starts again at one failure
        self.conn.execute(
            "INSERT INTO login_failures (key, failures, first_at) VALUES (%s, 1, %s) ON CONFLICT (key) DO UPDATE SET "
            "failures = CASE WHEN %s - login_failures.first_at > %s THEN 1 ELSE login_failures.failures + 1 END, "
            "first_at = CASE WHEN %s - login_failures.first_at > %s THEN EXCLUDED.first_at ELSE login_failures.first_at END",
            [key, t, t, window_s, t, window_s])

    def clear_login_failures(self, key: str) -> None:
        self.conn.execute("DELETE FROM login_failures WHERE key = %s", [key])
