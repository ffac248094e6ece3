"""Passwords and API tokens: stored only as salted, slow argon2 hashes, never in plain text."""

from __future__ import annotations

import secrets

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError

_hasher = PasswordHasher()  # argon2id, salted; parameters in the hash, so they can be raised later

TOKEN_PREFIX = "sbs"


def hash_secret(secret: str) -> str:
    return _hasher.hash(secret)


def verify_secret(stored_hash: str, secret: str) -> bool:
    try:
        return _hasher.verify(stored_hash, secret)
    except (VerifyMismatchError, VerificationError, InvalidHashError):
        return False


_dummy_hash: str | None = None


def verify_nobody(secret: str) -> bool:
    """As long as verify_secret takes, for a user who does not exist (or an empty name): a wrong
    password must take the same time whether or not the name is a user's, or the time tells who
    has an account. Always False."""
    global _dummy_hash
    if _dummy_hash is None:
        _dummy_hash = _hasher.hash(secrets.token_urlsafe(16))
    verify_secret(_dummy_hash, secret)
    return False


def new_token(token_id: str) -> str:
    """`sbs_<id>_<secret>`: the id finds the one stored hash to check, so a request costs one
    argon2 verification however many tokens exist."""
    return f"{TOKEN_PREFIX}_{token_id}_{secrets.token_urlsafe(32)}"


def token_id_of(token: str) -> str | None:
    parts = token.split("_", 2)
    if len(parts) != 3 or parts[0] != TOKEN_PREFIX or not parts[1]:
        return None
    return parts[1]


def new_token_id() -> str:
    return secrets.token_hex(6)
