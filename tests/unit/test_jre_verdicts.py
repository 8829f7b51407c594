"""Chain verdicts from the JRE's own trust manager, pinned to the exact words the JVM produced.

Fixtures are made with the openssl CLI only. The messages were read from OpenJDK 17
(this machine) and OpenJDK 21 (the image) and are the same in both.
"""
from __future__ import annotations

import pytest

from certkit.jre import Validator, Verdict
from support.fixtures_openssl import CA_EXT, CLIENT_EXT, SERVER_EXT, OpenSSLPKI, verify
from test_jre_support import UTC, jre, jre_classes, jre_java  # noqa: F401  (fixtures)

VE = "sun.security.validator.ValidatorException"
CE = "java.security.cert.CertificateException"
PKIX_BUILD = ("PKIX path building failed: sun.security.provider.certpath.SunCertPathBuilderException: "
              "unable to find valid certification path to requested target")
PKIX_VALIDATION = "PKIX path validation failed: java.security.cert.CertPathValidatorException: "
ROOT = "O=Fixture,CN=Root"
INTER = "O=Fixture,CN=Inter"


def _san(value: str) -> str:
    return SERVER_EXT + f"subjectAltName = {value}\n"


@pytest.fixture(scope="module")
def pki(tmp_path_factory) -> dict:
    p = OpenSSLPKI(tmp_path_factory.mktemp("jre-pki"))
    root = p.root("Root")
    inter = p.issue("Inter", root, CA_EXT)
    not_ca = p.issue("NotCA", root, CA_EXT.replace("CA:TRUE", "CA:FALSE"))
    len0 = p.issue("PathLen0", root, CA_EXT.replace("CA:TRUE", "CA:TRUE, pathlen:0"))
    sub = p.issue("Sub", len0, CA_EXT)
    nc = p.issue("NC", root, CA_EXT + "nameConstraints = critical, permitted;DNS:.example.com\n")
    made = {
        "root": root, "inter": inter, "not_ca": not_ca, "len0": len0, "sub": sub, "nc": nc,
        "other_root": p.root("OtherRoot"),
        # Same subject as Inter, another key: a chain that names the right issuer but was not signed by it.
        "inter_twin": p.issue("InterTwin", root, CA_EXT, subject="/CN=Inter/O=Fixture"),
        "client": p.issue("client", inter, CLIENT_EXT),
        "server_only": p.issue("server-only", inter, SERVER_EXT),
        "under_not_ca": p.issue("under-not-ca", not_ca, CLIENT_EXT),
        "under_sub": p.issue("under-sub", sub, CLIENT_EXT),
        "expired": p.issue("expired", inter, CLIENT_EXT, start="20200101000000Z", end="20210101000000Z"),
        "future": p.issue("future", inter, CLIENT_EXT, start="20990101000000Z", end="20991231000000Z"),
        "sha1": p.issue("sha1", inter, CLIENT_EXT, md="sha1"),
        "sha1_server": p.issue("sha1-server", inter, _san("DNS:primary-host"), md="sha1"),
        "rsa1024": p.issue("rsa1024", inter, CLIENT_EXT, key="rsa:1024"),
        "rsa512": p.issue("rsa512", inter, CLIENT_EXT, key="rsa:512"),
        "rsa_server": p.issue("rsa-server", inter, _san("DNS:primary-host"), key="rsa:2048"),
        "critical": p.issue("critical", inter, CLIENT_EXT + "1.3.6.1.4.1.99999.1 = critical, ASN1:NULL\n"),
        "dns": p.issue("primary-host", inter, _san("DNS:primary-host")),
        "ip_only": p.issue("ip-only", inter, _san("IP:10.0.0.5"), subject="/CN=primary-host"),
        "no_san": p.issue("no-san", inter, SERVER_EXT, subject="/CN=primary-host"),
        "nc_leaf": p.issue("nc-leaf", nc, _san("DNS:primary-host")),
    }
    return made


@pytest.fixture(scope="module")
def certs(pki) -> dict:
    return {name: issued.cert for name, issued in pki.items()}


def ok(anchor: str) -> dict:
    return {"ok": True, "anchor": anchor}


def refused(exception: str, message: str, *causes: str) -> dict:
    return {"ok": False, "exception": exception, "message": message, "causes": causes}


# id: (chain as sent, anchors, mode, host, auth_type, expected verdict)
CASES = {
    "good-chain": (["client", "inter"], ["root"], "client", None, "UNKNOWN", ok(ROOT)),
    "leaf-only-root-anchor": (["client"], ["root"], "client", None, "UNKNOWN",
                              refused(VE, PKIX_BUILD, "sun.security.provider.certpath.SunCertPathBuilderException: "
                                      "unable to find valid certification path to requested target")),
    # Any trusted certificate is an anchor: the intermediate ends the path.
    "leaf-only-intermediate-anchor": (["client"], ["root", "inter"], "client", None, "UNKNOWN", ok(INTER)),
    "leaf-only-intermediate-only-anchor": (["client"], ["inter"], "client", None, "UNKNOWN", ok(INTER)),
    "other-root": (["client", "inter"], ["other_root"], "client", None, "UNKNOWN",
                   refused(VE, PKIX_BUILD, "sun.security.provider.certpath.SunCertPathBuilderException: "
                           "unable to find valid certification path to requested target")),
    "client-without-clientAuth": (["server_only", "inter"], ["root"], "client", None, "UNKNOWN",
                                  refused(VE, "Extended key usage does not permit use for TLS client authentication")),
    "server-without-serverAuth": (["client", "inter"], ["root"], "server", None, "UNKNOWN",
                                  refused(VE, "Extended key usage does not permit use for TLS server authentication")),
    "issuer-not-ca": (["under_not_ca", "not_ca"], ["root"], "client", None, "UNKNOWN",
                      refused(VE, PKIX_VALIDATION + "basic constraints check failed: this is not a CA certificate",
                              "java.security.cert.CertPathValidatorException: basic constraints check failed: "
                              "this is not a CA certificate",
                              "java.security.cert.CertPathValidatorException: basic constraints check failed: "
                              "this is not a CA certificate")),
    "path-length-exceeded": (["under_sub", "sub", "len0"], ["root"], "client", None, "UNKNOWN",
                             refused(VE, PKIX_VALIDATION + "basic constraints check failed: pathLenConstraint "
                                     "violated - this cert must be the last cert in the certification path",
                                     *["java.security.cert.CertPathValidatorException: basic constraints check failed: "
                                       "pathLenConstraint violated - this cert must be the last cert in the "
                                       "certification path"] * 2)),
    "expired": (["expired", "inter"], ["root"], "client", None, "UNKNOWN",
                refused(VE, PKIX_VALIDATION + "validity check failed",
                        "java.security.cert.CertPathValidatorException: validity check failed",
                        "java.security.cert.CertificateExpiredException: NotAfter: Fri Jan 01 00:00:00 UTC 2021")),
    "not-yet-valid": (["future", "inter"], ["root"], "client", None, "UNKNOWN",
                      refused(VE, PKIX_VALIDATION + "validity check failed",
                              "java.security.cert.CertPathValidatorException: validity check failed",
                              "java.security.cert.CertificateNotYetValidException: "
                              "NotBefore: Thu Jan 01 00:00:00 UTC 2099")),
    "wrong-signature": (["client", "inter_twin"], ["root"], "client", None, "UNKNOWN",
                        refused(VE, PKIX_VALIDATION + "signature check failed",
                                "java.security.cert.CertPathValidatorException: signature check failed",
                                "java.security.SignatureException: Signature does not match.")),
    "unknown-critical-extension": (["critical", "inter"], ["root"], "client", None, "UNKNOWN",
                                   refused(VE, PKIX_VALIDATION + "unrecognized critical extension(s)",
                                           "java.security.cert.CertPathValidatorException: "
                                           "unrecognized critical extension(s)")),
    "name-constraints": (["nc_leaf", "nc"], ["root"], "server", "primary-host", "UNKNOWN",
                         refused(VE, PKIX_VALIDATION + "name constraints check failed",
                                 *["java.security.cert.CertPathValidatorException: name constraints check failed"] * 2)),
    # "SHA1 jdkCA & usage TLSServer" only refuses SHA-1 below an anchor from the JDK's cacerts.
    "sha1-leaf-private-root-client": (["sha1", "inter"], ["root"], "client", None, "UNKNOWN", ok(ROOT)),
    "sha1-leaf-private-root-server": (["sha1_server", "inter"], ["root"], "server", "primary-host", "UNKNOWN",
                                      ok(ROOT)),
    "rsa-1024": (["rsa1024", "inter"], ["root"], "client", None, "UNKNOWN", ok(ROOT)),
    "rsa-512": (["rsa512", "inter"], ["root"], "client", None, "UNKNOWN",
                refused(VE, PKIX_VALIDATION + "Algorithm constraints check failed on keysize limits: "
                        "RSA 512 bit key used with certificate: O=Fixture, CN=rsa512",
                        *["java.security.cert.CertPathValidatorException: Algorithm constraints check failed on "
                          "keysize limits: RSA 512 bit key used with certificate: O=Fixture, CN=rsa512"] * 2)),
    # TLS 1.2 RSA key exchange needs keyEncipherment; ECDHE_RSA and TLS 1.3 need digitalSignature.
    "rsa-key-exchange-ku": (["rsa_server", "inter"], ["root"], "server", "primary-host", "RSA",
                            refused(VE, "KeyUsage does not allow key encipherment")),
    "ecdhe-rsa-ku": (["rsa_server", "inter"], ["root"], "server", "primary-host", "ECDHE_RSA", ok(ROOT)),
    "host-dns-san-match": (["dns", "inter"], ["root"], "server", "primary-host", "UNKNOWN", ok(ROOT)),
    "host-dns-san-mismatch": (["dns", "inter"], ["root"], "server", "gateway-host", "UNKNOWN",
                              refused(CE, "No subject alternative DNS name matching gateway-host found.")),
    # No DNS SAN at all (an IP one only): Java falls back to the CN, which matches.
    "host-ip-san-only-cn-match": (["ip_only", "inter"], ["root"], "server", "primary-host", "UNKNOWN", ok(ROOT)),
    "host-ip-san-match": (["ip_only", "inter"], ["root"], "server", "10.0.0.5", "UNKNOWN", ok(ROOT)),
    "host-ip-san-mismatch": (["ip_only", "inter"], ["root"], "server", "10.0.0.6", "UNKNOWN",
                             refused(CE, "No subject alternative names matching IP address 10.0.0.6 found")),
    "host-ip-vs-dns-san": (["dns", "inter"], ["root"], "server", "10.0.0.5", "UNKNOWN",
                           refused(CE, "No subject alternative names matching IP address 10.0.0.5 found")),
    "host-ip-no-san": (["no_san", "inter"], ["root"], "server", "10.0.0.5", "UNKNOWN",
                       refused(CE, "No subject alternative names present")),
    "host-cn-fallback": (["no_san", "inter"], ["root"], "server", "primary-host", "UNKNOWN", ok(ROOT)),
    "host-cn-mismatch": (["no_san", "inter"], ["root"], "server", "gateway-host", "UNKNOWN",
                         refused(CE, "No name matching gateway-host found")),
    # A bad chain is reported before a host name mismatch, as in the JRE.
    "host-mismatch-and-untrusted": (["dns", "inter"], ["other_root"], "server", "gateway-host", "UNKNOWN",
                                    refused(VE, PKIX_BUILD, "sun.security.provider.certpath."
                                            "SunCertPathBuilderException: unable to find valid certification "
                                            "path to requested target")),
    # Leaf first, the rest in any order: Java builds the path from what was sent.
    "wrong-order-leaf-first": (["client", "root", "inter"], ["root"], "client", None, "UNKNOWN", ok(ROOT)),
    # The first certificate is taken as the end entity, whatever it is.
    "wrong-order-intermediate-first": (["inter", "client"], ["root"], "client", None, "UNKNOWN",
                                       refused(VE, "KeyUsage does not allow digital signatures")),
    "chain-with-root": (["client", "inter", "root"], ["root"], "client", None, "UNKNOWN", ok(ROOT)),
    "no-anchors": (["client", "inter"], [], "client", None, "UNKNOWN",
                   refused("java.lang.RuntimeException", "Unexpected error: java.security."
                           "InvalidAlgorithmParameterException: the trustAnchors parameter must be non-empty",
                           "java.security.InvalidAlgorithmParameterException: "
                           "the trustAnchors parameter must be non-empty")),
}


def _as_dict(verdict: Verdict) -> dict:
    if verdict.ok:
        return {"ok": True, "anchor": verdict.anchor}
    return {"ok": False, "exception": verdict.exception, "message": verdict.message, "causes": verdict.causes}


@pytest.mark.parametrize("case", list(CASES), ids=list(CASES))
def test_jre_verdict(jre, certs, case):
    chain, anchors, mode, host, auth_type, expected = CASES[case]
    verdict = jre.judge([certs[n] for n in chain], [certs[n] for n in anchors], mode, host=host, auth_type=auth_type)
    assert _as_dict(verdict) == expected


def test_reason_is_the_handshake_message(jre, certs):
    untrusted = jre.judge([certs["client"]], [certs["root"]], "client")
    assert untrusted.reason == PKIX_BUILD
    assert untrusted.certificate_exception
    assert untrusted.logged == f"javax.net.ssl.SSLHandshakeException: {PKIX_BUILD}"
    assert untrusted.cause == ("sun.security.provider.certpath.SunCertPathBuilderException: "
                               "unable to find valid certification path to requested target")
    host = jre.judge([certs["dns"], certs["inter"]], [certs["root"]], "server", host="gateway-host")
    assert host.reason == "No subject alternative DNS name matching gateway-host found."
    assert host.cause is None
    # Not a CertificateException: JSSE raises a plain SSLException with the same message.
    empty = jre.judge([certs["client"]], [], "client")
    assert empty.logged == ("javax.net.ssl.SSLException: Unexpected error: java.security."
                            "InvalidAlgorithmParameterException: the trustAnchors parameter must be non-empty")
    good = jre.judge([certs["client"], certs["inter"]], [certs["root"]], "client")
    assert (good.reason, good.logged) == ("", "")


def test_stricter_java_security_override(tmp_path, jre_java, jre_classes, certs):
    """A production JRE with a stricter java.security, rehearsed by appending to this one."""
    strict = tmp_path / "strict.security"
    strict.write_text("jdk.certpath.disabledAlgorithms=MD2, MD5, SHA1, RSA keySize < 2048\n")
    with Validator(java=jre_java, classes_dir=jre_classes, java_security=str(strict), jvm_options=UTC) as v:
        info = v.info()
        assert info["java.security.properties"] == str(strict)
        assert info["jdk.certpath.disabledAlgorithms"] == "MD2, MD5, SHA1, RSA keySize < 2048"
        sha1 = v.judge([certs["sha1"], certs["inter"]], [certs["root"]], "client")
        assert sha1.message == (PKIX_VALIDATION + "Algorithm constraints check failed on signature algorithm: "
                                "SHA1withECDSA")
        rsa = v.judge([certs["rsa1024"], certs["inter"]], [certs["root"]], "client")
        assert rsa.message == (PKIX_VALIDATION + "Algorithm constraints check failed on keysize limits: "
                               "RSA 1024 bit key used with certificate: O=Fixture, CN=rsa1024")


def test_info_names_the_jre_and_its_constraints(jre, jre_java):
    info = jre.info()
    assert info["java.home"] and jre_java.startswith(info["java.home"])
    assert info["java.security"].endswith("java.security")
    assert info["java.security.properties"] is None
    assert "RSA keySize < 1024" in info["jdk.certpath.disabledAlgorithms"]
    assert "SSLv3" in info["jdk.tls.disabledAlgorithms"]
    assert int(info["java.version"].split(".")[0]) >= 17


def test_where_openssl_differs(jre, pki, certs):
    """Why the verdict comes from the JRE: the same fixtures, another verdict from OpenSSL."""
    cert = certs
    # A trusted intermediate: an anchor for Java; OpenSSL wants the root unless -partial_chain.
    assert jre.judge([cert["client"]], [cert["inter"]], "client").ok
    assert verify([pki["inter"]], [pki["client"]]).startswith("error 2 at 1 depth")
    assert verify([pki["inter"]], [pki["client"]], "-partial_chain").endswith(": OK")
    # SHA-1 below a private root: Java accepts it; OpenSSL refuses it from security level 1 (TLS default).
    assert jre.judge([cert["sha1"], cert["inter"]], [cert["root"]], "client").ok
    assert verify([pki["root"]], [pki["sha1"], pki["inter"]], "-auth_level", "1").startswith("error 68 at 0 depth")
    # A forged issuer signature: Java names it, OpenSSL finds no issuer.
    assert jre.judge([cert["client"], cert["inter_twin"]], [cert["root"]], "client").message.endswith(
        "signature check failed")
    assert verify([pki["root"]], [pki["client"], pki["inter_twin"]]).startswith("error 20 at 0 depth")
