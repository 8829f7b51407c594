"""Built-in certificates with endpoint authorization (the product default).
The module switches the whole lab to the built-in policy and back to the doc's end state."""
import json

import pytest

from conftest import ROOT, TOPOLOGY, host, lab, lab_json, wait_for
from lab import engine

# Breaks and mends the lab's own PKI (its CA issues what it needs): not run on a spec's files.
pytestmark = pytest.mark.lab_pki

def health(target, command: str) -> bool:
    return target.run(command).rc == 0


# --- built-in certificates with endpoint authorization -------------------------------------------

def newest_builtin(name: str) -> dict | None:
    """The record of the endpoint's current built-in certificate (older ones stay in the list)."""
    eps = [e for e in lab_json("endpoints", "list") if e["name"] == name and e["kind"] == "built-in"]
    return max(eps, key=lambda e: e["first_seen"]) if eps else None


@pytest.fixture(scope="module")
def builtin_lab(primary, gateway, client):
    lab_json("account", "auto-trust", "off")
    # New endpoints: drop the built-in certificates the gateway and client made before.
    assert lab("down").returncode == 0
    engine.remove_volumes([f"{TOPOLOGY.project}_gateway-data", f"{TOPOLOGY.project}_client-data"])
    up = lab("up", "--no-build", "--policy", "built-in")
    assert up.returncode == 0, up.stderr
    yield
    back = lab("up", "--no-build")  # the doc's end state again
    assert back.returncode == 0, back.stderr


def builtin_id(name: str) -> str:
    return newest_builtin(name)["id"]


def test_trust_lets_them_connect_and_untrust_disconnects(builtin_lab):
    gw, cl = host("gateway"), host("client")
    for name in ("gateway-host", "pcclient-host"):
        assert lab_json("endpoints", "trust", builtin_id(name))["trusted"] is True
    assert wait_for(lambda: health(gw, "safeq-gateway health") and health(cl, "safeq-client health"), 20)
    assert json.loads(cl.check_output("safeq-client status --json"))["icon"] == "grey"
    ep = next(e for e in lab_json("endpoints", "list") if e["id"] == builtin_id("gateway-host"))
    assert (ep["decision"], ep["state"]) == ("accepted", "connected")

    lab_json("endpoints", "untrust", builtin_id("gateway-host"))
    state = wait_for(lambda: (lambda s: s if s["state"] == "refused" else None)(
        json.loads(gw.check_output("safeq-gateway status --json"))), 15)
    assert state and "endpoint not trusted" in state["reason"]
    ep = next(e for e in lab_json("endpoints", "list") if e["id"] == builtin_id("gateway-host"))
    assert ep["decision"] == "not-trusted"
    assert health(cl, "safeq-client health")  # the client stays trusted and connected


def test_auto_trust_serves_a_new_endpoint_at_once(builtin_lab, manifest):
    lab_json("account", "auto-trust", "on")
    try:
        # A second gateway that the primary has never seen: its own container, built-in certificate.
        out = engine.run_once("safeq-lab/gateway:latest", ["safeq-gateway", "test-connection"],
                              network=TOPOLOGY.network, hostname="gateway-2",
                              binds={f"{ROOT}/build/pki/hosts/gateway-host": "/pki"},
                              environment={"SAFEQ_ENDPOINT_CERTIFICATES": "built-in"}, timeout=60)
        assert out.returncode == 0, out.stdout + out.stderr
        assert out.stdout.strip().splitlines()[-1].startswith("ok: connected to primary-host:2560")
        ep = next(e for e in lab_json("endpoints", "list") if e["name"] == "gateway-2")
        assert ep["trusted"] is True and ep["decision"] == "accepted"
    finally:
        lab_json("account", "auto-trust", "off")
