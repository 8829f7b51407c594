"""The lab spec: parsing and checking (lab/spec.py), the template, and the lab's own spec."""
from __future__ import annotations

import dataclasses
import re
import tomllib
from pathlib import Path

import pytest
from click.testing import CliRunner

from lab import cli, spec

TEMPLATE_FILES = ("primary-host.pfx", "Corp-Root-CA.cer", "Corp-Issuing-CA.cer", "gateway-host.pfx", "corp-ca.pfx",
                  "pcclient-host.pfx")


def run_cli(*args: str, env: dict | None = None):
    return CliRunner().invoke(cli.main, list(args), env=env)


@pytest.fixture
def folder(tmp_path) -> Path:
    """The template's files (content does not matter to the spec) and the template as corp.toml."""
    for name in TEMPLATE_FILES:
        (tmp_path / name).write_bytes(b"x")
    (tmp_path / "corp.toml").write_text(spec.template())
    return tmp_path


def test_the_template_is_a_valid_spec_with_every_table(folder):
    loaded = spec.load(folder / "corp.toml")
    assert loaded.primary == spec.Primary("primary-host", folder / "primary-host.pfx", "changeit",
                                          (folder / "Corp-Root-CA.cer",))
    assert loaded.account == spec.Account("trusted-ca", (folder / "Corp-Root-CA.cer", folder / "Corp-Issuing-CA.cer"), ocsp=False)
    [gateway] = loaded.gateways
    assert (gateway.truststore, gateway.truststore_password) == (folder / "corp-ca.pfx", "corp-ca-pfx-password")
    [client] = loaded.clients
    assert (client.keystore, client.subject, client.store) == (folder / "pcclient-host.pfx", "pcclient-host", None)


def test_spec_template_prints_the_template():
    result = run_cli("spec", "template")
    assert result.exit_code == 0
    assert result.stdout == spec.TEMPLATE.read_text()
    # The keys, as written, so that scripts can generate specs.
    for key in ("host", "keystore", "keystore_password", "cacerts", "policy", "trusted_cas", "ocsp", "truststore",
                "truststore_password", "truststore_certs", "subject"):
        assert re.search(rf"^#? ?{key} = ", result.stdout, re.M), key


def test_paths_are_relative_to_the_spec_file_not_the_working_directory(folder, monkeypatch, tmp_path_factory):
    monkeypatch.chdir(tmp_path_factory.mktemp("elsewhere"))
    assert spec.load(folder / "corp.toml").primary.keystore == folder / "primary-host.pfx"


def test_the_lab_spec_names_the_files_the_lab_mounts(default_pki):
    root = Path(default_pki["dir"])
    lab = spec.lab_spec(root)
    hosts = root / "hosts"
    assert lab.primary == spec.Primary("primary-host", hosts / "primary-host" / "primary-host.pfx", "changeit",
                                       (hosts / "primary-host" / "cacert.crt",))
    # Every CA of the chain goes under Trusted CA certificates (the doc's steps import the spec's files).
    assert [p.name for p in lab.account.trusted_cas] == sorted(f"{ca['name']}.cer" for ca in default_pki["cas"])
    assert lab.account.policy == "trusted-ca" and lab.account.ocsp is None  # the account's setting stays
    [gateway] = lab.gateways
    truststore = default_pki["truststores"][0]
    assert gateway == spec.Gateway("gateway-host", hosts / "gateway-host" / "gateway-host.pfx", "gateway-pfx-password",
                                   hosts / "gateway-host" / "acme-ca.pfx", truststore["password"])
    assert lab.clients == (spec.Client("pcclient-host", "pcclient-host", store=hosts / "pcclient-host" / "store"),)


def test_the_lab_spec_reads_the_gateways_unattended_file(fresh_pki):
    conf = fresh_pki / "hosts" / "gateway-host" / "unattended-install.conf"
    conf.write_text(conf.read_text().replace('HCP_DEFAULT_KEYSTORE_PASSWORD="gateway-pfx-password"',
                                             'HCP_DEFAULT_KEYSTORE_PASSWORD="from-the-file"'))
    assert spec.lab_spec(fresh_pki).gateways[0].keystore_password == "from-the-file"


def test_the_lab_spec_written_as_toml_reads_back_the_same(default_pki, tmp_path):
    lab = spec.lab_spec(default_pki["dir"])
    written = tmp_path / "lab.toml"
    written.write_text(spec.to_toml(lab))
    again = spec.load(written)
    assert dataclasses.replace(again, source=lab.source, base=lab.base) == lab
    # Relative paths, saved in the PKI folder, read back the same too.
    root = Path(default_pki["dir"])
    text = spec.to_toml(lab, relative_to=root)
    assert str(root) not in text.split("\n", 1)[1]  # only the comment names the folder
    assert dataclasses.replace(spec.from_dict(tomllib.loads(text), root, "x"), source=lab.source) == lab


def test_awkward_strings_survive_toml(folder):
    loaded = spec.load(folder / "corp.toml")
    odd = 'quote " backslash \\ tab \t del \x7f é ☃'
    changed = dataclasses.replace(loaded, primary=dataclasses.replace(loaded.primary, keystore_password=odd))
    (folder / "again.toml").write_text(spec.to_toml(changed))
    assert spec.load(folder / "again.toml").primary.keystore_password == odd


def test_spec_show_prints_the_lab_spec(default_pki):
    result = run_cli("spec", "show", env={"SAFEQ_PKI_DIR": default_pki["dir"]})
    assert result.exit_code == 0, result.stderr
    assert result.stdout == spec.to_toml(spec.lab_spec(default_pki["dir"]))
    assert tomllib.loads(result.stdout)["primary"]["keystore_password"] == "changeit"


def test_spec_show_without_a_lab_pki_says_what_to_do(tmp_path):
    result = run_cli("spec", "show", env={"SAFEQ_PKI_DIR": str(tmp_path / "none")})
    assert result.exit_code == 2
    assert result.stderr.startswith("error: no lab PKI in ") and "safeq-lab pki init" in result.stderr
    assert not (tmp_path / "none").exists()


# --- one clear error per mistake --------------------------------------------------------------------

def _edit(text: str, old: str, new: str) -> str:
    assert old in text, old
    return text.replace(old, new, 1)


MISTAKES = {
    "unknown key": (lambda t: _edit(t, 'truststore = "corp-ca.pfx"', 'trustore = "corp-ca.pfx"'),
                    ["[[gateway]] #1 (gateway-host)", "unknown key 'trustore'", "did you mean truststore?"]),
    "unknown table": (lambda t: t + '\n[gateways]\nhost = "x"\n', ["unknown key 'gateways'"]),
    "missing key": (lambda t: _edit(t, 'keystore_password = "changeit"\n', ""),
                    ["[primary]", "missing key 'keystore_password'"]),
    "missing table": (lambda t: _edit(t, "[account]", "[accounts]"), ["unknown key 'accounts'"]),
    "wrong type": (lambda t: _edit(t, "ocsp = false", 'ocsp = "no"'), ["[account] ocsp", "must be true or false"]),
    "number password": (lambda t: _edit(t, '"gateway-pfx-password"', "1234"),
                        ["[[gateway]] #1 (gateway-host) keystore_password", "must be a string (in quotes)"]),
    "missing file": (lambda t: _edit(t, '"Corp-Issuing-CA.cer"', '"Corp-Issuing.cer"'),
                     ["[account] trusted_cas[1]", "Corp-Issuing.cer does not exist"]),
    "folder for a file": (lambda t: _edit(t, 'keystore = "primary-host.pfx"', 'keystore = "."'),
                          ["[primary] keystore", "is not a file"]),
    "empty password": (lambda t: _edit(t, 'truststore_password = "corp-ca-pfx-password"', 'truststore_password = ""'),
                       ["[[gateway]] #1 (gateway-host) truststore_password", "is empty"]),
    "both truststores": (lambda t: _edit(t, "# truststore_certs", "truststore_certs"),
                         ["give truststore or truststore_certs, not both"]),
    "no password for the truststore": (lambda t: _edit(t, 'truststore_password = "corp-ca-pfx-password"\n', ""),
                                       ["missing key 'truststore_password'"]),
    "table for an array": (lambda t: _edit(t, "[[client]]", "[client]"), ["write [[client]]"]),
    "bad policy": (lambda t: _edit(t, 'policy = "trusted-ca"', 'policy = "trusted"'), ["'trusted' is not a policy"]),
    "bad url": (lambda t: _edit(t, '# ocsp_url = "http://ocsp.corp.example"', 'ocsp_url = "ocsp.corp.example"'),
                ["[account] ocsp_url", "not an http:// or https:// URL"]),
    "same host twice": (lambda t: _edit(t, 'host = "pcclient-host"', 'host = "gateway-host"'),
                        ["gateway-host named more than once"]),
    "not toml": (lambda t: t + "\nthis is = = not toml\n", ["not valid TOML"]),
}


@pytest.mark.parametrize("mistake", sorted(MISTAKES))
def test_each_mistake_is_one_error_naming_file_and_key(folder, mistake, pki_tools):
    edit, words = MISTAKES[mistake]
    path = folder / "corp.toml"
    path.write_text(edit(path.read_text()))
    with pytest.raises(spec.SpecError) as caught:
        spec.load(path)
    assert str(caught.value).startswith(str(path)), caught.value
    for word in words:
        assert word in str(caught.value)
    before = pki_tools.tree_state(folder)
    result = run_cli("doctor", str(path))
    assert result.exit_code == 2
    assert result.stdout == ""
    assert result.stderr.splitlines() == [f"error: {caught.value}"]
    assert pki_tools.tree_state(folder) == before  # nothing written next to the user's files


def test_a_store_folder_must_be_a_folder(folder):
    path = folder / "corp.toml"
    text = _edit(path.read_text(), 'keystore = "pcclient-host.pfx"\nkeystore_password = "pcclient-pfx-password"\n',
                 'store = "pcclient-host.pfx"\n')
    path.write_text(text)
    with pytest.raises(spec.SpecError, match=r"\[\[client\]\] #1 \(pcclient-host\) store: .* is not a folder"):
        spec.load(path)


@pytest.mark.parametrize("make", ["missing", "folder"])
def test_the_spec_file_itself_missing_or_a_folder(tmp_path, make):
    path = tmp_path / "corp.toml"
    if make == "folder":
        path.mkdir()
    result = run_cli("doctor", str(path))
    assert result.exit_code == 2 and len(result.stderr.splitlines()) == 1
    assert result.stderr.startswith(f"error: {path} ")
    assert "Traceback" not in result.output
