"""Would the machines accept each other? Asked of the JRE (certkit.jre), as the lab's services ask it.

- An endpoint offers its certificate as Java's key manager does (certkit.keychoice): only a chain
  whose certificates are issued by one of the CAs the primary names (the subjects of its Trusted
  CA certificates and of the public bundle); else none, and the primary logs "Empty client
  certificate chain". What it sends, the primary's JRE judges (checkClientTrusted).
- Every gateway and client judges the primary's chain (checkServerTrusted) against what it trusts,
  and Java's HTTPS host name check holds it against ``primary.host``.
- The primary's own check of its listener trusts the JRE cacerts: the spec's cacerts plus the
  public CAs Java ships.
"""
from __future__ import annotations

from dataclasses import dataclass

from cryptography import x509

from certkit import keychoice
from certkit.certs import cert_names, common_name, fingerprint, name_str
from certkit.jre import Validator
from certkit.jsse import EMPTY_CHAIN

from .findings import ERROR, WARNING, Finding, finding
from .material import Endpoint, Material
from .stores import KeyMaterial


def _subjects(chain: list[x509.Certificate]) -> str:
    return " -> ".join(name_str(c.subject) for c in chain)


def offered(ep: Endpoint, anchors: list[x509.Certificate]) -> tuple[list[x509.Certificate] | None, list[Finding]]:
    """The chain the endpoint sends to the primary, or None with the finding that says why none."""
    key = ep.key
    chosen = keychoice.choose([key.chain], [a.subject for a in anchors])
    if chosen is not None:
        return chosen, []
    top = key.chain[-1]
    return None, [finding(ERROR, "client.no-certificate-sent", key.file,
                          f"{key.host} sends no certificate: no certificate of its chain ({_subjects(key.chain)}) is "
                          "issued by a CA the primary names in its certificate request (its Trusted CA certificates "
                          f"and the public bundle), so Java sends none and the primary logs \"{EMPTY_CHAIN}\"",
                          f"put the missing intermediate CA certificates into the {key.role}'s PFX (its chain stops "
                          f"at {name_str(top.subject)}, issued by {name_str(top.issuer)}), or import that issuer "
                          "under Trusted CA certificates ([account] trusted_cas)")]


def endpoint_judged(ep: Endpoint, anchors: list[x509.Certificate], validator: Validator) -> list[Finding]:
    chain, findings = offered(ep, anchors)
    if chain is None:
        return findings
    verdict = validator.judge(chain, anchors, "client")
    if verdict.ok:
        return []
    return [finding(ERROR, "trust.endpoint-refused", ep.key.file,
                    f"the primary refuses {ep.key.host}'s chain: {validator.refusal(verdict)}",
                    "make the chain valid for TLS client authentication up to a Trusted CA certificate "
                    "(see the other findings for this file)")]


def primary_judged(primary: KeyMaterial, ep: Endpoint, validator: Validator) -> list[Finding]:
    """As the endpoint's JRE judges the primary's chain (the host name is checked once, apart)."""
    if ep.trust_failed:
        return []  # reported already (a truststore Java cannot read, or empty to it)
    verdict = validator.judge(primary.chain, ep.anchors, "server")
    if verdict.ok:
        return []
    where = ep.trust_file or ep.key.file
    return [finding(ERROR, "trust.primary-refused", where,
                    f"{ep.key.host} refuses the primary's chain ({_subjects(primary.chain)}) by {ep.trust_label}: "
                    f"{validator.refusal(verdict)}",
                    f"add the primary's root CA to {ep.trust_label}, or put the primary's whole chain into its PFX")]


def host_name(primary: KeyMaterial, host: str, validator: Validator) -> list[Finding]:
    """Java's HTTPS host name check alone: the leaf as its own anchor, so only the name is judged."""
    leaf = primary.chain[0]
    verdict = validator.judge([leaf], [leaf], "server", host=host)
    if verdict.ok:
        return []
    return [finding(ERROR, "san.host-not-covered", primary.file,
                    f"gateways and clients connect to {host}, and Java refuses the primary's certificate for it: "
                    f"{verdict.reason} (the certificate names {', '.join(sorted(cert_names(leaf)))})",
                    f"reissue the primary's certificate with subjectAltName DNS:{host}, or set [primary] host to a "
                    "name it carries")]


def own_check(material: Material, validator: Validator) -> list[Finding]:
    """The primary's check of its own listener against the JRE cacerts (the lab's status 'degraded')."""
    chain = material.primary.chain
    verdict = validator.judge(chain, material.cacerts + material.system, "server", host=common_name(chain[0]))
    if verdict.ok:
        return []
    return [finding(WARNING, "primary.self-check-failed", material.primary.file,
                    f"the primary's own check of its listener (Java, JRE cacerts, host {common_name(chain[0])}) fails, "
                    f"so its status would be degraded: {validator.refusal(verdict)}",
                    "list the root CA under [primary] cacerts (keytool -importcert into "
                    "/opt/safeqcloud/jre/lib/security/cacerts); for a host name failure, give the certificate "
                    "its CN as a DNS subjectAltName too")]


def check(material: Material, host: str, validator: Validator | None) -> list[Finding]:
    """Without a JRE only Java's key choice is made (it needs none); the verdicts are left out."""
    anchors = material.trusted_cas + material.system  # what the primary trusts inbound
    out: list[Finding] = []
    primary = material.primary
    if primary.usable and validator is not None:
        out += host_name(primary, host, validator) + own_check(material, validator)
    for ep in material.endpoints:
        if ep.key.usable:
            out += endpoint_judged(ep, anchors, validator) if validator is not None else offered(ep, anchors)[1]
        if primary.usable and validator is not None:
            out += primary_judged(primary, ep, validator)
    return out


# --- what the lab will show: each endpoint's connection, as the JREs decide it ------------------

@dataclass(frozen=True)
class Outcome:
    """One endpoint's connection to the primary: made, or refused by one side with the JRE's words."""
    host: str
    role: str
    sha256: str                    # the endpoint's certificate, as the primary records it
    refused_by: str | None = None  # "primary", or the endpoint's own host name; None: it connects
    reason: str | None = None      # the JRE's words for the refusal (its log adds the alert on JRE 21)

    @property
    def connects(self) -> bool:
        return self.refused_by is None


def _empty_truststore(material: Material, ep: Endpoint) -> bool:
    """A truststore Java reads with no trustedCertEntry: the endpoint runs and its JRE refuses every server."""
    return any(f.code == "truststore.no-trusted-entries" and f.file == str(ep.trust_file) for f in material.findings)


def outcome(material: Material, ep: Endpoint, host: str, validator: Validator) -> Outcome | None:
    """The endpoint judges the primary's chain first (TLS sends it first); then the primary judges the
    chain the endpoint chooses to send. None: a machine that cannot start (its findings say why)."""
    primary = material.primary
    if not (primary.usable and ep.key.usable) or (ep.trust_failed and not _empty_truststore(material, ep)):
        return None
    leaf = fingerprint(ep.key.chain[0])
    refused = lambda side, why: Outcome(ep.key.host, ep.key.role, leaf, side, why)  # noqa: E731
    verdict = validator.judge(primary.chain, [] if ep.trust_failed else ep.anchors, "server", host=host)
    if not verdict.ok:
        return refused(ep.key.host, verdict.reason)
    anchors = material.trusted_cas + material.system
    chain, _ = offered(ep, anchors)
    if chain is None:
        return refused("primary", EMPTY_CHAIN)
    verdict = validator.judge(chain, anchors, "client")
    if not verdict.ok:
        return refused("primary", verdict.reason)
    return Outcome(ep.key.host, ep.key.role, leaf)


def outcomes(material: Material, host: str, validator: Validator) -> list[Outcome]:
    """Every endpoint whose machine can start, in the spec's order."""
    found = (outcome(material, ep, host, validator) for ep in material.endpoints)
    return [o for o in found if o is not None]
