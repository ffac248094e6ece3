"""`sbsearch serve` under the attacks of an outside review (issue #26), each through a real server
process and real HTTP: spoofed X-Forwarded-For, sessions that outlive sign-out, an index without
access rules, user names told apart by timing, sign-in lockout as a denial of service, and the
smaller ones (caching, framing, huge ids and filters, token guessing, slow headers, planted CSRF
cookies, the Host header in redirects).

Client addresses: uvicorn runs with its proxy headers off, so a request's address is its socket's
peer (127.0.0.1 here); only when the peer is a --trusted-proxy (127.0.0.1 by default) does sbsearch
read X-Forwarded-For. Tests that need several client addresses send them that way, which is how
every real client arrives behind the README's nginx."""

from __future__ import annotations

import re
import socket
import statistics
import time

import httpx
import pytest
from test_serve import ACCESS, Server, api_paths, csrf_of, invoke, sign_in  # noqa: F401  (fixtures below)
from test_serve import index, server, share  # noqa: F401  (pytest fixtures)


def login(server: Server, user: str, password: str, addr: str | None = None,
          client: httpx.Client | None = None) -> httpx.Response:
    """One sign-in (form and post), from addr as a trusted proxy would pass it on."""
    c = client or server.client()
    headers = {"X-Forwarded-For": addr} if addr else {}
    page = c.get("/login", headers=headers)
    csrf = re.search(r'name="csrf" value="([^"]+)"', page.text).group(1)
    return c.post("/login", data={"user": user, "password": password, "csrf": csrf, "next": "/"}, headers=headers)


# ------------------------------------------------------------------------------------------ 2. X-Forwarded-For

def test_a_spoofed_forwarded_for_does_not_make_a_trusted_proxy(index):
    s = Server(index, "--auth", "proxy", "--trusted-proxy", "10.9.9.9/32")
    try:
        c = s.client(headers={"X-Forwarded-For": "10.9.9.9", "X-Forwarded-User": "mallory",
                              "X-Forwarded-Groups": "hr,board"})
        r = c.get("/api/search", params={"q": "ZEBRA-9931 salary"})
        assert r.status_code == 401 and "ZEBRA" not in r.text
        assert c.get("/doc/1").status_code in (303, 401, 404)
    finally:
        s.stop()


def test_a_spoofed_forwarded_for_does_not_dodge_the_address_limit(index):
    # loopback is not a trusted proxy here: X-Forwarded-For is the client's own word, and ignored
    s = Server(index, "--trusted-proxy", "10.9.9.9/32")
    try:
        codes = [login(s, f"junk{i}", "wrong password", addr=f"198.51.100.{i}").status_code for i in range(7)]
        assert codes[:5] == [401] * 5 and set(codes[5:]) == {429}, codes
    finally:
        s.stop()


# ------------------------------------------------------------------------------------------ 4. sessions end

def _cookie(c: httpx.Client) -> str:
    return c.cookies.get("sbsearch_session")


def _replay(server: Server, cookie: str) -> httpx.Response:
    return server.client(cookies={"sbsearch_session": cookie}).get("/api/search", params={"q": "ZEBRA-9931 salary"})


def test_sign_out_ends_every_session_of_the_user(server):
    laptop, phone = sign_in(server, "sam", "battery staple"), sign_in(server, "sam", "battery staple")
    cookie, other = _cookie(laptop), _cookie(phone)
    assert _replay(server, cookie).status_code == 200
    assert laptop.post("/logout", data={"csrf": csrf_of(laptop)}).status_code == 303
    assert _replay(server, cookie).status_code == 401  # the cookie, replayed after sign-out
    assert _replay(server, other).status_code == 401  # sign-out ends all of sam's sessions
    assert _replay(server, _cookie(sign_in(server, "sam", "battery staple"))).status_code == 200  # signing in again works


def test_a_new_password_ends_the_old_sessions(server, index):
    cookie = _cookie(sign_in(server, "sam", "battery staple"))
    invoke("users", "add", "sam", "-i", index, "--groups", "staff", "--password-stdin", input="a new passphrase\n")
    assert _replay(server, cookie).status_code == 401
    assert _replay(server, _cookie(sign_in(server, "sam", "a new passphrase"))).status_code == 200
    # a change of groups alone keeps the sessions (groups are read afresh on every request)
    cookie = _cookie(sign_in(server, "sam", "a new passphrase"))
    invoke("users", "add", "sam", "-i", index, "--groups", "staff,canteen")
    assert _replay(server, cookie).status_code == 200


def test_a_removed_and_recreated_user_does_not_inherit_old_sessions(server, index):
    sam = sign_in(server, "sam", "battery staple")
    cookie = _cookie(sam)
    assert not any(p.startswith("hr/") for p in api_paths(sam, "ZEBRA-9931 salary"))
    invoke("users", "remove", "sam", "-i", index)
    invoke("users", "add", "sam", "-i", index, "--groups", "hr", "--password-stdin", input="someone else's\n")
    r = _replay(server, cookie)
    assert r.status_code == 401 and "salaries" not in r.text


def test_an_index_made_before_session_keys_is_migrated_when_served(index):
    import sqlite3

    db = sqlite3.connect(index / "index.db")
    db.execute("ALTER TABLE users DROP COLUMN session_key")
    db.execute("DROP INDEX documents_access_null")
    db.execute("DELETE FROM _sqlite_migrations WHERE name = 'm006_session_keys'")
    db.commit()
    db.close()
    s = Server(index)
    try:
        sam = sign_in(s, "sam", "battery staple")
        cookie = _cookie(sam)
        assert _replay(s, cookie).status_code == 200
        sam.post("/logout", data={"csrf": csrf_of(sam)})
        assert _replay(s, cookie).status_code == 401
    finally:
        s.stop()


def test_sessions_end_on_a_postgres_store_too(tmp_path, pg_url):
    docs = tmp_path / "share"
    for folder, text in [("hr", "Salary bands ZEBRA-9931."), ("public", "The canteen menu.")]:
        (docs / folder).mkdir(parents=True)
        (docs / folder / "a.md").write_text(f"# {folder}\n\n{text}\n")
    rules = tmp_path / "access.toml"
    rules.write_text(ACCESS)
    invoke("index", docs, "--store", pg_url, "-m", "fake", "-q", "--access", rules)
    invoke("users", "add", "sam", "--store", pg_url, "--groups", "staff", "--password-stdin", input="password-sam\n")
    import psycopg  # a store made before session keys: the column is added when served

    with psycopg.connect(pg_url, autocommit=True) as conn:
        conn.execute("ALTER TABLE sbsearch.users DROP COLUMN session_key")
    s = Server(pg_url)
    try:
        sam = sign_in(s, "sam", "password-sam")
        cookie = _cookie(sam)
        assert _replay(s, cookie).status_code == 200
        sam.post("/logout", data={"csrf": csrf_of(sam)})
        assert _replay(s, cookie).status_code == 401
        cookie = _cookie(sign_in(s, "sam", "password-sam"))
        invoke("users", "add", "sam", "--store", pg_url, "--groups", "staff", "--password-stdin", input="password-new\n")
        assert _replay(s, cookie).status_code == 401
        cookie = _cookie(sign_in(s, "sam", "password-new"))
        invoke("users", "remove", "sam", "--store", pg_url)
        invoke("users", "add", "sam", "--store", pg_url, "--groups", "hr", "--password-stdin", input="password-new\n")
        assert _replay(s, cookie).status_code == 401
    finally:
        s.stop()


# ------------------------------------------------------------------------------------------ 5. no rules: closed

def _refused(index, *args) -> str:
    """The server's error when it refuses to start (and stops it, failing, if it started)."""
    try:
        s = Server(index, *args)
    except RuntimeError as exc:
        return str(exc)
    s.stop()
    pytest.fail(f"serve {' '.join(args)} started on an index without access rules")


def test_an_index_without_access_rules_is_not_served_unless_said_so(index, share):
    s = Server(index, "--public")
    try:
        c = s.client()
        assert api_paths(c, "TRAVEL-1200")[0] == "public/travel.md"
        invoke("index", share, "-i", index, "-q", "--access", "none")  # drops the rules while serving
        r = c.get("/api/search", params={"q": "ZEBRA-9931 salary"})
        assert r.status_code == 503 and "ZEBRA" not in r.text and "without access rules" in r.json()["error"]
        assert all(c.get(f"/doc/{i}").status_code == 503 for i in range(1, 8))
        assert c.get("/").status_code == 503
    finally:
        s.stop()
    for args in (("--public",), (), ("--auth", "proxy")):
        message = _refused(index, *args)
        assert "no access rules" in message and "--all-may-read-everything" in message
        assert "Traceback" not in message and len(message.strip().splitlines()) == 1, message
    s = Server(index, "--public", "--all-may-read-everything")
    try:
        page = s.client().get("/", params={"q": "ZEBRA-9931"})
        assert page.status_code == 200 and "every reader of this server can read every document" in page.text
    finally:
        err = s.stop()
    assert "WARNING: --public" in err and "every document" in err


# ------------------------------------------------------------------------------------------ 6. timing

def test_a_wrong_password_takes_as_long_for_an_unknown_user(server):
    c = server.client()
    known, unknown = [], []
    for i in range(4):  # a fresh client address each time: no sign-in limit is reached
        for name, times in (("sam", known), (f"nobody{i}", unknown), ("", unknown)):
            if name == "" and i % 2:
                continue
            started = time.perf_counter()
            r = login(server, name, "wrong password", addr=f"203.0.113.{len(known) + len(unknown) + 1}", client=c)
            times.append(time.perf_counter() - started)
            assert r.status_code == 401
    assert statistics.median(unknown) >= 0.5 * statistics.median(known), (known, unknown)


# ------------------------------------------------------------------------------------------ 7. no lockout

def test_failed_guesses_do_not_lock_the_user_out_from_elsewhere(server):
    attacker = [login(server, "sam", f"guess{i}", addr="203.0.113.66").status_code for i in range(7)]
    assert attacker[:5] == [401] * 5 and set(attacker[5:]) == {429}  # guessing from one address stops
    # sam, from an address that has not been failing, still signs in
    assert login(server, "sam", "battery staple", addr="198.51.100.20").status_code == 303
    # guessing from many addresses is still bounded: a throttled user is tried at most twice per address
    spread = [login(server, "sam", f"guess-{i}", addr="203.0.113.77").status_code for i in range(3)]
    assert spread == [401, 401, 429]
    # junk names from one address do not lock out the others (the README's nginx passes each address)
    for i in range(6):
        login(server, f"junk{i}", "x", addr="203.0.113.88")
    assert login(server, "harriet", "correct horse", addr="198.51.100.21").status_code == 303


# ------------------------------------------------------------------------------------------ 9. the smaller ones

def test_answers_are_not_cached_and_documents_cannot_be_framed(server):
    sam = sign_in(server, "sam", "battery staple")
    doc = next(i for i in range(1, 12) if sam.get(f"/doc/{i}").status_code == 200)
    for path in ("/", "/?q=travel", "/api/search?q=travel", "/api/status", f"/doc/{doc}", "/doc/99999", "/login"):
        r = sam.get(path)
        assert r.headers.get("cache-control") == "no-store", path
        assert {"cookie", "authorization"} <= {v.strip().lower() for v in r.headers.get("vary", "").split(",")}, path
    r = sam.get(f"/doc/{doc}")
    assert "frame-ancestors 'none'" in r.headers["content-security-policy"]
    assert "sandbox" in r.headers["content-security-policy"]  # the document's own policy is kept
    assert r.headers["x-frame-options"] == "DENY"


@pytest.mark.parametrize("path", ["/doc/9223372036854775808", "/doc/99999999999999999999999999"])
def test_huge_document_ids_are_404_not_500(server, path):
    sam = sign_in(server, "sam", "battery staple")
    for p in (path, "/doc/9223372036854775807", "/doc/0"):
        r = sam.get(p)
        assert r.status_code == 404 and "Traceback" not in r.text, p


@pytest.mark.parametrize("name", ["folder", "path"])
def test_a_thousand_filter_values_are_400_not_500(server, name):
    sam = sign_in(server, "sam", "battery staple")
    params = [("q", "travel")] + [(name, f"f{i}") for i in range(1000)]
    r = sam.get("/api/search", params=params)
    assert r.status_code == 400 and "at most 20" in r.json()["error"], r.text
    page = sam.get("/", params=params)
    assert page.status_code == 400 and "Traceback" not in page.text
    assert sam.get("/api/search", params=[("q", "travel")] + [(name, f"f{i}") for i in range(20)]).status_code == 200


def test_failed_token_checks_are_limited_per_address(server, index):
    token = invoke("tokens", "add", "harriet", "-i", index).output.split()[-1]
    forged = token[:-4] + ("aaaa" if not token.endswith("aaaa") else "bbbb")  # a real id: argon2 runs each time
    codes = [server.client(headers={"Authorization": f"Bearer {forged}", "X-Forwarded-For": "203.0.113.9"})
             .get("/api/status").status_code for _ in range(13)]
    assert codes[:10] == [401] * 10 and set(codes[10:]) == {429}, codes
    # another address, with the real token, is not affected
    ok = server.client(headers={"Authorization": f"Bearer {token}", "X-Forwarded-For": "198.51.100.9"})
    assert ok.get("/api/status").status_code == 200


def _held_seconds(port: int, limit_s: float) -> float:
    """How long the server keeps a connection that sends its headers one byte every 0.2 s."""
    started = time.monotonic()
    with socket.create_connection(("127.0.0.1", port), timeout=1) as sock:
        sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: ")
        while time.monotonic() - started < limit_s:
            try:
                sock.sendall(b"a")
                sock.settimeout(0.2)
                if sock.recv(1024) == b"":
                    break
            except socket.timeout:
                continue
            except OSError:  # reset by the server
                break
    return time.monotonic() - started


def test_a_client_that_sends_headers_slowly_is_cut_off(index):
    s = Server(index, "--header-timeout", "2")
    try:
        assert _held_seconds(s.port, 12) < 6
        assert httpx.get(s.base + "/healthz").status_code == 200  # and others are served meanwhile
    finally:
        s.stop()


@pytest.mark.slow  # waits out the default header timeout (10 s)
def test_slow_headers_are_cut_off_by_default(server):
    assert _held_seconds(server.port, 25) < 15


def test_a_csrf_value_the_server_did_not_make_is_refused(server):
    chosen = "attacker-chosen-value"
    c = server.client(cookies={"sbsearch_csrf": chosen})
    r = c.post("/login", data={"user": "sam", "password": "battery staple", "csrf": chosen})
    assert r.status_code == 403
    sam = sign_in(server, "sam", "battery staple")
    sam.cookies.set("sbsearch_csrf", chosen)
    assert sam.post("/logout", data={"csrf": chosen}).status_code == 403
    # a page shown with a planted cookie issues a signed one instead
    page = server.client(cookies={"sbsearch_csrf": chosen}).get("/login")
    assert chosen not in page.text and "sbsearch_csrf=" in page.headers["set-cookie"]


def test_secure_cookies_use_the_host_prefix_and_other_hosts_are_refused(index):
    s = Server(index, "--secure-cookies", "--allowed-host", "127.0.0.1", "--allowed-host", "search.example")
    try:
        c = s.client()
        assert "__Host-sbsearch_csrf=" in c.get("/login").headers["set-cookie"]
        assert c.get("/login", headers={"Host": "search.example"}).status_code == 200
        r = c.get("/login", headers={"Host": "evil.example"})
        assert r.status_code == 400 and "evil.example" not in r.headers.get("location", "")
    finally:
        s.stop()


def test_the_host_header_is_never_reflected_in_a_redirect(server):
    c = server.client(headers={"Host": "evil.example"})
    for path in ("/login/", "/api/status/", "/?q=travel", "/doc/1"):
        r = c.get(path)
        assert "evil.example" not in r.headers.get("location", ""), (path, r.headers.get("location"))
