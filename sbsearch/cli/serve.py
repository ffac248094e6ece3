"""Serving the index to browsers and programs: serve, users, tokens."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import click

from .common import console, echo_json, index_option, json_option, model_option


@click.command()
@index_option
@model_option
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to listen on (behind a reverse proxy: keep 127.0.0.1).")
@click.option("--port", default=8080, show_default=True, type=click.IntRange(1, 65535))
@click.option("--workers", default=1, show_default=True, type=click.IntRange(1, 64),
              help="Processes; each loads the model once (see README for memory per worker).")
@click.option("--threads", default=2, show_default=True, type=click.IntRange(1, 64),
              help="Searches run at once per worker.")
@click.option("--auth", "auth_mode", type=click.Choice(["local", "proxy"]), default="local", show_default=True,
              help="local: users and tokens of `sbsearch users/tokens`; proxy: a reverse proxy's user and "
                   "groups headers (from --trusted-proxy only), tokens too.")
@click.option("--public", is_flag=True, help="No sign-in at all: everyone reads what the access rules give to everyone.")
@click.option("--trusted-proxy", "trusted_proxies", multiple=True, default=["127.0.0.1/32", "::1/128"],
              show_default=True, help="Addresses (CIDR) whose user/groups headers are believed. Repeatable.")
@click.option("--user-header", default="X-Forwarded-User", show_default=True)
@click.option("--groups-header", default="X-Forwarded-Groups", show_default=True, help="Comma-separated groups.")
@click.option("--secure-cookies", is_flag=True, help="Mark cookies Secure and __Host- (when users reach the server over HTTPS).")
@click.option("--all-may-read-everything", "all_may_read", is_flag=True,
              help="Serve an index without access rules: every reader may read every document. Without it, "
                   "such an index is refused.")
@click.option("--allowed-host", "allowed_hosts", multiple=True, metavar="HOST",
              help="Host names the server answers to (e.g. search.example.com); any other Host header is a 400. "
                   "Repeatable. Default: any.")
@click.option("--header-timeout", default=10.0, show_default=True, type=click.FloatRange(0.5, 300),
              help="Seconds a client has to send a request's headers before the connection is closed.")
@click.option("--max-connections", default=200, show_default=True, type=click.IntRange(1, 100000),
              help="Open connections and requests per worker; beyond it the server answers 503.")
def serve(index_path, model, host, port, workers, threads, auth_mode, public, trusted_proxies, user_header,
          groups_header, secure_cookies, all_may_read, allowed_hosts, header_timeout, max_connections):
    """Serve the search page and JSON API (/api/search, /api/status, /healthz) over HTTP."""
    import uvicorn

    from .. import app
    from ..config import IndexLocation
    from ..web.auth import AuthSettings
    from ..web.protocol import HeaderTimeoutProtocol
    from ..web.server import ServeSettings

    location = IndexLocation.of(index_path)
    index_path, shared = location.value, location.shared  # shared: a PostgreSQL store (--store)
    if not location.exists():
        raise click.ClickException(f"no index at {index_path} (run `sbsearch index DIR` first)")
    secret_key, unrestricted = app.prepare_serving(index_path)
    if unrestricted and not all_may_read:
        # fail closed: documents without resolved readers would be open to every reader
        raise click.ClickException(
            f"{unrestricted} documents of this index have no access rules, so every reader could read them; "
            "index with `--access RULES` or, if everyone may read everything, serve with --all-may-read-everything")
    if public:
        click.echo("WARNING: --public: anyone who can reach this server can search, without signing in "
                   + ("(--all-may-read-everything: they can read every document)." if all_may_read else
                      "(they see only documents the access rules give to everyone)."), err=True)
    elif all_may_read:
        click.echo("WARNING: --all-may-read-everything: every signed-in reader can read every document.", err=True)
    settings = ServeSettings(index_path if shared else str(index_path.resolve()), model, AuthSettings(
        "public" if public else auth_mode, secret_key, list(trusted_proxies), user_header,
        groups_header, secure_cookies), threads, all_may_read, list(allowed_hosts), header_timeout)
    os.environ["SBSEARCH_SERVE_SETTINGS"] = settings.to_json()
    click.echo(f"serving {location.display} on http://{host}:{port} ({'public' if public else auth_mode} sign-in)", err=True)
    # proxy_headers=False: uvicorn would otherwise rewrite the client address from X-Forwarded-For
    # for any loopback peer before sbsearch sees it; sbsearch decides on the socket's peer itself
    # (sbsearch.web.auth.client_address). No uvicorn timeout covers a request's headers: the
    # protocol class adds one (--header-timeout).
    uvicorn.run("sbsearch.web.server:app_from_env", factory=True, host=host, port=port, workers=workers,
                log_level="warning", timeout_graceful_shutdown=10, proxy_headers=False,
                server_header=False, timeout_keep_alive=5, limit_concurrency=max_connections,
                http=HeaderTimeoutProtocol)


@click.group()
def users():
    """Local users of `sbsearch serve` (passwords stored as argon2 hashes)."""


def _password(password_stdin: bool, required: bool) -> str | None:
    if password_stdin:
        return sys.stdin.readline().rstrip("\n")
    if not required:
        return None
    return click.prompt("password", hide_input=True, confirmation_prompt=True)


@users.command("add")
@click.argument("name")
@index_option
@click.option("--groups", default="", help="Comma-separated groups, e.g. staff,hr.")
@click.option("--password-stdin", is_flag=True, help="Read the password from standard input (scripts).")
def users_add(name, index_path, groups, password_stdin):
    """Add a user (or set an existing user's groups and password)."""
    from .. import app

    existing = name in {u["name"] for u in app.list_users(index_path)}
    user = app.put_user(index_path, name, _password(password_stdin, not existing),
                        [g.strip() for g in groups.split(",") if g.strip()])
    click.echo(f"user {user['name']}: groups {', '.join(user['groups']) or '(none)'}")


@users.command("remove")
@click.argument("name")
@index_option
def users_remove(name, index_path):
    """Remove a user and their tokens."""
    from .. import app

    app.remove_user(index_path, name)
    click.echo(f"user {name} removed")


@users.command("list")
@index_option
@json_option
def users_list(index_path, as_json):
    from .. import app

    rows = app.list_users(index_path)
    if as_json:
        echo_json(rows)
        return
    for u in rows:
        console().print(f"{u['name']}: {', '.join(u['groups']) or '(no groups)'} (since {u['created'][:10]})",
                        highlight=False)


@click.group()
def tokens():
    """API tokens for programs (`Authorization: Bearer TOKEN`), stored as argon2 hashes."""


@tokens.command("add")
@click.argument("user")
@index_option
@click.option("--label", default="", help="What the token is for.")
def tokens_add(user, index_path, label):
    """Make a token for USER; it is shown once."""
    from .. import app

    t = app.add_token(index_path, user, label)
    click.echo(f"token {t['id']} for {t['user']} (shown once, keep it safe):\n{t['token']}")


@tokens.command("list")
@click.option("--user", default=None)
@index_option
@json_option
def tokens_list(user, index_path, as_json):
    from .. import app

    rows = app.list_tokens(index_path, user)
    if as_json:
        echo_json(rows)
        return
    for t in rows:
        console().print(f"{t['id']} {t['user']} {t['label'] or ''} created {t['created'][:10]}", highlight=False)


@tokens.command("remove")
@click.argument("token_id")
@index_option
def tokens_remove(token_id, index_path):
    from .. import app

    app.remove_token(index_path, token_id)
    click.echo(f"token {token_id} removed")
