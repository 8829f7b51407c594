"""`safeq-admin` in the primary: admincli over HTTP to the real admin API (on an ephemeral
loopback port, against a stand-in server object), plus its own status/api/contains."""
import io
import json
import sys
import threading

import pytest

import pki
from safeq_primary import admin, api, paths
from safeq_primary.registry import RefusedLog, Registry


class StandInServer:
    """What the API needs from the primary's server object."""

    def __init__(self):
        self.registry, self.refused = Registry(), RefusedLog()

    def context(self):
        return None

    def reevaluate(self, **kwargs):
        return 0

    def run_self_check(self):
        pass


@pytest.fixture
def primary(tmp_path, monkeypatch):
    for name, path in (("ACCOUNT", "account"), ("TRUSTED_CA_DIR", "account/trusted-ca"),
                       ("SETTINGS", "account/settings.json"), ("ENDPOINTS", "endpoints.json"),
                       ("STATUS", "status.json")):
        monkeypatch.setattr(paths, name, tmp_path / path)
    monkeypatch.setattr(sys, "stdin", io.StringIO(""))
    stop = threading.Event()
    server = StandInServer()
    httpd = api.start_api(server, stop, port=0)
    monkeypatch.setattr(admin, "API", f"http://127.0.0.1:{httpd.server_address[1]}")
    yield server
    stop.set()


def safeq_admin(capsys, *argv):
    code = admin.main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def test_endpoints_json_and_trust_by_id(primary, capsys):
    ep = primary.registry.record("AA:BB", "10.0.0.2", name="gateway-host", role="gateway", decision="not-trusted")
    code, out, _ = safeq_admin(capsys, "endpoints", "--json")
    assert code == 0 and [e["id"] for e in json.loads(out)] == [ep["id"]]
    code, out, _ = safeq_admin(capsys, "endpoints", "trust", ep["id"], "--json")
    assert code == 0 and json.loads(out)["trusted"] is True and json.loads(out)["sha256"] == "AA:BB"


def test_an_ambiguous_name_is_refused_with_the_ids(primary, capsys):
    a = primary.registry.record("AA", "10.0.0.2", name="gw", role="gateway")
    b = primary.registry.record("BB", "10.0.0.3", name="gw", role="gateway")
    code, out, err = safeq_admin(capsys, "endpoints", "trust", "gw")
    assert (code, out) == (2, "")
    assert err == f"error: name gw matches 2 endpoints ({a['id']}, {b['id']}): give the id\n"


def test_trusted_ca_import_then_contains(primary, capsys, tmp_path):
    pki.init_pki(tmp_path / "pki")
    host = tmp_path / "pki" / "hosts" / "primary-host"
    cas = [str(p) for p in sorted(host.glob("*.cer"))]
    assert safeq_admin(capsys, "trusted-ca", "contains", *cas)[0] == 1
    code, out, _ = safeq_admin(capsys, "trusted-ca", "import", *cas)
    assert code == 0 and sorted(line.split(" (")[0] for line in out.splitlines()) == [
        "imported trusted CA CN=Acme-CA-Intermediate,O=Acme", "imported trusted CA CN=Acme-CA-Root,O=Acme"]
    assert safeq_admin(capsys, "trusted-ca", "contains", *cas)[0] == 0
    code, out, _ = safeq_admin(capsys, "account", "set-policy", "trusted-ca")
    assert code == 0 and out.splitlines()[0] == "Certificate policy for internal communication: trusted-ca"
    code, out, _ = safeq_admin(capsys, "trusted-ca", "--json")
    assert len(json.loads(out)) == 2


def test_status_is_read_locally_and_api_is_raw(primary, capsys):
    paths.STATUS.write_text(json.dumps({"state": "trusted-ca", "serving": {"subject": "CN=primary-host"}}))
    code, out, _ = safeq_admin(capsys, "status", "--json")
    assert code == 0 and json.loads(out)["state"] == "trusted-ca"
    primary.refused.add("203.0.113.7", "Empty client certificate chain")
    code, out, _ = safeq_admin(capsys, "api", "GET", "/api/v1/refused")
    assert code == 0 and [r["address"] for r in json.loads(out)] == ["203.0.113.7"]
    code, out, err = safeq_admin(capsys, "api", "GET", "/api/v1/nothing")
    assert (code, out) == (2, "") and err.startswith("error: GET /api/v1/nothing is not part of the API")


def test_no_server_is_one_line_that_says_what_to_check(monkeypatch, capsys):
    monkeypatch.setattr(admin, "API", "http://127.0.0.1:9")
    code, out, err = safeq_admin(capsys, "account")
    assert (code, out) == (2, "")
    assert err == ("error: the primary server is not running (its admin API does not answer): "
                   "check `systemctl status safeq-cloud-server`\n")


@pytest.mark.parametrize("answer, said", [
    (b"SSH-2.0-OpenSSH_9.2\r\n", "error: the primary server is not running"),  # not HTTP at all
    (b"HTTP/1.0 200 OK\r\nContent-Type: text/html\r\n\r\n<html>", "error: the primary server is not running"),
    (b"HTTP/1.0 502 Bad Gateway\r\n\r\n<html>proxy</html>", "error: Bad Gateway"),  # no JSON: the status's reason
])
def test_an_answer_that_is_not_the_admin_api_s_is_one_clear_line(monkeypatch, capsys, answer, said):
    import socket
    listener = socket.create_server(("127.0.0.1", 0))

    def serve():
        conn, _ = listener.accept()
        with conn:
            conn.recv(65536)
            conn.sendall(answer)
    threading.Thread(target=serve, daemon=True).start()
    monkeypatch.setattr(admin, "API", f"http://127.0.0.1:{listener.getsockname()[1]}")
    code, out, err = safeq_admin(capsys, "account")
    listener.close()
    assert (code, out) == (2, "") and err.startswith(said) and err.count("\n") == 1, err
