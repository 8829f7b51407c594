"""The web portal in the running lab: where it listens, who it runs as, what it can reach.

What a user does with its pages is proven in a real browser (tests/browser); here, what keeps it safe."""
import json
import socket
import stat
import urllib.error
import urllib.request

import pytest

from conftest import LAB, TOPOLOGY, host
from lab import portal as lab_portal


@pytest.fixture(scope="module")
def portal():
    return host("portal")


def test_published_on_the_loopback_only():
    ports = TOPOLOGY.service("portal").ports
    assert [(p.host_ip, p.container_port) for p in ports] == [("127.0.0.1", 8080)]
    assert TOPOLOGY.service("portal").aliases == ()  # no name the lab's endpoints could call it by


@pytest.mark.published
def test_the_login_page_answers_and_the_rest_needs_a_session():
    base = lab_portal.url(LAB).rstrip("/")
    with urllib.request.urlopen(base + "/login", timeout=10) as resp:
        assert resp.status == 200 and b"User name" in resp.read()
        assert "default-src 'self'" in resp.headers["Content-Security-Policy"]
    with pytest.raises(urllib.error.HTTPError) as refused:
        urllib.request.urlopen(base + "/lab.json", timeout=10)
    assert refused.value.code == 403


def test_the_login_is_owner_only_on_the_host_and_read_only_in_the_container(portal):
    path = lab_portal.login_path()
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    login = json.loads(path.read_text())
    mount = portal.mount_point("/run/secrets/portal-login")
    assert mount.exists and "ro" in mount.options
    assert login["password"] not in portal.check_output("ps -eo args")  # not on a command line


def test_the_server_runs_as_the_service_account_not_root(portal):
    rows = [line.split(None, 3) for line in portal.check_output("ps -eo ruser:16,euser:16,egroup:16,args").splitlines()]
    [server] = [row for row in rows if row[3] == "python3 /usr/local/bin/safeq-portal serve"]  # not docker-init
    assert server[:3] == ["safeq", "safeq", "safeq"]
    assert portal.check_output("id -u safeq") == "900"  # the primary's service account, which owns the socket


def test_the_admin_api_socket_is_the_service_account_s_alone(primary, portal):
    sock = primary.file("/run/safeq-admin/admin.sock")
    assert sock.is_socket and (sock.user, sock.mode) == ("safeq", 0o600)
    assert portal.mount_point("/run/safeq-admin").options.count("ro") == 1
    # The portal's own account reaches it; another account in the same container does not.
    asked = "python3 -c \"import socket; s = socket.socket(socket.AF_UNIX); s.connect('/run/safeq-admin/admin.sock')\""
    assert portal.run(f"setpriv --reuid 900 --regid 900 --clear-groups {asked}").rc == 0
    denied = portal.run(f"setpriv --reuid 65534 --regid 65534 --clear-groups {asked}")
    assert denied.rc != 0 and "PermissionError" in denied.stderr


def test_the_admin_api_is_not_on_the_lab_network(gateway):
    # The primary binds it to its loopback: from another host of the lab, nothing answers.
    name = TOPOLOGY.service("primary").host
    probe = gateway.run(f"python3 -c \"import socket; socket.create_connection(('{name}', 9780), timeout=3)\"")
    assert probe.rc != 0 and "ConnectionRefusedError" in probe.stderr


@pytest.mark.published
def test_garbage_on_the_portal_port_gets_a_clean_refusal():
    with socket.create_connection(("127.0.0.1", LAB.portal_port), timeout=10) as conn:
        conn.sendall(b"\x16\x03\x01\x00\xff" + b"\x00" * 64 + b"\r\n\r\n")
        answer = conn.recv(4096)
    assert answer.startswith(b"HTTP/1.") and b" 400 " in answer.split(b"\r\n")[0]
