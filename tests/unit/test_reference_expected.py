"""What the reference Java server and client said, and what ``openssl verify`` said, per case (no tests here).

Read from OpenJDK 17.0.15 (this machine, Debian 12) and OpenJDK 21.0.13 (the lab's base image,
Debian 13). The words are the same but for two things: JRE 21 puts the TLS alert in front of
every handshake message ("(certificate_unknown) PKIX path ..."), and its server answers a
missing client certificate with certificate_required (TLS 1.3) or handshake_failure (TLS 1.2)
where JRE 17 sends bad_certificate.

The end that refuses words its reason the same way every run. The other end's words are a race:
the alert it receives, or a broken pipe / reset when the refusing end closed while it was still
writing; both are accepted.
"""
from __future__ import annotations

from dataclasses import dataclass

HS = "javax.net.ssl.SSLHandshakeException"
SSL = "javax.net.ssl.SSLException"
VE = "sun.security.validator.ValidatorException"
CPVE = "java.security.cert.CertPathValidatorException"
NO_PATH = ("sun.security.provider.certpath.SunCertPathBuilderException: "
           "unable to find valid certification path to requested target")
PKIX_BUILD = "PKIX path building failed: " + NO_PATH
PKIX_VALIDATION = f"PKIX path validation failed: {CPVE}: "
NOT_CA = "basic constraints check failed: this is not a CA certificate"
NO_ANCHORS = "the trustAnchors parameter must be non-empty"
UNEXPECTED_NO_ANCHORS = f"Unexpected error: java.security.InvalidAlgorithmParameterException: {NO_ANCHORS}"
NO_ANCHORS_CAUSES = (f"java.lang.RuntimeException: {UNEXPECTED_NO_ANCHORS}",
                     f"java.security.InvalidAlgorithmParameterException: {NO_ANCHORS}")
INTERNAL = {"17": "internal_error", "21": "internal_error"}
TRANSPORT = {("java.net.SocketException", "Broken pipe"), ("java.net.SocketException", "Connection reset")}


def n(cn: str) -> str:
    """A fixture subject as Java prints it (RFC 2253)."""
    return f"O=Fixture,CN={cn}"


def worded(major: str, alert: str, message: str) -> str:
    """A handshake message as JRE ``major`` words it."""
    return message if major == "17" else f"({alert}) {message}"


@dataclass(frozen=True)
class Accepted:
    protocol: str
    server_saw: tuple[str, ...]         # the client chain the server received
    requested: tuple[str, ...]          # CA names in the server's CertificateRequest
    offered: tuple[str, ...]            # the chain the client's key manager picked


@dataclass(frozen=True)
class Refused:
    side: str                           # the end that refused
    exception: str
    message: str                        # as JRE 17 words it
    causes: tuple[str, ...]
    alert: dict[str, str]               # per JRE: the alert the refusing end sends
    reaction: str = HS                  # the class of the other end's "Received fatal alert"
    requested: tuple[str, ...] | None = None   # None: the client's key manager was not asked
    offered: tuple[str, ...] | None = None
    stage: str = "handshake"


CERT_UNKNOWN = {"17": "certificate_unknown", "21": "certificate_unknown"}
NO_CLIENT_CERT = {"17": "bad_certificate", "21": "certificate_required"}
ROOT = (n("Root"),)
GOOD = ("client", "Inter")


def _server_refuses(message: str, *causes: str, offered=GOOD, requested=ROOT, alert=CERT_UNKNOWN) -> Refused:
    return Refused("server", HS, message, causes, alert, requested=requested,
                   offered=None if offered is None else tuple(map(n, offered)))


def _validation(reason: str, *deeper: str) -> tuple[str, ...]:
    """A PKIX validation failure: the handshake message and its causes."""
    message = PKIX_VALIDATION + reason
    return (message, f"{VE}: {message}", f"{CPVE}: {reason}", *deeper)


def _accepted(saw=GOOD, requested=ROOT, offered=None, protocol="TLSv1.3") -> Accepted:
    return Accepted(protocol, tuple(map(n, saw)), requested, tuple(map(n, offered or saw)))


JAVA: dict[str, Accepted | Refused] = {
    "good-chain": _accepted(),
    "good-chain-tls12": _accepted(protocol="TLSv1.2"),
    # Java rebuilds the chain from the PFX whatever the file order: leaf, intermediate, root.
    "pfx-other-order": _accepted(saw=("client", "Inter", "Root")),
    # The server's side of the same: it serves leaf, intermediate, root (test_reference_lab holds the
    # lab's primary to the chain the reference client received).
    "server-pfx-other-order": _accepted(),
    "trust-der-and-bundle": _accepted(),
    # No DNS SAN at all: the host name check falls back to the CN.
    "server-ip-san-name-in-cn": _accepted(),
    "client-without-clientAuth": _server_refuses(
        "Extended key usage does not permit use for TLS client authentication",
        f"{VE}: Extended key usage does not permit use for TLS client authentication",
        offered=("server-eku", "Inter")),
    "intermediate-not-ca": _server_refuses(*_validation(NOT_CA, f"{CPVE}: {NOT_CA}"),
                                           offered=("under-not-ca", "NotCA")),
    "client-expired": _server_refuses(*_validation("validity check failed", "java.security.cert."
                                                   "CertificateExpiredException: NotAfter: Fri Jan 01 00:00:00 "
                                                   "UTC 2021"), offered=("expired", "Inter")),
    "client-not-yet-valid": _server_refuses(*_validation("validity check failed", "java.security.cert."
                                                         "CertificateNotYetValidException: NotBefore: Thu Jan 01 "
                                                         "00:00:00 UTC 2099"), offered=("future", "Inter")),
    # jdk.certpath.disabledAlgorithms refuses SHA-1 only below the JDK's own (cacerts) anchors.
    "client-sha1": _accepted(saw=("sha1", "Inter")),
    # The server names only the root; the leaf's issuer (Inter) is not among the names: nothing is sent.
    "client-leaf-only-root-trusted": _server_refuses("Empty client certificate chain", offered=(),
                                                     alert=NO_CLIENT_CERT),
    "client-leaf-only-root-trusted-tls12": _server_refuses(
        "Empty client certificate chain", offered=(), alert={"17": "bad_certificate", "21": "handshake_failure"}),
    "client-leaf-only-inter-trusted": _accepted(saw=("client",), requested=(n("Root"), n("Inter"))),
    "client-without-keystore": _server_refuses("Empty client certificate chain", offered=None, requested=None,
                                               alert=NO_CLIENT_CERT),
    # The client has a good chain, but not under a CA the server names: it sends none.
    "server-trusts-other-root": _server_refuses("Empty client certificate chain", offered=(),
                                                requested=(n("OtherRoot"),), alert=NO_CLIENT_CERT),
    # No anchors, so no CA names: the client sends its chain, the trust manager cannot start.
    "server-trusts-nothing": Refused("server", SSL, UNEXPECTED_NO_ANCHORS, NO_ANCHORS_CAUSES, INTERNAL, reaction=SSL,
                                     requested=(), offered=tuple(map(n, GOOD))),
    "client-trusts-other-root": Refused("client", HS, PKIX_BUILD, (f"{VE}: {PKIX_BUILD}", NO_PATH), CERT_UNKNOWN),
    # No trusted entry: the client's trust manager cannot start when it first judges the server.
    "client-truststore-nokeys": Refused("client", SSL, UNEXPECTED_NO_ANCHORS, NO_ANCHORS_CAUSES, INTERNAL,
                                        reaction=SSL),
    "host-mismatch": Refused("client", HS, "No subject alternative DNS name matching gateway-host found.",
                             ("java.security.cert.CertificateException: No subject alternative DNS name matching "
                              "gateway-host found.",), CERT_UNKNOWN),
    "host-mismatch-tls12": Refused("client", HS, "No subject alternative DNS name matching gateway-host found.",
                                   ("java.security.cert.CertificateException: No subject alternative DNS name "
                                    "matching gateway-host found.",), CERT_UNKNOWN),
}
# Not a handshake: the keystore does not open (no alert, no server run).
SETUP = {
    "client-wrong-password": {
        "ok": False, "side": "client", "stage": "setup", "exception": "java.io.IOException",
        "message": "keystore password was incorrect",
        "causes": ["java.security.UnrecoverableKeyException: failed to decrypt safe contents entry: "
                   "javax.crypto.BadPaddingException: Given final block not properly padded. Such issues can "
                   "arise if a bad key is used during decryption."],
    },
}

# ``openssl verify -purpose sslclient`` of the client's PFX chain against the server's CA files, and
# ``-purpose sslserver -verify_hostname HOST`` of the server's against the client's (None: no chain).
OK = "OK"
OPENSSL: dict[str, tuple[str | None, str]] = {
    "good-chain": (OK, OK),
    "good-chain-tls12": (OK, OK),
    "pfx-other-order": (OK, OK),
    "server-pfx-other-order": (OK, OK),
    "trust-der-and-bundle": (OK, OK),
    "server-ip-san-name-in-cn": (OK, OK),
    "client-without-clientAuth": ("error 26 at 0 depth lookup: unsuitable certificate purpose", OK),
    "intermediate-not-ca": ("error 79 at 1 depth lookup: invalid CA certificate", OK),
    "client-expired": ("error 10 at 0 depth lookup: certificate has expired", OK),
    "client-not-yet-valid": ("error 9 at 0 depth lookup: certificate is not yet valid", OK),
    "client-sha1": (OK, OK),
    "client-leaf-only-root-trusted": ("error 20 at 0 depth lookup: unable to get local issuer certificate", OK),
    "client-leaf-only-root-trusted-tls12": ("error 20 at 0 depth lookup: unable to get local issuer certificate",
                                            OK),
    "client-leaf-only-inter-trusted": (OK, OK),
    "client-without-keystore": (None, OK),
    "server-trusts-other-root": ("error 20 at 1 depth lookup: unable to get local issuer certificate", OK),
    "server-trusts-nothing": ("error 20 at 1 depth lookup: unable to get local issuer certificate", OK),
    "client-trusts-other-root": (OK, "error 20 at 1 depth lookup: unable to get local issuer certificate"),
    "client-truststore-nokeys": (OK, "error 20 at 1 depth lookup: unable to get local issuer certificate"),
    "host-mismatch": (OK, "error 62 at 0 depth lookup: hostname mismatch"),
    "host-mismatch-tls12": (OK, "error 62 at 0 depth lookup: hostname mismatch"),
    "client-wrong-password": (OK, OK),
}
# At the security level of a TLS context (Debian's openssl.cnf: 2), SHA-1 certificate signatures are refused.
SHA1_AT_LEVEL_2 = "error 68 at 0 depth lookup: CA signature digest algorithm too weak"
