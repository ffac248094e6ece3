"""`sbsearch serve`: a real server process on a free local port, real HTTP requests, real access
rules. The attacks of the issue, each a test: no sign-in, other groups' documents by every path,
XSS, bad queries, password guessing, tampered cookies, CSRF, a symlink out of the share."""

from __future__ import annotations

import json
import os
import re
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest
from click.testing import CliRunner

from sbsearch.cli import cli

ACCESS = """
default = "deny"
[[rule]]
folders = ["hr"]
groups = ["hr"]
[[rule]]
folders = ["public", "odd"]
groups = ["*"]
"""
XSS = '<script>alert("pwned")</script>'
NAME_XSS = '<img src=x onerror=alert(1)>'  # a file name cannot hold "/"


def invoke(*args, input=None):
    result = CliRunner().invoke(cli, [str(a) for a in args], input=input)
    assert result.exit_code == 0, result.output
    return result


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def share(tmp_path) -> Path:
    docs = tmp_path / "share"
    (docs / "hr").mkdir(parents=True)
    (docs / "public").mkdir()
    (docs / "secret").mkdir()
    (docs / "odd").mkdir()
    (docs / "hr" / "salaries-2025.md").write_text(
        "# Salary bands 2025\n\nBand S3 pays 71,000 EUR. The confidential code is ZEBRA-9931.\n")
    (docs / "public" / "travel.md").write_text(
        "# Travel rules\n\nBook trains through the travel desk. Receipts within 30 days. Code TRAVEL-1200.\n")
    (docs / "secret" / "board.md").write_text("# Board minutes\n\nThe merger code name is FALCON-7788.\n")
    (docs / "odd" / f"{NAME_XSS}.md").write_text(f"# Odd file\n\nThis text holds {XSS} and <b>bold</b> ODD-4242.\n")
    outside = tmp_path / "server-secret.txt"
    outside.write_text("root password is hunter2 OUTSIDE-5555\n")
    (docs / "public" / "notes.txt").symlink_to(outside)
    return docs


@pytest.fixture
def index(share, tmp_path) -> Path:
    rules = tmp_path / "access.toml"
    rules.write_text(ACCESS)
    idx = tmp_path / "idx"
    invoke("index", share, "-i", idx, "-m", "fake", "-q", "--access", rules)
    invoke("users", "add", "harriet", "-i", idx, "--groups", "hr,staff", "--password-stdin", input="correct horse\n")
    invoke("users", "add", "sam", "-i", idx, "--groups", "staff", "--password-stdin", input="battery staple\n")
    return idx


class Server:
    def __init__(self, index: Path, *args: str):
        self.port = free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        env = {**os.environ, "SBSEARCH_FAKE_MODELS": "1"}
        where = ["--store", index] if str(index).startswith("postgresql://") else ["-i", str(index)]
        self.proc = subprocess.Popen([sys.executable, "-m", "sbsearch", "serve", *where, "--port",
                                      str(self.port), *args], env=env, stdout=subprocess.PIPE,
                                     stderr=subprocess.PIPE, text=True)
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(self.proc.stderr.read())
            try:
                if httpx.get(self.base + "/healthz", timeout=1).status_code == 200:
                    return
            except httpx.HTTPError:
                time.sleep(0.2)
        raise RuntimeError("server did not start")

    def client(self, **kw) -> httpx.Client:
        return httpx.Client(base_url=self.base, follow_redirects=False, timeout=30, **kw)

    def stop(self) -> str:
        self.proc.terminate()  # SIGTERM: graceful shutdown
        _, err = self.proc.communicate(timeout=20)
        return err


@pytest.fixture
def server(index):
    s = Server(index)
    yield s
    s.stop()


def sign_in(server: Server, user: str, password: str) -> httpx.Client:
    c = server.client()
    page = c.get("/login")
    csrf = re.search(r'name="csrf" value="([^"]+)"', page.text).group(1)
    r = c.post("/login", data={"user": user, "password": password, "csrf": csrf, "next": "/"})
    assert r.status_code == 303, r.text
    return c


def csrf_of(c: httpx.Client) -> str:
    return c.cookies.get("sbsearch_csrf")


def api_paths(c: httpx.Client, q: str, **params) -> list[str]:
    r = c.get("/api/search", params={"q": q, "k": 20, **params})
    assert r.status_code == 200, r.text
    return [hit["path"] for hit in r.json()["results"]]


def test_unauthenticated_requests_are_refused(server):
    c = server.client()
    assert c.get("/api/search", params={"q": "salary"}).status_code == 401
    assert c.get("/api/status").status_code == 401
    r = c.get("/", params={"q": "salary"})
    assert r.status_code == 303 and r.headers["location"].startswith("/login?next=")
    assert c.get("/doc/1").status_code == 303
    assert c.get("/healthz").json() == {"status": "ok"}


def test_a_user_never_sees_documents_outside_their_groups(server):
    sam, harriet = sign_in(server, "sam", "battery staple"), sign_in(server, "harriet", "correct horse")
    for q in ("ZEBRA-9931 salary band", "FALCON-7788 merger", "confidential code"):
        assert not any(p.startswith(("hr/", "secret/")) for p in api_paths(sam, q))
    assert api_paths(harriet, "ZEBRA-9931")[0] == "hr/salaries-2025.md"
    assert not any(p.startswith("secret/") for p in api_paths(harriet, "FALCON-7788"))  # default deny
    page = sam.get("/", params={"q": "ZEBRA-9931 salary"}).text
    assert "salaries-2025" not in page and "71,000" not in page and "Band S3" not in page  # no title, snippet, path
    # counts: the status tells sam only about what sam may read
    assert sam.get("/api/status").json()["documents"] == 3 < harriet.get("/api/status").json()["documents"]
    # documents by id: sam's guesses of every id find only what sam may read
    readable = [i for i in range(1, 12) if sam.get(f"/doc/{i}").status_code == 200]
    assert len(readable) == 2  # public/travel.md and the odd file; the symlink was never indexed
    bodies = "".join(sam.get(f"/doc/{i}").text for i in readable)
    assert "ZEBRA" not in bodies and "FALCON" not in bodies and "hunter2" not in bodies
    for path in ("/doc/../../etc/passwd", "/doc/%2e%2e%2fsecret%2fboard.md", "/doc/-1", "/doc/99999"):
        r = sam.get(path)
        assert r.status_code == 404 and "FALCON" not in r.text and "root:" not in r.text
    # a filter or a mode is no way around the rules
    assert not api_paths(sam, "FALCON-7788", folder="secret", mode="lexical")


def test_tokens_work_for_the_api_and_forged_ones_do_not(server, index):
    token = invoke("tokens", "add", "harriet", "-i", index, "--label", "intranet bot").output.split()[-1]
    c = server.client(headers={"Authorization": f"Bearer {token}"})
    assert api_paths(c, "ZEBRA-9931")[0] == "hr/salaries-2025.md"
    forged = token[:-4] + ("aaaa" if not token.endswith("aaaa") else "bbbb")
    for bad in (forged, "sbs_nope_x", "garbage", "sbs__x"):
        assert server.client(headers={"Authorization": f"Bearer {bad}"}).get(
            "/api/search", params={"q": "x1"}).status_code == 401
    assert "token_hash" not in json.dumps(invoke("tokens", "list", "-i", index, "--json").output)
    assert token not in (index / "index.db").read_bytes().decode("latin-1")  # only its hash is stored
    second = invoke("tokens", "add", "harriet", "-i", index).output.split()
    c2 = server.client(headers={"Authorization": f"Bearer {second[-1]}"})
    assert api_paths(c2, "ZEBRA-9931")
    invoke("tokens", "remove", second[1], "-i", index)
    assert c2.get("/api/search", params={"q": "x1"}).status_code == 401  # a removed token is dead at once
    invoke("users", "remove", "harriet", "-i", index)
    assert c.get("/api/search", params={"q": "x1"}).status_code == 401  # removed user: token dead at once


def test_html_in_documents_names_and_queries_is_escaped(server):
    sam = sign_in(server, "sam", "battery staple")
    page = sam.get("/", params={"q": "ODD-4242 " + XSS}).text
    assert "odd/" in page
    assert XSS not in page and "<b>bold</b>" not in page and NAME_XSS not in page
    assert "&lt;script&gt;" in page and "&lt;img src=x" in page
    assert "script-src 'self'" in sam.get("/").headers["content-security-policy"]


@pytest.mark.parametrize("params", [
    {"q": "x" * 5000}, {"q": "travel", "k": "abc"}, {"q": "travel", "k": "0"}, {"q": "travel", "k": "10000"},
    {"q": "travel", "mode": "fuzzy"}, {"q": "travel", "modified_after": "yesterday-ish"},
    {"q": "travel", "type": "exe"}, {"q": "the of and"}, {"q": "  "},
])
def test_bad_queries_are_400_not_500(server, params):
    sam = sign_in(server, "sam", "battery staple")
    r = sam.get("/api/search", params=params)
    assert r.status_code == 400 and r.json()["error"], r.text
    if params.get("q", "").strip():
        page = sam.get("/", params=params)
        assert page.status_code == 400 and "Traceback" not in page.text


def test_password_guessing_is_rate_limited(server):
    c = server.client()
    csrf = re.search(r'name="csrf" value="([^"]+)"', c.get("/login").text).group(1)
    codes = [c.post("/login", data={"user": "sam", "password": f"guess{i}", "csrf": csrf}).status_code
             for i in range(10)]
    assert codes[:5] == [401] * 5 and set(codes[5:]) == {429}
    # even the right password is refused while the limit holds
    r = c.post("/login", data={"user": "sam", "password": "battery staple", "csrf": csrf})
    assert r.status_code == 429


def test_tampered_cookies_and_missing_csrf_are_rejected(server):
    sam = sign_in(server, "sam", "battery staple")
    cookie = sam.cookies.get("sbsearch_session")
    payload, rest = cookie.split(".", 1)
    import base64

    forged_payload = base64.urlsafe_b64encode(b'{"u":"harriet"}').decode().rstrip("=")
    for bad in (forged_payload + "." + rest, cookie[:-2] + "xx", "garbage"):
        c = server.client(cookies={"sbsearch_session": bad})
        assert c.get("/api/search", params={"q": "ZEBRA-9931"}).status_code == 401
    c = server.client()
    assert c.post("/login", data={"user": "sam", "password": "battery staple"}).status_code == 403  # no CSRF
    assert sam.post("/logout", data={}).status_code == 403
    assert sam.post("/logout", data={"csrf": csrf_of(sam)}).status_code == 303


def test_cookie_flags(server):
    c = server.client()
    login = c.get("/login")
    assert "httponly" in login.headers["set-cookie"].lower() and "samesite=strict" in login.headers["set-cookie"].lower()
    csrf = re.search(r'name="csrf" value="([^"]+)"', login.text).group(1)
    r = c.post("/login", data={"user": "sam", "password": "battery staple", "csrf": csrf})
    cookie = r.headers["set-cookie"].lower()
    assert "sbsearch_session=" in cookie and "httponly" in cookie and "samesite=lax" in cookie
    assert "battery" not in cookie


def test_symlink_out_of_the_share_is_never_read_and_is_reported(index, server):
    status = json.loads(invoke("status", "-i", index, "--json").output)
    failed = {Path(f["path"]).name: f["error"] for f in status["failed_files"]}
    assert "outside the indexed folders" in failed["notes.txt"]
    harriet = sign_in(server, "harriet", "correct horse")
    assert not api_paths(harriet, "OUTSIDE-5555 hunter2 root password", mode="lexical")


def test_rule_changes_apply_at_the_next_index_without_reembedding(server, index, share, tmp_path):
    sam = sign_in(server, "sam", "battery staple")
    assert not api_paths(sam, "FALCON-7788", mode="lexical")
    rules = tmp_path / "access.toml"
    rules.write_text(ACCESS.replace('folders = ["public", "odd"]', 'folders = ["public", "odd", "secret"]'))
    summary = json.loads(invoke("index", share, "-i", index, "--json").output)
    assert summary["chunks_embedded"] == 0
    assert api_paths(sam, "FALCON-7788", mode="lexical") == ["secret/board.md"]  # no restart
    # and a document added while serving appears at once
    (share / "public" / "new.md").write_text("# New\n\nFresh notice NEWCODE-3131 for everyone.\n")
    invoke("index", share, "-i", index, "-q")
    assert api_paths(sam, "NEWCODE-3131", mode="lexical") == ["public/new.md"]


def test_query_as_user_shows_what_they_would_see(index):
    out = CliRunner().invoke(cli, ["query", "ZEBRA-9931", "-i", str(index), "--json", "--as", "sam"]).output
    assert "salaries" not in out
    out = CliRunner().invoke(cli, ["query", "ZEBRA-9931", "-i", str(index), "--json"]).output
    assert "salaries" in out  # the admin at the CLI sees all
    bad = CliRunner().invoke(cli, ["query", "x1", "-i", str(index), "--as", "nobody"])
    assert bad.exit_code != 0 and "no user 'nobody'" in bad.output


def test_proxy_headers_are_believed_only_from_trusted_addresses(index):
    trusted = Server(index, "--auth", "proxy")
    try:
        c = trusted.client(headers={"X-Forwarded-User": "pat", "X-Forwarded-Groups": "hr, staff"})
        assert api_paths(c, "ZEBRA-9931")[0] == "hr/salaries-2025.md"
    finally:
        trusted.stop()
    untrusted = Server(index, "--auth", "proxy", "--trusted-proxy", "10.9.9.9/32")
    try:
        c = untrusted.client(headers={"X-Forwarded-User": "pat", "X-Forwarded-Groups": "hr"})
        assert c.get("/api/search", params={"q": "ZEBRA-9931"}).status_code == 401
    finally:
        untrusted.stop()


def test_public_mode_needs_the_flag_and_shows_only_what_is_for_everyone(index):
    public = Server(index, "--public")
    try:
        c = public.client()
        paths = api_paths(c, "ZEBRA-9931 FALCON-7788 TRAVEL-1200")
        assert paths and all(p.startswith(("public/", "odd/")) for p in paths)
    finally:
        err = public.stop()
    assert "WARNING: --public" in err


def test_missing_index_is_a_clear_error(tmp_path):
    result = CliRunner().invoke(cli, ["serve", "-i", str(tmp_path / "none")])
    assert result.exit_code != 0 and "no index at" in result.output


def test_access_rules_file_errors_are_one_line(share, tmp_path):
    for text, message in [("[[rule]]\nfolders=['x']\ngroups=['a']\n", 'default = "allow"'),
                          ('default = "allow"\n[[rule]]\ngroups = ["a"]\n', "names no paths or folders"),
                          ('default = "maybe"\n', 'default = "allow"'), ("default = \n", "access rules")]:
        rules = tmp_path / "bad.toml"
        rules.write_text(text)
        r = CliRunner().invoke(cli, ["index", str(share), "-i", str(tmp_path / "idx2"), "-m", "fake", "--access", str(rules)])
        assert r.exit_code != 0 and message in r.output and "Traceback" not in r.output


def test_a_missing_index_while_serving_is_a_clear_page_not_a_traceback(tmp_path):
    from starlette.testclient import TestClient

    from sbsearch.web.auth import AuthSettings
    from sbsearch.web.server import ServeSettings, create_app

    for mode in ("local", "public"):
        app = create_app(ServeSettings(str(tmp_path / "gone"), auth=AuthSettings(mode, "k" * 32)))
        with TestClient(app, raise_server_exceptions=False) as c:
            page = c.get("/", params={"q": "travel"}, follow_redirects=False)
            assert page.status_code == 503 and "no index at" in page.text and "Traceback" not in page.text
            api = c.get("/api/search", params={"q": "travel"})
            assert api.status_code == 503 and "no index at" in api.json()["error"]
            assert c.get("/healthz").status_code == 503
