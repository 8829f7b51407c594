"""More gateways and clients: a lab of its own (`--lab scale-02 up --gateways 2 --clients 10`) beside this
one. Each extra endpoint is its own host with its own certificate from the lab CA and its own session,
accepted by the primary; the extra clients are installs sharing one container (lab.scale), each with its
own store, log and service, restarted on its own; the container's health covers every install; `status`
counts them; the revocation drill refuses exactly the revoked ones and brings them back; `up` with one
each again removes the extras."""
import json
import subprocess
import time

import pytest

from conftest import lab
from lab import engine
from safeqlab.records import current_record

pytestmark = pytest.mark.lab_pki  # its own lab on the lab's own CA

NAME = "scale-02"
BASE = ("ocsp", "primary", "gateway", "client", "portal")
INSTALLS = tuple(f"pcclient-host-{i}" for i in range(2, 11))  # the installs in client-2
HOSTS = ("gateway-host", "gateway-host-2", "pcclient-host", *INSTALLS)


def in_installs(*command: str):
    return lab("--lab", NAME, "exec", "client-2", *command)


def installs_status() -> dict:
    shown = in_installs("safeq-client", "status", "--json")
    assert shown.returncode == 0, shown.stderr
    return json.loads(shown.stdout)["installs"]


def wait_health(ok: bool, seconds: float = 30) -> str:
    """The container's healthcheck, once it passes (``ok``) or fails: what it says."""
    began = time.monotonic()
    while True:
        health = in_installs("safeq-client", "health")
        if (health.returncode == 0) == ok:
            return health.stdout
        assert time.monotonic() - began < seconds, f"health exit {health.returncode}: {health.stdout}"
        time.sleep(1)


def check_endpoints() -> None:
    status = json.loads(lab("--lab", NAME, "status", "--json").stdout)
    assert {s["name"]: s["health"] for s in status["services"]} == dict.fromkeys(
        (*BASE, "gateway-2", "client-2"), "healthy")
    current = {host: current_record(status["endpoints"], host) or {} for host in HOSTS}
    assert {h: (e.get("decision"), e.get("state")) for h, e in current.items()} == dict.fromkeys(
        HOSTS, ("accepted", "connected"))
    assert {h: e["subject"].split("CN=")[-1].split(",")[0] for h, e in current.items()} == {h: h for h in HOSTS}
    assert len({e["sha256"] for e in current.values()}) == len(HOSTS)  # a certificate each
    assert set(installs_status()) == set(INSTALLS)  # one container, every install reporting


def check_installs_on_their_own() -> None:
    """One install's setup and restart touch no other; health says which install is not connected."""
    for host in INSTALLS:  # its own log names its own certificate
        log = in_installs("cat", f"/installs/{host}/ProgramData/safeqclientcore/logs/safeqclientcore.log").stdout
        assert f"Using system certificate subject=CN={host},O=Acme " in log
        assert f"Connected to primary-host:2560 as client {host};" in log
    before = installs_status()
    broken = in_installs("safeq-client", "setup", "--install", "pcclient-host-4", "--subject", "CN=nobody")
    assert broken.returncode == 0, broken.stdout + broken.stderr
    down = wait_health(False)
    assert down.startswith("8/9 installs connected; pcclient-host-4: error: no certificate with a private key"), down
    fixed = in_installs("safeq-client", "setup", "--install", "pcclient-host-4", "--subject", "pcclient-host-4")
    assert fixed.returncode == 0, fixed.stdout + fixed.stderr
    assert wait_health(True) == "9/9 installs connected\n"
    after = installs_status()
    assert [h for h in INSTALLS if after[h]["since"] != before[h]["since"]] == ["pcclient-host-4"]


def test_two_gateways_and_ten_clients_each_their_own_endpoint(primary, monkeypatch):
    # Its own PKI, whichever lab the checks run on (a named lab's verify passes on its SAFEQ_PKI_DIR): the
    # drill revokes and `clean --pki` removes what this lab issued, and nothing of the lab under test.
    monkeypatch.delenv("SAFEQ_PKI_DIR", raising=False)
    try:
        started = lab("--lab", NAME, "up", "--no-build", "--gateways", "2", "--clients", "10")
        assert started.returncode == 0, started.stderr[-3000:]
        check_endpoints()
        text = lab("--lab", NAME, "status").stdout
        assert "endpoints by decision and reason" in text
        portal = lab("--lab", NAME, "exec", "portal", "printenv", "SAFEQ_PORTAL_HOSTS").stdout.split()
        drawn = [p.split("=", 1)[1] for p in portal if p.split("=")[0] in ("gateway", "client")]
        assert sorted(drawn) == sorted(HOSTS)  # the Lab page draws every install, each once
        check_installs_on_their_own()
        # The revocation drill: exactly the two revoked refused, the ten others connected; then all back.
        drill = lab("--lab", NAME, "drill", "revoke", "--count", "2", "--json")
        assert drill.returncode == 0, drill.stdout[-3000:] + drill.stderr[-2000:]
        report = json.loads(drill.stdout)
        assert report["acted_on"] == ["pcclient-host-10", "pcclient-host-9"]
        assert [s["connected"] for s in report["steps"]] == [12, 10, 12]
        revoked = report["steps"][1]["endpoints"]
        assert {h for h, seen in revoked.items() if seen.startswith("refused")} == {"pcclient-host-10", "pcclient-host-9"}
        account = json.loads(lab("--lab", NAME, "account", "show", "--json").stdout)
        assert account["ocsp"]["enabled"] is False  # put back as it was
        # SIGTERM: the container of nine installs stops within compose's 2 s grace, all of them with it.
        began = time.monotonic()
        stopped = subprocess.run(["docker", "stop", "--time", "2", f"{NAME}-client-2-1"], capture_output=True,
                                 text=True, timeout=30)
        assert stopped.returncode == 0 and time.monotonic() - began < 1.9, stopped.stderr
        # Back to compose.yaml's one each: the extras go, the rest stays up.
        again = lab("--lab", NAME, "up", "--no-build", "--gateways", "1", "--clients", "1")
        assert again.returncode == 0, again.stderr[-3000:]
        assert sorted(b.service for b in engine.containers(project_name=NAME)) == sorted(BASE)
    finally:
        cleaned = lab("--lab", NAME, "clean", "--pki")
        assert cleaned.returncode == 0, cleaned.stderr
    assert engine.containers(project_name=NAME) == []
    # The data volumes of the extras dropped above go too, though compose.yaml no longer names them.
    assert engine.project_volumes(NAME) == []
