"""The admin API client (safeq_portal.primary), the OCSP reachability probe and `safeq-portal health`."""
from __future__ import annotations

import os
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from safeq_portal import auth, primary, probe, server
from support.fake_admin import FakeAdmin

BIN = Path(__file__).resolve().parents[2] / "images/portal/bin/safeq-portal"


@pytest.fixture
def fake(tmp_path):
    admin = FakeAdmin(str(tmp_path / "admin.sock"))
    yield admin
    admin.close()


def test_answers_and_errors_in_the_apis_words(fake):
    api = primary.Primary(fake.path)
    assert api.account()["certificate_policy"] == "trusted-ca"
    fake.fail[("PUT", "/api/v1/account/policy")] = (409, "the account file is damaged: fix it")
    with pytest.raises(primary.ApiError) as err:
        api.set_policy("built-in")
    assert err.value.status == 409 and str(err.value) == "the account file is damaged: fix it"
    assert not isinstance(err.value, primary.AdminDown)
    assert fake.calls[-1] == ("PUT", "/api/v1/account/policy", {"policy": "built-in"})


def test_path_parameters_are_quoted(fake):
    api = primary.Primary(fake.path)
    with pytest.raises(primary.ApiError):
        api.trust("a/b?c")
    assert fake.calls[-1][1] == "/api/v1/endpoints/a%2Fb%3Fc/trust"


def test_no_socket_is_admin_down(tmp_path):
    with pytest.raises(primary.AdminDown) as err:
        primary.Primary(str(tmp_path / "missing.sock")).server()
    assert str(err.value) == primary.DOWN and "safeq-lab status" in str(err.value)
    assert err.value.status == 503 and "missing.sock" not in str(err.value) and err.value.detail


def test_a_silent_socket_times_out_as_admin_down(tmp_path):
    path = str(tmp_path / "silent.sock")
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    listener.bind(path)
    listener.listen(1)  # accepts (in the kernel's queue) and never answers
    start = time.monotonic()
    try:
        with pytest.raises(primary.AdminDown):
            primary.Primary(path, timeout=0.3).endpoints()
    finally:
        listener.close()
    assert time.monotonic() - start < 2


def test_a_non_http_answer_is_admin_down(tmp_path):
    path = str(tmp_path / "garbage.sock")
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    listener.bind(path)
    listener.listen(1)

    def answer():
        conn, _ = listener.accept()
        conn.recv(1000)
        conn.sendall(b"SSH-2.0-OpenSSH\r\n")
        conn.close()
    threading.Thread(target=answer, daemon=True).start()
    try:
        with pytest.raises(primary.AdminDown):
            primary.Primary(path, timeout=2).server()
    finally:
        listener.close()


def test_default_socket_path(monkeypatch):
    monkeypatch.delenv("SAFEQ_ADMIN_SOCKET", raising=False)
    assert primary.Primary().path == "/run/safeq-admin/admin.sock"
    monkeypatch.setenv("SAFEQ_ADMIN_SOCKET", "/tmp/x.sock")
    assert primary.Primary().path == "/tmp/x.sock"


def test_ocsp_reachability_is_cached(monkeypatch):
    listener = socket.create_server(("127.0.0.1", 0))
    port = listener.getsockname()[1]
    now = [0.0]
    reach = probe.Reachability(f"127.0.0.1:{port}", clock=lambda: now[0])
    try:
        assert reach.up() is True
        listener.close()
        now[0] += 1.9
        assert reach.up() is True  # remembered
        now[0] += 0.2
        assert reach.up() is False  # asked again: the port is closed now
    finally:
        listener.close()
    assert probe.Reachability(None).up() is None
    assert probe.Reachability("no-port").up() is None


def run_health(port: int, socket_path: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "SAFEQ_PORTAL_PORT": str(port), "SAFEQ_ADMIN_SOCKET": socket_path}
    return subprocess.run([sys.executable, str(BIN), "health"], env=env, capture_output=True, text=True, timeout=20)


@pytest.fixture
def portal_port(fake):
    app = server.Portal(credentials=auth.Credentials("admin", "pw"), api=primary.Primary(fake.path))
    httpd = server.make_server(app, "127.0.0.1", 0)
    threading.Thread(target=httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()
    yield httpd.server_address[1]
    httpd.shutdown()
    httpd.server_close()


def test_bin_script_is_executable_python3():
    assert os.access(BIN, os.X_OK)
    assert BIN.read_text().startswith("#!/usr/bin/env python3\n")


def test_health_ok(fake, portal_port):
    proc = run_health(portal_port, fake.path)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert ("GET", "/api/v1/server", None) in fake.calls


def test_health_admin_api_down(tmp_path, portal_port):
    proc = run_health(portal_port, str(tmp_path / "missing.sock"))
    assert proc.returncode == 1
    assert proc.stdout.count("\n") == 1 and "admin API does not answer" in proc.stdout


def test_health_portal_down(fake):
    sock = socket.create_server(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    sock.close()  # nothing listens there now
    proc = run_health(port, fake.path)
    assert proc.returncode == 1
    assert proc.stdout.count("\n") == 1 and "login page does not answer" in proc.stdout
