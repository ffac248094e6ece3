"""The SQLite store's accounts: users (their groups, password hash and session key), API tokens,
and failed sign-ins for rate limiting across workers."""

from __future__ import annotations

import json

from ..base import new_session_key, now


class AccountsMixin:
    """Users, tokens and sign-in failures, over self.db."""

    def user(self, name: str) -> dict | None:
        rows = list(self.db.query("SELECT * FROM users WHERE name = ?", [name]))
        if not rows:
            return None
        row = rows[0]
        row["groups"] = json.loads(row["groups"] or "[]")
        return row

    def users(self) -> list[dict]:
        out = []
        for r in self.db.query("SELECT name, groups, created FROM users ORDER BY name"):
            r["groups"] = json.loads(r["groups"] or "[]")
            out.append(r)
        return out

    def put_user(self, name: str, password_hash: str | None, groups: list[str]) -> None:
        """Add a user, or change an existing one's groups (and password when given). A new user or
        a new password gets a new session key: every session signed in before ends."""
        row = {"name": name, "groups": json.dumps(sorted(set(groups)))}
        if password_hash is not None:
            row["password_hash"] = password_hash
            row["session_key"] = new_session_key()
        with self.db.atomic():
            if self.db.execute("SELECT 1 FROM users WHERE name = ?", [name]).fetchone():
                self.db["users"].update(name, row)
            else:
                self.db["users"].insert({**row, "created": now()})

    def reset_session_key(self, name: str) -> str | None:
        """A new session key for a user (sign-out: all the user's sessions end); None: no such user."""
        key = new_session_key()
        changed = self.db.execute("UPDATE users SET session_key = ? WHERE name = ?", [key, name]).rowcount
        return key if changed else None

    def remove_user(self, name: str) -> bool:
        with self.db.atomic():
            self.db.execute("DELETE FROM tokens WHERE user = ?", [name])
            return self.db.execute("DELETE FROM users WHERE name = ?", [name]).rowcount > 0

    def add_token(self, token_id: str, user: str, label: str, token_hash: str) -> None:
        self.db["tokens"].insert({"id": token_id, "user": user, "label": label, "token_hash": token_hash,
                                  "created": now(), "last_used": None})

    def token(self, token_id: str) -> dict | None:
        rows = list(self.db.query("SELECT * FROM tokens WHERE id = ?", [token_id]))
        return rows[0] if rows else None

    def tokens(self, user: str | None = None) -> list[dict]:
        sql = "SELECT id, user, label, created, last_used FROM tokens"
        return list(self.db.query(sql + (" WHERE user = ? ORDER BY id" if user else " ORDER BY user, id"),
                                  [user] if user else []))

    def remove_token(self, token_id: str) -> bool:
        return self.db.execute("DELETE FROM tokens WHERE id = ?", [token_id]).rowcount > 0

    def login_failures(self, key: str, window_s: float) -> int:
        """Failed sign-ins for key within the last window_s seconds."""
        import time

        row = self.db.execute("SELECT failures, first_at FROM login_failures WHERE key = ?", [key]).fetchone()
        if row is None or time.time() - row[1] > window_s:
            return 0
        return row[0]

    def record_login_failure(self, key: str, window_s: float) -> None:
        import time

        t = time.time()
        with self.db.atomic():
            row = self.db.execute("SELECT failures, first_at FROM login_failures WHERE key = ?", [key]).fetchone()
            if row is None or t - row[1] > window_s:
                self.db["login_failures"].upsert({"key": key, "failures": 1, "first_at": t}, pk="key")
            else:
                self.db.execute("UPDATE login_failures SET failures = failures + 1 WHERE key = ?", [key])

    def clear_login_failures(self, key: str) -> None:
        self.db.execute("DELETE FROM login_failures WHERE key = ?", [key])
