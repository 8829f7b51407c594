"""`safeq-admin status`: the JRE that judges chains, as the primary recorded it (status["jre"])."""
import json

import pytest

from safeq_primary import admin, paths

# As pkixjudge's info() answers; an override file may space its lists unevenly.
INFO = {
    "java.version": "21.0.6", "java.vendor": "Debian", "java.vm.version": "21.0.6+7-Debian-1",
    "java.home": "/usr/lib/jvm/java-21-openjdk-amd64",
    "java.security": "/etc/java-21-openjdk/security/java.security",
    "java.security.properties": "/opt/safeqlab/java.security",
    "jdk.certpath.disabledAlgorithms": "MD2, MD5,  SHA1 jdkCA &  usage TLSServer,RSA keySize < 1024, SHA1 ,",
    "jdk.tls.disabledAlgorithms": "SSLv3, TLSv1, TLSv1.1",
    "jdk.security.legacyAlgorithms": None,
}
STATUS = {"state": "trusted-ca", "serving": {"subject": "CN=primary-host,O=Acme"}, "jre": INFO}


def test_version_files_and_disabled_algorithms_one_line_each():
    assert admin.jre_lines(STATUS) == [
        "JRE: 21.0.6 (Debian, VM 21.0.6+7-Debian-1) in /usr/lib/jvm/java-21-openjdk-amd64",
        "  java.security: /etc/java-21-openjdk/security/java.security",
        "  override: /opt/safeqlab/java.security (adds to / overrides java.security)",
        "  jdk.certpath.disabledAlgorithms: MD2, MD5, SHA1 jdkCA & usage TLSServer, RSA keySize < 1024, SHA1",
        "  jdk.tls.disabledAlgorithms: SSLv3, TLSv1, TLSv1.1",
        "  jdk.security.legacyAlgorithms: (not set)",
    ]


def test_a_replacing_override_and_none():
    replacing = admin.jre_lines({"jre": {**INFO, "java.security.properties": "=/opt/safeqlab/java.security"}})
    assert replacing[2] == "  override: /opt/safeqlab/java.security (replaces java.security)"
    assert admin.jre_lines({"jre": {**INFO, "java.security.properties": None}})[2] == "  override: none"


def test_an_unresolved_java_security_path_is_shown():
    lines = admin.jre_lines({"jre": {**INFO, "java.security.error": "java.nio.file.NoSuchFileException: x"}})
    assert lines[2] == "  java.security real path unknown: java.nio.file.NoSuchFileException: x"


@pytest.mark.parametrize("status, line", [
    ({"state": "trusted-ca"},
     "JRE: not recorded in the status file (written by an older server)"),
    ({"jre": {"error": "no Java runtime: neither /opt/safeqcloud/jre/bin/java nor java on PATH"}},
     "JRE: could not be asked: no Java runtime: neither /opt/safeqcloud/jre/bin/java nor java on PATH"),
    ({"jre": "21"}, "JRE: the status file's jre entry is not an object: '21'"),
])
def test_missing_error_and_damaged_are_one_line(status, line):
    assert admin.jre_lines(status) == [line]


@pytest.fixture
def status_file(tmp_path, monkeypatch):
    monkeypatch.setattr(paths, "STATUS", tmp_path / "status.json")
    return paths.STATUS


def test_status_prints_the_serving_line_then_the_jre(status_file, capsys):
    status_file.write_text(json.dumps(STATUS))
    assert admin.main(["status"]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out == ["trusted-ca: CN=primary-host,O=Acme", *admin.jre_lines(STATUS)]


def test_status_of_an_older_server_does_not_crash(status_file, capsys):
    status_file.write_text(json.dumps({"state": "fallback", "serving": {"subject": "CN=localhost"}}))
    assert admin.main(["status"]) == 0
    assert capsys.readouterr().out.splitlines()[1] == "JRE: not recorded in the status file (written by an older server)"


def test_status_json_dumps_the_jre_whole(status_file, capsys):
    status_file.write_text(json.dumps(STATUS))
    assert admin.main(["status", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["jre"] == INFO
