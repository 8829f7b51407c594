"""The primary's TLS layer on loopback: the JRE judges the endpoint's chain inside the handshake.

Fixtures are made with the openssl CLI; the endpoint is `openssl s_client` (sends whatever it
is given, as a non-Java peer does) or Python's ssl. The server side is ServerTLS with the
JRE validator compiled from the image's sources.
"""
from __future__ import annotations

import socket
import subprocess
import threading

import pytest
from cryptography.hazmat.primitives.serialization import load_pem_private_key

pytest.importorskip("OpenSSL")

from certkit.jre import ValidatorError  # noqa: E402
from support.fixtures_openssl import CA_EXT, CLIENT_EXT, SERVER_EXT, OpenSSLPKI  # noqa: E402
from certkit.certs import fingerprint  # noqa: E402
from safeq_primary.contexts import builtin_verdict  # noqa: E402
from safeq_primary.handshake import HandshakeRefused, ServerTLS  # noqa: E402
from test_jre_support import UTC, jre, jre_classes, jre_java  # noqa: E402,F401  (fixtures)

PKIX_BUILD = ("PKIX path building failed: sun.security.provider.certpath.SunCertPathBuilderException: "
              "unable to find valid certification path to requested target")


@pytest.fixture(scope="module")
def pki(tmp_path_factory) -> dict:
    p = OpenSSLPKI(tmp_path_factory.mktemp("handshake-pki"))
    root = p.root("Root")
    inter = p.issue("Inter", root, CA_EXT)
    other = p.root("OtherRoot")
    return {
        "root": root, "inter": inter, "other": other,
        "stray": p.issue("stray", other, CLIENT_EXT),  # issued by a CA that stays trusted
        "server": p.issue("primary-host", inter, SERVER_EXT + "subjectAltName = DNS:primary-host\n"),
        "client": p.issue("client", inter, CLIENT_EXT),
        "server_eku": p.issue("server-eku", inter, SERVER_EXT),
        "expired": p.issue("expired", inter, CLIENT_EXT, start="20200101000000Z", end="20210101000000Z"),
    }


def server_tls(pki, judge, *, require=True, anchors=("root",)) -> ServerTLS:
    key = load_pem_private_key(pki["server"].key_path.read_bytes(), None)
    return ServerTLS(key, [pki["server"].cert, pki["inter"].cert], [pki[a].cert for a in anchors], judge,
                     require=require)


def handshake(tls: ServerTLS, client_args: list[str], tls13: bool = True) -> tuple[object, str]:
    """One handshake: (what accept() returned or raised, what s_client printed)."""
    lsock = socket.create_server(("127.0.0.1", 0))
    port = lsock.getsockname()[1]
    result: list = []

    def serve():
        conn, _ = lsock.accept()
        try:
            result.append(tls.accept(conn, 5.0))
        except (HandshakeRefused, ValidatorError, OSError) as exc:
            result.append(exc)
        finally:
            conn.close()
    thread = threading.Thread(target=serve)
    thread.start()
    proc = subprocess.run(["openssl", "s_client", "-connect", f"127.0.0.1:{port}", "-servername", "primary-host",
                           "-tls1_3" if tls13 else "-tls1_2", *client_args],
                          input="", capture_output=True, text=True, timeout=20)
    thread.join(10)
    lsock.close()
    return result[0], proc.stdout + proc.stderr


def client_args(pki, name: str, *chain: str) -> list[str]:
    args = ["-cert", str(pki[name].cert_path), "-key", str(pki[name].key_path)]
    if chain:
        bundle = pki[name].cert_path.with_name(f"{name}-chain.pem")
        bundle.write_text("".join(pki[c].cert_path.read_text() for c in chain))
        args += ["-cert_chain", str(bundle)]
    return args


def jre_judge(jre, pki, anchors=("root",)):
    return lambda chain: jre.judge(chain, [pki[a].cert for a in anchors], "client")


def test_good_chain_is_accepted_and_the_validated_path_ends_at_the_anchor(jre, pki):
    tls, _ = handshake(server_tls(pki, jre_judge(jre, pki)), client_args(pki, "client", "inter"))
    assert tls.judged.ok and tls.judged.anchor == "O=Fixture,CN=Root"
    assert [c.subject.rfc4514_string() for c in tls.judged.path] == ["O=Fixture,CN=client", "O=Fixture,CN=Inter",
                                                                      "O=Fixture,CN=Root"]
    assert tls.server_name() == "primary-host"


@pytest.mark.parametrize("tls13", [True, False], ids=["tls13", "tls12"])
def test_refusal_is_the_jre_verdict_and_the_endpoint_gets_certificate_unknown(jre, pki, tls13):
    refused, out = handshake(server_tls(pki, jre_judge(jre, pki)), client_args(pki, "server_eku", "inter"), tls13)
    assert isinstance(refused, HandshakeRefused), refused
    assert refused.verdict.reason == "Extended key usage does not permit use for TLS client authentication"
    assert refused.alert == "certificate_unknown"
    if not tls13:  # under TLS 1.3 s_client has finished before the server judges; it reads the alert later
        assert "alert certificate unknown" in out, out


def test_expired_leaf(jre, pki):
    refused, _ = handshake(server_tls(pki, jre_judge(jre, pki)), client_args(pki, "expired", "inter"))
    assert refused.verdict.reason == ("PKIX path validation failed: java.security.cert.CertPathValidatorException: "
                                      "validity check failed")


def test_extras_the_endpoint_sends_prove_nothing(jre, pki):
    # A leaf from another root, with the trusted root appended: OpenSSL lines up only what chains.
    refused, _ = handshake(server_tls(pki, jre_judge(jre, pki)), client_args(pki, "other", "root"))
    assert isinstance(refused, HandshakeRefused) and refused.verdict.reason == PKIX_BUILD


@pytest.mark.parametrize("appended", ["stray", "other"])
def test_a_certificate_of_a_still_trusted_ca_appended_keeps_nothing(jre, pki, appended):
    """The Trusted CA the chain needs was removed; OtherRoot stays. Appending a certificate it issued,
    or a copy of it, does not make the chain trusted."""
    refused, _ = handshake(server_tls(pki, jre_judge(jre, pki, ("other",)), anchors=("other",)),
                           client_args(pki, "client", "inter", appended))
    assert isinstance(refused, HandshakeRefused), refused
    assert refused.verdict.reason == PKIX_BUILD


@pytest.mark.parametrize("tls13,alert", [(True, "certificate_required"), (False, "handshake_failure")])
def test_no_certificate_is_an_empty_chain(jre, pki, tls13, alert):
    refused, _ = handshake(server_tls(pki, jre_judge(jre, pki)), [], tls13)
    assert isinstance(refused, HandshakeRefused), refused
    assert (refused.verdict.reason, refused.alert) == ("Empty client certificate chain", alert)


def test_ca_names_are_the_anchors_subjects(jre, pki):
    _, out = handshake(server_tls(pki, jre_judge(jre, pki, ("root", "other")), anchors=("root", "other")),
                       client_args(pki, "client", "inter"))
    names = out.split("Acceptable client certificate CA names", 1)[1].split("Requested Signature", 1)[0]
    assert names.split() == "CN = Root, O = Fixture CN = OtherRoot, O = Fixture".split(), names


def test_no_verdict_fails_closed(pki):
    def broken(_chain):
        raise ValidatorError("the JRE validator failed: timed out")
    failed, _ = handshake(server_tls(pki, broken), client_args(pki, "client", "inter"))
    assert isinstance(failed, ValidatorError)


def test_builtin_policy_registration_without_a_certificate_and_unknown_certificates(pki):
    known = frozenset({fingerprint(pki["client"].cert)})
    tls, _ = handshake(server_tls(pki, lambda c: builtin_verdict(c, known), require=False), [])
    assert tls.judged is None and tls.peer_chain() == []
    tls, _ = handshake(server_tls(pki, lambda c: builtin_verdict(c, known), require=False),
                       client_args(pki, "client"))
    assert tls.judged.ok and tls.judged.path == (pki["client"].cert,)
    refused, _ = handshake(server_tls(pki, lambda c: builtin_verdict(c, known), require=False),
                           client_args(pki, "expired"))
    assert isinstance(refused, HandshakeRefused) and refused.verdict.reason == PKIX_BUILD


@pytest.mark.parametrize("cacerts, expected", [(("root",), None), (("other",), PKIX_BUILD)])
def test_self_check_is_the_jres_verdict_on_the_served_chain_against_cacerts(jre, pki, monkeypatch, cacerts, expected):
    from certkit import javastore
    from certkit.jsse import handshake_message
    from safeq_primary.contexts import self_check
    monkeypatch.setattr(javastore, "trust_anchors", lambda *a, **kw: [pki[c].cert for c in cacerts])
    check = self_check(jre, [pki["server"].cert, pki["inter"].cert], "primary-host")
    assert check == {"ok": expected is None,
                     "reason": expected and handshake_message("certificate_unknown", expected, jre.java_version)}
