"""Each endpoint's connection to the primary is what the doctor foresees for the lab's spec: made and
recorded by both sides, or refused by the side the JRE says, in the JRE's words.

On the lab's own PKI (and a good spec) every endpoint connects; `up --spec FILE --force` starts a
spec the doctor finds errors in, and these checks show the lab failing exactly as foreseen.
"""
import json

import pytest

from conftest import endpoints, host, service_of, wait_for

STATUS = {"gateway": "safeq-gateway status --json", "client": "safeq-client status --json"}
SETTLE = 30  # s: reconnect backoff and a refused endpoint's retries


def own_status(outcome) -> dict:
    return json.loads(host(service_of(outcome.host)).check_output(STATUS[outcome.role]))


@pytest.fixture(scope="module")
def foreseen(doctor):
    assert doctor.connections, "the doctor foresaw no connection"
    return {c.host: c for c in doctor.connections}


def record(primary, outcome):
    return next((e for e in endpoints(primary) if e.get("sha256") == outcome.sha256 and e["state"] == "connected"), None)


def test_every_endpoint_of_the_spec_is_foreseen(spec, foreseen):
    assert sorted(foreseen) == sorted([g.host for g in spec.gateways] + [c.host for c in spec.clients])


@pytest.mark.parametrize("role", ["gateway", "client"])
def test_connection_is_the_doctors(primary, spec, foreseen, role):
    outcome = next(c for c in foreseen.values() if c.role == role)
    if outcome.connects:
        ep = wait_for(lambda: record(primary, outcome), SETTLE)
        assert ep, f"{outcome.host} is not connected: {sorted(e['name'] for e in endpoints(primary))}"
        assert ep["role"] == role and ep["decision"] == "accepted"
        assert ep["reason"].startswith("trusted-ca policy: chain verified")
        state = own_status(outcome)
        assert state["state"] == "connected", state
        return
    if outcome.refused_by == "primary":
        address = host(service_of(outcome.host)).check_output("hostname -i").split()[0]
        refused = wait_for(lambda: [r for r in json.loads(primary.check_output("safeq-admin api GET /api/v1/refused"))
                                    if r["address"] == address], SETTLE)
        assert refused and outcome.reason in refused[0]["reason"], (outcome, refused)
    else:
        state = wait_for(lambda: (lambda s: s if s["reason"] and outcome.reason in s["reason"] else None)(
            own_status(outcome)), SETTLE)
        assert state, (outcome, own_status(outcome))
    assert record(primary, outcome) is None
    assert own_status(outcome)["state"] != "connected"


def test_gateway_connected_to_verified_primary(gateway, spec, foreseen, doctor):
    [gw] = spec.gateways
    if not foreseen[gw.host].connects:
        pytest.skip(f"the doctor foresees {gw.host} refused (checked above)")
    state = json.loads(gateway.check_output("safeq-gateway status --json"))
    assert state["state"] == "connected", state
    assert state["peer"]["host"] == spec.primary.host
    assert state["peer"]["verified"] is True
    leaf = doctor.material.primary.chain[0]
    assert state["peer"]["subject"] == leaf.subject.rfc4514_string()


def test_gateway_session_sends_sni_as_java_would_and_tls12_or_better(primary, spec, foreseen):
    outcome = foreseen[spec.gateways[0].host]
    if not outcome.connects:
        pytest.skip(f"the doctor foresees {outcome.host} refused (checked above)")
    gw = record(primary, outcome)
    # A Java client sends SNI only for a host name with a dot (primary-host has none).
    assert gw["sni"] == (spec.primary.host if "." in spec.primary.host else None)
    assert gw["tls"] in ("TLSv1.2", "TLSv1.3")
