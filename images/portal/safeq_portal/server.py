"""The portal's HTTP side: sessions, CSRF, bodies and headers; views.py does the work."""
from __future__ import annotations

import importlib.resources
import logging
import signal
import threading
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import urlsplit

from . import auth, forms, pages, views
from .auth import CSRF_COOKIE, CSRF_REFUSED, SESSION_COOKIE, Credentials, Sessions
from .primary import Primary
from .views import Response

log = logging.getLogger("safeq-portal")
SECURITY_HEADERS = (
    ("Content-Security-Policy", "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; "
                                "img-src 'self' data:; frame-ancestors 'none'"),
    ("X-Content-Type-Options", "nosniff"),
    ("Referrer-Policy", "no-referrer"),
    ("Cache-Control", "no-store"),
    ("X-Frame-Options", "DENY"),
)
STATIC = {"lab.js": "text/javascript; charset=utf-8", "portal.css": "text/css; charset=utf-8"}
INTERNAL = "internal error (see the portal log)"


def load_static() -> dict[str, bytes]:
    folder = importlib.resources.files(__package__).joinpath("static")
    return {name: folder.joinpath(name).read_bytes() for name in STATIC}


@dataclass
class Portal:
    """Everything a request needs; one per server."""
    credentials: Credentials
    api: Primary
    hosts: list = field(default_factory=list)
    ocsp_up: object = lambda: None  # a callable: True/False/None
    sessions: Sessions = field(default_factory=Sessions)
    static: dict = field(default_factory=load_static)


def parse_cookies(header: str | None) -> dict[str, str]:
    """Cookies by name (the first of a name wins); lenient: a malformed pair is skipped."""
    jar: dict[str, str] = {}
    for pair in (header or "").split(";"):
        name, sep, value = pair.strip().partition("=")
        if sep and name and name not in jar:
            jar[name] = value.strip().strip('"')
    return jar


def text(status: int, message: str) -> Response:
    return Response(status, (message + "\n").encode(), "text/plain; charset=utf-8")


class Handler(BaseHTTPRequestHandler):
    server_version = "safeq-portal/1"
    timeout = 10  # a client that stops sending does not keep a thread
    # What does not parse as HTTP/1.x is answered with a status line (http.server's default, HTTP/0.9,
    # sends a bare page), so a peer sending garbage reads a plain 400.
    default_request_version = "HTTP/1.0"

    @property
    def portal(self) -> Portal:
        return self.server.portal

    def log_message(self, fmt, *args):  # admin actions and logins are logged instead of each request
        log.debug("%s %s", self.client_address[0] if self.client_address else "-", fmt % args)

    def end_headers(self):  # every answer, send_error's too
        for name, value in SECURITY_HEADERS:
            self.send_header(name, value)
        super().end_headers()

    def send(self, resp: Response) -> None:
        self.send_response(resp.status)
        self.send_header("Content-Type", resp.content_type)
        self.send_header("Content-Length", str(len(resp.body)))
        for name, value in resp.headers:
            self.send_header(name, value)
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(resp.body)

    def run(self, fn) -> None:
        """``fn`` -> Response, sent; a fault is a 500 page and a logged traceback, never a partial page."""
        try:
            resp = fn()
        except Exception:  # noqa: BLE001 - logged with its traceback; the user sees a plain 500
            log.exception("%s %s failed", self.command, self.path)
            resp = views.html(pages.problem("Internal error", INTERNAL), 500)
        self.send(resp)

    def session(self):
        token = parse_cookies(self.headers.get("Cookie")).get(SESSION_COOKIE)
        return token, self.portal.sessions.get(token)

    def do_GET(self):
        self.run(self.get)

    def do_POST(self):
        self.run(self.post)

    # GET ------------------------------------------------------------------------------------

    def get(self) -> Response:
        path = urlsplit(self.path).path
        if path.startswith("/static/"):
            return self.static(path[len("/static/"):])
        _, session = self.session()
        if path == "/login":
            return views.redirect("/account") if session else self.login_page()
        if session is None:
            if path == "/lab.json":
                return views.as_json({"error": "log in first"}, 403)
            return views.redirect("/login")
        p = self.portal
        routes = {
            "/": lambda: views.redirect("/account"),
            "/account": lambda: views.account_page(p.api, session),
            "/endpoints": lambda: views.endpoints_page(p.api, session),
            "/lab": lambda: views.lab_page(p.api, session, p.ocsp_up, p.hosts),
            "/lab.json": lambda: views.as_json(views.lab_model(p.api, p.ocsp_up, p.hosts)),
        }
        route = routes.get(path)
        return route() if route else views.html(pages.problem("Not found", f"no page {path}", session.csrf), 404)

    def static(self, name: str) -> Response:
        if name not in STATIC:
            return text(404, "not found")
        return Response(200, self.portal.static[name], STATIC[name])

    def login_page(self, error: str | None = None, status: int = 200, token: str | None = None) -> Response:
        """The login form with its double-submit token (the cookie's, or a new one)."""
        token = token or parse_cookies(self.headers.get("Cookie")).get(CSRF_COOKIE)
        if not token or len(token) > 100 or not token.replace("-", "").replace("_", "").isalnum():
            token = auth.new_token()
        resp = views.html(pages.login(token, error), status)
        resp.headers.append(("Set-Cookie", auth.cookie(CSRF_COOKIE, token)))
        return resp

    # POST -----------------------------------------------------------------------------------

    def read_form(self) -> forms.Form:
        length = forms.body_length(self.headers.get("Content-Length"), self.headers.get("Transfer-Encoding"))
        forms.check_type(self.headers.get("Content-Type"))
        body = self.rfile.read(length)
        if len(body) < length:
            raise forms.FormError(400, f"the form ended after {len(body)} of {length} bytes")
        return forms.parse(self.headers.get("Content-Type"), body)

    def post(self) -> Response:
        path = urlsplit(self.path).path
        token, session = self.session()
        if path != "/login" and session is None:
            self.close_connection = True  # the body stays unread
            return text(403, "refused: log in first")
        try:
            form = self.read_form()
        except forms.FormError as exc:
            self.close_connection = True
            return text(exc.status, f"refused: {exc}")
        if path == "/login":
            return self.login(form)
        if not auth.same_token(form.get("csrf"), session.csrf):
            log.warning("refused POST %s from %s: CSRF token missing or wrong", path, self.client_address[0])
            return text(403, CSRF_REFUSED)
        return self.act(path, form, token, session)

    def act(self, path: str, form: forms.Form, token: str, session) -> Response:
        api = self.portal.api
        routes = {
            "/account": lambda: views.save_settings(api, session, form),
            "/trusted-cas": lambda: views.import_cas(api, session, form),
            "/trusted-cas/remove": lambda: views.remove_ca(api, session, form),
            "/endpoints/trust": lambda: views.set_trust(api, session, form, True),
            "/endpoints/untrust": lambda: views.set_trust(api, session, form, False),
            "/logout": lambda: self.logout(token, session),
        }
        route = routes.get(path)
        return route() if route else text(404, f"no form {path}")

    def login(self, form: forms.Form) -> Response:
        cookie_token = parse_cookies(self.headers.get("Cookie")).get(CSRF_COOKIE)
        if not auth.same_token(form.get("csrf"), cookie_token):
            log.warning("refused login from %s: CSRF token missing or wrong", self.client_address[0])
            return text(403, CSRF_REFUSED)
        if not self.portal.credentials.check(form.get("user"), form.get("password")):
            log.warning("login failed from %s", self.client_address[0])  # no name: it may be a password
            return self.login_page("wrong user name or password", 401, cookie_token)
        token, _ = self.portal.sessions.create(self.portal.credentials.user)
        log.info("login: %s from %s", self.portal.credentials.user, self.client_address[0])
        resp = views.redirect("/account")
        resp.headers += [("Set-Cookie", auth.cookie(SESSION_COOKIE, token)),
                         ("Set-Cookie", auth.clear_cookie(CSRF_COOKIE))]
        return resp

    def logout(self, token: str, session) -> Response:
        self.portal.sessions.drop(token)
        log.info("logout: %s from %s", session.user, self.client_address[0])
        resp = views.redirect("/login")
        resp.headers.append(("Set-Cookie", auth.clear_cookie(SESSION_COOKIE)))
        return resp


class PortalServer(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, address, portal: Portal):
        self.portal = portal
        super().__init__(address, Handler)


def make_server(portal: Portal, host: str = "0.0.0.0", port: int = 8080) -> PortalServer:
    return PortalServer((host, port), portal)


def stop_on_signals(httpd: PortalServer, signals=(signal.SIGTERM, signal.SIGINT)) -> None:
    """shutdown() waits for serve_forever's loop, so it runs on another thread than the handler's."""
    def handler(signum, frame):
        log.info("stopping (signal %d)", signum)
        threading.Thread(target=httpd.shutdown, daemon=True).start()
    for sig in signals:
        signal.signal(sig, handler)


def serve(httpd: PortalServer) -> None:
    try:
        httpd.serve_forever(poll_interval=0.2)
    finally:
        httpd.server_close()
