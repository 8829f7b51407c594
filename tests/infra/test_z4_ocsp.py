"""OCSP: the lab's responder, `pki revoke`, and the primary's revocation checks (account settings).
Puts the lab back: checks off, fail-closed, the gateway with a fresh certificate."""
import json
import re

import pytest

from conftest import ROOT, compose, endpoint, endpoints, lab, lab_json, sha256_of, wait_for

# Breaks and mends the lab's own PKI (its CA issues what it needs): not run on a spec's files.
pytestmark = pytest.mark.lab_pki

PKI = str(ROOT / "build/pki")


def openssl_ocsp(gateway, manifest) -> str:
    """The independent client, from inside the lab network, about the gateway's current certificate."""
    gw = next(e for e in manifest["entities"] if e["name"] == "gateway-host")
    gateway.check_output(
        "mkdir -p /tmp/ocsp && cd /tmp/ocsp && "
        f"openssl pkcs12 -in /pki/gateway-host.pfx -passin pass:{gw['pfx_password']} -nokeys -clcerts -out leaf.pem && "
        f"openssl pkcs12 -in /pki/gateway-host.pfx -passin pass:{gw['pfx_password']} -nokeys -cacerts -out cas.pem && "
        "awk '/BEGIN/{n++} n==1' cas.pem > issuer.pem")
    return gateway.run("cd /tmp/ocsp && openssl ocsp -issuer issuer.pem -cert leaf.pem -url http://ocsp-host:8080 "
                       "-CAfile cas.pem -nonce 2>&1").stdout


def gw_state(gateway) -> dict:
    return json.loads(gateway.check_output("safeq-gateway status --json"))


@pytest.fixture(scope="module")
def ocsp_on():
    lab_json("account", "ocsp", "on", "--on-failure", "fail-closed")
    yield
    compose("start", "ocsp")
    lab_json("account", "ocsp", "off", "--no-url", "--on-failure", "fail-closed")


def test_responder_answers_good_for_a_fresh_certificate(gateway, manifest):
    out = openssl_ocsp(gateway, manifest)
    assert "Response verify OK" in out, out
    assert re.search(r"^leaf\.pem: good$", out, re.M), out


def test_revoked_gateway_is_refused_client_unaffected(primary, gateway, client, manifest, ocsp_on):
    assert wait_for(lambda: gateway.run("safeq-gateway health").rc == 0, 20), "gateway should pass a good OCSP check"
    revoke = lab("pki", "revoke", "gateway-host", "--reason", "keyCompromise", "--dir", PKI)
    assert revoke.returncode == 0, revoke.stderr
    serial = next(e["serial"] for e in json.loads(lab("pki", "show", "--json", "--dir", PKI).stdout)["entities"]
                  if e["name"] == "gateway-host")
    # The responder sees it without a restart.
    out = wait_for(lambda: (lambda o: o if "leaf.pem: revoked" in o else "")(openssl_ocsp(gateway, manifest)), 5)
    assert "leaf.pem: revoked" in out and "Reason: keyCompromise" in out, out
    ep = wait_for(lambda: (lambda e: e if e["decision"] == "refused" else None)(endpoint(primary, "gateway-host")), 30)
    assert ep, endpoint(primary, "gateway-host")
    assert ep["reason"].startswith("OCSP: Certificate has been revoked, reason: KEY_COMPROMISE, revocation date: ")
    assert f"serial {serial}" in ep["reason"]
    log = primary.file("/var/log/safeqcloud/server.log").content_string
    assert re.search(rf"(Refused gateway gateway-host \(serial {serial}\)|Disconnecting endpoint \S+ \(gateway gateway-host\)): OCSP: Certificate has been revoked, reason: KEY_COMPROMISE", log)
    state = wait_for(lambda: (lambda s: s if s["state"] == "refused" else None)(gw_state(gateway)), 20)
    assert state["reason"].startswith("refused by the primary: OCSP: Certificate has been revoked")
    assert client.run("safeq-client health").rc == 0


def test_checks_off_accept_the_revoked_gateway(primary, gateway, ocsp_on):
    lab_json("account", "ocsp", "off")
    try:
        assert wait_for(lambda: gateway.run("safeq-gateway health").rc == 0, 20)
        assert endpoint(primary, "gateway-host")["decision"] == "accepted"
    finally:
        lab_json("account", "ocsp", "on")


def test_reissued_gateway_connects_again(primary, gateway, ocsp_on):
    assert lab("pki", "reissue", "gateway-host", "--dir", PKI).returncode == 0
    new = sha256_of(ROOT / "build/pki/entities/gateway-host/gateway-host.crt")
    # The revoked session ends at its next check; the gateway comes back with the new certificate.
    ep = wait_for(lambda: next((e for e in endpoints(primary) if e.get("sha256") == new
                                and (e["decision"], e["state"]) == ("accepted", "connected")), None), 40)
    assert ep, [e for e in endpoints(primary) if e["name"] == "gateway-host"]
    assert wait_for(lambda: gateway.run("safeq-gateway health").rc == 0, 20)


def test_responder_stopped_fail_closed_refuses_fail_open_warns(primary, gateway, ocsp_on):
    assert compose("stop", "ocsp").returncode == 0
    try:
        # A cached answer (at most 5 s old) may still serve the first attempts.
        out = wait_for(lambda: (lambda r: r if r.rc == 1 else None)(gateway.run("safeq-gateway test-connection")), 20)
        assert out, "the primary accepted an endpoint while its OCSP responder was down (fail-closed)"
        assert out.stdout.strip().splitlines()[-1].startswith(
            "failed: refused by the primary: OCSP: Unable to determine revocation status due to network error")
        lab_json("account", "ocsp", "--on-failure", "fail-open")
        out = gateway.run("safeq-gateway test-connection")
        assert out.rc == 0, out.stdout
        log = primary.file("/var/log/safeqcloud/server.log").content_string
        assert "without a revocation answer (fail-open): Unable to determine revocation status due to network error" in log
    finally:
        compose("start", "ocsp")
        lab_json("account", "ocsp", "--on-failure", "fail-closed")


def test_gateway_checks_the_primary_by_ocsp_when_asked(gateway):
    check = "SAFEQ_GATEWAY_OCSP=on safeq-gateway test-connection"
    assert gateway.run(check).rc == 0
    assert lab("pki", "revoke", "primary-host", "--reason", "cessationOfOperation", "--dir", PKI).returncode == 0
    try:
        out = wait_for(lambda: (lambda r: r if r.rc == 1 else None)(gateway.run(check)), 10)
        assert out, "the gateway accepted a revoked primary certificate"
        assert out.stdout.strip().splitlines()[-1].startswith(
            "failed: the primary's certificate failed the OCSP check: Certificate has been revoked, "
            "reason: CESSATION_OF_OPERATION")
        assert gateway.run("safeq-gateway test-connection").rc == 0  # off by default: no check
    finally:
        assert lab("pki", "reissue", "primary-host", "--dir", PKI).returncode == 0
        up = lab("up", "--no-build")  # the doc's steps again, with the new PFX
        assert up.returncode == 0, up.stderr
