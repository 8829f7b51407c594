"""The primary's decision table: judge() without Docker, sockets or files."""
from __future__ import annotations


import pytest

from certkit.build import certificate
from certkit.jre import Verdict
from certkit.jsse import PKIX
from safeq_primary.policy import ACCEPTED, NOT_TRUSTED, REFUSED, Peer, judge
from safeqlab.ocspcheck import Result


def _cert(cn: str, issuer: tuple | None = None, ca: bool = False, dns: str | None = None):
    key, cert = certificate(cn, issuer=issuer and (issuer[1], issuer[0]), ca=ca, dns_name=dns)
    return cert, key


@pytest.fixture(scope="module")
def pki():
    root = _cert("Acme-CA-Root", ca=True)
    inter = _cert("Acme-CA-Intermediate", root, ca=True)
    leaf = _cert("gateway-host", inter, dns="gateway-host")
    return {"root": root[0], "inter": inter[0], "leaf": leaf[0]}


def peer(*chain, name="gateway-host", policy="trusted-ca"):
    return Peer(chain=tuple(chain), role="gateway", name=name, policy=policy)


def jre_ok(anchor: str) -> Verdict:
    return Verdict(ok=True, anchor=anchor)


JRE_PKIX = Verdict(ok=False, exception="sun.security.validator.ValidatorException", message=PKIX,
                   certificate_exception=True)


def trusted(p, chain, verdict, revocation=None):
    return judge(p(*chain) if callable(p) else p, policy="trusted-ca", chain_verdict=verdict, record=None,
                 revocation=revocation)


def test_trusted_ca_accepts_what_the_jre_accepts_and_names_its_anchor(pki):
    d = trusted(peer, [pki["leaf"], pki["inter"]], jre_ok("CN=Acme-CA-Intermediate"))
    assert (d.decision, d.reason) == (ACCEPTED, "trusted-ca policy: chain verified to trusted CA CN=Acme-CA-Intermediate")


def test_trusted_ca_refuses_in_the_jres_words(pki):
    d = trusted(peer, [pki["leaf"], pki["inter"], pki["root"]], JRE_PKIX)
    assert (d.decision, d.reason) == (NOT_TRUSTED, PKIX)


def test_the_trusted_ca_policy_never_decides_without_the_jre(pki):
    with pytest.raises(ValueError, match="JRE's verdict"):
        trusted(peer, [pki["leaf"], pki["inter"]], None)


def test_name_the_certificate_does_not_carry_is_refused(pki):
    d = trusted(peer(pki["leaf"], pki["inter"], name="primary-host"), None, jre_ok("CN=Acme-CA-Root"))
    assert d.decision == REFUSED and d.reason.startswith("announced name primary-host does not match the certificate")


def test_no_certificate_is_javas_empty_chain(pki):
    assert trusted(peer, [], None).reason == "Empty client certificate chain"


def test_a_policy_switched_since_the_handshake_ends_the_session(pki):
    d = judge(peer(pki["leaf"], pki["inter"]), policy="built-in", chain_verdict=None, record=None, revocation=None)
    assert (d.decision, d.reason) == (NOT_TRUSTED, "certificate policy changed to built-in")


@pytest.mark.parametrize("record, decision, reason", [
    (None, NOT_TRUSTED, "endpoint not trusted: an administrator must trust endpoint ? in the endpoints list"),
    ({"id": "e1", "trusted": False}, NOT_TRUSTED,
     "endpoint not trusted: an administrator must trust endpoint e1 in the endpoints list"),
    ({"id": "e1", "trusted": True}, ACCEPTED, "built-in policy: endpoint trusted by an administrator"),
    ({"id": "e1", "trusted": True, "auto_trusted": True}, ACCEPTED,
     "built-in policy: endpoint trusted by an administrator (auto-trust)"),
])
def test_builtin_policy_follows_endpoint_authorization(pki, record, decision, reason):
    d = judge(peer(pki["leaf"], policy="built-in"), policy="built-in", chain_verdict=None, record=record,
              revocation=None)
    assert (d.decision, d.reason) == (decision, reason)


REVOKED = "Certificate has been revoked, reason: KEY_COMPROMISE, revocation date: 2026-11-27, serial 1a"


@pytest.mark.parametrize("result, decision, reason_start", [
    (Result(ok=True, status="good", reason="good"), ACCEPTED, "trusted-ca policy: chain verified"),
    (Result(ok=False, status="revoked", reason=REVOKED), REFUSED, f"OCSP: {REVOKED}"),
    (Result(ok=False, status="unknown", reason="unknown to the responder"), REFUSED, "OCSP: unknown"),
    (Result(ok=False, status="unavailable", reason="responder down"), REFUSED, "OCSP: responder down"),  # fail-closed
    (Result(ok=True, status="unavailable", reason="responder down"), ACCEPTED, "trusted-ca policy: chain verified"),
])
def test_revocation_answers(pki, result, decision, reason_start):
    d = trusted(peer, [pki["leaf"], pki["inter"]], jre_ok("CN=Acme-CA-Root"), revocation=result)
    assert d.decision == decision and d.reason.startswith(reason_start)
    if result.status == "unavailable" and result.ok:  # fail-open: accepted, and the warning is kept
        assert d.warning == "responder down" and d.reason.endswith("; OCSP warning (fail-open): responder down")
