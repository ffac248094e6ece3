"""`sbsearch serve`: the search page and JSON API over an index, on Starlette (ASGI) and uvicorn.

Starlette rather than a larger framework: a few routes, no ORM or data validation layer to carry,
a small memory footprint per worker (what an old server has least of), and the same ASGI server
(uvicorn) that production deployments of larger frameworks use.

Searching is blocking work (ONNX Runtime or torch, FAISS, SQLite): it runs on a small pool of
threads, each with its own SQLite connection and Searcher, all sharing one loaded model. Every
search reads one committed snapshot of the index, so a re-index running at the same time is never
waited for, and its results appear with the next search, without a restart.
"""

from __future__ import annotations

import json
import mimetypes
import os
import threading
from dataclasses import asdict, dataclass, field
from pathlib import Path
from urllib.parse import quote, urlencode

import anyio
from markupsafe import Markup, escape
from starlette.applications import Starlette
from starlette.convertors import Convertor, register_url_convertor
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.middleware.trustedhost import TrustedHostMiddleware
from starlette.requests import Request
from starlette.responses import FileResponse, JSONResponse, RedirectResponse, Response
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles
from starlette.templating import Jinja2Templates

from .. import app as use_cases
from ..errors import SbsearchError
from ..index.filters import DocumentFilter
from ..wording import footer
from . import auth

HERE = Path(__file__).parent
MAX_QUERY_CHARS = 1000
MAX_K = 50
MAX_FILTER_VALUES = 20  # per path=, type= and folder= (each value is a clause of the SQL)
# Every answer but the static files: never stored by a browser or a shared cache (they are one
# reader's view), and a cache must tell readers apart
NO_STORE_HEADERS = {"Cache-Control": "no-store", "Vary": "Cookie, Authorization"}
SECURITY_HEADERS = {
    "Content-Security-Policy": "default-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self'; "
                               "frame-ancestors 'none'; form-action 'self'; base-uri 'none'",
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "same-origin",
}
# Documents a browser may show inline; anything else (HTML with its scripts, Office files) is a download
INLINE_TYPES = {".pdf": "application/pdf", ".txt": "text/plain", ".md": "text/plain", ".csv": "text/plain",
                ".json": "text/plain", ".jsonl": "text/plain", ".log": "text/plain", ".rst": "text/plain",
                ".text": "text/plain"}


@dataclass
class ServeSettings:
    index_path: str
    model: str | None = None
    auth: auth.AuthSettings = field(default_factory=auth.AuthSettings)
    search_threads: int = 2
    # serve an index without access rules (documents readable by all): only when said so
    all_may_read_everything: bool = False
    allowed_hosts: list[str] = field(default_factory=list)  # empty: any Host header
    header_timeout: float = 10.0

    def to_json(self) -> str:
        return json.dumps(asdict(self))

    @classmethod
    def from_json(cls, text: str) -> "ServeSettings":
        data = json.loads(text)
        data["auth"] = auth.AuthSettings(**data["auth"])
        return cls(**data)


class BadRequest(HTTPException):
    def __init__(self, detail: str):
        super().__init__(400, detail)


class DocumentId(Convertor):
    """/doc/N: at most 18 digits, so N is always an SQLite/PostgreSQL integer (a larger N is a
    404 like any unknown document, not an overflow)."""

    regex = "[0-9]{1,18}"

    def convert(self, value: str) -> int:
        return int(value)

    def to_string(self, value: int) -> str:
        return str(value)


register_url_convertor("docid", DocumentId())


class ResponseHeaders:
    """ASGI middleware: NO_STORE_HEADERS on every answer but /static; on /doc/N (the file itself)
    also frame-ancestors 'none' and X-Frame-Options, so no other site can frame a document."""

    def __init__(self, app):
        self.app = app

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http" or scope["path"].startswith("/static/"):
            return await self.app(scope, receive, send)
        is_doc = scope["path"].startswith("/doc/")

        async def send_with_headers(message):
            if message["type"] == "http.response.start":
                headers = [(k, v) for k, v in message.get("headers", [])
                           if k.lower() not in (b"cache-control", b"vary")]
                headers += [(k.lower().encode(), v.encode()) for k, v in NO_STORE_HEADERS.items()]
                if is_doc:
                    csp = next((v.decode("latin-1") for k, v in headers if k.lower() == b"content-security-policy"), "")
                    if "frame-ancestors" not in csp:
                        csp = (csp + "; " if csp else "") + "frame-ancestors 'none'"
                    headers = [(k, v) for k, v in headers
                               if k.lower() not in (b"content-security-policy", b"x-frame-options")]
                    headers += [(b"content-security-policy", csp.encode("latin-1")), (b"x-frame-options", b"DENY")]
                message = {**message, "headers": headers}
            await send(message)

        await self.app(scope, receive, send_with_headers)


class ServerState:
    """What the workers share: settings, one model, and per-thread stores and searchers."""

    def __init__(self, settings: ServeSettings):
        self.settings = settings
        from ..config import IndexLocation

        # an index folder, or a PostgreSQL store's URL as given
        self.index_path = IndexLocation.of(settings.index_path).value
        self.limiter = anyio.CapacityLimiter(max(1, settings.search_threads))
        self._local = threading.local()
        self._embedder = None
        self._embedder_lock = threading.Lock()

    def store(self) -> use_cases.ServedIndex:
        """This thread's connection to the index (SbsearchError when there is no index)."""
        if getattr(self._local, "store", None) is None:
            self._local.store = use_cases.ServedIndex(self.index_path)
        return self._local.store

    def searcher(self):
        """This thread's Searcher; the model is loaded once and shared by all threads."""
        from ..search import Searcher

        if getattr(self._local, "searcher", None) is None:
            with self._embedder_lock:
                if self._embedder is None:
                    first = Searcher(self.index_path, self.settings.model)
                    if first.mode != "lexical":
                        self._embedder = first.embedder
                    self._local.searcher = first
                    return first
            self._local.searcher = Searcher(self.index_path, self.settings.model, embedder=self._embedder)
        return self._local.searcher

    async def run(self, fn, *args):
        """Blocking work on the search threads."""
        return await anyio.to_thread.run_sync(fn, *args, limiter=self.limiter)


# ------------------------------------------------------------------------------------------ who is asking

def _peer(request: Request) -> str | None:
    """The socket's peer address (uvicorn runs with proxy_headers off: no header changed it)."""
    return request.client.host if request.client else None


def _client(state: ServerState, request: Request) -> str:
    """The client's address for rate limits (X-Forwarded-For only through a trusted proxy)."""
    return auth.client_address(state.settings.auth, _peer(request), request.headers.get("x-forwarded-for"))


def _reader(state: ServerState, request: Request) -> auth.Reader | None:
    settings = state.settings.auth
    store = state.store()
    if not state.settings.all_may_read_everything and store.has_documents_without_access():
        # fail closed: a re-index without rules (--access none) while serving opens nothing
        raise HTTPException(503, "this index has documents without access rules; re-index with --access, "
                                 "or restart the server with --all-may-read-everything")
    if settings.mode == "public":
        return auth.Reader("anonymous", (), "public")
    if settings.mode == "proxy":
        reader = auth.proxy_reader(settings, request.headers, _peer(request))
        if reader is not None:
            return reader
    authorization = request.headers.get("authorization")
    name = auth.token_user(store, authorization, _client(state, request)) if authorization else None
    if name is not None:
        user = store.user(name)
        return auth.Reader(user["name"], tuple(user["groups"]), "token") if user else None
    if settings.mode == "local":
        session = auth.session_user(settings, request.cookies.get(settings.session_cookie))
        user = store.user(session[0]) if session else None
        if user is not None and auth.session_matches(user, session[1]):
            return auth.Reader(user["name"], tuple(user["groups"]), "session")
    return None


def _reader_filter(reader: auth.Reader, doc_filter: DocumentFilter | None) -> DocumentFilter:
    return (doc_filter or DocumentFilter()).for_reader(reader.groups)


# ------------------------------------------------------------------------------------------ requests

def _search_params(request: Request) -> dict:
    """The query string of a search, checked: bad input is a 400 with one clear reason."""
    q = request.query_params
    text = q.get("q", "")
    if len(text) > MAX_QUERY_CHARS:
        raise BadRequest(f"query too long (at most {MAX_QUERY_CHARS} characters)")
    try:
        k = int(q.get("k", "10"))
    except ValueError:
        raise BadRequest("k must be a number") from None
    if not 1 <= k <= MAX_K:
        raise BadRequest(f"k must be between 1 and {MAX_K}")
    mode = q.get("mode") or None
    if mode not in (None, "hybrid", "vector", "lexical"):
        raise BadRequest("mode must be hybrid, vector or lexical")
    for name in ("path", "type", "folder"):
        if len(q.getlist(name)) > MAX_FILTER_VALUES:
            raise BadRequest(f"at most {MAX_FILTER_VALUES} {name}= values")
        if any(len(v) > MAX_QUERY_CHARS for v in q.getlist(name)):
            raise BadRequest(f"a {name}= value is too long (at most {MAX_QUERY_CHARS} characters)")
    try:
        # an empty field of the form is no filter
        doc_filter = use_cases.search_filter([p for p in q.getlist("path") if p], [t for t in q.getlist("type") if t],
                                             [f for f in q.getlist("folder") if f], q.get("modified_after") or None)
    except SbsearchError as exc:
        raise BadRequest(str(exc)) from None
    return {"text": text, "k": k, "mode": mode, "doc_filter": doc_filter}


def _answer(state: ServerState, reader: auth.Reader, params: dict):
    searcher = state.searcher()
    try:
        return use_cases.answer(searcher, params["text"], params["k"], params["mode"],
                                _reader_filter(reader, params["doc_filter"]))
    except SbsearchError as exc:
        raise BadRequest(str(exc)) from None


def _result_json(r) -> dict:
    return {"path": r.relpath, "document_id": r.doc_id, **r.fields()}


def marked(snippet) -> Markup:
    """The snippet as HTML: every piece escaped, the query's words in <mark>."""
    out, pos = [], 0
    for start, end in snippet.highlights:
        out.append(escape(snippet.text[pos:start]))
        out.append(Markup("<mark>") + escape(snippet.text[start:end]) + Markup("</mark>"))
        pos = end
    out.append(escape(snippet.text[pos:]))
    return Markup("").join(out)


def _by_document(results: list, k: int) -> list[dict]:
    """The first k documents of a ranked list of passages, each with its best passage and the
    sections of its other passages."""
    groups: dict = {}
    for r in results:
        groups.setdefault(r.doc_id, []).append(r)
    out = []
    for best, *more in list(groups.values())[:k]:
        also: dict[str, str] = {}  # label -> link, each section named once
        for x in more:
            label = (x.heading or "").split(" > ")[-1] or x.location or "passage"
            if label != (best.heading or "").split(" > ")[-1] and len(also) < 3:
                also.setdefault(label, _doc_link(x))
        out.append({"r": best, "snippet": marked(best.snippet), "link": _doc_link(best), "location": best.location,
                    "also": [{"label": label, "link": link} for label, link in also.items()]})
    return out


def _doc_link(r) -> str:
    link = f"/doc/{r.doc_id}"
    return link + f"#page={r.page}" if r.page and r.path.lower().endswith(".pdf") else link


def _safe_next(value: str | None) -> str:
    """Only a path on this site: never an open redirect to another host."""
    if value and value.startswith("/") and not value.startswith("//") and "\\" not in value:
        return value
    return "/"


# ------------------------------------------------------------------------------------------ the app

def create_app(settings: ServeSettings) -> Starlette:
    state = ServerState(settings)
    templates = Jinja2Templates(directory=str(HERE / "templates"))  # autoescapes .html templates

    def page(request: Request, name: str, context: dict, status: int = 200) -> Response:
        response = templates.TemplateResponse(request, name, context, status_code=status)
        response.headers.update(SECURITY_HEADERS)
        return response

    def error_page(request: Request, status: int, message: str) -> Response:
        if request.url.path.startswith("/api/"):
            return JSONResponse({"error": message, "status": status}, status_code=status, headers=SECURITY_HEADERS)
        return page(request, "error.html", {"status": status, "message": message, "user": None}, status)

    async def who(request: Request) -> auth.Reader | None:
        try:
            return await state.run(_reader, state, request)
        except auth.TooManyFailures as exc:
            raise HTTPException(429, str(exc)) from None

    def csrf_token(request: Request) -> str:
        """The CSRF cookie's value if this server signed it, else a new one."""
        value = request.cookies.get(settings.auth.csrf_cookie)
        return value if auth.csrf_valid(settings.auth, value) else auth.new_csrf_token(settings.auth)

    def set_csrf_cookie(response: Response, value: str) -> None:
        response.set_cookie(settings.auth.csrf_cookie, value, httponly=True, samesite="strict",
                            secure=settings.auth.secure_cookies)

    def sign_in_redirect(request: Request) -> Response:
        target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
        return RedirectResponse(f"/login?{urlencode({'next': target})}", status_code=303)

    async def search_page(request: Request) -> Response:
        reader = await who(request)
        if reader is None:
            return sign_in_redirect(request)
        params = _search_params(request)
        answer = None
        if params["text"].strip():
            # passages of one document are shown together: ask for more, keep k documents
            answer = await state.run(_answer, state, reader, {**params, "k": min(MAX_K * 4, params["k"] * 4)})
        query = request.query_params
        csrf = csrf_token(request)
        response = page(request, "search.html", {
            "user": reader, "q": params["text"], "mode": params["mode"] or "", "k": params["k"],
            "path": query.get("path", ""), "type": query.get("type", ""), "folder": query.get("folder", ""),
            "modified_after": query.get("modified_after", ""), "answer": answer,
            "results": _by_document(answer.results, params["k"]) if answer else [],
            "footer": footer(answer) if answer else None, "csrf": csrf, "public": settings.auth.mode == "public",
            "all_may_read": settings.all_may_read_everything})
        set_csrf_cookie(response, csrf)
        return response

    async def api_search(request: Request) -> Response:
        reader = await who(request)
        if reader is None:
            raise HTTPException(401, "sign in first: a session cookie or an Authorization: Bearer token")
        params = _search_params(request)
        if not params["text"].strip():
            raise BadRequest("empty query: give ?q=")
        answer = await state.run(_answer, state, reader, params)
        return JSONResponse({"query": answer.query, "model": answer.model, "mode": answer.quality.get("mode"),
                             "footer": footer(answer), "results": [_result_json(r) for r in answer.results]},
                            headers=SECURITY_HEADERS)

    def _status(reader: auth.Reader) -> dict:
        return state.store().status_for(reader.groups)

    async def api_status(request: Request) -> Response:
        reader = await who(request)
        if reader is None:
            raise HTTPException(401, "sign in first: a session cookie or an Authorization: Bearer token")
        return JSONResponse(await state.run(_status, reader), headers=SECURITY_HEADERS)

    def _document(reader: auth.Reader, doc_id: int) -> tuple[str, bytes] | None:
        """(file name, bytes) of a document the reader may read, only while the file is what was
        indexed: its real path inside the document's indexed folder (or the link target recorded
        for it at indexing), opened without following a link, a regular file whose sha256 is the
        indexed one. The bytes checked are the bytes sent: nothing can be swapped in between. None
        otherwise."""
        import stat

        from ..hashing import sha256_bytes

        store = state.store()
        row = store.readable_document(doc_id, reader.groups)
        if row is None or row["status"] != "ok" or not row.get("sha256") or row.get("size") is None:
            return None
        path = Path(row["path"])
        try:
            real = os.path.realpath(path, strict=True)
            root = os.path.realpath(row["root"] or path.parent, strict=True)
        except (OSError, ValueError):
            return None
        if not (real == root or real.startswith(root.rstrip(os.sep) + os.sep)):
            # a symbolic link into another indexed folder: only the target the indexer checked
            targets = store.link_targets(row["path"])
            if targets is None or real not in targets:
                return None
        try:
            fd = os.open(real, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | getattr(os, "O_CLOEXEC", 0))
        except OSError:
            return None
        with os.fdopen(fd, "rb") as f:
            st = os.fstat(f.fileno())
            if not stat.S_ISREG(st.st_mode) or st.st_size != row["size"]:
                return None
            data = f.read(row["size"] + 1)
        if len(data) != row["size"] or sha256_bytes(data) != row["sha256"]:
            return None  # changed (or swapped for another file) since it was indexed
        return path.name, data

    async def document(request: Request) -> Response:
        reader = await who(request)
        if reader is None:
            return sign_in_redirect(request)
        found = await state.run(_document, reader, request.path_params["doc_id"])
        if found is None:  # missing and forbidden look the same: no one learns what exists
            raise HTTPException(404, "no such document")
        name, data = found
        suffix = Path(name).suffix.lower()
        headers = {"X-Content-Type-Options": "nosniff", "Referrer-Policy": "same-origin"}
        if suffix in INLINE_TYPES:
            headers["Content-Disposition"] = f"inline; filename*=UTF-8''{quote(name)}"
            if suffix != ".pdf":
                headers["Content-Security-Policy"] = "sandbox; default-src 'none'"
            return Response(data, media_type=INLINE_TYPES[suffix], headers=headers)
        headers["Content-Disposition"] = f"attachment; filename*=UTF-8''{quote(name)}"
        headers["Content-Security-Policy"] = "sandbox; default-src 'none'"
        return Response(data, media_type=mimetypes.guess_type(name)[0] or "application/octet-stream",
                        headers=headers)

    async def login_form(request: Request, message: str | None = None, status: int = 200) -> Response:
        csrf = csrf_token(request)
        response = page(request, "login.html", {"csrf": csrf, "message": message, "user": None,
                                                "next": _safe_next(request.query_params.get("next"))}, status)
        set_csrf_cookie(response, csrf)
        return response

    def _check_login(name: str, password: str, client: str) -> tuple[str, str | None]:
        """("ok", the user's session key), ("limited", None) or ("wrong", None); see
        auth.login_allowed for the limits. An unknown name costs the same argon2 work as a known
        one, so the answer's time does not tell which names are users."""
        from ..access.secrets import verify_nobody, verify_secret

        store = state.store()
        if not auth.login_allowed(store, name, client):
            return "limited", None
        user = store.user(name) if name else None
        if user is None:
            verify_nobody(password)
        if user is None or not verify_secret(user["password_hash"] or "", password):
            auth.record_login_failure(store, name, client)
            return "wrong", None
        return "ok", user.get("session_key") or store.reset_session_key(name)

    async def login(request: Request) -> Response:
        if settings.auth.mode != "local":
            raise HTTPException(404, "sign-in is done by the reverse proxy" if settings.auth.mode == "proxy"
                                else "this server needs no sign-in")
        if request.method == "GET":
            return await login_form(request)
        form = await request.form()
        if not auth.csrf_ok(settings.auth, request.cookies.get(settings.auth.csrf_cookie), form.get("csrf")):
            raise HTTPException(403, "the form expired or came from another site; reload the sign-in page")
        name, password = str(form.get("user", ""))[:64], str(form.get("password", ""))[:1024]
        verdict, session_key = await state.run(_check_login, name, password, _client(state, request))
        if verdict == "limited":
            return await login_form(request, "Too many failed sign-ins. Try again later.", 429)
        if verdict == "wrong":
            return await login_form(request, "Wrong user name or password.", 401)
        response = RedirectResponse(_safe_next(str(form.get("next", "/"))), status_code=303)
        response.set_cookie(settings.auth.session_cookie, auth.session_cookie(settings.auth, name, session_key),
                            max_age=auth.SESSION_MAX_AGE_S, httponly=True, samesite="lax",
                            secure=settings.auth.secure_cookies)
        return response

    def _end_sessions(cookie: str | None) -> None:
        """Sign-out ends every session of the user (a new session key), not only this browser's."""
        session = auth.session_user(settings.auth, cookie)
        if session is None:
            return
        store = state.store()
        if auth.session_matches(store.user(session[0]), session[1]):
            store.reset_session_key(session[0])

    async def logout(request: Request) -> Response:
        form = await request.form()
        if not auth.csrf_ok(settings.auth, request.cookies.get(settings.auth.csrf_cookie), form.get("csrf")):
            raise HTTPException(403, "the form expired or came from another site")
        if settings.auth.mode == "local":
            await state.run(_end_sessions, request.cookies.get(settings.auth.session_cookie))
        response = RedirectResponse("/login", status_code=303)
        response.delete_cookie(settings.auth.session_cookie, secure=settings.auth.secure_cookies, httponly=True)
        return response

    async def healthz(request: Request) -> Response:
        try:
            await state.run(lambda: state.store().generation)
        except SbsearchError as exc:
            return JSONResponse({"status": "no index", "detail": str(exc)}, status_code=503)
        return JSONResponse({"status": "ok"})

    async def http_error(request: Request, exc: HTTPException) -> Response:
        return error_page(request, exc.status_code, exc.detail)

    async def sbsearch_error(request: Request, exc: SbsearchError) -> Response:
        # the index is missing or unreadable: say so, never a traceback
        return error_page(request, 503, str(exc))

    async def server_error(request: Request, exc: Exception) -> Response:
        return error_page(request, 500, "internal error (logged on the server)")

    routes = [
        Route("/", search_page),
        Route("/login", login, methods=["GET", "POST"]),
        Route("/logout", logout, methods=["POST"]),
        Route("/doc/{doc_id:docid}", document),
        Route("/api/search", api_search),
        Route("/api/status", api_status),
        Route("/healthz", healthz),
        Mount("/static", StaticFiles(directory=str(HERE / "static")), name="static"),
    ]
    middleware = [Middleware(ResponseHeaders)]
    if settings.allowed_hosts:  # any other Host header: 400
        middleware.insert(0, Middleware(TrustedHostMiddleware, allowed_hosts=settings.allowed_hosts, www_redirect=False))
    application = Starlette(routes=routes, middleware=middleware, exception_handlers={
        HTTPException: http_error, SbsearchError: sbsearch_error, Exception: server_error})
    # no "/x/" -> "/x" redirects: Starlette writes them as absolute URLs from the Host header
    application.router.redirect_slashes = False
    application.state.sbsearch = state
    if settings.auth.mode == "local":
        from ..access.secrets import verify_nobody

        verify_nobody("")  # the dummy hash is made now, not during the first sign-in
    return application


def app_from_env() -> Starlette:
    """The uvicorn factory: settings come from the environment, so every worker process builds
    the same app (`sbsearch serve` sets it)."""
    return create_app(ServeSettings.from_json(os.environ["SBSEARCH_SERVE_SETTINGS"]))
