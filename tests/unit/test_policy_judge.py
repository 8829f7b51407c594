"""The primary's decision table: judge() without Docker, sockets or files."""
from __future__ import annotations

import datetime as dt

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from certkit.jsse import PKIX
from safeq_primary.policy import ACCEPTED, NOT_TRUSTED, REFUSED, Peer, judge
from safeqlab.ocspcheck import Result

NOW = dt.datetime.now(dt.timezone.utc)


def _cert(cn: str, issuer: tuple | None = None, ca: bool = False, dns: str | None = None):
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)])
    signer_name, signer_key = (issuer[0].subject, issuer[1]) if issuer else (name, key)
    builder = (x509.CertificateBuilder().subject_name(name).issuer_name(signer_name).public_key(key.public_key())
               .serial_number(x509.random_serial_number()).not_valid_before(NOW - dt.timedelta(days=1))
               .not_valid_after(NOW + dt.timedelta(days=30))
               .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True))
    if dns:
        builder = builder.add_extension(x509.SubjectAlternativeName([x509.DNSName(dns)]), critical=False)
    return builder.sign(signer_key, hashes.SHA256()), key


@pytest.fixture(scope="module")
def pki():
    root = _cert("Acme-CA-Root", ca=True)
    inter = _cert("Acme-CA-Intermediate", root, ca=True)
    leaf = _cert("gateway-host", inter, dns="gateway-host")
    other = _cert("Other-CA-Root", ca=True)
    stray = _cert("stray-host", other, dns="stray-host")  # signed by a CA that stays trusted
    return {"root": root[0], "inter": inter[0], "leaf": leaf[0], "other": other[0], "stray": stray[0]}


def peer(*chain, name="gateway-host", policy="trusted-ca"):
    return Peer(chain=tuple(chain), role="gateway", name=name, policy=policy)


def trusted(p, chain, anchors, revocation=None):
    return judge(p(*chain) if callable(p) else p, policy="trusted-ca", anchors=anchors, record=None,
                 revocation=revocation)


@pytest.mark.parametrize("anchors, via", [
    (("root", "inter"), "Acme-CA-Intermediate"),  # a trusted intermediate is an anchor, as in Java
    (("root",), "Acme-CA-Root"),
    (("inter",), "Acme-CA-Intermediate"),
])
def test_trusted_ca_accepts_a_chain_to_a_trusted_ca(pki, anchors, via):
    d = trusted(peer, [pki["leaf"], pki["inter"]], [pki[a] for a in anchors])
    assert (d.decision, d.reason) == (ACCEPTED, f"trusted-ca policy: chain verified to trusted CA CN={via}")


def test_the_ca_the_chain_needs_removed_while_another_stays(pki):
    d = trusted(peer, [pki["leaf"], pki["inter"], pki["root"]], [pki["other"]])
    assert (d.decision, d.reason) == (NOT_TRUSTED, f"{PKIX}: its chain does not lead to a trusted CA")


@pytest.mark.parametrize("extra", ["stray", "other"])
def test_an_appended_certificate_of_a_trusted_ca_keeps_nothing(pki, extra):
    """A stray certificate signed by a still-trusted CA, or a copy of the trusted root, issued nothing on the path."""
    d = trusted(peer, [pki["leaf"], pki["inter"], pki[extra]], [pki["other"]])
    assert d.decision == NOT_TRUSTED


def test_name_the_certificate_does_not_carry_is_refused(pki):
    d = trusted(peer(pki["leaf"], pki["inter"], name="primary-host"), None, [pki["root"]])
    assert d.decision == REFUSED and d.reason.startswith("announced name primary-host does not match the certificate")


def test_no_certificate_is_javas_empty_chain(pki):
    assert trusted(peer, [], [pki["root"]]).reason == "Empty client certificate chain"


def test_a_policy_switched_since_the_handshake_ends_the_session(pki):
    d = judge(peer(pki["leaf"], pki["inter"]), policy="built-in", anchors=[pki["root"]], record=None, revocation=None)
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
    d = judge(peer(pki["leaf"], policy="built-in"), policy="built-in", anchors=[], record=record, revocation=None)
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
    d = trusted(peer, [pki["leaf"], pki["inter"]], [pki["root"]], revocation=result)
    assert d.decision == decision and d.reason.startswith(reason_start)
    if result.status == "unavailable" and result.ok:  # fail-open: accepted, and the warning is kept
        assert d.warning == "responder down" and d.reason.endswith("; OCSP warning (fail-open): responder down")
