"""More gateways and clients: a lab of its own (`--lab scale-02 up --gateways 2 --clients 3`) beside this
one. Each extra endpoint is its own host with its own certificate from the lab CA and its own session,
accepted by the primary; `status` counts them; the revocation drill refuses exactly the revoked ones and
brings them back; `up` with one each again removes the extras."""
import json

import pytest

from conftest import lab
from lab import engine
from safeqlab.records import current_record

pytestmark = pytest.mark.lab_pki  # its own lab on the lab's own CA

NAME = "scale-02"
BASE = ("ocsp", "primary", "gateway", "client", "portal")
HOSTS = ("gateway-host", "gateway-host-2", "pcclient-host", "pcclient-host-2", "pcclient-host-3")


def test_two_gateways_and_three_clients_each_their_own_endpoint(primary):
    try:
        started = lab("--lab", NAME, "up", "--no-build", "--gateways", "2", "--clients", "3")
        assert started.returncode == 0, started.stderr[-3000:]
        status = json.loads(lab("--lab", NAME, "status", "--json").stdout)
        assert {s["name"]: s["health"] for s in status["services"]} == dict.fromkeys(
            (*BASE, "gateway-2", "client-2", "client-3"), "healthy")
        current = {host: current_record(status["endpoints"], host) or {} for host in HOSTS}
        assert {h: (e.get("decision"), e.get("state")) for h, e in current.items()} == dict.fromkeys(
            HOSTS, ("accepted", "connected"))
        assert {h: e["subject"].split("CN=")[-1].split(",")[0] for h, e in current.items()} == {h: h for h in HOSTS}
        assert len({e["sha256"] for e in current.values()}) == len(HOSTS)  # a certificate each
        text = lab("--lab", NAME, "status").stdout
        assert "endpoints by decision and reason" in text
        # The revocation drill: exactly the two revoked refused, the three others connected; then all back.
        drill = lab("--lab", NAME, "drill", "revoke", "--count", "2", "--json")
        assert drill.returncode == 0, drill.stdout[-3000:] + drill.stderr[-2000:]
        report = json.loads(drill.stdout)
        assert report["acted_on"] == ["pcclient-host-3", "pcclient-host-2"]
        assert [s["connected"] for s in report["steps"]] == [5, 3, 5]
        revoked = report["steps"][1]["endpoints"]
        assert {h for h, seen in revoked.items() if seen.startswith("refused")} == {"pcclient-host-3", "pcclient-host-2"}
        account = json.loads(lab("--lab", NAME, "account", "show", "--json").stdout)
        assert account["ocsp"]["enabled"] is False  # put back as it was
        # Back to compose.yaml's one each: the extras go, the rest stays up.
        again = lab("--lab", NAME, "up", "--no-build", "--gateways", "1", "--clients", "1")
        assert again.returncode == 0, again.stderr[-3000:]
        assert sorted(b.service for b in engine.containers(project_name=NAME)) == sorted(BASE)
    finally:
        cleaned = lab("--lab", NAME, "clean", "--pki")
        assert cleaned.returncode == 0, cleaned.stderr
    assert engine.containers(project_name=NAME) == []
