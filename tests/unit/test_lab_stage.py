"""`up --spec`: a hand-over's files staged as the containers mount them, judged by openssl and keytool.

The hand-overs are made with the openssl CLI (support.handover); the user's folder is only read.
"""
from __future__ import annotations

import json
import os
import shutil
import stat
import subprocess
from pathlib import Path

import pytest

from lab import labstate, spec as lab_spec, stage, topology
from lab.errors import LabError
from support.fixtures_openssl import openssl
from support.handover import CASES, Case
from test_doctor_support import corp  # noqa: F401  (fixture)

ROOT = Path(__file__).resolve().parents[2]


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def snapshot(folder: Path) -> list[tuple]:
    return sorted((str(p), p.stat().st_mtime_ns, mode(p), p.read_bytes() if p.is_file() else b"")
                  for p in folder.rglob("*"))


@pytest.fixture
def staged(corp, tmp_path):  # noqa: F811 (fixture)
    handover = Case(corp).write(tmp_path / "handover")
    before = snapshot(handover.parent)
    result = stage.stage(lab_spec.load(handover), tmp_path / "build" / "spec-lab")
    assert snapshot(handover.parent) == before  # nothing written, nothing touched
    return result, tmp_path / "build" / "spec-lab", corp


def test_each_machine_gets_its_own_folder_with_owner_only_secrets(staged):
    result, dest, _ = staged
    hosts = dest / "hosts"
    assert sorted(p.name for p in hosts.iterdir()) == ["gateway-host", "ocsp-host", "pcclient-host", "primary-host"]
    assert sorted(p.name for p in (hosts / "primary-host").iterdir()) == [
        "Corp-Issuing-CA.cer", "Corp-Root-CA.cer", "primary-host.pfx"]
    assert mode(dest) == 0o700
    for path in dest.rglob("*"):
        if path.is_file():
            secret = path.suffix in (".pfx", ".key") or path.name in ("unattended-install.conf", "spec.toml")
            assert mode(path) == (0o600 if secret else 0o644), path
    assert result.primary.keystore == hosts / "primary-host" / "primary-host.pfx"
    assert result.account.trusted_cas == (hosts / "primary-host" / "Corp-Root-CA.cer",
                                          hosts / "primary-host" / "Corp-Issuing-CA.cer")


def test_the_gateway_gets_a_truststore_keytool_reads_and_its_unattended_file(staged, pki_tools):
    result, dest, corp = staged  # noqa: F811
    [gateway] = result.gateways
    conf = (dest / "hosts" / "gateway-host" / "unattended-install.conf").read_text()
    assert 'HCP_DEFAULT_KEYSTORE="/pki/gateway-host.pfx"' in conf
    assert 'HCP_DEFAULT_KEYSTORE_PASSWORD="gateway-pfx-password"' in conf
    assert f'HCP_DEFAULT_TRUSTSTORE="/pki/{stage.STAGED_TRUSTSTORE}"' in conf
    assert f'HCP_DEFAULT_TRUSTSTORE_PASSWORD="{gateway.truststore_password}"' in conf
    assert 'HCP_PRIMARY_SERVER_ADDRESS="primary-host:2560"' in conf
    listing = pki_tools.keytool("-list", "-v", "-storetype", "PKCS12", "-keystore", str(gateway.truststore),
                                "-storepass", gateway.truststore_password).stdout.decode()
    assert "Your keystore contains 1 entry" in listing and "Entry type: trustedCertEntry" in listing
    assert "Owner: O=Fixture, CN=Corp-Root-CA" in listing or "Owner: CN=Corp-Root-CA, O=Fixture" in listing


def test_the_client_store_is_filled_as_the_import_wizard_fills_it(staged):
    result, dest, corp = staged  # noqa: F811
    store = result.clients[0].store
    assert result.clients[0].keystore is None and store == dest / "hosts" / "pcclient-host" / "store"
    leaf, key = store / "My" / "pcclient-host.crt", store / "My" / "pcclient-host.key"
    [root], [issuing] = list((store / "Root").iterdir()), list((store / "CA").iterdir())
    assert root.read_bytes() == corp.root.cert_path.read_bytes()
    assert issuing.read_bytes() == corp.issuing.cert_path.read_bytes()
    out = openssl("verify", "-CAfile", str(root), "-untrusted", str(issuing), str(leaf)).stdout
    assert out.strip() == f"{leaf}: OK"
    # The key in My/ is the certificate's own.
    assert openssl("pkey", "-in", str(key), "-pubout").stdout == openssl("x509", "-in", str(leaf), "-noout",
                                                                         "-pubkey").stdout


def test_the_ocsp_responder_gets_no_ca(staged):
    _, dest, _ = staged
    config = json.loads((dest / "hosts" / "ocsp-host" / "responder.json").read_text())
    assert config == {"issuers": [], "status_file": "status.json"}


def test_restaging_replaces_the_folder_whole(staged, corp, tmp_path):  # noqa: F811
    _, dest, _ = staged
    (dest / "hosts" / "primary-host" / "leftover").write_text("x")
    other = Case(corp, trusted=[corp.root]).write(tmp_path / "other")
    result = stage.stage(lab_spec.load(other), dest)
    assert not (dest / "hosts" / "primary-host" / "leftover").exists()
    assert [p.name for p in result.account.trusted_cas] == ["Corp-Root-CA.cer"]
    assert not list(dest.parent.glob(".spec-lab.*"))  # no work folder left behind


def test_a_folder_the_lab_did_not_stage_is_never_replaced(corp, tmp_path):  # noqa: F811
    handover = Case(corp).write(tmp_path / "handover")
    dest = tmp_path / "mine"
    dest.mkdir()
    (dest / "notes.txt").write_text("keep me")
    with pytest.raises(lab_spec.SpecError, match=r"mine exists and was not staged by the lab: nothing was changed"):
        stage.stage(lab_spec.load(handover), dest)
    assert (dest / "notes.txt").read_text() == "keep me"


def test_two_different_files_of_one_name_are_refused(corp, tmp_path):  # noqa: F811
    handover = Case(corp).write(tmp_path / "handover")
    (tmp_path / "handover" / "sub").mkdir()
    shutil.copy(corp.issuing.cert_path, tmp_path / "handover" / "sub" / "Corp-Root-CA.cer")
    text = handover.read_text().replace('cacerts = ["Corp-Root-CA.cer"]', 'cacerts = ["sub/Corp-Root-CA.cer"]')
    handover.write_text(text)
    with pytest.raises(lab_spec.SpecError, match=r"two different files are named Corp-Root-CA.cer .*: rename one"):
        stage.stage(lab_spec.load(handover), tmp_path / "spec-lab")
    assert not (tmp_path / "spec-lab").exists() and not (tmp_path / ".spec-lab.new").exists()


@pytest.mark.parametrize("edit, message", [
    (lambda t: t + '\n[[gateway]]\nhost = "gateway-2"\nkeystore = "gateway-host.pfx"\n'
                   'keystore_password = "x"\ntruststore_certs = ["Corp-Root-CA.cer"]\n',
     r"the lab runs one gateway and one client; this spec has 2 \[\[gateway\]\] and 1 \[\[client\]\] tables"),
    (lambda t: t.replace('host = "pcclient-host"', 'host = "ocsp-host"'),
     r"ocsp-host is the lab's OCSP responder: give the machine another host name"),
])
def test_what_the_lab_cannot_run_is_one_clear_error(corp, tmp_path, edit, message):  # noqa: F811
    handover = Case(corp).write(tmp_path / "handover")
    handover.write_text(edit(handover.read_text()))
    with pytest.raises(lab_spec.SpecError, match=message):
        stage.stage(lab_spec.load(handover), tmp_path / "spec-lab")
    assert not (tmp_path / "spec-lab").exists()


def test_a_client_pfx_that_does_not_open_cannot_fill_the_store(corp, tmp_path):  # noqa: F811
    handover = Case(corp).write(tmp_path / "handover")
    handover.write_text(handover.read_text().replace('keystore_password = "pcclient-pfx-password"',
                                                     'keystore_password = "wrong"'))
    with pytest.raises(lab_spec.SpecError, match=r"pcclient-host.pfx: the password does not open it, so the client's "
                                                 r"certificate store cannot be filled: fix keystore_password"):
        stage.stage(lab_spec.load(handover), tmp_path / "spec-lab")


def test_identity_follows_the_files_content(corp, tmp_path):  # noqa: F811
    handover = Case(corp).write(tmp_path / "handover")
    first = labstate.identity(lab_spec.load(handover))
    assert labstate.identity(lab_spec.load(handover)) == first
    shutil.copy(corp.issuing.cert_path, tmp_path / "handover" / "Corp-Root-CA.cer")  # same name, other CA
    assert labstate.identity(lab_spec.load(handover)) != first


def test_state_round_trip_and_a_damaged_file(no_running_lab_state, tmp_path):
    state = labstate.LabState(tmp_path / "files", "/x/corp.toml", {"SAFEQ_PRIMARY_HOST": "p"}, "abc")
    labstate.save(state)
    assert labstate.current() == state and mode(no_running_lab_state) == 0o600
    assert state.compose_env() == {"SAFEQ_PRIMARY_HOST": "p", "SAFEQ_LAB_FILES": str(tmp_path / "files"),
                                   "SAFEQ_LAB_NAME": "safeq-lab"}
    no_running_lab_state.write_text("{not json")
    with pytest.raises(LabError, match=r"lab.json is damaged: delete it, then `safeq-lab up` starts the lab again"):
        labstate.current()


def test_compose_takes_host_names_and_folders_from_the_spec():
    if shutil.which("docker") is None or subprocess.run(["docker", "compose", "version"], capture_output=True,
                                                        timeout=20).returncode != 0:
        pytest.skip("docker compose is not installed")
    env = dict(os.environ, SAFEQ_LAB_FILES="/srv/staged", SAFEQ_PRIMARY_HOST="safeq.corp.example",
               SAFEQ_GATEWAY_HOST="gw01.corp.example", SAFEQ_CLIENT_HOST="pc01", SAFEQ_CLIENT_SUBJECT="PC01")
    config = topology._config(ROOT, env)
    topo = topology.parse(config, Path("/srv/staged"), topology.file_order((ROOT / "compose.yaml").read_text()))
    assert [(s.name, s.host, s.pki_mount) for s in topo.services] == [
        ("ocsp", "ocsp-host", "hosts/ocsp-host"), ("primary", "safeq.corp.example", "hosts/safeq.corp.example"),
        ("gateway", "gw01.corp.example", "hosts/gw01.corp.example"), ("client", "pc01", "hosts/pc01"),
        ("portal", None, None)]  # the portal mounts no PKI folder
    assert config["services"]["portal"]["environment"]["SAFEQ_PORTAL_HOSTS"].split() == [
        "primary=safeq.corp.example", "ocsp=ocsp-host", "gateway=gw01.corp.example", "client=pc01"]
    client = config["services"]["client"]["environment"]
    assert client["SAFEQ_SERVER_HOST_NAME"] == "safeq.corp.example" and client["SAFEQ_CERTIFICATE_SUBJECT"] == "PC01"
    assert topo.service("gateway").aliases == ("gw01.corp.example",)


# --- `up --spec`: what happens before any container starts --------------------------------------

@pytest.fixture
def before_docker(monkeypatch):
    """`up` stopped where it would start using the spec: what prepare() was handed."""
    from lab import docker, up as lab_up
    seen = {}

    def prepare(user, force, env, deadline, port=None, counts=None):
        seen.update(user=user, force=force, env=env, port=port, counts=counts)
        raise LabError("stopped before the lab starts")
    monkeypatch.setattr(lab_up, "prepare", prepare)
    monkeypatch.setattr(docker, "preflight", lambda: pytest.fail("docker touched"))
    return seen


def up(*args: str):
    from click.testing import CliRunner
    from lab.cli import main
    return CliRunner().invoke(main, ["up", "--no-build", *args])


def test_a_spec_that_cannot_be_read_stops_up_before_docker(before_docker, tmp_path):
    result = up("--spec", str(tmp_path / "corp.toml"))
    assert result.exit_code == 2 and not before_docker
    assert result.stderr == (f"error: {tmp_path / 'corp.toml'} does not exist: write one with "
                             "`safeq-lab spec template > corp.toml`\n")
    assert list(tmp_path.iterdir()) == []


def test_up_hands_the_port_asked_for_on(before_docker):
    up("--port", "2599")
    assert before_docker["port"] == 2599 and before_docker["user"] is None
    assert up("--port", "0").exit_code == 2  # not a port


def test_force_goes_with_a_spec(before_docker):
    result = up("--force")
    assert result.exit_code == 2 and "--force goes with --spec FILE" in result.stderr and not before_docker


def test_the_specs_policy_is_the_labs_unless_given(before_docker, corp, tmp_path):  # noqa: F811
    handover = Case(corp).write(tmp_path / "handover")
    handover.write_text(handover.read_text().replace('policy = "trusted-ca"', 'policy = "built-in"'))
    up("--spec", str(handover))
    assert before_docker["env"]["SAFEQ_GATEWAY_CERTIFICATES"] == "built-in"
    assert before_docker["user"].primary.host == "primary-host" and before_docker["force"] is False
    up("--spec", str(handover), "--policy", "trusted-ca", "--force")
    assert before_docker["env"]["SAFEQ_GATEWAY_CERTIFICATES"] == "trusted" and before_docker["force"] is True


def test_the_doctor_stops_up_on_errors_unless_forced(corp, tmp_path, capsys):  # noqa: F811
    from lab import up as lab_up
    bad = lab_spec.load(CASES["leaf without clientAuth"][0](corp).write(tmp_path / "handover"))
    with pytest.raises(LabError, match=r"^the doctor found 2 error\(s\) in .*corp.toml \(above\): fix them and run "
                                       r"`up` again, or start the lab anyway with --force"):
        lab_up.doctor_first(bad, force=False)
    [gateway, client] = lab_up.doctor_first(bad, force=True)
    assert (gateway.refused_by, gateway.reason) == (
        "primary", "Extended key usage does not permit use for TLS client authentication")
    assert client.connects
    shown = capsys.readouterr().err
    assert "doctor: error   eku.client-auth-missing" in shown
    assert "doctor: connection gateway gateway-host: refused by primary: Extended key usage" in shown
