"""application.conf mistakes fall back to the built-in certificate with the reason logged, never a crash."""
from __future__ import annotations

import logging
import re

import pytest

from certkit import javastore
from safeq_primary import hocon, identity, paths
from test_jre_support import jre, jre_classes, jre_java  # noqa: F401  (fixtures)

KEYSTORE_LINE = 'default-keystore-file = "/opt/safeqcloud/conf/primary-host.pfx"\n'


@pytest.fixture
def conf(tmp_path, monkeypatch):
    path = tmp_path / "application.conf"
    monkeypatch.setattr(paths, "CONF", path)
    return path


@pytest.mark.parametrize("line, reason", [
    ('default-keystore-password = "C:\\pw-S3cret"\n', r"line 3, column 32: Invalid \\escape in a quoted value"),
    ('default-keystore-password = "tab\there-S3cret"\n', r"line 3, column 33: Invalid control character"),
    ('default-keystore-password = "\\u12zz-S3cret"\n', r"line 3, column 31: Invalid \\uXXXX escape"),
    ('default-keystore-password = "S3cret\n', r"line 3, column 29: cannot parse \(a quote that is not closed"),
])
def test_bad_quoted_values_fall_back_with_the_line_logged(conf, caplog, line, reason):
    conf.write_text("# conf\n" + KEYSTORE_LINE + line)
    with caplog.at_level(logging.WARNING, logger="safeq-cloud-server"):
        key, chain, ks = identity.load_keystore()
    assert key is None and chain is None
    assert ks["loaded"] is False
    assert ks["reason"].startswith(f"{conf}: line 3")
    [record] = caplog.records
    message = record.getMessage()
    assert re.search(reason, message), message
    assert "Falling back to the built-in self-signed certificate (CN=localhost)" in message
    assert "S3cret" not in message  # the password never reaches the log


def test_hocon_errors_are_hocon_errors():
    with pytest.raises(hocon.HoconError, match="line 2"):
        hocon.parse('a = 1\nb = "C:\\pw"\n')
    with pytest.raises(hocon.HoconError, match=r"line 1, column 1: '\{' of 'a' is never closed"):
        hocon.parse("a {\n b = 1\n")
    with pytest.raises(hocon.HoconError, match=r"line 2, column 1: '\}' without"):
        hocon.parse("a = 1\n}\n")
    with pytest.raises(hocon.HoconError, match="line 2, column 3: key 'b' has no value"):
        hocon.parse("a {\n  b\n}\n")


def test_escaped_backslashes_and_unquoted_values_still_parse():
    parsed = hocon.parse('a { b = "C:\\\\pw\\tx" }\nc = plain value // comment\nd : "\\u00e9"\n')
    assert parsed == {"a.b": "C:\\pw\tx", "c": "plain value", "d": "é"}


def test_non_utf8_conf_falls_back(conf, caplog):
    conf.write_bytes(KEYSTORE_LINE.encode() + b'default-keystore-password = "caf\xe9"\n')
    key, _, ks = identity.load_keystore()
    assert key is None and "not UTF-8 text" in ks["reason"]


def test_missing_conf_falls_back(conf):
    key, _, ks = identity.load_keystore()
    assert key is None and ks["reason"] == f"{conf}: No such file or directory"


def test_unset_keystore_is_the_built_in_certificate(conf):
    conf.write_text('default-keystore-file = ""\ndefault-keystore-password = ""\n')
    key, _, ks = identity.load_keystore()
    assert key is None and ks["configured"] is False and "is not set" in ks["reason"]


def test_missing_keystore_file_is_reported_by_name(conf, tmp_path):
    pfx = tmp_path / "nope.pfx"
    conf.write_text(f'default-keystore-file = "{pfx}"\ndefault-keystore-password = "C:\\\\pw"\n')
    key, _, ks = identity.load_keystore()
    assert key is None and ks["configured"] is True
    assert ks["reason"] == f"keystore file {pfx} does not exist"


@pytest.fixture
def server_jre(jre, monkeypatch):
    monkeypatch.delenv(javastore.VERDICTS_FILE_VAR, raising=False)
    javastore._VERDICTS.clear()
    return jre


def test_the_server_s_own_jre_loads_the_keystore(conf, default_pki, pki_tools, server_jre):
    primary = pki_tools.entity(default_pki, "primary-host")
    conf.write_text(f'default-keystore-file = "{primary["pfx_path"]}"\n'
                    f'default-keystore-password = "{primary["pfx_password"]}"\n')
    key, chain, ks = identity.load_keystore(server_jre)
    assert key is not None and ks["loaded"] is True and ks["alias"] == "primary-host"
    assert chain[0].subject.rfc4514_string() == "CN=primary-host,O=Acme"
    conf.write_text(f'default-keystore-file = "{primary["pfx_path"]}"\ndefault-keystore-password = "wrong"\n')
    key, _, ks = identity.load_keystore(server_jre)
    assert key is None and ks["reason"] == "java.io.IOException: keystore password was incorrect"
