"""A small client for the primary's admin API: HTTP/1.1 + JSON over its Unix socket."""
from __future__ import annotations

import http.client
import json
import os
import socket
from urllib.parse import quote

DEFAULT_SOCKET = "/run/safeq-admin/admin.sock"
TIMEOUT = 10.0
DOWN = "the primary's admin API does not answer (is the primary running? `safeq-lab status`)"


class ApiError(Exception):
    """The API answered with an error: ``str(exc)`` is its own message, shown verbatim."""

    def __init__(self, status: int, message: str):
        super().__init__(message)
        self.status = status


class AdminDown(ApiError):
    """No answer at all (socket missing, refused, timed out, or not HTTP)."""

    def __init__(self, detail: str):
        super().__init__(503, DOWN)
        self.detail = detail  # for the log, not the page


class UnixHTTPConnection(http.client.HTTPConnection):
    def __init__(self, path: str, timeout: float = TIMEOUT):
        super().__init__("localhost", timeout=timeout)
        self.socket_path = path

    def connect(self):
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        sock.settimeout(self.timeout)
        try:
            sock.connect(self.socket_path)
        except OSError:
            sock.close()
            raise
        self.sock = sock


def socket_path() -> str:
    return os.environ.get("SAFEQ_ADMIN_SOCKET", DEFAULT_SOCKET)


class Primary:
    def __init__(self, path: str | None = None, timeout: float = TIMEOUT):
        self.path = path or socket_path()
        self.timeout = timeout

    def request(self, method: str, url: str, body: dict | None = None):
        """The decoded JSON answer; ApiError with the API's words, AdminDown when nothing answers."""
        data = json.dumps(body).encode() if body is not None else None
        headers = {"Content-Type": "application/json"} if data is not None else {}
        conn = UnixHTTPConnection(self.path, self.timeout)
        try:
            conn.request(method, url, body=data, headers=headers)
            resp = conn.getresponse()
            raw = resp.read()
        except (OSError, http.client.HTTPException) as exc:  # socket.timeout is an OSError
            raise AdminDown(f"{method} {url}: {exc.__class__.__name__}: {exc}") from None
        finally:
            conn.close()
        return _decode(resp.status, raw, f"{method} {url}")

    # The operations the portal uses, named after the API's paths.
    def server(self) -> dict:
        return self.request("GET", "/api/v1/server")

    def account(self) -> dict:
        return self.request("GET", "/api/v1/account")

    def set_policy(self, policy: str) -> dict:
        return self.request("PUT", "/api/v1/account/policy", {"policy": policy})

    def set_auto_trust(self, enabled: bool) -> dict:
        return self.request("PUT", "/api/v1/account/auto-trust", {"enabled": enabled})

    def set_ocsp(self, enabled: bool, url: str | None, on_failure: str) -> dict:
        return self.request("PUT", "/api/v1/account/ocsp", {"enabled": enabled, "url": url, "on_failure": on_failure})

    def import_cas(self, files: list[dict]) -> list:
        return self.request("POST", "/api/v1/trusted-cas", {"files": files})

    def remove_ca(self, ident: str) -> dict:
        return self.request("DELETE", "/api/v1/trusted-cas/" + quote(ident, safe=""))

    def endpoints(self) -> list:
        return self.request("GET", "/api/v1/endpoints")

    def trust(self, ident: str) -> dict:
        return self.request("POST", f"/api/v1/endpoints/{quote(ident, safe='')}/trust")

    def untrust(self, ident: str) -> dict:
        return self.request("POST", f"/api/v1/endpoints/{quote(ident, safe='')}/untrust")

    def refused(self) -> list:
        return self.request("GET", "/api/v1/refused")


def _decode(status: int, raw: bytes, what: str):
    try:
        payload = json.loads(raw) if raw else None
    except ValueError:
        payload = None
    if 200 <= status < 300:
        if payload is None:
            raise ApiError(502, f"the primary's admin API answered {what} with no JSON")
        return payload
    if isinstance(payload, dict) and isinstance(payload.get("error"), str):
        raise ApiError(status, payload["error"])
    raise ApiError(status, f"the primary's admin API answered {what} with HTTP {status}")
