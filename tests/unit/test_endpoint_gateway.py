"""The gateway's unattended installation file, its settings and its stores (safeqlab.gateway), without network."""
from __future__ import annotations

import logging

import pytest

from certkit import javastore
from safeqlab import gateway, service
from safeqlab.endpoint import SetupError
from test_jre_support import jre, jre_classes, jre_java  # noqa: F401  (fixtures)

TRUSTED = {
    "HCP_DEFAULT_KEYSTORE": "/pki/gateway-host.pfx",
    "HCP_DEFAULT_KEYSTORE_PASSWORD": "secret pass",
    "HCP_DEFAULT_TRUSTSTORE": "/pki/acme-ca.pfx",
    "HCP_DEFAULT_TRUSTSTORE_PASSWORD": "changeit",
}


def unattended(tmp_path, name="unattended-install.conf", **settings) -> str:
    path = tmp_path / name
    path.write_text("# written by the installer\n" + "".join(f'{k}="{v}"\n' for k, v in settings.items()))
    return str(path)


@pytest.fixture(autouse=True)
def service_environment(monkeypatch):
    for name in ("HCP_UNATTENDED_FILE", "SAFEQ_ENDPOINT_CERTIFICATES", "SAFEQ_GATEWAY_OCSP",
                 "SAFEQ_GATEWAY_OCSP_ON_FAILURE"):
        monkeypatch.delenv(name, raising=False)


# --- reading the file ------------------------------------------------------------------------

def test_complete_file_is_read_with_quotes_removed(tmp_path):
    path = unattended(tmp_path, HCP_PRIMARY_SERVER_ADDRESS="primary-host:2560", **TRUSTED)
    settings = gateway.read_settings(path)
    assert settings == {"HCP_PRIMARY_SERVER_ADDRESS": "primary-host:2560", **TRUSTED}


def test_missing_file_names_the_file_and_why(tmp_path):
    with pytest.raises(SetupError) as err:
        gateway.read_settings(str(tmp_path / "nope.conf"))
    assert str(err.value) == f"unattended installation file {tmp_path / 'nope.conf'}: No such file or directory"


def test_trusted_certificates_need_every_store_setting_and_the_error_names_the_missing(tmp_path):
    path = unattended(tmp_path, HCP_PRIMARY_SERVER_ADDRESS="primary-host", HCP_DEFAULT_KEYSTORE="/pki/gw.pfx",
                      HCP_DEFAULT_TRUSTSTORE="/pki/acme-ca.pfx")
    with pytest.raises(SetupError) as err:
        gateway.read_settings(path)
    assert str(err.value) == (f"unattended installation file {path} lacks HCP_DEFAULT_KEYSTORE_PASSWORD, "
                              "HCP_DEFAULT_TRUSTSTORE_PASSWORD")


def test_builtin_certificates_need_only_the_primary_address(tmp_path):
    path = unattended(tmp_path, HCP_PRIMARY_SERVER_ADDRESS="primary-host")
    assert gateway.read_settings(path, builtin=True) == {"HCP_PRIMARY_SERVER_ADDRESS": "primary-host"}
    with pytest.raises(SetupError, match=r"lacks HCP_PRIMARY_SERVER_ADDRESS$"):
        gateway.read_settings(unattended(tmp_path, "other.conf", **TRUSTED), builtin=True)


@pytest.mark.parametrize("value, expected", [
    ("primary-host:2560", ("primary-host", 2560)),
    ("primary-host:12560", ("primary-host", 12560)),
    ("primary-host", ("primary-host", 2560)),
    ("primary.acme.example", ("primary.acme.example", 2560)),
    ("10.0.0.5:2561", ("10.0.0.5", 2561)),
])
def test_primary_address_is_host_and_optional_port(value, expected):
    assert gateway.primary_address({"HCP_PRIMARY_SERVER_ADDRESS": value}) == expected


# --- the gateway's settings are read when needed, not at import ---------------------------------

def test_the_service_file_comes_from_the_environment(tmp_path, monkeypatch):
    path = unattended(tmp_path, HCP_PRIMARY_SERVER_ADDRESS="primary-host:2599", **TRUSTED)
    monkeypatch.setenv("HCP_UNATTENDED_FILE", path)
    assert gateway.Gateway().address() == ("primary-host", 2599)


def test_builtin_mode_comes_from_the_environment(tmp_path, monkeypatch):
    path = unattended(tmp_path, HCP_PRIMARY_SERVER_ADDRESS="primary-host")
    spec = gateway.Gateway(unattended=path)
    assert spec.builtin() is False
    with pytest.raises(SetupError, match="lacks HCP_DEFAULT_KEYSTORE, "):
        spec.address()
    monkeypatch.setenv("SAFEQ_ENDPOINT_CERTIFICATES", "built-in")
    assert spec.builtin() is True
    assert spec.address() == ("primary-host", 2560)


def test_connection_test_reads_the_file_given_and_says_what_it_lacks(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("HCP_UNATTENDED_FILE", unattended(tmp_path, "service.conf", HCP_PRIMARY_SERVER_ADDRESS="x",
                                                         **TRUSTED))
    given = unattended(tmp_path, "given.conf", **TRUSTED)
    assert gateway.main(["test-connection", "--unattended", given]) == 1
    assert capsys.readouterr().out.splitlines()[-1] == (
        f"failed: unattended installation file {given} lacks HCP_PRIMARY_SERVER_ADDRESS")


def test_start_line_names_file_and_certificates(tmp_path, caplog):
    path = unattended(tmp_path, HCP_PRIMARY_SERVER_ADDRESS="primary-host")
    log = logging.getLogger("test-endpoint-gateway")
    with caplog.at_level(logging.INFO, logger=log.name):
        gateway.Gateway(unattended=path).starting(log, "primary-host", 2560)
    assert caplog.records[-1].getMessage() == (
        f"Gateway starting; primary server primary-host:2560; unattended file {path}; trusted certificates")


# --- the optional OCSP check of the primary ------------------------------------------------------

def test_ocsp_check_is_off_by_default():
    assert gateway.ocsp_check() is None


def test_ocsp_check_on_gives_a_check(monkeypatch):
    monkeypatch.setenv("SAFEQ_GATEWAY_OCSP", "on")
    monkeypatch.setenv("SAFEQ_GATEWAY_OCSP_ON_FAILURE", "fail-open")
    assert callable(gateway.ocsp_check())


def test_ocsp_check_refuses_an_unknown_failure_mode(monkeypatch):
    monkeypatch.setenv("SAFEQ_GATEWAY_OCSP", "true")
    monkeypatch.setenv("SAFEQ_GATEWAY_OCSP_ON_FAILURE", "ignore")
    with pytest.raises(SetupError) as err:
        gateway.ocsp_check()
    assert str(err.value) == "SAFEQ_GATEWAY_OCSP_ON_FAILURE must be fail-closed or fail-open, not 'ignore'"


class FakeChecker:
    """Stands in for OcspChecker: records what it is asked and answers ``result``."""
    asked: list = []

    def __init__(self, **kwargs):
        self.kwargs = kwargs

    def check_chain(self, chain, issuers):
        FakeChecker.asked.append((chain, issuers))
        return FakeChecker.result


def test_ocsp_check_asks_about_the_sent_chain_with_the_anchors_as_issuers(monkeypatch):
    from types import SimpleNamespace
    monkeypatch.setenv("SAFEQ_GATEWAY_OCSP", "on")
    monkeypatch.setattr(gateway, "OcspChecker", FakeChecker)
    FakeChecker.asked = []
    FakeChecker.result = SimpleNamespace(ok=False, reason="Certificate has been revoked, reason: KEY_COMPROMISE")
    check = gateway.ocsp_check()
    with pytest.raises(gateway.Refused) as err:
        check(["leaf", "intermediate"], ["root"])
    assert str(err.value) == ("the primary's certificate failed the OCSP check: Certificate has been revoked, "
                              "reason: KEY_COMPROMISE")
    assert FakeChecker.asked == [(["leaf", "intermediate"], ["intermediate", "root"])]
    FakeChecker.result = SimpleNamespace(ok=True, reason="OCSP: 2 certificate(s) good")
    check(["leaf"], ["root"])  # good: no refusal


# --- the trusted identity, read as the JRE reads the stores ---------------------------------------

@pytest.fixture
def gateway_jre(jre, monkeypatch):
    """The gateway's own JRE validator (compiled from the image's sources) loads its stores."""
    monkeypatch.setattr(service, "shared_validator", lambda: jre)
    monkeypatch.delenv(javastore.VERDICTS_FILE_VAR, raising=False)
    javastore._VERDICTS.clear()
    return jre


def test_identity_is_the_keystore_chain_and_the_truststore_anchors(tmp_path, default_pki, pki_tools, gateway_jre):
    pki_tools.keytool("-help", check=False)  # skips without a JRE's keytool
    gw = pki_tools.entity(default_pki, "gateway-host")
    ts = default_pki["truststores"][0]
    path = unattended(tmp_path, HCP_PRIMARY_SERVER_ADDRESS="primary-host", HCP_DEFAULT_KEYSTORE=gw["pfx_path"],
                      HCP_DEFAULT_KEYSTORE_PASSWORD=gw["pfx_password"],
                      HCP_DEFAULT_TRUSTSTORE=ts["path"], HCP_DEFAULT_TRUSTSTORE_PASSWORD=ts["password"])
    identity = gateway.make_identity(path)
    assert identity.name == "gateway-host"
    assert [c.subject.rfc4514_string() for c in identity.chain] == [
        "CN=gateway-host,O=Acme", "CN=Acme-CA-Intermediate,O=Acme", "CN=Acme-CA-Root,O=Acme"]
    assert [c.subject.rfc4514_string() for c in identity.anchors] == ["CN=Acme-CA-Root,O=Acme"]


def test_a_truststore_without_trusted_entries_gives_no_anchors_and_one_warning(tmp_path, default_pki, pki_tools,
                                                                                caplog, gateway_jre):
    """`openssl pkcs12 -export -nokeys` makes a store Java reads no trust anchor from: not a setup
    error to Java, whose trust manager then refuses the primary inside the handshake."""
    pki_tools.keytool("-help", check=False)  # skips without a JRE's keytool
    gw = pki_tools.entity(default_pki, "gateway-host")
    nokeys = tmp_path / "openssl-truststore.pfx"
    pki_tools.openssl("pkcs12", "-export", "-nokeys", "-in", default_pki["cas"][0]["pem_path"], "-out", str(nokeys),
                      "-passout", "pass:changeit")
    path = unattended(tmp_path, HCP_PRIMARY_SERVER_ADDRESS="primary-host", HCP_DEFAULT_KEYSTORE=gw["pfx_path"],
                      HCP_DEFAULT_KEYSTORE_PASSWORD=gw["pfx_password"],
                      HCP_DEFAULT_TRUSTSTORE=str(nokeys), HCP_DEFAULT_TRUSTSTORE_PASSWORD="changeit")
    with caplog.at_level(logging.WARNING, logger="safeq-gateway"):
        assert gateway.make_identity(path).anchors == []
        assert gateway.make_identity(path).anchors == []
    assert [r.getMessage() for r in caplog.records] == [
        f"Truststore {nokeys} has no trustedCertEntry: Java finds no trust anchors in it (a PKCS12 made with "
        "openssl pkcs12 -export -nokeys); import the CA with keytool -importcert"]


def test_a_wrong_keystore_password_is_said_as_java_throws_it(tmp_path, default_pki, pki_tools, gateway_jre):
    pki_tools.keytool("-help", check=False)  # skips without a JRE's keytool
    gw = pki_tools.entity(default_pki, "gateway-host")
    ts = default_pki["truststores"][0]
    path = unattended(tmp_path, HCP_PRIMARY_SERVER_ADDRESS="primary-host", HCP_DEFAULT_KEYSTORE=gw["pfx_path"],
                      HCP_DEFAULT_KEYSTORE_PASSWORD="not-the-password",
                      HCP_DEFAULT_TRUSTSTORE=ts["path"], HCP_DEFAULT_TRUSTSTORE_PASSWORD=ts["password"])
    with pytest.raises(SetupError) as err:
        gateway.make_identity(path)
    assert str(err.value) == "java.io.IOException: keystore password was incorrect"
