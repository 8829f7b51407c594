"""Files that are not what their key says: one clear error naming the key and the file, exit 2,
no traceback, nothing written next to the user's files."""
from __future__ import annotations

import pytest
from click.testing import CliRunner

from lab import cli
from test_doctor_support import Case, corp  # noqa: F401  (fixture)


def not_a_pfx(folder):
    (folder / "gateway-host.pfx").write_text("-----BEGIN NONSENSE-----\nnot a PKCS12 file\n")


def truncated_pfx(folder):
    data = (folder / "gateway-host.pfx").read_bytes()
    (folder / "gateway-host.pfx").write_bytes(data[: len(data) // 2])


def certificate_as_keystore(folder):
    (folder / "gateway-host.pfx").write_bytes((folder / "Corp-Root-CA.cer").read_bytes())


def empty_pfx(folder):
    (folder / "gateway-host.pfx").write_bytes(b"")


def not_a_certificate(folder):
    (folder / "Corp-Issuing-CA.cer").write_bytes(b"\x00\x01garbage")


def truststore_not_a_pfx(folder):
    (folder / "corp-ca.pfx").write_bytes(b"\x30\x03\x02\x01")


def edit_spec(old, new):
    def edit(folder):
        spec = folder / "corp.toml"
        text = spec.read_text()
        assert old in text
        spec.write_text(text.replace(old, new, 1))
    return edit


def directory_for_keystore(folder):
    (folder / "keystores").mkdir()
    edit_spec('keystore = "gateway-host.pfx"', 'keystore = "keystores"')(folder)


GARBAGE = {
    # name: (spoil the folder, words the one error line holds)
    "not a PFX": (not_a_pfx, ["[[gateway]] #1 (gateway-host) keystore", "gateway-host.pfx is not a PKCS12 (PFX) file"]),
    "a truncated PFX": (truncated_pfx, ["[[gateway]] #1 (gateway-host) keystore", "damaged or cut-short"]),
    "a certificate as keystore": (certificate_as_keystore, ["gateway-host.pfx is not a PKCS12 (PFX) file"]),
    "an empty PFX": (empty_pfx, ["gateway-host.pfx is not a PKCS12 (PFX) file"]),
    "not a certificate": (not_a_certificate, ["[account] trusted_cas[1]", "Corp-Issuing-CA.cer",
                                              "not an X.509 certificate"]),
    "truststore not a PFX": (truststore_not_a_pfx, ["[[gateway]] #1 (gateway-host) truststore", "corp-ca.pfx"]),
    "an empty password": (edit_spec('keystore_password = "changeit"', 'keystore_password = ""'),
                          ["[primary] keystore_password", "is empty"]),
    "a directory where a file belongs": (directory_for_keystore, ["[[gateway]] #1 (gateway-host) keystore",
                                                                  "keystores is not a file"]),
    "an unknown key": (edit_spec("[account]\n", "[account]\ntrusted_ca = []\n"),
                       ["[account]", "unknown key 'trusted_ca'", "did you mean trusted_cas?"]),
    "a missing file": (edit_spec('keystore = "pcclient-host.pfx"', 'keystore = "pcclient.pfx"'),
                       ["[[client]] #1 (pcclient-host) keystore", "pcclient.pfx does not exist"]),
}


@pytest.mark.parametrize("name", list(GARBAGE))
@pytest.mark.parametrize("as_json", [False, True], ids=["text", "json"])
def test_garbage_is_one_clear_error(corp, tmp_path, pki_tools, name, as_json):  # noqa: F811 (fixture)
    spoil, words = GARBAGE[name]
    spec = Case(corp, truststore="nokeys").write(tmp_path)
    spoil(tmp_path)
    before = pki_tools.tree_state(tmp_path)
    result = CliRunner().invoke(cli.main, ["doctor", str(spec), *(["--json"] if as_json else [])])
    assert result.exit_code == 2
    assert result.stdout == ""
    [line] = result.stderr.splitlines()
    assert line.startswith(f"error: {spec}: "), line
    for word in words:
        assert word in line
    assert "Traceback" not in result.output
    assert isinstance(result.exception, SystemExit)  # the error exit, not an exception that escaped
    assert pki_tools.tree_state(tmp_path) == before
