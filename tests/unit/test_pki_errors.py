"""Bad input: one clear error, exit status 2, and not a single byte changed."""
from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import pytest

import pki
from pki.database import canonical_digest


def _fails(pki_cli, pki_tools, root: Path, args: list[str], message: str):
    """Run a CLI command that must fail; check message, status and the untouched tree."""
    watched = root.parent  # also catches leftovers beside the PKI dir
    before = pki_tools.tree_state(watched)
    result = pki_cli(*args)
    assert result.exit_code == 2, (result.stdout, result.stderr)
    assert result.stderr.startswith("error: "), result.stderr
    assert message in result.stderr, result.stderr
    assert "Traceback" not in result.stderr + result.stdout
    assert pki_tools.tree_state(watched) == before
    return result


@pytest.fixture(scope="module")
def shared_pki(tmp_path_factory) -> Path:
    """One PKI for the error cases that must not change it."""
    return Path(pki.init_pki(tmp_path_factory.mktemp("errors") / "pki")["dir"])


def test_init_twice_refuses(pki_cli, pki_tools, shared_pki):
    _fails(pki_cli, pki_tools, shared_pki, ["init", "--dir", str(shared_pki)],
           f"a PKI already exists in {shared_pki}; pass --force to replace it")


@pytest.mark.parametrize(
    "args, message",
    [
        (["--intermediates", "-1"], "--intermediates must be 0 or more (got -1)"),
        (["--key-type", "dsa-1024"], "unknown key type 'dsa-1024'; choose one of: ecdsa-p256, ecdsa-p384, rsa-2048"),
        (["--days-ca", "0"], "--days-ca must be a whole number of days"),
        (["--ocsp-url", "ftp://ocsp-host"], "invalid URL 'ftp://ocsp-host' for --ocsp-url"),
        (["--ocsp-url", "http://x:1", "--no-ocsp-url"], "--ocsp-url and --no-ocsp-url contradict each other"),
        (["--root-name", "Bad/Name"], "invalid CA name 'Bad/Name' for --root-name"),
        (["--root-name", "Same", "--intermediate-name", "Same"], "--root-name and --intermediate-name must differ"),
    ],
)
def test_init_bad_options_touch_nothing(pki_cli, pki_tools, shared_pki, args, message):
    # With --force, so only the validation stands between the input and the existing PKI.
    _fails(pki_cli, pki_tools, shared_pki, ["init", "--force", "--dir", str(shared_pki), *args], message)


def test_init_bad_option_creates_no_directory(pki_cli, pki_tools, tmp_path):
    target = tmp_path / "new" / "pki"
    _fails(pki_cli, pki_tools, target.parent, ["init", "--dir", str(target), "--intermediates", "-1"], "must be 0 or more")
    assert not (tmp_path / "new").exists()


def test_init_refuses_a_non_empty_directory_without_pki(pki_cli, pki_tools, tmp_path):
    target = tmp_path / "pki"
    target.mkdir()
    (target / "notes.txt").write_text("mine")
    _fails(pki_cli, pki_tools, target, ["init", "--dir", str(target)], "is not empty and holds no PKI")


def test_init_force_replaces(pki_cli, pki_tools, tmp_path):
    root = Path(pki.init_pki(tmp_path / "pki")["dir"])
    old_root_serial = pki.load_manifest(root)["cas"][0]["serial"]
    pki.issue(root, "client-9", "client")
    result = pki_cli("init", "--force", "--dir", str(root), "--intermediates", "2")
    assert result.exit_code == 0, result.stderr
    manifest = pki.load_manifest(root)
    assert manifest["cas"][0]["serial"] != old_root_serial
    assert len(manifest["cas"]) == 3
    assert not (root / "entities" / "client-9").exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["pki"]


@pytest.mark.parametrize(
    "args, message",
    [
        (["issue", "gateway-host", "--role", "gateway"], "an entity named 'gateway-host' already exists"),
        (["issue", "PRIMARY-HOST", "--role", "primary"], "an entity named 'primary-host' already exists"),
        (["issue", "bad_name", "--role", "client"], "invalid host name 'bad_name'"),
        (["issue", "lead.-x", "--role", "client"], "invalid host name 'lead.-x'"),
        (["issue", "trail-", "--role", "client"], "invalid host name 'trail-'"),
        (["issue", "a..b", "--role", "client"], "invalid host name 'a..b'"),
        (["issue", "x" * 64, "--role", "client"], "invalid host name"),
        (["issue", "10.0.0.1", "--role", "client"], "invalid host name '10.0.0.1'"),
        (["issue", "../escape", "--role", "client"], "invalid host name '../escape'"),
        (["issue", "client-5", "--role", "printer"], "unknown role 'printer'; choose one of: primary, gateway, client"),
        (["issue", "client-5", "--role", "client", "--san", "not a name"], "invalid --san 'not a name'"),
        (["issue", "client-5", "--role", "client", "--san", "*.wild.example"], "invalid --san '*.wild.example'"),
        (["issue", "client-5", "--role", "client", "--password", "abc"], "--password is too short"),
        (["issue", "client-5", "--role", "client", "--password", 'pa"ss$word'], "--password may only contain"),
        (["revoke", "ghost-host"], "no entity named 'ghost-host' in this PKI"),
        (["reissue", "ghost-host"], "no entity named 'ghost-host' in this PKI"),
        (["revoke", "gateway-host", "--reason", "boredom"], "unknown revocation reason 'boredom'"),
    ],
)
def test_bad_input_touches_nothing(pki_cli, pki_tools, shared_pki, args, message):
    _fails(pki_cli, pki_tools, shared_pki, [*args, "--dir", str(shared_pki)], message)


def test_revoke_twice_refuses(pki_cli, pki_tools, fresh_pki):
    pki.revoke(fresh_pki, "gateway-host", "superseded")
    _fails(pki_cli, pki_tools, fresh_pki, ["revoke", "gateway-host", "--dir", str(fresh_pki)],
           "entity 'gateway-host' is already revoked (superseded at")


@pytest.mark.parametrize("command", [["show"], ["show", "--json"], ["issue", "x1", "--role", "client"],
                                     ["revoke", "gateway-host"], ["reissue", "gateway-host"]])
def test_no_pki(pki_cli, pki_tools, tmp_path, command):
    target = tmp_path / "empty"
    target.mkdir()
    _fails(pki_cli, pki_tools, target, [*command, "--dir", str(target)], f"no PKI found in {target}")
    with pytest.raises(pki.PKIError, match="no PKI found"):
        pki.load_manifest(tmp_path / "missing")
    assert not (tmp_path / "missing").exists()


# -- a damaged or tampered CA database -------------------------------------------------------
def _rewrite_db(root: Path, change, *, fix_digest: bool) -> None:
    path = root / "ca" / "db.json"
    data = json.loads(path.read_text())
    change(data)
    if fix_digest:
        body = {k: v for k, v in data.items() if k != "integrity"}
        data["integrity"] = {"algorithm": "sha256", "digest": canonical_digest(body)}
    path.write_text(json.dumps(data, indent=2))


def _all_commands_refuse(pki_cli, pki_tools, root: Path, message: str) -> None:
    for command in (["show", "--json"], ["issue", "x1", "--role", "client"], ["revoke", "primary-host"],
                    ["reissue", "primary-host"]):
        _fails(pki_cli, pki_tools, root, [*command, "--dir", str(root)], message)


def test_db_not_json(pki_cli, pki_tools, fresh_pki):
    (fresh_pki / "ca" / "db.json").write_text("{ this is not json")
    _all_commands_refuse(pki_cli, pki_tools, fresh_pki, "ca/db.json is corrupt (not valid JSON")


def test_db_missing_key(pki_cli, pki_tools, fresh_pki):
    _rewrite_db(fresh_pki, lambda d: d.pop("entities"), fix_digest=True)
    _all_commands_refuse(pki_cli, pki_tools, fresh_pki, "is corrupt (missing key 'entities' in the top level)")


def test_db_edited_by_hand(pki_cli, pki_tools, fresh_pki):
    def edit(data):
        data["entities"][0]["role"] = "client"
    _rewrite_db(fresh_pki, edit, fix_digest=False)
    _all_commands_refuse(pki_cli, pki_tools, fresh_pki, "failed its integrity check (SHA-256 mismatch)")


def test_db_serial_forged_with_valid_digest(pki_cli, pki_tools, fresh_pki):
    def edit(data):
        data["entities"][1]["serial"] = "1234abcd"
    _rewrite_db(fresh_pki, edit, fix_digest=True)
    _all_commands_refuse(pki_cli, pki_tools, fresh_pki, "entity gateway-host: recorded serial 1234abcd does not match")


def test_certificate_from_elsewhere_in_db(pki_cli, pki_tools, fresh_pki, foreign_pki):
    stranger = (Path(foreign_pki["dir"]) / "entities/gateway-host/gateway-host.crt").read_text()

    def edit(data):
        data["entities"][1]["cert_pem"] = stranger
        data["entities"][1]["serial"] = pki_tools.entity(foreign_pki, "gateway-host")["serial"]
    _rewrite_db(fresh_pki, edit, fix_digest=True)
    _all_commands_refuse(pki_cli, pki_tools, fresh_pki, "the certificate of entity gateway-host was not signed by Acme-CA-Intermediate")


def test_exported_certificate_replaced(pki_cli, pki_tools, fresh_pki, foreign_pki):
    shutil.copy(Path(foreign_pki["dir"]) / "entities/pcclient-host/pcclient-host.crt",
                fresh_pki / "entities/pcclient-host/pcclient-host.crt")
    result = _fails(pki_cli, pki_tools, fresh_pki, ["show", "--dir", str(fresh_pki)],
                    "pcclient-host.crt differs from the certificate recorded in the CA database")
    assert "run `safeq-lab pki reissue pcclient-host`" in result.stderr


def test_ca_key_swapped(pki_cli, pki_tools, fresh_pki, foreign_pki):
    shutil.copy(Path(foreign_pki["dir"]) / "ca/Acme-CA-Intermediate.key.pem", fresh_pki / "ca/Acme-CA-Intermediate.key.pem")
    _all_commands_refuse(pki_cli, pki_tools, fresh_pki, "Acme-CA-Intermediate.key.pem is not the key of CA Acme-CA-Intermediate")


def test_reissue_repairs_its_own_damaged_export(pki_tools, fresh_pki, foreign_pki):
    # An entity's own files are rewritten by reissue, so a mismatch there is no obstacle.
    shutil.copy(Path(foreign_pki["dir"]) / "entities/pcclient-host/pcclient-host.crt",
                fresh_pki / "entities/pcclient-host/pcclient-host.crt")
    pki.reissue(fresh_pki, "pcclient-host")
    pki.load_manifest(fresh_pki)


# -- failures while writing --------------------------------------------------------------------
@pytest.mark.parametrize("operation", ["issue", "reissue", "revoke"])
def test_failed_commit_is_rolled_back(pki_tools, fresh_pki, monkeypatch, operation):
    before = pki_tools.tree_state(fresh_pki.parent)
    real_replace = os.replace

    def failing_replace(src, dst, *a, **kw):
        if str(dst).endswith("db.json"):
            raise OSError(28, "No space left on device")
        return real_replace(src, dst, *a, **kw)

    monkeypatch.setattr(os, "replace", failing_replace)
    run = {
        "issue": lambda: pki.issue(fresh_pki, "late-host", "gateway"),
        "reissue": lambda: pki.reissue(fresh_pki, "gateway-host"),
        "revoke": lambda: pki.revoke(fresh_pki, "gateway-host"),
    }[operation]
    with pytest.raises(OSError, match="No space left"):
        run()
    monkeypatch.undo()
    assert pki_tools.tree_state(fresh_pki.parent) == before
    pki.load_manifest(fresh_pki)


def test_failed_init_keeps_the_old_pki(pki_tools, fresh_pki, monkeypatch):
    before = pki_tools.tree_state(fresh_pki.parent)
    import pki.builder as builder

    def boom(*args, **kwargs):
        raise OSError(5, "Input/output error")

    monkeypatch.setattr(builder.export, "truststore", boom)
    with pytest.raises(OSError):
        pki.init_pki(fresh_pki, force=True)
    assert pki_tools.tree_state(fresh_pki.parent) == before


def test_cli_reports_os_errors_without_traceback(pki_cli, fresh_pki, monkeypatch):
    import pki.builder as builder

    monkeypatch.setattr(builder.export, "truststore", lambda *a, **k: (_ for _ in ()).throw(PermissionError(13, "Permission denied", "x")))
    result = pki_cli("init", "--force", "--dir", str(fresh_pki))
    assert result.exit_code == 2
    assert result.stderr.startswith("error: Permission denied (x); nothing was changed")


def test_api_rejects_unknown_options(tmp_path):
    with pytest.raises(pki.PKIError, match="unknown init option"):
        pki.init_pki(tmp_path / "pki", colour="blue")
    assert not (tmp_path / "pki").exists()
