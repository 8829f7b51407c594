"""`safeq-lab doctor` on openssl-made hand-overs: each mistake's codes and exit code, the JRE's words.

Every case is the good hand-over with one thing changed. The codes listed are all the warnings
and errors expected: anything more (or less) fails the test.
"""
from __future__ import annotations

import dataclasses

import pytest

from lab import spec
from lab.doctor import material, runner, tools
from support.fixtures_openssl import CA_EXT
from support.handover import CASES, CONNECTIONS, Case, Corp
from test_doctor_support import corp, doctor  # noqa: F401  (fixture)


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


@pytest.mark.parametrize("name", list(CONNECTIONS))
def test_connections_foreseen_as_the_jre_decides(corp, tmp_path, name):  # noqa: F811 (fixture)
    report = doctor(str(CASES[name][0](corp).write(tmp_path))).report
    seen = {c["role"]: None if c["connects"] else (c["refused_by"], c["reason"]) for c in report["connections"]}
    gateway, client = CONNECTIONS[name]
    assert seen["gateway"] == gateway or (gateway and seen["gateway"][0] == gateway[0]
                                          and gateway[1] in seen["gateway"][1]), seen
    assert seen["client"] == client or (client and client[1] in seen["client"][1]), seen


@pytest.mark.parametrize("name", ["good", "pfx without the intermediate, only the root trusted",
                                  "pfx with only the leaf, the issuing CA trusted", "-nokeys truststore"])
def test_keytool_and_its_jdks_running_jre_find_the_same(corp, tmp_path, name):  # noqa: F811 (fixture)
    java = tools.detect("host")
    if not java.stores_by_jre():
        pytest.skip(f"no host keytool and JRE of one JDK: {java.summary()}")
    by_keytool = dataclasses.replace(java, jre_source={**java.jre_source, "java": "(another JDK)"})
    assert not by_keytool.stores_by_jre()
    handover = spec.load(CASES[name][0](corp).write(tmp_path))
    seen = [runner.check(handover, j) for j in (java, by_keytool)]
    assert seen[0].findings == seen[1].findings and seen[0].connections == seen[1].connections
    assert [len(e.anchors) for e in seen[0].material.endpoints] == [len(e.anchors) for e in seen[1].material.endpoints]
