"""``openssl verify`` on the same chains as the reference pairs: what OpenSSL alone would decide.

The server side verifies the client's PFX chain (leaf, the rest untrusted) for ``sslclient``
against the server's CA files; the client side the server's chain for ``sslserver`` and the
host name. No default CA store is read, only the case's files.
"""
from __future__ import annotations

import pytest

from support.fixtures_openssl import Issued, openssl
from test_reference_expected import OK, OPENSSL, SHA1_AT_LEVEL_2
from test_reference_support import CASES, Side, reference_pki  # noqa: F401  (fixtures)

# What each trust file holds.
TRUST_FILE_CERTS = {"root": ("root",), "inter": ("inter",), "other": ("other",), "root-der": ("root",),
                    "bundle": ("root", "inter")}


def openssl_verify(anchors: list[Issued], chain: list[Issued], *args: str) -> str:
    """"OK" or openssl's first error line, without the file name it starts with."""
    workdir = chain[0].cert_path.parent
    ca_args = ["-no-CAfile"]
    if anchors:
        ca_file = workdir / "reference-anchors.pem"
        ca_file.write_text("".join(a.cert_path.read_text() for a in anchors))
        ca_args = ["-CAfile", str(ca_file)]
    untrusted = []
    if len(chain) > 1:
        pool = workdir / "reference-untrusted.pem"
        pool.write_text("".join(c.cert_path.read_text() for c in chain[1:]))
        untrusted = ["-untrusted", str(pool)]
    proc = openssl("verify", "-no-CApath", "-no-CAstore", *ca_args, *untrusted, *args, str(chain[0].cert_path),
                   check=False)
    lines = [line.strip() for line in (proc.stdout + proc.stderr).splitlines() if line.strip()]
    errors = [line for line in lines if line.startswith("error ")]
    if errors:
        return errors[0]
    assert proc.returncode == 0 and lines[-1].endswith(": OK"), lines
    return OK


def side_verdicts(pki, case_id: str) -> tuple[str | None, str]:
    case = CASES[case_id]

    def anchors(side: Side) -> list[Issued]:
        return [pki.certs[name] for t in side.trust for name in TRUST_FILE_CERTS[t]]

    server = None
    if case.client.chain is not None:
        server = openssl_verify(anchors(case.server), [pki.certs[c] for c in case.client.chain],
                                "-purpose", "sslclient")
    client = openssl_verify(anchors(case.client), [pki.certs[c] for c in case.server.chain],
                            "-purpose", "sslserver", "-verify_hostname", case.host)
    return server, client


@pytest.mark.parametrize("case", list(OPENSSL))
def test_openssl_verify(reference_pki, case):
    assert side_verdicts(reference_pki, case) == OPENSSL[case]


def test_every_case_has_an_openssl_verdict():
    assert set(OPENSSL) == set(CASES)


def test_sha1_at_the_security_level_of_a_tls_context(reference_pki):
    certs = reference_pki.certs
    chain = [certs["sha1"], certs["inter"]]
    assert openssl_verify([certs["root"]], chain, "-purpose", "sslclient") == OK
    assert openssl_verify([certs["root"]], chain, "-purpose", "sslclient", "-auth_level", "2") == SHA1_AT_LEVEL_2


def test_a_trusted_intermediate_is_no_anchor_for_openssl_without_partial_chain(reference_pki):
    """Java ends a path at any trusted certificate; OpenSSL wants a self-signed one unless -partial_chain."""
    certs = reference_pki.certs
    leaf_only = [certs["client"]]
    assert openssl_verify([certs["inter"]], leaf_only, "-purpose", "sslclient") == (
        "error 2 at 1 depth lookup: unable to get issuer certificate")
    assert openssl_verify([certs["inter"]], leaf_only, "-purpose", "sslclient", "-partial_chain") == OK
