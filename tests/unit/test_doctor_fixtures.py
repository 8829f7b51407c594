"""`safeq-lab doctor` on openssl-made hand-overs: each mistake's codes and exit code, the JRE's words.

Every case is the good hand-over with one thing changed. The codes listed are all the warnings
and errors expected: anything more (or less) fails the test.
"""
from __future__ import annotations

import pytest

from fixtures_openssl import CA_EXT, SERVER_EXT
from lab.doctor import material
from test_doctor_support import GATEWAY_EXT, Case, Corp, corp, doctor  # noqa: F401  (fixture)


def gateway_leaf_and_chain(c: Corp, leaf) -> list:
    return [leaf, c.issuing, c.root]


CASES = {
    # name: (how the hand-over differs, {expected warning and error codes}, exit code)
    "good": (lambda c: Case(c), set(), 0),
    "pfx without the intermediate, only the root trusted": (
        lambda c: Case(c, gateway=[c.gateway, c.root], trusted=[c.root]),
        {"client.no-certificate-sent", "chain.incomplete"}, 2),
    "pfx with only the leaf, only the root trusted": (
        lambda c: Case(c, gateway=[c.gateway], trusted=[c.root]), {"client.no-certificate-sent"}, 2),
    "pfx with only the leaf, the issuing CA trusted": (lambda c: Case(c, gateway=[c.gateway]), set(), 0),
    "wrong password": (lambda c: Case(c, gateway_password="not-the-password"), {"pfx.wrong-password"}, 2),
    "leaf without clientAuth": (
        lambda c: Case(c, gateway=gateway_leaf_and_chain(c, c.odd("gw-server-only", SERVER_EXT))),
        {"eku.client-auth-missing", "trust.endpoint-refused"}, 2),
    "SAN not covering the host": (
        lambda c: Case(c, primary=[c.odd("primary-elsewhere", SERVER_EXT + "subjectAltName = DNS:elsewhere\n"),
                                   c.issuing, c.root]),
        {"san.host-not-covered", "primary.self-check-failed"}, 2),
    "expired": (
        lambda c: Case(c, gateway=gateway_leaf_and_chain(
            c, c.odd("gw-expired", GATEWAY_EXT, start="20200101000000Z", end="20210101000000Z"))),
        {"validity.expired", "trust.endpoint-refused"}, 2),
    "-nokeys truststore": (lambda c: Case(c, truststore="nokeys"), {"truststore.no-trusted-entries"}, 2),
    "intermediate without CA:TRUE": (
        lambda c: Case(c, gateway=[c.odd("gw-under-not-ca", GATEWAY_EXT, issuer=not_a_ca(c)), not_a_ca(c), c.root]),
        {"ca.not-ca", "trust.endpoint-refused", "pkilint.pkix.ee_certificate_keycertsign_keyusage_set"}, 2),
    "path length exceeded": (
        lambda c: Case(c, gateway=[c.odd("gw-too-deep", GATEWAY_EXT, issuer=below_pathlen(c)), below_pathlen(c),
                                   pathlen_zero(c), c.root]),
        {"ca.path-length", "trust.endpoint-refused"}, 2),
    "SHA-1 signature": (
        lambda c: Case(c, gateway=gateway_leaf_and_chain(c, c.odd("gw-sha1", GATEWAY_EXT, md="sha1"))),
        {"signature.sha1"}, 1),
    "RSA key of 1024 bits": (
        lambda c: Case(c, gateway=gateway_leaf_and_chain(c, c.odd("gw-rsa1024", GATEWAY_EXT, key="rsa:1024"))),
        {"key.rsa-small"}, 1),
    "ocsp on, no OCSP URL anywhere": (lambda c: Case(c, account_extra="ocsp = true"), {"ocsp.no-url"}, 1),
    "ocsp on, a custom OCSP URL": (
        lambda c: Case(c, account_extra='ocsp = true\nocsp_url = "http://ocsp.corp.example"'), set(), 0),
}


def not_a_ca(c: Corp):
    return c.odd("Not-A-CA", CA_EXT.replace("CA:TRUE", "CA:FALSE"), issuer=c.root)


def pathlen_zero(c: Corp):
    return c.odd("PathLen-Zero-CA", CA_EXT.replace("CA:TRUE", "CA:TRUE, pathlen:0"), issuer=c.root)


def below_pathlen(c: Corp):
    return c.odd("Below-PathLen-Zero-CA", CA_EXT, issuer=pathlen_zero(c))


@pytest.mark.parametrize("name", list(CASES))
def test_codes_and_exit_code(corp, tmp_path, name):  # noqa: F811 (fixture)
    make, codes, exit_code = CASES[name]
    outcome = doctor(str(make(corp).write(tmp_path)))
    assert outcome.codes("warning", "error") == codes, outcome.report["findings"]
    assert outcome.exit_code == exit_code


def test_an_rsa_chain_instead_of_ecdsa_passes(tmp_path):
    outcome = doctor(str(Case(Corp(tmp_path / "pki", key="rsa:2048")).write(tmp_path / "handover")))
    assert (outcome.exit_code, outcome.codes("warning", "error")) == (0, set())


def test_refusals_are_worded_by_the_jre(corp, tmp_path):  # noqa: F811 (fixture)
    outcome = doctor(str(CASES["expired"][0](corp).write(tmp_path)))
    [refused] = outcome.messages("trust.endpoint-refused")
    assert refused.startswith("the primary refuses gateway-host's chain: ")
    assert refused.endswith("PKIX path validation failed: java.security.cert.CertPathValidatorException: "
                            "validity check failed")
    assert outcome.report["java"]["jre"]["source"] in ("host", "docker")


def test_no_certificate_sent_says_what_the_primary_logs(corp, tmp_path):  # noqa: F811 (fixture)
    outcome = doctor(str(CASES["pfx with only the leaf, only the root trusted"][0](corp).write(tmp_path)))
    [message] = outcome.messages("client.no-certificate-sent")
    assert '"Empty client certificate chain"' in message
    [finding] = [f for f in outcome.report["findings"] if f["code"] == "client.no-certificate-sent"]
    assert finding["file"] == str(tmp_path / "gateway-host.pfx")
    assert "CN=Corp-Issuing-CA" in finding["fix"]


def test_a_host_name_refusal_is_the_jres(corp, tmp_path):  # noqa: F811 (fixture)
    outcome = doctor(str(CASES["SAN not covering the host"][0](corp).write(tmp_path)))
    [message] = outcome.messages("san.host-not-covered")
    assert "No subject alternative DNS name matching primary-host found." in message


def test_expiring_soon_is_a_warning(corp, tmp_path):  # noqa: F811 (fixture)
    spec = Case(corp).write(tmp_path)
    assert doctor(str(spec)).exit_code == 0
    outcome = doctor(str(spec), "--expiry-days", "40000")  # beyond the fixtures' 10 and 100 years
    assert outcome.codes("warning", "error") == {"validity.expires-soon"}
    assert outcome.exit_code == 1


def test_a_keytool_made_truststore_is_trusted(corp, tmp_path, pki_tools):  # noqa: F811 (fixture)
    spec = Case(corp).write(tmp_path)
    pki_tools.keytool("-importcert", "-noprompt", "-file", str(corp.root.cert_path), "-alias", "corp-ca",
                      "-storetype", "PKCS12", "-keystore", str(tmp_path / "corp-ca.pfx"), "-storepass", "ts-password")
    text = spec.read_text().replace('truststore_certs = ["Corp-Root-CA.cer"]',
                                    'truststore = "corp-ca.pfx"\ntruststore_password = "ts-password"')
    spec.write_text(text)
    assert (doctor(str(spec)).exit_code, doctor(str(spec)).codes("warning", "error")) == (0, set())
    spec.write_text(text.replace('"ts-password"', '"wrong"'))
    assert doctor(str(spec)).codes("warning", "error") == {"truststore.wrong-password"}


def test_the_text_output_is_one_line_per_finding(corp, tmp_path):  # noqa: F811 (fixture)
    from click.testing import CliRunner

    from lab import cli
    spec = CASES["wrong password"][0](corp).write(tmp_path)
    result = CliRunner().invoke(cli.main, ["doctor", str(spec)])
    assert result.exit_code == 2
    lines = result.stdout.splitlines()
    assert lines[0] == f"doctor: {spec}"
    assert ("error   pfx.wrong-password  gateway-host.pfx: [[gateway]] #1 (gateway-host) keystore: the password "
            "does not open it (Java: \"keystore password was incorrect\"); fix: set keystore_password to its "
            "password") in lines
    assert lines[-2].startswith("checked with keytool: ") and "; JRE: " in lines[-2]
    assert lines[-1].startswith("1 error(s), 0 warning(s), ")


def test_a_client_trusts_its_store_and_the_public_bundle(corp, tmp_path, monkeypatch):  # noqa: F811 (fixture)
    spec = Case(corp, client=[corp.client]).write(tmp_path / "handover")  # its store then holds no CA
    bundle = tmp_path / "ca-certificates.crt"
    bundle.write_bytes(corp.odd("Unrelated-CA", CA_EXT, issuer=corp.root).cert_path.read_bytes())
    monkeypatch.setattr(material, "SYSTEM_BUNDLE", bundle)
    outcome = doctor(str(spec))
    assert outcome.codes("warning", "error") == {"trust.primary-refused"}
    [message] = outcome.messages("trust.primary-refused")
    assert message.startswith("pcclient-host refuses the primary's chain (") and "PKIX path building failed" in message
    bundle.write_bytes(bundle.read_bytes() + corp.root.cert_path.read_bytes())  # the corporate root as a global CA
    assert doctor(str(spec)).codes("warning", "error") == set()


def test_a_chain_out_of_order_is_taken_as_java_orders_it(corp, tmp_path):  # noqa: F811 (fixture)
    outcome = doctor(str(Case(corp, gateway=[corp.gateway, corp.root, corp.issuing]).write(tmp_path)))
    assert (outcome.exit_code, outcome.codes("warning", "error")) == (0, set())
    assert "chain.reordered" in outcome.codes("info")
