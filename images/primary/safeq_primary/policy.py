"""May this endpoint connect, or stay connected? One pure decision for the handshake and live re-judging.

Whether a chain leads to a trusted CA is the JRE's verdict (certkit.jre), given here as an
input. The peer's chain is the path the JRE validated (leaf first, ending at its anchor),
never the extra certificates a peer merely sent: an appended certificate signed by a
trusted CA, or a copy of a trusted root, proves nothing about the leaf.
"""
from __future__ import annotations

from dataclasses import dataclass

from cryptography import x509

from certkit.certs import cert_names
from certkit.jre import Verdict
from certkit.jsse import EMPTY_CHAIN
from safeqlab.ocspcheck import Result

ACCEPTED, REFUSED, NOT_TRUSTED = "accepted", "refused", "not-trusted"


@dataclass(frozen=True)
class Decision:
    decision: str  # accepted | refused | not-trusted
    reason: str    # in the words the product (Java) logs
    warning: str | None = None  # accepted without a revocation answer (OCSP fail-open): the detail

    @property
    def accepted(self) -> bool:
        return self.decision == ACCEPTED


@dataclass(frozen=True)
class Peer:
    chain: tuple[x509.Certificate, ...]  # the validated path, leaf first
    role: str
    name: str
    policy: str  # the policy the session was established under
    sent: tuple[x509.Certificate, ...] = ()  # as the endpoint sent it: what the JRE judges again


def judge(peer: Peer, *, policy: str, chain_verdict: Verdict | None, record: dict | None,
          revocation: Result | None) -> Decision:
    """The account's verdict on ``peer``.

    policy         the account's certificate policy now
    chain_verdict  the JRE's verdict on the peer's chain against the Trusted CA certificates
                   plus the public bundle as they are now (trusted-ca policy)
    record      the endpoints-list record of the leaf's fingerprint (built-in policy)
    revocation  the OCSP answer for the verified chain (ok already weighs fail-open/fail-closed),
                or None while checks are off
    """
    if not peer.chain:
        return Decision(REFUSED, EMPTY_CHAIN)
    leaf = peer.chain[0]
    if peer.name not in cert_names(leaf):
        return Decision(REFUSED, f"announced name {peer.name} does not match the certificate "
                                 f"({leaf.subject.rfc4514_string()})")
    if peer.policy != policy:
        return Decision(NOT_TRUSTED, f"certificate policy changed to {policy}")
    if policy == "built-in":
        return _builtin(record)
    return _trusted_ca(chain_verdict, revocation)


def _builtin(record: dict | None) -> Decision:
    if not record or not record.get("trusted"):
        ident = record["id"] if record else "?"
        return Decision(NOT_TRUSTED, "endpoint not trusted: an administrator must trust endpoint "
                                     f"{ident} in the endpoints list")
    how = " (auto-trust)" if record.get("auto_trusted") else ""
    return Decision(ACCEPTED, f"built-in policy: endpoint trusted by an administrator{how}")


def _trusted_ca(chain_verdict: Verdict | None, revocation: Result | None) -> Decision:
    if chain_verdict is None:
        raise ValueError("the trusted-ca policy judges a chain by the JRE's verdict on it")
    if not chain_verdict.ok:
        return Decision(NOT_TRUSTED, chain_verdict.reason)
    reason = f"trusted-ca policy: chain verified to trusted CA {chain_verdict.anchor}"
    if revocation is None:
        return Decision(ACCEPTED, reason)
    if not revocation.ok:
        return Decision(REFUSED, f"OCSP: {revocation.reason}")
    if revocation.status == "unavailable":  # fail-open
        return Decision(ACCEPTED, f"{reason}; OCSP warning (fail-open): {revocation.reason}", warning=revocation.reason)
    return Decision(ACCEPTED, reason)
