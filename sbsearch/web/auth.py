"""Who is asking: a signed session cookie (local users), an API token, or a trusted reverse proxy's
headers; CSRF tokens for forms; limits on failed sign-ins and failed token checks.

Every request is resolved to a Reader (name, groups) or to nobody; the store is asked afresh each
time, so a removed user or a changed group takes effect on the next request, not at the next
sign-in. A session cookie names its user and that user's session key (a random value stored with
the user): signing out, a new password, or removing and re-adding the user replaces the key, and
every cookie issued before is dead at once.

Which address a request comes from is decided on the socket's peer, never on a header alone: a
reverse proxy's X-Forwarded-For is read only when the peer is a --trusted-proxy address, and then
its right-most address that is not itself a trusted proxy is the client.
"""

from __future__ import annotations

import base64
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
# failed sign-ins from one client address (any user names) before that address must wait out the window
LOGIN_MAX_FAILURES = 5
# failed sign-ins for one user (from any addresses) after which the user is throttled: only an
# address that has itself failed at most THROTTLED_ADDRESS_FAILURES times may still try that user.
# Guessing is bounded (per address and per user), yet no one can lock a user out from elsewhere.
USER_THROTTLE_FAILURES = 5
THROTTLED_ADDRESS_FAILURES = 1
# failed API token checks from one client address (each costs an argon2 verification)
TOKEN_MAX_FAILURES = 10


class TooManyFailures(Exception):
    """A client address (or a user name) has failed too often: answer 429 without checking."""


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

    @property
    def session_cookie(self) -> str:
        """The session cookie's name: with Secure cookies, the __Host- prefix (the browser keeps it
        only if Secure, Path=/ and host-only, so no other host of the domain can set or shadow it)."""
        return ("__Host-" if self.secure_cookies else "") + SESSION_COOKIE

    @property
    def csrf_cookie(self) -> str:
        return ("__Host-" if self.secure_cookies else "") + CSRF_COOKIE


# ------------------------------------------------------------------------------------------ sessions

def session_cookie(settings: AuthSettings, user: str, session_key: str) -> str:
    return settings.serializer().dumps({"u": user, "k": _key_tag(session_key)})


def _key_tag(session_key: str) -> str:
    """What a cookie carries of the user's session key: a digest, not the stored value."""
    return hashlib.sha256(b"sbsearch-session-key|" + session_key.encode()).hexdigest()[:32]


def session_user(settings: AuthSettings, cookie: str | None) -> tuple[str, str] | None:
    """(user, key tag) of a session cookie, if its signature holds and it has not expired."""
    if not cookie:
        return None
    try:
        data = settings.serializer().loads(cookie, max_age=SESSION_MAX_AGE_S)
    except BadSignature:  # tampered, expired, or signed with another key
        return None
    if not isinstance(data, dict) or not isinstance(data.get("u"), str) or not isinstance(data.get("k"), str):
        return None  # a cookie of an older server (no session key): sign in again
    return data["u"], data["k"]


def session_matches(user_row: dict | None, key_tag: str) -> bool:
    """The cookie's key is the user's current one (not signed out, no new password, not re-created)."""
    stored = (user_row or {}).get("session_key")
    return bool(stored) and hmac.compare_digest(_key_tag(stored).encode(), key_tag.encode())


# ------------------------------------------------------------------------------------------ tokens

# sha256 of a token -> the stored hash it was verified against. argon2 is slow on purpose (~50 ms
# of CPU); a program calling the API many times a second would spend its server on it. The stored
# row is still read on every request, so a removed token or user stops working at once.
_verified: dict[str, str] = {}


def token_user(store, authorization: str | None, client: str = "unknown") -> str | None:
    """The user of a valid `Authorization: Bearer sbs_…` token. Failed checks count per client
    address; past TOKEN_MAX_FAILURES in the window, TooManyFailures (no argon2 work is done)."""
    if not authorization or not authorization.lower().startswith("bearer "):
        return None
    token = authorization[7:].strip()
    token_id = token_id_of(token)
    row = store.token(token_id) if token_id else None
    digest = hashlib.sha256(token.encode()).hexdigest()
    if row is not None and _verified.get(digest) == row["token_hash"]:
        return row["user"]
    key = f"token:{client}"
    if store.login_failures(key, LOGIN_WINDOW_S) >= TOKEN_MAX_FAILURES:
        raise TooManyFailures("too many failed token checks from this address; try again later")
    if row is None or not verify_secret(row["token_hash"], token):
        store.record_login_failure(key, LOGIN_WINDOW_S)
        return None
    if len(_verified) > 10_000:
        _verified.clear()
    _verified[digest] = row["token_hash"]
    return row["user"]


# ------------------------------------------------------------------------------------------ addresses

def _address(text: str | None):
    try:
        return ipaddress.ip_address((text or "").strip())
    except ValueError:
        return None


def _trusted(settings: AuthSettings, address) -> bool:
    return address is not None and any(address in ipaddress.ip_network(net, strict=False)
                                       for net in settings.trusted_proxies)


def from_trusted_proxy(settings: AuthSettings, client_host: str | None) -> bool:
    """The socket's peer is a configured proxy address."""
    return _trusted(settings, _address(client_host))


def client_address(settings: AuthSettings, peer: str | None, forwarded_for: str | None) -> str:
    """The address a request comes from, for rate limits: the socket's peer; when the peer is a
    trusted proxy, the right-most X-Forwarded-For address that is not a trusted proxy (addresses
    left of it were written by the client and prove nothing)."""
    if not peer:
        return "unknown"
    if not forwarded_for or not from_trusted_proxy(settings, peer):
        return peer
    hops = [h.strip() for h in forwarded_for.split(",") if h.strip()]
    for hop in reversed(hops):
        address = _address(hop)
        if address is None:
            return hop[:64]  # a trusted proxy passed it on: count it as it is
        if not _trusted(settings, address):
            return str(address)
    return str(_address(hops[0])) if hops else peer


def proxy_reader(settings: AuthSettings, headers, peer: str | None) -> Reader | None:
    """The proxy's user and groups, only when the socket's peer is a configured proxy address:
    anyone else could send the same headers (X-Forwarded-For included)."""
    user = headers.get(settings.user_header)
    if not user or not from_trusted_proxy(settings, peer):
        return None
    groups = [g.strip() for g in (headers.get(settings.groups_header) or "").split(",") if g.strip()]
    return Reader(user.strip(), tuple(groups), "proxy")


# ------------------------------------------------------------------------------------------ sign-in limits

def login_allowed(store, name: str, client: str) -> bool:
    """Whether a sign-in for name from client may be checked now. An address that failed
    LOGIN_MAX_FAILURES times waits out the window (any user); a user who failed
    USER_THROTTLE_FAILURES times (from anywhere) may be tried only from addresses that have failed
    at most THROTTLED_ADDRESS_FAILURES times: the user, from a clean address, still gets in."""
    by_address = store.login_failures(f"addr:{client}", LOGIN_WINDOW_S)
    if by_address >= LOGIN_MAX_FAILURES:
        return False
    if store.login_failures(f"user:{name}", LOGIN_WINDOW_S) >= USER_THROTTLE_FAILURES:
        return by_address <= THROTTLED_ADDRESS_FAILURES
    return True


def record_login_failure(store, name: str, client: str) -> None:
    for key in (f"user:{name}", f"addr:{client}"):
        store.record_login_failure(key, LOGIN_WINDOW_S)


# ------------------------------------------------------------------------------------------ CSRF

def new_csrf_token(settings: AuthSettings) -> str:
    """A random value and its HMAC under the server's key: a value someone else chose (planted as
    a cookie by a sibling host, say) is not one this server made, and is refused."""
    nonce = secrets.token_urlsafe(18)
    return f"{nonce}.{_csrf_mac(settings, nonce)}"


def _csrf_mac(settings: AuthSettings, nonce: str) -> str:
    mac = hmac.new(settings.secret_key.encode(), b"sbsearch-csrf|" + nonce.encode(), hashlib.sha256).digest()
    return base64.urlsafe_b64encode(mac[:18]).decode()


def csrf_valid(settings: AuthSettings, token: str | None) -> bool:
    if not token or token.count(".") != 1 or len(token) > 200:
        return False
    nonce, mac = token.split(".")
    return hmac.compare_digest(_csrf_mac(settings, nonce).encode(), mac.encode())


def csrf_ok(settings: AuthSettings, cookie_value: str | None, form_value: str | None) -> bool:
    """Double submit: the form must carry the value of the cookie it came with (another site can
    make a browser send the cookie, but cannot read it to put it in the form), and that value must
    be one this server signed."""
    return (bool(cookie_value and form_value) and hmac.compare_digest(cookie_value.encode(), str(form_value).encode())
            and csrf_valid(settings, cookie_value))
