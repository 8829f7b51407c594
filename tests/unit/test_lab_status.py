"""`safeq-lab status`: services from compose.yaml's topology, the endpoints, the refused connections."""
import json
import sys
import subprocess
import threading
from types import SimpleNamespace
import time
from dataclasses import replace
from pathlib import Path

import pytest
from click.testing import CliRunner

from lab import docker, engine, status, topology
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

ACCOUNT = {"certificate_policy": "trusted-ca", "auto_trust": False, "trusted_cas": [{"subject": "CN=Root", "sha256": "ab"}]}


BOXES = [engine.Container(f"id-{s}", f"safeq-lab-{s}-1", s, 1, "running", "healthy", ("CMD", f"safeq-{s}", "health"))
         for s in reversed(TOPO.names)]  # the engine's order is not compose.yaml's


class FakeEngine:
    """The engine as a running lab answers; refused: (rc, stdout, stderr) of the refused list."""

    def __init__(self, refused=(0, json.dumps(REFUSED), ""), failing=(), boxes=BOXES):
        self.refused, self.failing, self.boxes = refused, set(failing), boxes
        self.calls, self.inflight, self.most = [], 0, 0
        self.lock = threading.Lock()

    def containers(self, service=None, timeout=engine.QUICK):
        assert 0 < timeout <= engine.QUICK
        return list(self.boxes)

    def execute(self, target, argv, input=None, timeout=engine.DEFAULT):
        assert isinstance(target, engine.Container) and 0 < timeout <= engine.DEFAULT
        with self.lock:
            self.calls.append((target.service, " ".join(argv)))
            self.inflight += 1
            self.most = max(self.most, self.inflight)
        time.sleep(0.05)
        with self.lock:
            self.inflight -= 1
        return engine.ExecResult(tuple(argv), *self.answer(target.service, " ".join(argv)))

    def answer(self, service, command):
        if command.endswith(" health"):
            return (1, "", "not connected") if service in self.failing else (0, "ok", "")
        if command == "safeq-admin api GET /api/v1/refused":
            return self.refused
        if command == "safeq-admin endpoints --json":
            return 0, json.dumps(ENDPOINTS), ""
        if command == "safeq-admin account show --json":
            return 0, json.dumps(ACCOUNT), ""
        if command == "safeq-admin status --json":
            serving = {"subject": "CN=primary-host", "issuer": "CN=I"}
            return 0, json.dumps({"state": "trusted-ca", "serving": serving}), ""
        return 0, json.dumps({"state": "connected"}), ""


@pytest.fixture
def lab(monkeypatch):
    monkeypatch.setattr(topology, "load", lambda: TOPO)
    monkeypatch.setattr(docker, "preflight", lambda: None)
    monkeypatch.setattr(engine, "connect", lambda timeout: pytest.fail("a unit test reached the Docker engine"))

    def answer(*args, **kwargs):
        fake = FakeEngine(*args, **kwargs)
        monkeypatch.setattr(engine, "containers", fake.containers)
        monkeypatch.setattr(engine, "execute", fake.execute)
        return fake
    return answer


def test_status_json_has_the_refused_connections(lab):
    lab()
    result = CliRunner().invoke(main, ["status", "--json"])
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    assert set(data) == {"services", "endpoints", "refused", "account"}
    assert data["refused"] == REFUSED and data["account"] == ACCOUNT
    assert [(s["name"], s["host"], s["health"]) for s in data["services"]] == [
        ("ocsp", "ocsp-host", "healthy"), ("primary", "primary-host", "healthy"),
        ("gateway", "gateway-host", "healthy"), ("client", "pcclient-host", "healthy")]


def test_an_api_without_the_refused_list_reads_as_empty(lab):
    lab((2, "", "error: GET /api/v1/refused is not part of the API (GET /openapi.json)\n"))
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


def test_status_starts_no_subprocess_and_runs_its_commands_at_once(lab, monkeypatch):
    fake = lab()

    def no_subprocess(*args, **kwargs):
        raise AssertionError(f"status started a subprocess: {args[0]}")
    monkeypatch.setattr(subprocess, "run", no_subprocess)
    monkeypatch.setattr(subprocess, "Popen", no_subprocess)
    result = CliRunner().invoke(main, ["status", "--json"])
    assert result.exit_code == 0, result.output
    assert sorted(fake.calls) == sorted([(s, f"safeq-{s} health") for s in TOPO.names] + [
        ("primary", "safeq-admin status --json"), ("gateway", "safeq-gateway status --json"),
        ("client", "safeq-client status --json"), ("primary", "safeq-admin endpoints --json"),
        ("primary", "safeq-admin api GET /api/v1/refused"), ("primary", "safeq-admin account show --json")])
    assert fake.most > 1  # not one after the other


def test_health_is_the_check_run_now_not_the_engine_s_record(lab):
    fake = lab(failing={"gateway"})
    data = status.collect()
    assert {s["name"]: s["health"] for s in data["services"]}["gateway"] == "unhealthy"  # the record says healthy
    fake.calls.clear()
    data = status.collect(health_now={box.name: True for box in BOXES})  # just run by wait_converged
    assert {s["health"] for s in data["services"]} == {"healthy"}
    assert not [c for c in fake.calls if c[1].endswith(" health")]


def test_the_summary_asks_the_primary_only_what_its_table_shows(lab):
    fake = lab()
    data = status.collect(health_now={box.name: True for box in BOXES}, asked=status.SUMMARY)
    assert sorted(c[1] for c in fake.calls if c[0] == "primary") == ["safeq-admin endpoints --json",
                                                                     "safeq-admin status --json"]
    assert data["account"] is None and data["refused"] == []
    fake.calls.clear()
    status.collect(health_now={box.name: True for box in BOXES})  # `safeq-lab status`: everything
    assert len([c for c in fake.calls if c[0] == "primary"]) == 4


def test_a_stopped_service_keeps_the_engine_s_state_and_is_not_asked(lab):
    stopped = engine.Container("id-client", "safeq-lab-client-1", "client", 1, "exited", None, None)
    fake = lab(boxes=[b for b in BOXES if b.service != "client"] + [stopped])
    data = status.collect()
    assert data["services"][-1] == {"name": "client", "container": "safeq-lab-client-1", "host": "pcclient-host",
                                    "state": "exited", "health": None}
    assert "client" not in data["reports"] and not [c for c in fake.calls if c[0] == "client"]


def test_wait_converged_names_what_fails(lab):
    stopped = engine.Container("id-client", "safeq-lab-client-1", "client", 1, "exited", None, None)
    lab(failing={"gateway"}, boxes=[b for b in BOXES if b.service != "client"] + [stopped])
    failing, results = status.wait_converged(0)
    assert failing == {"gateway": "not connected", "client": "exited"}
    assert results["safeq-lab-primary-1"] is True and results["safeq-lab-gateway-1"] is False
    lab()
    assert status.wait_converged(5) == ({}, {box.name: True for box in BOXES})


def test_wait_converged_checks_again_only_what_failed_then_all_at_once(lab, monkeypatch):
    fake = lab(failing={"gateway"})
    rounds, listed = [], fake.containers

    def containers(service=None, timeout=engine.QUICK):  # each round lists the containers once
        if fake.calls or rounds:
            rounds.append(sorted(c[0] for c in fake.calls))
            fake.calls.clear()
        if len(rounds) == 2:
            fake.failing.clear()  # the gateway connects
        return listed(service, timeout)

    monkeypatch.setattr(engine, "containers", containers)
    monkeypatch.setattr(status, "time", SimpleNamespace(monotonic=time.monotonic, sleep=lambda s: None))
    failing, results = status.wait_converged(30)
    assert failing == {} and all(results.values())
    everyone = sorted(box.service for box in BOXES)
    # A full round, the gateway alone while it fails, the gateway alone again (now it passes), then
    # everyone at once.
    assert rounds == [everyone, ["gateway"], ["gateway"]]
    assert sorted(c[0] for c in fake.calls) == everyone


def test_wait_converged_takes_the_engine_s_checks_since_the_restart_and_checks_the_older_ones_itself(lab, monkeypatch):
    since = 1000.0
    boxes = [replace(BOXES[0], started=since + 1, last_check=engine.Check(since + 1.5, True, "connected")),
             replace(BOXES[1], started=since + 1),                                   # no check by the engine yet
             replace(BOXES[2], started=10.0, last_check=engine.Check(since + 0.2, False, "serving CN=localhost")),
             replace(BOXES[3], started=10.0, last_check=engine.Check(since - 5, True, "ok"))]  # before: checked here
    fake = lab(boxes=boxes)
    sleeps = []
    monkeypatch.setattr(status, "time", SimpleNamespace(monotonic=time.monotonic, sleep=sleeps.append))
    failing, results = status.wait_converged(0, since=since)
    assert failing == {boxes[1].service: "starting: its first healthcheck has not run yet",
                       boxes[2].service: "serving CN=localhost"}
    assert [c[0] for c in fake.calls] == [boxes[3].service]  # the engine's own verdicts start no process
    fake.calls.clear()
    # The engine checks again: everyone passes, and nothing of ours ran but the one full round.
    boxes[1] = replace(boxes[1], last_check=engine.Check(since + 2, True, "grey"))
    boxes[2] = replace(boxes[2], last_check=engine.Check(since + 2, True, "serving CN=primary-host"))
    assert status.wait_converged(5, since=since) == ({}, {box.name: True for box in boxes})
    assert [c[0] for c in fake.calls] == [boxes[3].service] and sleeps == []
    # A container that restarted since its last check passed (a crash, a restart policy) waits for a new one.
    fake.calls.clear()
    boxes[0] = replace(boxes[0], started=since + 3)
    failing, _ = status.wait_converged(0, since=since)
    assert failing == {boxes[0].service: "starting: its first healthcheck has not run yet"}
    assert [c[0] for c in fake.calls] == [boxes[3].service]
    # Without `since` (a swarm's tasks) every check is run here, whatever the engine recorded.
    fake.calls.clear()
    status.wait_converged(5)
    assert sorted(c[0] for c in fake.calls) == sorted(box.service for box in boxes)


def test_waiting_on_the_engine_alone_polls_it_without_the_pause_for_checks(lab, monkeypatch):
    since = 1000.0
    boxes = [replace(box, started=since + 1) for box in BOXES]
    fake = lab(boxes=boxes)
    sleeps = []

    def sleep(seconds):
        sleeps.append(seconds)
        boxes[:] = [replace(box, last_check=engine.Check(since + 2, True, "ok")) for box in boxes]
    monkeypatch.setattr(status, "time", SimpleNamespace(monotonic=time.monotonic, sleep=sleep))
    assert status.wait_converged(30, since=since)[0] == {}
    assert sleeps == [status.ENGINE_POLL] and fake.calls == []


def test_a_container_of_installs_is_one_row_for_all_of_them():
    topo = topology.parse({"name": "lab", "services": {
        "client-2": {"hostname": None, "networks": {"lab": {"aliases": ["pc-2", "pc-3", "pc-4"]}},
                     "image": "safeq-lab/client:latest"}}}, Path("/p"))
    record = {"issuer": "CN=I", "decision": "accepted", "state": "connected", "last_seen": "2026-01-01T00:00:00+00:00"}
    result = {"services": [{"name": "client-2", "host": "pc-2", "state": "running", "health": "unhealthy"}],
              "reports": {"client-2": {"state": "disconnected", "icon": "yellow", "installs": {
                  "pc-2": {"state": "connected"}, "pc-3": {"state": "connected"}, "pc-4": {"state": "disconnected"}}}},
              "endpoints": [{**record, "name": "pc-2", "subject": "CN=pc-2"}, {**record, "name": "pc-3", "subject": "CN=pc-3"},
                            {**record, "name": "pc-4", "subject": "CN=pc-4", "decision": "not-trusted",
                             "state": "disconnected"}]}
    [row] = status.summary_rows(result, topo)
    assert row == ("client-2", "pc-2 ... pc-4", "", "CN=pc-2 ... CN=pc-4", "CN=I",
                   "unhealthy, 2/3 installs connected (2 accepted)")
