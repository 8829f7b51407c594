"""The doctor's parts: findings and exit codes, single-certificate rules, pkilint's filter, which Java
is used, and the lab's own generated PKI (no warnings, no errors)."""
from __future__ import annotations

import dataclasses
import datetime as dt
import shutil
from pathlib import Path

import pytest

from certkit.jre import ValidatorError
from support.fixtures_openssl import CA_EXT, CLIENT_EXT, SERVER_EXT, openssl
from lab import spec
from lab.doctor import certchecks, findings, lint, runner, tools
from test_doctor_support import Case, corp, doctor  # noqa: F401  (fixture)

FILE = Path("x.pfx")


def codes(found) -> list[str]:
    return [f.code for f in found]


# --- findings ---------------------------------------------------------------------------------------

@pytest.mark.parametrize("severities, code", [((), 0), (("info",), 0), (("info", "warning"), 1),
                                               (("warning", "error", "info"), 2)])
def test_exit_code_is_the_worst_severity(severities, code):
    assert findings.exit_code([findings.finding(s, "c", None, "m") for s in severities]) == code


def test_a_finding_line_names_severity_code_file_problem_and_fix(tmp_path):
    item = findings.finding("error", "eku.client-auth-missing", tmp_path / "gw" / "gw.pfx", "what", "how")
    assert findings.line(item, tmp_path) == "error   eku.client-auth-missing  gw/gw.pfx: what; fix: how"
    with pytest.raises(ValueError):
        findings.finding("fatal", "c", None, "m")


# --- single certificates ----------------------------------------------------------------------------

def test_validity_now_and_within_the_window(corp):  # noqa: F811 (fixture)
    cert = corp.gateway.cert
    start, end = cert.not_valid_before_utc, cert.not_valid_after_utc
    assert codes(certchecks.validity(cert, FILE, start - dt.timedelta(seconds=1), 30)) == ["validity.not-yet-valid"]
    assert codes(certchecks.validity(cert, FILE, end + dt.timedelta(seconds=1), 30)) == ["validity.expired"]
    assert codes(certchecks.validity(cert, FILE, end - dt.timedelta(days=29), 30)) == ["validity.expires-soon"]
    assert certchecks.validity(cert, FILE, end - dt.timedelta(days=31), 30) == []
    # Java takes a trusted root's dates as they are: an expired root is a warning.
    [root] = certchecks.validity(corp.root.cert, FILE, corp.root.cert.not_valid_after_utc + dt.timedelta(days=1), 30)
    assert (root.code, root.severity) == ("validity.expired", "warning")


def test_role_fit_follows_javas_end_entity_checks(corp):  # noqa: F811 (fixture)
    no_eku = corp.odd("no-eku", "basicConstraints = critical, CA:FALSE\n")
    sign_less = corp.odd("no-digital-signature", CLIENT_EXT.replace("digitalSignature", "keyEncipherment"))
    assert codes(certchecks.role_fit(corp.gateway.cert, "primary", FILE)) == ["eku.server-auth-missing"]
    assert codes(certchecks.role_fit(corp.primary.cert, "client", FILE)) == ["eku.client-auth-missing"]
    assert certchecks.role_fit(corp.primary.cert, "primary", FILE) == []
    assert certchecks.role_fit(no_eku.cert, "gateway", FILE) == []  # no extension: any use
    assert codes(certchecks.role_fit(sign_less.cert, "client", FILE)) == ["ku.digital-signature-missing"]


def test_a_ca_without_keycertsign(corp):  # noqa: F811 (fixture)
    ca = corp.odd("No-KeyCertSign-CA", CA_EXT.replace("keyCertSign, cRLSign", "cRLSign"), issuer=corp.root)
    leaf = corp.odd("under-no-keycertsign", CLIENT_EXT, issuer=ca)
    assert codes(certchecks.issuers([leaf.cert, ca.cert, corp.root.cert], FILE)) == ["ca.no-keycertsign"]
    assert certchecks.issuers([corp.gateway.cert, corp.issuing.cert, corp.root.cert], FILE) == []


def test_a_curve_java_does_not_offer(tmp_path):
    key, cert = tmp_path / "bp.key", tmp_path / "bp.pem"
    openssl("req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:brainpoolP256r1", "-nodes",
            "-keyout", str(key), "-out", str(cert), "-subj", "/CN=brainpool", "-days", "2")
    from certkit.certs import load_cert_file
    [found] = certchecks.algorithms(load_cert_file(cert), FILE)
    assert (found.code, found.severity) == ("key.curve-unsupported", "error")


@pytest.mark.parametrize("code, message, left_out", [
    ("pkix.invalid_domain_name_syntax", 'Invalid domain name: "primary-host"', True),
    ("pkix.invalid_domain_name_syntax", 'Invalid domain name: "bad_host!"', False),
    ("pkix.invalid_uri_syntax", 'Invalid URI: "http://ocsp-host:8080"', True),
    ("pkix.invalid_uri_syntax", 'Invalid URI: "http://ocsp host:8080"', False),
    ("pkix.some_other_finding", 'about "primary-host"', False),
])
def test_pkilint_single_label_names_are_left_out(code, message, left_out):
    import validators
    assert lint.only_missing_dot(code, message, validators) is left_out


# --- which Java ------------------------------------------------------------------------------------

def test_the_docker_keytool_gets_the_file_and_the_password_variable_only(tmp_path):
    store = tmp_path / "a,b:c" / "corp.pfx"
    command = tools.docker_keytool("docker")(store)
    assert command[:4] == ["docker", "run", "--rm", "--network"] and command[-2:] == [tools.BASE_IMAGE, "keytool"]
    assert command[command.index("-e") + 1] == "SAFEQ_STOREPASS"
    mount = command[command.index("--mount") + 1]
    assert mount == f'type=bind,"source={store}","target={store}",readonly'


def test_neither_host_java_nor_docker_is_said_clearly(monkeypatch):
    monkeypatch.setattr(tools, "host_keytool", lambda: None)
    monkeypatch.setattr(tools, "host_validator", lambda: (_ for _ in ()).throw(ValidatorError("no javac on PATH")))
    keytool, source = tools._pick_keytool("auto", lambda: "docker is not on PATH")
    assert keytool is None and source == {"source": "none", "reason": "no keytool on PATH; docker is not on PATH"}
    validator, source = tools._pick_validator("auto", lambda: "docker is not on PATH")
    assert validator is None
    assert source["reason"] == "host: no javac on PATH; docker: docker is not on PATH"


@pytest.mark.parametrize("keytool_at, java_at, docker, by_jre", [
    ("jdk/bin", "jdk/bin", False, True),
    ("other/bin", "jdk/bin", False, False),  # keytool of another JDK judges its stores itself
    ("jdk/bin", "jdk/bin", True, False),     # the image's keytool sees the files mounted, the validator not
])
def test_the_running_jre_loads_the_stores_only_when_it_is_keytools(tmp_path, monkeypatch, keytool_at, java_at,
                                                                     docker, by_jre):
    for folder in {keytool_at, java_at}:
        (tmp_path / folder).mkdir(parents=True)
    (tmp_path / keytool_at / "keytool").touch()
    (tmp_path / java_at / "java").touch()
    keytool_source = {"source": "host", "command": str(tmp_path / keytool_at / "keytool")}
    jre_source = {"source": "docker" if docker else "host", "java": str(tmp_path / java_at / "java")}
    java = tools.Java(lambda path: ["keytool"], keytool_source, object(), jre_source)
    assert java.stores_by_jre() is by_jre
    asked = []
    monkeypatch.setattr(tools.javastore, "list_entries", lambda *args, **kw: asked.append((args, kw)) or [])
    java.list_store(tmp_path / "store.pfx", "pw")
    [(args, kw)] = asked
    assert (kw.get("jre") is java.validator) is by_jre and (len(args) == 4) is not by_jre
    assert tools.Java(None, keytool_source, None, jre_source).stores_by_jre() is False


def test_without_java_the_doctor_says_so_and_still_makes_javas_key_choice(corp, tmp_path, monkeypatch):  # noqa: F811
    none = {"source": "none", "reason": "no keytool on PATH; docker is not on PATH"}
    monkeypatch.setattr(tools, "detect", lambda choice="auto": tools.Java(None, none, None, none))
    good = doctor(str(Case(corp).write(tmp_path / "good")))
    assert (good.exit_code, good.codes("warning", "error")) == (1, {"java.no-keytool", "java.no-jre"})
    assert good.report["java"]["jre"] == none
    bad = doctor(str(Case(corp, gateway=[corp.gateway], trusted=[corp.root]).write(tmp_path / "bad")))
    assert bad.codes("error") == {"client.no-certificate-sent"} and bad.exit_code == 2


def test_the_compiled_validator_is_cached():
    javac = shutil.which("javac")
    if javac is None:
        pytest.skip("no javac on PATH")
    first = tools.compiled_classes(javac)
    stamp = (first / "pkixjudge" / "Main.class").stat().st_mtime_ns
    assert tools.compiled_classes(javac) == first
    assert (first / "pkixjudge" / "Main.class").stat().st_mtime_ns == stamp
    assert first.parent == tools.project.root() / "build" / "cache"


# --- the lab's own PKI -----------------------------------------------------------------------------

@pytest.mark.parametrize("variant", ["depth0", "depth1", "depth2", "rsa_pki", "legacy_pki"])
def test_the_lab_pki_has_no_warnings_and_no_errors(request, pki_by_depth, variant):
    manifest = pki_by_depth[int(variant[-1])] if variant.startswith("depth") else request.getfixturevalue(variant)
    outcome = doctor(env={"SAFEQ_PKI_DIR": manifest["dir"]})
    assert outcome.codes("warning", "error") == set(), outcome.report["findings"]
    assert outcome.exit_code == 0
    assert outcome.report["spec"] == f"the lab's PKI in {manifest['dir']}"


def test_the_lab_pki_passes_with_ocsp_checks_on(default_pki):
    lab = spec.lab_spec(default_pki["dir"])
    with_ocsp = dataclasses.replace(lab, account=dataclasses.replace(lab.account, ocsp=True))
    found = runner.run(with_ocsp, tools.detect())
    assert [f for f in found if f.severity != "info"] == []


def test_a_broken_lab_pki_is_found(fresh_pki):
    hosts = fresh_pki / "hosts"
    # The client's store without its intermediate, and the intermediate gone from the Trusted CA list.
    for path in [*hosts.glob("pcclient-host/store/CA/*.crt"), hosts / "primary-host" / "Acme-CA-Intermediate.cer"]:
        path.unlink()
    # The gateway's truststore as `openssl pkcs12 -export -nokeys` makes it.
    store = hosts / "gateway-host" / "acme-ca.pfx"
    store.unlink()
    openssl("pkcs12", "-export", "-nokeys", "-in", str(fresh_pki / "cas" / "Acme-CA-Root.crt"),
            "-passout", "pass:acme-ca-pfx-password", "-out", str(store))
    outcome = doctor(env={"SAFEQ_PKI_DIR": str(fresh_pki)})
    assert outcome.codes("warning", "error") == {"client.no-certificate-sent", "truststore.no-trusted-entries"}
    assert outcome.exit_code == 2


def test_a_store_key_that_is_not_the_certificates(fresh_pki):
    my = fresh_pki / "hosts" / "pcclient-host" / "store" / "My"
    openssl("genpkey", "-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-256", "-out", str(my / "pcclient-host.key"))
    outcome = doctor(env={"SAFEQ_PKI_DIR": str(fresh_pki)})
    assert outcome.codes("warning", "error") == {"pfx.key-mismatch"}


# --- the lab image's JRE through Docker ------------------------------------------------------------

DOCKER_MISSING = tools.docker_image_missing()


@pytest.mark.skipif(DOCKER_MISSING is not None, reason=f"the lab image cannot run here: {DOCKER_MISSING}")
def test_the_lab_images_java_through_docker(corp, tmp_path):  # noqa: F811 (fixture)
    good = doctor(str(Case(corp).write(tmp_path / "good")), "--java", "docker")
    assert (good.exit_code, good.codes("warning", "error")) == (0, set())
    java = good.report["java"]
    assert (java["keytool"]["source"], java["jre"]["source"]) == ("docker", "docker")
    assert java["jre"]["version"].startswith("21")
    bad = doctor(str(Case(corp, truststore="nokeys", primary=[
        corp.odd("primary-server-only", SERVER_EXT + "subjectAltName = DNS:primary-host\n"), corp.issuing, corp.root],
        gateway=[corp.odd("gw-no-client-auth", SERVER_EXT), corp.issuing, corp.root]).write(tmp_path / "bad")),
        "--java", "docker")
    assert bad.codes("error") == {"truststore.no-trusted-entries", "eku.client-auth-missing", "trust.endpoint-refused"}
    [refused] = bad.messages("trust.endpoint-refused")
    # JRE 21 puts the alert first.
    assert refused.endswith("(certificate_unknown) Extended key usage does not permit use for TLS client authentication")
