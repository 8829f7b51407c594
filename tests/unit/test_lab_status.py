"""`safeq-lab status`: services from compose.yaml's topology, the endpoints, the refused connections."""
import json
import subprocess
from pathlib import Path

import pytest
from click.testing import CliRunner

from lab import docker, status, topology
from lab.cli import main

TOPO = topology.parse({"name": "safeq-lab", "services": {
    "ocsp": {"hostname": "ocsp-host", "expose": ["8080"]},
    "primary": {"hostname": "primary-host", "ports": [{"host_ip": "127.0.0.1", "published": "2560", "target": 2560}]},
    "gateway": {"hostname": "gateway-host"}, "client": {"hostname": "pcclient-host"}}}, Path("/p"),
    ["ocsp", "primary", "gateway", "client"])
REFUSED = [{"time": "2026-01-02T10:00:01+00:00", "address": "172.18.0.9:40112", "reason": "Empty client certificate chain"},
           {"time": "2026-01-02T10:00:00+00:00", "address": "172.18.0.9:40100", "reason": "not TLS: [/] [bold]"}]  # the peer's bytes, not markup
ENDPOINTS = [{"id": "e1", "name": "gateway-host", "role": "gateway", "subject": "CN=gateway-host", "issuer": "CN=I",
              "decision": "accepted", "state": "connected", "last_seen": "2026-01-02T10:00:00+00:00"}]


def fake_lab(refused_answer):
    """compose ps/exec as a running lab answers; refused_answer: (rc, stdout, stderr)."""
    def compose(*args, check=True, capture=False, input=None, timeout=None):
        assert timeout is not None and timeout > 0
        if args[0] == "ps":
            rows = [{"Service": s, "Name": f"safeq-lab-{s}-1", "State": "running"} for s in TOPO.names]
            return subprocess.CompletedProcess(args, 0, "\n".join(json.dumps(r) for r in rows), "")
        command = " ".join(args[3:])
        if command == "safeq-admin api GET /api/v1/refused":
            return subprocess.CompletedProcess(args, *refused_answer)
        if command == "safeq-admin endpoints --json":
            return subprocess.CompletedProcess(args, 0, json.dumps(ENDPOINTS), "")
        if command == "safeq-admin status --json":
            return subprocess.CompletedProcess(args, 0, json.dumps({"state": "trusted-ca", "serving": {
                "subject": "CN=primary-host", "issuer": "CN=I"}}), "")
        return subprocess.CompletedProcess(args, 0, json.dumps({"state": "connected"}), "")
    return compose


@pytest.fixture
def lab(monkeypatch):
    monkeypatch.setattr(topology, "load", lambda: TOPO)
    monkeypatch.setattr(docker, "preflight", lambda: None)
    monkeypatch.setattr(status, "healthcheck_now", lambda container, timeout=30: (True, "ok"))

    def answer(rc=0, stdout=json.dumps(REFUSED), stderr=""):
        monkeypatch.setattr(docker, "compose", fake_lab((rc, stdout, stderr)))
    return answer


def test_status_json_has_the_refused_connections(lab):
    lab()
    result = CliRunner().invoke(main, ["status", "--json"])
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    assert set(data) == {"services", "endpoints", "refused"}
    assert data["refused"] == REFUSED
    assert [(s["name"], s["host"], s["health"]) for s in data["services"]] == [
        ("ocsp", "ocsp-host", "healthy"), ("primary", "primary-host", "healthy"),
        ("gateway", "gateway-host", "healthy"), ("client", "pcclient-host", "healthy")]


def test_an_api_without_the_refused_list_reads_as_empty(lab):
    lab(2, "", "error: GET /api/v1/refused is not part of the API (GET /openapi.json)\n")
    result = CliRunner().invoke(main, ["status", "--json"])
    assert result.exit_code == 0 and json.loads(result.stdout)["refused"] == []
    text = CliRunner().invoke(main, ["status"])
    assert text.exit_code == 0 and "refused (newest first)" not in text.stdout


def test_status_text_shows_the_refused_table_after_the_endpoints(lab):
    lab()
    result = CliRunner().invoke(main, ["status"])
    assert result.exit_code == 0, result.output
    out = result.stdout
    assert out.index("safeq-lab") < out.index("endpoints known to the primary") \
        < out.index("connections the primary refused (newest first)")
    refused = out[out.index("connections the primary refused"):]
    assert refused.index("172.18.0.9:40112") < refused.index("172.18.0.9:40100")  # newest first, as the API
    assert "Empty client certificate chain" in refused and "not TLS: [/] [bold]" in refused
    summary = out[:out.index("endpoints known")]
    assert "8080" in summary and "2560" in summary


def test_summary_uses_the_current_record_per_host(lab):
    lab()
    rows = {r[0]: r for r in status.summary_rows(status.collect(), TOPO)}
    assert rows["gateway"][3:] == ("CN=gateway-host", "CN=I", "healthy, connected (accepted)")
    assert rows["ocsp"][2] == "8080" and rows["primary"][2] == "2560"
