"""The doc's steps as `safeq-lab up` types them (one console session on the primary), the application.conf
edit read back by the primary's parser."""
import dataclasses
import json
import os
import shutil
import stat
import subprocess
from pathlib import Path

import pytest

import pki
from lab import engine, spec as lab_spec, steps
from lab import up as lab_up
from lab.deadline import Deadline
from lab.errors import LabError
from lab.views import Phases

from safeq_primary import hocon

CONF = (Path(__file__).resolve().parents[2] / "images" / "primary" / "application.conf").read_text()


@pytest.fixture(scope="module")
def manifest(tmp_path_factory):
    """The lab PKI's spec, and the primary's host folder (what it mounts at /pki)."""
    root = tmp_path_factory.mktemp("pki")
    pki.init_pki(root)
    return lab_spec.lab_spec(root), root / "hosts" / "primary-host"


def with_password(spec, password: str):
    return dataclasses.replace(spec, primary=dataclasses.replace(spec.primary, keystore_password=password))


@pytest.mark.parametrize("password", ["changeit", "it's|a&b c", "p@ss;word#1"])
def test_sed_step_sets_both_settings_for_any_allowed_password(manifest, tmp_path, password):
    data, host_dir = manifest
    edit = next(s for s in steps.primary_steps(with_password(data, password), host_dir) if s.command.startswith("sed "))
    conf = tmp_path / "application.conf"
    conf.write_text(CONF)
    subprocess.run(["sh", "-c", edit.command.replace(f"{steps.CONF_DIR}/application.conf", str(conf))], check=True)
    parsed = hocon.parse(conf.read_text())
    assert hocon.setting(parsed, "default-keystore-file") == "/opt/safeqcloud/conf/primary-host.pfx"
    assert hocon.setting(parsed, "default-keystore-password") == password
    assert hocon.setting(parsed, "port") == "2560"  # the rest of the file is untouched


def test_a_file_outside_the_primarys_folder_is_a_clear_error(manifest, tmp_path):
    from lab.errors import LabError
    data, host_dir = manifest
    with pytest.raises(LabError, match=r"primary-host.pfx is not in .*, the folder the primary mounts: stage the spec"):
        steps.primary_steps(data, tmp_path)


def test_sed_step_keeps_quotes_and_backslashes_in_the_password(manifest, tmp_path):
    data, host_dir = manifest
    password = 'back\\slash "quoted" \\n & |'
    edit = next(s for s in steps.primary_steps(with_password(data, password), host_dir) if s.command.startswith("sed "))
    conf = tmp_path / "application.conf"
    conf.write_text(CONF)
    subprocess.run(["sh", "-c", edit.command.replace(f"{steps.CONF_DIR}/application.conf", str(conf))], check=True)
    assert hocon.setting(hocon.parse(conf.read_text()), "default-keystore-password") == password


# Names a Trusted CA file (or the primary entity) may have: each must reach its command as one
# argument, and none may run anything.
NASTY_CA_FILES = ["Acme CA $(touch pwned1).cer", "it's `touch pwned2`.cer", '"; touch pwned3; ".cer',
                  "a;b|c&d > pwned4.cer"]
NASTY_ENTITY = "primary $(touch pwned5) 'x'"
RECORDER = """#!/usr/bin/env python3
import json, os, sys
with open(os.environ["ARGV_LOG"], "a") as log:
    log.write(json.dumps([os.path.basename(sys.argv[0]), *sys.argv[1:]]) + "\\n")
sys.exit(1 if sys.argv[1:3] == ["trusted-ca", "contains"] else 0)  # a new account holds no CA yet
"""


def fake_container(tmp_path, host_dir, monkeypatch) -> tuple[Path, Path, dict]:
    """The primary's /pki, conf folder, keytool and admin commands, as temp paths with spaces."""
    mount = tmp_path / "pki mount $(touch pwned0)"
    mount.mkdir()
    shutil.copy(host_dir / "cacert.crt", mount / "cacert.crt")
    cer = sorted(host_dir.glob("*.cer"))[0]
    for name in NASTY_CA_FILES:
        shutil.copy(cer, mount / name)
    shutil.copy(host_dir / "primary-host.pfx", mount / f"{NASTY_ENTITY}.pfx")
    conf = tmp_path / "conf dir"
    conf.mkdir()
    (conf / "application.conf").write_text(CONF)
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    for tool in ("keytool", "safeq-admin", "systemctl"):
        (bin_dir / tool).write_text(RECORDER)
        (bin_dir / tool).chmod(0o755)
    monkeypatch.setattr(steps, "PKI_MOUNT", str(mount))
    monkeypatch.setattr(steps, "CONF_DIR", str(conf))
    monkeypatch.setattr(steps, "KEYTOOL", str(bin_dir / "keytool"))
    monkeypatch.setattr(steps, "CACERTS", str(tmp_path / "jre security" / "cacerts"))
    env = {"PATH": f"{bin_dir}:{os.environ['PATH']}", "ARGV_LOG": str(tmp_path / "argv.log")}
    return mount, conf, env


def test_file_names_are_quoted_in_every_primary_step(manifest, tmp_path, monkeypatch):
    data, host_dir = manifest
    mount, conf, env = fake_container(tmp_path, host_dir, monkeypatch)
    data = dataclasses.replace(
        data, primary=dataclasses.replace(data.primary, keystore=mount / f"{NASTY_ENTITY}.pfx",
                                          cacerts=(mount / "cacert.crt",)),
        account=dataclasses.replace(data.account, trusted_cas=tuple(sorted(mount.glob("*.cer")))))
    work = tmp_path / "cwd"
    work.mkdir()
    todo = steps.primary_steps(data, mount)
    # One console session, as `up` types them.
    session = subprocess.run(["sh", "-c", steps.console(todo)], cwd=work, env=env, text=True, capture_output=True,
                             stdin=subprocess.DEVNULL, timeout=30)
    assert [(e.index, e.code) for e in steps.ended(session.stdout)] == [(i, 0) for i in range(len(todo))], session

    assert [p.name for p in tmp_path.rglob("pwned*")] == []  # nothing ran
    pfx = conf / f"{NASTY_ENTITY}.pfx"
    assert pfx.read_bytes() == (mount / f"{NASTY_ENTITY}.pfx").read_bytes()
    assert stat.S_IMODE(pfx.stat().st_mode) == 0o644
    assert hocon.setting(hocon.parse((conf / "application.conf").read_text()), "default-keystore-file") == str(pfx)
    ca_files = [str(p) for p in sorted(mount.glob("*.cer"))]
    assert len(ca_files) == len(NASTY_CA_FILES)
    calls = [json.loads(line) for line in Path(env["ARGV_LOG"]).read_text().splitlines()]
    cacerts = str(tmp_path / "jre security" / "cacerts")
    assert calls == [
        ["keytool", "-list", "-keystore", cacerts, "-storepass", "changeit"],
        ["keytool", "-importcert", "-file", str(mount / "cacert.crt"), "-keystore", cacerts],
        ["safeq-admin", "trusted-ca", "contains", *ca_files],
        ["safeq-admin", "trusted-ca", "import", *ca_files],
        ["safeq-admin", "account", "set-policy", "trusted-ca"],
        ["systemctl", "restart", "safeq-cloud-server"],
    ]


def test_a_cacerts_as_the_image_ships_it_needs_no_keytool_to_know_the_ca_is_missing(manifest, tmp_path, monkeypatch):
    _, host_dir = manifest
    mount, conf, env = fake_container(tmp_path, host_dir, monkeypatch)
    cacerts = tmp_path / "jre security" / "cacerts"
    cacerts.parent.mkdir()
    cacerts.write_bytes(b"as shipped")
    shipped = tmp_path / "cacerts.sha256"
    shipped.write_text(subprocess.run(["sha256sum", str(cacerts)], capture_output=True, text=True, check=True).stdout)
    monkeypatch.setattr(steps, "CACERTS_SHIPPED", str(shipped))
    (step,) = steps.cacerts_steps((mount / "cacert.crt",), mount)
    log = Path(env["ARGV_LOG"])

    def unless() -> int:
        return subprocess.run(["sh", "-c", step.unless], env=env, capture_output=True).returncode

    assert unless() != 0 and not log.exists()  # not imported yet, and no keytool asked
    cacerts.write_bytes(b"changed since")
    assert unless() != 0  # the recorder lists nothing: keytool was asked, the CA is not in its list
    assert [json.loads(line)[:2] for line in log.read_text().splitlines()] == [["keytool", "-list"]]


def test_ordinary_names_read_as_the_doc_types_them(manifest):
    data, host_dir = manifest
    commands = [s.command for s in steps.primary_steps(data, host_dir)]
    assert commands[0] == "cp /pki/primary-host.pfx /opt/safeqcloud/conf/primary-host.pfx"
    assert commands[4] == "safeq-admin trusted-ca import /pki/Acme-CA-Intermediate.cer /pki/Acme-CA-Root.cer"


@pytest.mark.parametrize("ocsp, url, command", [
    (None, None, None),  # the lab's own PKI: the account's OCSP settings persist across `up`
    (True, None, "safeq-admin account ocsp on"),
    (False, "http://ocsp.corp.example", "safeq-admin account ocsp off --url http://ocsp.corp.example"),
    (None, "http://ocsp.corp.example/a b", "safeq-admin account ocsp --url 'http://ocsp.corp.example/a b'"),
])
def test_the_specs_ocsp_setting_is_typed_only_when_given(manifest, ocsp, url, command):
    data, host_dir = manifest
    data = dataclasses.replace(data, account=dataclasses.replace(data.account, ocsp=ocsp, ocsp_url=url))
    typed = [s.command for s in steps.primary_steps(data, host_dir) if "account ocsp" in s.command]
    assert typed == ([command] if command else [])


# -- one console session for all the steps ----------------------------------------------------------

def local_console(service, command, check=True, timeout=60, input=None):
    """The primary's shell played by this host's sh (what `up` sends is what runs)."""
    done = subprocess.run(["sh", "-c", command], capture_output=True, text=True, stdin=subprocess.DEVNULL,
                          timeout=timeout)
    return engine.ExecResult(("sh", "-c", command), done.returncode, done.stdout, done.stderr)


def test_the_console_runs_each_step_as_typed_and_the_first_failure_ends_it(tmp_path):
    todo = [steps.Step("speak", "echo out; echo err >&2"),
            steps.Step("answer the prompts", "read a; read b; echo \"$a/$b\"", stdin="changeit\nyes\n"),
            steps.Step("done before", f"touch {tmp_path}/skipped", unless="true"),
            steps.Step("not yet done", "echo ran", unless="false"),
            steps.Step("fails", "printf 'no newline'; (exit 3)"),
            steps.Step("never", f"touch {tmp_path}/reached")]
    session = local_console("primary", steps.console(todo))
    assert session.returncode == 3
    assert steps.ended(session.stdout) == [steps.Ended(0, 0, "out\nerr"), steps.Ended(1, 0, "changeit/yes"),
                                           steps.Ended(2, None, ""), steps.Ended(3, 0, "ran"),
                                           steps.Ended(4, 3, "no newline")]
    assert list(tmp_path.iterdir()) == []


def test_up_names_the_step_that_failed_in_its_words_and_shows_those_before(monkeypatch):
    monkeypatch.setattr(engine, "exec_sh", local_console)
    shown = Phases(verbose=True)
    notes = []
    monkeypatch.setattr(shown, "note", notes.append)
    todo = [steps.Step("Copy", "true"), steps.Step("Import", "echo 'keytool error: java.lang.Exception: "
                                                            "Certificate not imported, alias <mykey> already exists'; "
                                                            "(exit 1)"), steps.Step("Restart", "true")]
    with pytest.raises(LabError) as err:
        lab_up.apply_primary_steps(todo, Deadline(60), shown, "setup")
    assert str(err.value) == ("in primary: `" + todo[1].command + "` failed: keytool error: java.lang.Exception: "
                              "Certificate not imported, alias <mykey> already exists")
    assert notes == ["Copy", "primary# true", "Import", f"primary# {todo[1].command}"]


def test_a_console_that_ends_early_is_an_error_not_a_pass(monkeypatch):
    monkeypatch.setattr(engine, "exec_sh", lambda service, command, **kw: engine.ExecResult(
        ("sh",), 125, "", "the primary is not running: start the lab with `safeq-lab up`"))
    with pytest.raises(LabError, match=r"^in primary: the doc's steps stopped before `cp a b`: the primary is not "):
        lab_up.apply_primary_steps([steps.Step("Copy", "cp a b")], Deadline(60), Phases(), "setup")
