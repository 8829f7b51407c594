"""A stand-in for the primary's admin API on a Unix socket: state in memory, every call recorded.

Only what the portal uses, with the real API's shapes (images/primary/safeq_primary/api.py).
``fail[(method, path)] = (status, message)`` makes one route answer an error.
"""
from __future__ import annotations

import base64
import copy
import hashlib
import json
import re
import socketserver
import threading
from http.server import BaseHTTPRequestHandler
from urllib.parse import unquote

CA_ROOT = {"subject": "CN=Lab Root CA,O=Lab", "issuer": "CN=Lab Root CA,O=Lab", "serial": "1f",
           "not_after": "2035-01-01T00:00:00+00:00", "sha256": ":".join(["AB"] * 32)}


def endpoint(id, name, role, decision="accepted", state="connected", trusted=False, kind="trusted-ca", **extra):
    return {"id": id, "name": name, "role": role, "kind": kind, "subject": f"CN={name}", "issuer": "CN=Lab Issuing CA",
            "sha256": hashlib.sha256(id.encode()).hexdigest().upper(), "decision": decision,
            "reason": extra.pop("reason", "chain trusted"), "state": state, "trusted": trusted,
            "first_seen": "2026-01-01T10:00:00+00:00", "last_seen": "2026-01-02T10:00:00+00:00",
            "address": "10.0.0.5", **extra}


def initial_state() -> dict:
    return {
        "account": {"certificate_policy": "trusted-ca", "auto_trust": False,
                    "ocsp": {"enabled": False, "url": None, "on_failure": "fail-closed"}},
        "trusted_cas": [dict(CA_ROOT)],
        "endpoints": [endpoint("ep-gw", "gateway-host", "gateway"),
                      endpoint("ep-cl", "pcclient-host", "client", decision="refused", state="disconnected",
                               reason="PKIX path building failed")],
        "refused": [{"time": "2026-01-02T10:00:00+00:00", "address": "10.0.0.9", "reason": "no certificate"}],
        "server": {"state": "serving", "policy": "trusted-ca",
                   "serving": {"subject": "CN=primary-host", "issuer": "CN=Lab Issuing CA", "serial": "2",
                               "not_after": "2030-01-01T00:00:00+00:00", "sha256": ":".join(["CD"] * 32)},
                   "self_check": {"ok": True, "reason": "ok"}},
    }


class FakeAdmin:
    def __init__(self, path: str):
        self.path = path
        self.state = initial_state()
        self.calls: list[tuple[str, str, object]] = []
        self.fail: dict[tuple[str, str], tuple[int, str]] = {}
        self.lock = threading.Lock()
        self.httpd = _Server(path, _handler(self))
        self.thread = threading.Thread(target=self.httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()

    def writes(self) -> list[tuple[str, str, object]]:
        """The calls that change something (not GET)."""
        return [c for c in self.calls if c[0] != "GET"]

    def handle(self, method: str, path: str, body):
        with self.lock:
            self.calls.append((method, path, body))
            if (method, path) in self.fail:
                status, message = self.fail[(method, path)]
                return status, {"error": message}
            return self.route(method, path, body or {})

    def route(self, method, path, body):
        s = self.state
        acct = s["account"]
        if (method, path) == ("GET", "/api/v1/server"):
            return 200, s["server"]
        if (method, path) == ("GET", "/api/v1/account"):
            return 200, {**copy.deepcopy(acct), "trusted_cas": s["trusted_cas"]}
        if (method, path) == ("PUT", "/api/v1/account/policy"):
            if body.get("policy") not in ("trusted-ca", "built-in"):
                return 400, {"error": f"unknown certificate policy {body.get('policy')!r}"}
            acct["certificate_policy"] = body["policy"]
            return 200, acct
        if (method, path) == ("PUT", "/api/v1/account/auto-trust"):
            acct["auto_trust"] = body["enabled"]
            return 200, acct
        if (method, path) == ("PUT", "/api/v1/account/ocsp"):
            acct["ocsp"] = dict(body)
            return 200, acct
        if (method, path) == ("POST", "/api/v1/trusted-cas"):
            return self.import_cas(body)
        m = re.fullmatch(r"/api/v1/trusted-cas/([^/]+)", path)
        if method == "DELETE" and m:
            ident = unquote(m.group(1))
            for ca in s["trusted_cas"]:
                if ca["sha256"] == ident:
                    s["trusted_cas"].remove(ca)
                    return 200, ca
            return 400, {"error": f"no Trusted CA certificate {ident}"}
        if (method, path) == ("GET", "/api/v1/endpoints"):
            return 200, s["endpoints"]
        m = re.fullmatch(r"/api/v1/endpoints/([^/]+)/(trust|untrust)", path)
        if method == "POST" and m:
            for ep in s["endpoints"]:
                if ep["id"] == unquote(m.group(1)):
                    ep["trusted"] = m.group(2) == "trust"
                    return 200, ep
            return 404, {"error": f"no endpoint '{m.group(1)}': see `endpoints list` for ids"}
        if (method, path) == ("GET", "/api/v1/refused"):
            return 200, s["refused"]
        return 404, {"error": f"{method} {path} is not part of the API"}

    def import_cas(self, body):
        added = []
        for f in body["files"]:
            data = base64.b64decode(f["data_base64"], validate=True)
            if not data.startswith(b"-----BEGIN CERTIFICATE-----"):
                return 400, {"error": f"{f['name']}: not a certificate (PEM or DER)"}
            added.append({"subject": f"CN={f['name']}", "issuer": "CN=Lab Root CA,O=Lab", "serial": "3",
                          "not_after": "2031-01-01T00:00:00+00:00",
                          "sha256": hashlib.sha256(data).hexdigest().upper()})
        self.state["trusted_cas"] += added
        return 200, added


class _Server(socketserver.ThreadingUnixStreamServer):
    daemon_threads = True


def _handler(fake: FakeAdmin):
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, fmt, *args):
            pass

        def _do(self):
            raw = self.rfile.read(int(self.headers.get("Content-Length") or 0))
            body = json.loads(raw) if raw else None
            status, payload = fake.handle(self.command, self.path, body)
            data = json.dumps(payload).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        do_GET = do_POST = do_PUT = do_DELETE = _do

    return Handler
