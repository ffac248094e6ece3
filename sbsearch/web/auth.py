"""Who is asking: a signed session cookie (local users), an API token, or a trusted reverse proxy's
headers; CSRF tokens for forms; a limit on failed sign-ins.

Every request is resolved to a Reader (name, groups) or to nobody; the store is asked afresh each
time, so a removed user or a changed group takes effect on the next request, not at the next
sign-in.
"""

from __future__ import annotations

import hashlib
import hmac
import ipaddress
import secrets
from dataclasses import dataclass, field

from itsdangerous import BadSignature, URLSafeTimedSerializer

from ..access.secrets import token_id_of, verify_secret

SESSION_COOKIE = "sbsearch_session"
CSRF_COOKIE = "sbsearch_csrf"
SESSION_MAX_AGE_S = 12 * 3600
LOGIN_WINDOW_S = 15 * 60
LOGIN_MAX_FAILURES = 5


@dataclass(frozen=True)
class Reader:
    name: str
    groups: tuple[str, ...]
    via: str  # "session", "token", "proxy" or "public"


@dataclass
class AuthSettings:
    """How the server accepts readers. mode: "local" (users and tokens of the index), "proxy"
    (a reverse proxy's user/groups headers, from trusted addresses only; tokens too) or "public"
    (no sign-in: everyone reads what the rules give to everyone)."""

    mode: str = "local"
    secret_key: str = ""
    trusted_proxies: list[str] = field(default_factory=lambda: ["127.0.0.1/32", "::1/128"])
    user_header: str = "X-Forwarded-User"
    groups_header: str = "X-Forwarded-Groups"
    secure_cookies: bool = False

    def serializer(self) -> URLSafeTimedSerializer:
        return URLSafeTimedSerializer(self.secret_key, salt="sbsearch-session")


def session_cookie(settings: AuthSettings, user: str) -> str:
    return settings.serializer().dumps({"u": user})


def session_user(settings: AuthSettings, cookie: str | None) -> str | None:
    """The user a session cookie names, if its signature holds and it has not expired."""
    if not cookie:
        return None
    try:
        data = settings.serializer().loads(cookie, max_age=SESSION_MAX_AGE_S)
    except BadSignature:  # tampered, expired, or signed with another key
        return None
    return data.get("u") if isinstance(data, dict) else None


# sha256 of a token -> the stored hash it was verified against. argon2 is slow on purpose (~50 ms
# of CPU); a program calling the API many times a second would spend its server on it. The stored
# row is still read on every request, so a removed token or user stops working at once.
_verified: dict[str, str] = {}


def token_user(store, authorization: str | None) -> str | None:
    """The user of a valid `Authorization: Bearer sbs_…` token."""
    if not authorization or not authorization.lower().startswith("bearer "):
        return None
    token = authorization[7:].strip()
    token_id = token_id_of(token)
    row = store.token(token_id) if token_id else None
    if row is None:
        return None
    digest = hashlib.sha256(token.encode()).hexdigest()
    if _verified.get(digest) != row["token_hash"]:
        if not verify_secret(row["token_hash"], token):
            return None
        if len(_verified) > 10_000:
            _verified.clear()
        _verified[digest] = row["token_hash"]
    return row["user"]


def from_trusted_proxy(settings: AuthSettings, client_host: str | None) -> bool:
    if not client_host:
        return False
    try:
        address = ipaddress.ip_address(client_host)
    except ValueError:
        return False
    return any(address in ipaddress.ip_network(net, strict=False) for net in settings.trusted_proxies)


def proxy_reader(settings: AuthSettings, headers, client_host: str | None) -> Reader | None:
    """The proxy's user and groups, only from a configured proxy address: anyone else could send
    the same headers."""
    user = headers.get(settings.user_header)
    if not user or not from_trusted_proxy(settings, client_host):
        return None
    groups = [g.strip() for g in (headers.get(settings.groups_header) or "").split(",") if g.strip()]
    return Reader(user.strip(), tuple(groups), "proxy")


def new_csrf_token() -> str:
    return secrets.token_urlsafe(24)


def csrf_ok(cookie_value: str | None, form_value: str | None) -> bool:
    """Double submit: the form must carry the value of the cookie it came with (another site can
    make a browser send the cookie, but cannot read it to put it in the form)."""
    return bool(cookie_value and form_value) and hmac.compare_digest(cookie_value, form_value)
