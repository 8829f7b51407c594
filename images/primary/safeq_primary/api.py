"""The primary's admin API: account settings, Trusted CA certificates, endpoints.

HTTP+JSON on the container's loopback (reach it with `docker exec`, as
`safeq-lab account|endpoints` do) and on a Unix socket in a volume only the portal shares
(paths.ADMIN_SOCKET). Changes apply live and are logged; sessions that no longer pass the
policy are disconnected. Schema: GET /openapi.json.
"""
from __future__ import annotations

import base64
import json
import logging
import os
import re
import socketserver
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import unquote

from certkit.certs import describe
from certkit import fsio
from certkit.fsio import StateError

from . import account, paths
from .registry import AmbiguousName

log = logging.getLogger("safeq-cloud-server")
MAX_BODY = 16 * 1024 * 1024
_LENGTH = re.compile(r"[0-9]+")

_ERR = {"type": "object", "properties": {"error": {"type": "string"}}, "required": ["error"]}
_CA = {"type": "object", "properties": {k: {"type": "string"} for k in ("subject", "issuer", "serial", "not_after", "sha256")}}
_SETTINGS = {"type": "object", "properties": {
    "certificate_policy": {"type": "string", "enum": list(account.POLICIES)},
    "auto_trust": {"type": "boolean"},
    "ocsp": {"type": "object", "properties": {"enabled": {"type": "boolean"}, "url": {"type": ["string", "null"]},
                                              "on_failure": {"type": "string", "enum": list(account.ON_FAILURE)}}},
    "trusted_cas": {"type": "array", "items": _CA},
    "trusted_ca_problems": {"type": "array", "items": {"type": "string"}}}}  # only when a file is damaged
_REFUSED = {"type": "object", "properties": {k: {"type": "string"} for k in ("time", "address", "reason")}}
_SERVER = {"type": "object", "properties": {
    "state": {"type": "string", "enum": ["serving", "degraded", "fallback", "built-in"]},
    "policy": {"type": "string"}, "serving": _CA, "keystore": {"type": "object"},
    "self_check": {"type": ["object", "null"], "properties": {"ok": {"type": "boolean"}, "reason": {"type": "string"}}}}}
_EP = {"type": "object", "properties": {k: {"type": ["string", "null"]} for k in (
    "id", "name", "role", "subject", "issuer", "decision", "reason", "state", "last_seen", "sha256", "kind")}}


def _op(summary, body=None, ok=None, codes=(400,)):
    op = {"summary": summary, "responses": {"200": {"description": "OK", "content": {"application/json": {"schema": ok or {"type": "object"}}}}}}
    for code in (*codes, 500):  # 409: a damaged state file or a shared name; 500: a fault, logged
        op["responses"][str(code)] = {"description": "error", "content": {"application/json": {"schema": _ERR}}}
    if body:
        op["requestBody"] = {"required": True, "content": {"application/json": {"schema": body}}}
    return op


_ID = [{"name": "id", "in": "path", "required": True, "schema": {"type": "string"}}]
OPENAPI = {
    "openapi": "3.0.3",
    "info": {"title": "safeq-pki-lab primary admin API (lab stand-in)", "version": "1"},
    "paths": {
        "/api/v1/server": {"get": _op("The certificate the listener serves, its state and self-check", ok=_SERVER, codes=(503,))},
        "/api/v1/account": {"get": _op("Account PKI and encryption settings", ok=_SETTINGS, codes=(409,))},
        "/api/v1/account/policy": {"put": _op("Set the certificate policy for internal communication",
                                               {"type": "object", "required": ["policy"], "properties": {"policy": {"type": "string", "enum": list(account.POLICIES)}}}, _SETTINGS, (400, 409))},
        "/api/v1/account/auto-trust": {"put": _op("Automatically trust new clients/servers (built-in policy)",
                                                   {"type": "object", "required": ["enabled"], "properties": {"enabled": {"type": "boolean"}}}, _SETTINGS, (400, 409))},
        "/api/v1/account/ocsp": {"put": _op("OCSP revocation checks and the custom OCSP URL", _SETTINGS["properties"]["ocsp"], _SETTINGS, (400, 409))},
        "/api/v1/trusted-cas": {
            "get": _op("Trusted CA certificates", ok={"type": "array", "items": _CA}, codes=(409,)),
            "post": _op("Import CA certificates (PEM or DER, one or several per file); all or nothing",
                        {"type": "object", "required": ["files"], "properties": {"files": {"type": "array", "items": {
                            "type": "object", "required": ["name", "data_base64"],
                            "properties": {"name": {"type": "string"}, "data_base64": {"type": "string"}}}}}},
                        {"type": "array", "items": _CA}, codes=(400, 409, 413))},
        "/api/v1/trusted-cas/{id}": {"delete": {**_op("Remove a Trusted CA certificate (SHA-256 or its prefix, or CN)", ok=_CA, codes=(400,)), "parameters": _ID}},
        "/api/v1/endpoints": {"get": _op("Endpoints (gateways and clients)", ok={"type": "array", "items": _EP}, codes=())},
        "/api/v1/endpoints/{id}/trust": {"post": {**_op("Trust an endpoint (built-in policy)", ok=_EP, codes=(404, 409)), "parameters": _ID}},
        "/api/v1/endpoints/{id}/untrust": {"post": {**_op("Untrust an endpoint; it is disconnected", ok=_EP, codes=(404, 409)), "parameters": _ID}},
        "/api/v1/refused": {"get": _op("Recent connections refused before they showed an identity, newest first",
                                       ok={"type": "array", "items": _REFUSED}, codes=())},
    },
}
PUBLIC_FIELDS = ("id", "name", "role", "kind", "subject", "issuer", "sha256", "decision", "reason", "state", "trusted",
                 "first_seen", "last_seen", "address", "sni", "tls", "chain", "policy")


class ApiError(Exception):
    def __init__(self, status: int, message: str):
        super().__init__(message)
        self.status = status


def public(ep: dict) -> dict:
    return {k: ep.get(k) for k in PUBLIC_FIELDS}


class Admin:
    """The operations, independent of HTTP."""

    def __init__(self, server):
        self.server = server

    def status(self) -> dict:
        """What `safeq-admin status` shows of the listener (the status file), without the JRE details."""
        shown = fsio.read_json(paths.STATUS)
        if not shown:
            raise ApiError(503, "the server has not written its status yet: it is starting")
        return {k: shown.get(k) for k in ("state", "policy", "serving", "keystore", "self_check")}

    def account(self) -> dict:
        # A damaged Trusted CA file must not hide the settings: it is listed (and logged) by name.
        trusted, problems = account.trusted_cas_lenient()
        for problem in problems:
            log.error("Trusted CA certificates: %s", problem)
        shown = {**account.settings(), "trusted_cas": [describe(c) for c in trusted]}
        if problems:
            shown["trusted_ca_problems"] = problems
        return shown

    def trusted_cas(self) -> list:
        return [describe(c) for c in account.trusted_cas()]

    def set_policy(self, body: dict) -> dict:
        before = account.settings()["certificate_policy"]
        account.update(certificate_policy=body.get("policy"))
        log.info("Admin: certificate policy %s -> %s", before, body.get("policy"))
        self.server.context()  # the served certificate follows the policy
        closed = self.server.reevaluate()
        if closed:
            log.info("Admin: %d session(s) disconnected to be judged under the new policy", closed)
        if before != body.get("policy"):
            threading.Thread(target=self.server.run_self_check, daemon=True).start()
        return self.account()

    def set_auto_trust(self, body: dict) -> dict:
        account.update(auto_trust=body.get("enabled"))
        log.info("Admin: automatically trust new clients/servers = %s", body.get("enabled"))
        return self.account()

    def set_ocsp(self, body: dict) -> dict:
        if set(body) - {"enabled", "url", "on_failure"}:
            raise account.AccountError("ocsp settings take enabled, url and on_failure")
        account.update(ocsp=body)
        log.info("Admin: OCSP settings %s", account.settings()["ocsp"])
        return self.account()

    def import_cas(self, body: dict) -> list:
        files = body.get("files")
        if not isinstance(files, list) or not files:
            raise account.AccountError("give at least one file")
        decoded = []
        for f in files:
            try:
                decoded.append((str(f["name"]), base64.b64decode(f["data_base64"], validate=True)))
            except (KeyError, TypeError, ValueError):
                raise account.AccountError("each file needs a name and base64 data") from None
        added = account.import_cas(decoded)
        for ca in added:
            log.info("Admin: imported Trusted CA certificate %s (%s)", ca["subject"], ca["sha256"])
        return added

    def remove_ca(self, ident: str) -> dict:
        removed = account.remove_ca(ident)
        log.info("Admin: removed Trusted CA certificate %s", removed["subject"])
        self.server.reevaluate(removed_ca=removed["subject"])
        return removed

    def endpoints(self) -> list:
        return [public(ep) for ep in self.server.registry.all()]

    def refused(self) -> list:
        return self.server.refused.recent()

    def _endpoint(self, ident: str) -> dict:
        ep = self.server.registry.get(ident)  # AmbiguousName when a name is shared: a 409
        if not ep:
            raise ApiError(404, f"no endpoint '{ident}': see `endpoints list` for ids")
        return ep

    def trust(self, ident: str) -> dict:
        ep = self.server.registry.trust(self._endpoint(ident)["id"])
        log.info("Admin: trusted endpoint %s (%s %s, %s)", ep["id"], ep.get("role"), ep.get("name"), ep.get("sha256"))
        return public(ep)

    def untrust(self, ident: str) -> dict:
        ep = self.server.registry.untrust(self._endpoint(ident)["id"])
        log.info("Admin: untrusted endpoint %s (%s %s, %s)", ep["id"], ep.get("role"), ep.get("name"), ep.get("sha256"))
        self.server.reevaluate(untrusted_id=ep["id"])
        return public(ep)


ROUTES = [
    ("GET", r"/api/v1/server", lambda a, b: a.status()),
    ("GET", r"/api/v1/account", lambda a, b: a.account()),
    ("PUT", r"/api/v1/account/policy", lambda a, b: a.set_policy(b)),
    ("PUT", r"/api/v1/account/auto-trust", lambda a, b: a.set_auto_trust(b)),
    ("PUT", r"/api/v1/account/ocsp", lambda a, b: a.set_ocsp(b)),
    ("GET", r"/api/v1/trusted-cas", lambda a, b: a.trusted_cas()),
    ("POST", r"/api/v1/trusted-cas", lambda a, b: a.import_cas(b)),
    ("DELETE", r"/api/v1/trusted-cas/(?P<id>[^/]+)", lambda a, b, id: a.remove_ca(id)),
    ("GET", r"/api/v1/endpoints", lambda a, b: a.endpoints()),
    ("POST", r"/api/v1/endpoints/(?P<id>[^/]+)/trust", lambda a, b, id: a.trust(id)),
    ("POST", r"/api/v1/endpoints/(?P<id>[^/]+)/untrust", lambda a, b, id: a.untrust(id)),
    ("GET", r"/api/v1/refused", lambda a, b: a.refused()),
    ("GET", r"/openapi.json", lambda a, b: OPENAPI),
]


def route(method: str, path: str):
    """(function, path parameters), or ApiError 404/405."""
    known = False
    for verb, pattern, fn in ROUTES:
        m = re.fullmatch(pattern, path)
        if m:
            known = True
            if verb == method:
                return fn, {k: unquote(v) for k, v in m.groupdict().items()}
    raise ApiError(405 if known else 404, f"{method} {path} is not part of the API (GET /openapi.json)")


def content_length(value: str | None) -> int:
    """The declared body size; ApiError 400/413 before a byte of the body is read."""
    if value is None:
        return 0
    value = value.strip()
    if not _LENGTH.fullmatch(value):
        raise ApiError(400, f"bad Content-Length {value[:20]!r}: give the body size in bytes")
    if len(value) > 12 or int(value) > MAX_BODY:
        raise ApiError(413, f"request body over {MAX_BODY // (1024 * 1024)} MiB")
    return int(value)


def parse_body(raw: bytes) -> dict:
    if not raw:
        return {}
    try:
        body = json.loads(raw)
    except (ValueError, RecursionError) as exc:  # UnicodeDecodeError is a ValueError too
        raise ApiError(400, f"request body is not JSON: {str(exc)[:120]}") from None
    if not isinstance(body, dict):
        raise ApiError(400, f"request body must be a JSON object as the schema says, not {type(body).__name__}")
    return body


def call(admin: Admin, fn, body: dict, params: dict, what: str) -> tuple[int, object]:
    """Run one operation: (status, payload). Errors keep their own words; a fault is a 500, logged."""
    try:
        return 200, fn(admin, body, **params)
    except ApiError as exc:
        return exc.status, {"error": str(exc)}
    except account.AccountError as exc:
        return 400, {"error": str(exc)}
    except (AmbiguousName, StateError) as exc:
        return 409, {"error": str(exc)}
    except Exception as exc:  # noqa: BLE001 - a fault in the server, not in the request: 500, logged
        log.exception("Admin API %s failed", what)
        return 500, {"error": f"internal error: {exc.__class__.__name__}: {exc} (see the server log)"}


def make_handler(admin: Admin):
    class Handler(BaseHTTPRequestHandler):
        server_version = "safeq-admin/1"
        timeout = 10  # a client that stops sending does not keep a thread

        def log_message(self, fmt, *args):  # requests are logged as admin actions instead
            pass

        def _reply(self, status: int, payload) -> None:
            try:
                body = json.dumps(payload, indent=2).encode()
            except (TypeError, ValueError) as exc:
                log.exception("Admin API %s %s: answer not serialisable", self.command, self.path)
                status, body = 500, json.dumps({"error": f"internal error: {exc.__class__.__name__}: {exc} "
                                                          "(see the server log)"}).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def _refuse(self, exc: ApiError) -> None:
            self.close_connection = True  # an unread body must not be taken for the next request
            self._reply(exc.status, {"error": str(exc)})

        def _dispatch(self, method: str) -> None:
            path = self.path.split("?", 1)[0]
            try:
                if self.headers.get("Transfer-Encoding"):
                    raise ApiError(411, "send the body with a Content-Length, not chunked")
                length = content_length(self.headers.get("Content-Length"))
                fn, params = route(method, path)
            except ApiError as exc:
                return self._refuse(exc)
            raw = self.rfile.read(length) if length else b""
            if len(raw) < length:
                return self._refuse(ApiError(400, f"request body ended after {len(raw)} of {length} bytes"))
            try:
                body = parse_body(raw)
            except ApiError as exc:
                return self._reply(exc.status, {"error": str(exc)})
            self._reply(*call(admin, fn, body, params, f"{method} {path}"))

        def do_GET(self):
            self._dispatch("GET")

        def do_POST(self):
            self._dispatch("POST")

        def do_PUT(self):
            self._dispatch("PUT")

        def do_DELETE(self):
            self._dispatch("DELETE")

    return Handler


class UnixAPIServer(socketserver.ThreadingUnixStreamServer):
    daemon_threads = True


def _serve(httpd, stop: threading.Event, cleanup=lambda: None) -> None:
    threading.Thread(target=httpd.serve_forever, kwargs={"poll_interval": 0.2}, daemon=True).start()
    threading.Thread(target=lambda: (stop.wait(), httpd.shutdown(), httpd.server_close(), cleanup()),
                     daemon=True).start()


def start_socket(handler, stop: threading.Event, path: str) -> UnixAPIServer:
    """The same API on a Unix socket readable by the service account only (the portal runs as it)."""
    try:
        os.unlink(path)  # a socket left by the previous process; bind refuses an existing path
    except FileNotFoundError:
        pass
    old = os.umask(0o177)
    try:
        httpd = UnixAPIServer(path, handler)
    finally:
        os.umask(old)
    _serve(httpd, stop, lambda: os.path.exists(path) and os.unlink(path))
    return httpd


def start_api(server, stop: threading.Event, port: int | None = None, socket_path: str | None = None) -> ThreadingHTTPServer:
    """Serve the admin API on the loopback (``port`` defaults to paths.ADMIN_PORT; 0 picks a free one),
    and on ``socket_path`` when given."""
    port = paths.ADMIN_PORT if port is None else port
    handler = make_handler(Admin(server))
    httpd = ThreadingHTTPServer(("127.0.0.1", port), handler)
    httpd.daemon_threads = True
    _serve(httpd, stop)
    if socket_path:
        start_socket(handler, stop, socket_path)
    return httpd
