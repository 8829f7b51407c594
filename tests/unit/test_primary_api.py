"""The admin API over real HTTP on an ephemeral loopback port, against a stand-in server object."""
from __future__ import annotations

import http.client
import json
import logging
import socket
import threading
import time

import pytest

from safeq_portal.primary import UnixHTTPConnection  # the portal's own way to the socket
from safeq_primary import api, paths
from safeq_primary.registry import RefusedLog, Registry


class FakeServer:
    """What the API needs from the primary's server object."""

    def __init__(self):
        self.registry = Registry()
        self.refused = RefusedLog()
        self.reevaluated = []
        self.fail_reevaluate = None

    def context(self):
        return None

    def reevaluate(self, **kwargs):
        if self.fail_reevaluate:
            raise self.fail_reevaluate
        self.reevaluated.append(kwargs)
        return 0

    def run_self_check(self):
        pass


@pytest.fixture
def admin(tmp_path, monkeypatch):
    monkeypatch.setattr(paths, "ACCOUNT", tmp_path / "account")
    monkeypatch.setattr(paths, "TRUSTED_CA_DIR", tmp_path / "account" / "trusted-ca")
    monkeypatch.setattr(paths, "SETTINGS", tmp_path / "account" / "settings.json")
    monkeypatch.setattr(paths, "ENDPOINTS", tmp_path / "endpoints.json")
    stop = threading.Event()
    server = FakeServer()
    httpd = api.start_api(server, stop, port=0)
    yield server, httpd.server_address[1], httpd
    stop.set()


def request(port, method, path, body=None, raw=None):
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
    data = raw if raw is not None else (json.dumps(body).encode() if body is not None else None)
    conn.request(method, path, body=data, headers={"Content-Type": "application/json"})
    resp = conn.getresponse()
    out = resp.status, json.loads(resp.read())
    conn.close()
    return out


def raw_request(port, head: bytes) -> tuple[str, float]:
    """Send only the request head (no body); the status line and how long it took."""
    start = time.monotonic()
    with socket.create_connection(("127.0.0.1", port), timeout=3) as s:
        s.sendall(head)
        data = s.recv(65536)
    return data.split(b"\r\n")[0].decode(), time.monotonic() - start


def test_account_and_openapi(admin):
    _, port, _ = admin
    status, body = request(port, "GET", "/api/v1/account")
    assert status == 200 and body["certificate_policy"] == "built-in" and body["trusted_cas"] == []
    status, spec = request(port, "GET", "/openapi.json")
    assert "/api/v1/refused" in spec["paths"]


@pytest.mark.parametrize("length, status", [("-5", 400), ("abc", 400), ("5 5", 400), ("+5", 400),
                                            ("99999999999999999999999", 413), ("9" * 5000, 413),
                                            (str(api.MAX_BODY + 1), 413)])
def test_bad_content_length_is_refused_without_reading_the_body(admin, length, status):
    _, port, _ = admin
    head = f"PUT /api/v1/account/policy HTTP/1.1\r\nHost: x\r\nContent-Length: {length}\r\n\r\n".encode()
    line, took = raw_request(port, head)
    assert line.split(" ")[1] == str(status), line
    assert took < 1.0  # answered at once, not after waiting for a body


def test_chunked_bodies_are_refused(admin):
    _, port, _ = admin
    line, _ = raw_request(port, b"PUT /api/v1/account/policy HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n")
    assert " 411 " in line


def test_body_that_is_not_json(admin):
    _, port, _ = admin
    status, body = request(port, "PUT", "/api/v1/account/policy", raw=b"{policy: trusted-ca}")
    assert status == 400 and body["error"].startswith("request body is not JSON: ")
    status, body = request(port, "PUT", "/api/v1/account/policy", raw=b"[" * 100000)
    assert status == 400 and body["error"].startswith("request body is not JSON: ")
    status, body = request(port, "PUT", "/api/v1/account/policy", raw=b'"\xff"')
    assert status == 400 and body["error"].startswith("request body is not JSON: ")


def test_body_of_the_wrong_shape(admin):
    _, port, _ = admin
    for raw in (b'["trusted-ca"]', b'"trusted-ca"', b"7", b"null"):
        status, body = request(port, "PUT", "/api/v1/account/policy", raw=raw)
        assert status == 400 and "must be a JSON object" in body["error"], raw


def test_rejected_changes_keep_their_own_words(admin):
    _, port, _ = admin
    status, body = request(port, "PUT", "/api/v1/account/policy", {"policy": "everything"})
    assert (status, body) == (400, {"error": "certificate policy must be one of built-in, trusted-ca"})
    status, body = request(port, "PUT", "/api/v1/account/ocsp", {"enabled": True, "colour": "red"})
    assert status == 400 and "take enabled, url and on_failure" in body["error"]
    status, body = request(port, "POST", "/api/v1/trusted-cas", {"files": "x"})
    assert (status, body) == (400, {"error": "give at least one file"})


def test_a_damaged_settings_file_is_a_409_that_says_what_to_do(admin):
    _, port, _ = admin
    paths.SETTINGS.parent.mkdir(parents=True, exist_ok=True)
    paths.SETTINGS.write_text('{"certificate_policy": ')
    status, body = request(port, "PUT", "/api/v1/account/policy", {"policy": "trusted-ca"})
    assert status == 409 and "settings.json" in body["error"] and "remove it to start from" in body["error"]
    assert paths.SETTINGS.read_text() == '{"certificate_policy": '


def test_a_fault_inside_a_handler_is_a_500_with_its_cause_logged(admin, caplog):
    server, port, _ = admin
    ep = server.registry.record("AA:BB", "10.0.0.2", name="gw", role="gateway")
    server.fail_reevaluate = RuntimeError("boom")
    with caplog.at_level(logging.ERROR, logger="safeq-cloud-server"):
        status, body = request(port, "POST", f"/api/v1/endpoints/{ep['id']}/untrust")
    assert (status, body) == (500, {"error": "internal error: RuntimeError: boom (see the server log)"})
    [record] = [r for r in caplog.records if r.exc_info]
    assert "untrust" in record.getMessage() and record.exc_info[0] is RuntimeError


def test_trust_and_untrust_answer_consistent_records(admin):
    server, port, _ = admin
    ep = server.registry.record("AA:BB", "10.0.0.2", name="gw", role="gateway", decision="not-trusted",
                                reason="new endpoint: not trusted until an administrator trusts it")
    status, body = request(port, "POST", "/api/v1/endpoints/gw/trust")
    assert status == 200
    assert (body["id"], body["sha256"], body["trusted"], body["decision"], body["reason"]) == (
        ep["id"], "AA:BB", True, "accepted", "built-in policy: endpoint trusted by an administrator")
    status, body = request(port, "POST", f"/api/v1/endpoints/{ep['id']}/untrust")
    assert (status, body["trusted"], body["decision"], body["reason"]) == (
        200, False, "not-trusted", "endpoint not trusted: untrusted by an administrator")
    assert server.reevaluated == [{"untrusted_id": ep["id"]}]


def test_unknown_and_ambiguous_endpoints(admin):
    server, port, _ = admin
    a = server.registry.record("AA", "10.0.0.2", name="gw", role="gateway")
    b = server.registry.record("BB", "10.0.0.3", name="gw", role="gateway")
    status, body = request(port, "POST", "/api/v1/endpoints/nobody/trust")
    assert status == 404 and "no endpoint 'nobody'" in body["error"]
    status, body = request(port, "POST", "/api/v1/endpoints/gw/trust")
    assert status == 409 and body["error"] == f"name gw matches 2 endpoints ({a['id']}, {b['id']}): give the id"
    assert not server.registry.get(a["id"])["trusted"]


def test_refused_connections_are_listed_newest_first(admin):
    server, port, _ = admin
    server.refused.add("203.0.113.7", "Empty client certificate chain")
    server.refused.add("203.0.113.8", "PKIX path building failed")
    status, body = request(port, "GET", "/api/v1/refused")
    assert status == 200 and [r["address"] for r in body] == ["203.0.113.8", "203.0.113.7"]
    assert server.registry.all() == []


def test_unknown_paths_and_methods(admin):
    _, port, _ = admin
    assert request(port, "GET", "/api/v1/nothing")[0] == 404
    assert request(port, "DELETE", "/api/v1/account")[0] == 405


def test_a_silent_client_is_dropped_by_the_socket_timeout(admin):
    _, port, httpd = admin
    assert httpd.RequestHandlerClass.timeout == 10
    httpd.RequestHandlerClass.timeout = 0.3
    start = time.monotonic()
    with socket.create_connection(("127.0.0.1", port), timeout=5) as s:
        s.sendall(b"PUT /api/v1/account/policy HTTP/1.1\r\nContent-Length: 50\r\n\r\n{")
        assert s.recv(100) == b""  # closed by the server, not answered after a guess
    assert time.monotonic() - start < 2


def test_the_portal_socket_serves_the_same_api_to_the_service_account_only(tmp_path, monkeypatch):
    monkeypatch.setattr(paths, "SETTINGS", tmp_path / "settings.json")
    monkeypatch.setattr(paths, "STATUS", tmp_path / "status.json")
    sock = tmp_path / "admin.sock"
    sock.write_text("left by the previous process")
    stop = threading.Event()
    api.start_api(FakeServer(), stop, port=0, socket_path=str(sock))
    try:
        assert oct(sock.stat().st_mode & 0o777) == "0o600"
        conn = UnixHTTPConnection(str(sock), timeout=5)
        conn.request("GET", "/api/v1/server")
        resp = conn.getresponse()
        assert resp.status == 503 and "starting" in json.loads(resp.read())["error"]
        (tmp_path / "status.json").write_text(json.dumps({"state": "serving", "serving": {"subject": "CN=primary-host"},
                                                          "jre": {"version": "21"}}))
        conn = UnixHTTPConnection(str(sock), timeout=5)
        conn.request("GET", "/api/v1/server")
        body = json.loads(conn.getresponse().read())
        assert body["state"] == "serving" and body["serving"]["subject"] == "CN=primary-host" and "jre" not in body
    finally:
        stop.set()
    deadline = time.monotonic() + 2
    while sock.exists() and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not sock.exists()
