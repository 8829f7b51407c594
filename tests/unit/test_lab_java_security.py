"""`safeq-lab up --java-security FILE|=FILE`: checked before anything starts, handed to compose.yaml."""
import os
import shutil
import subprocess
from pathlib import Path

import pytest
from click.testing import CliRunner

from lab import docker, java_security, topology
from lab import up as lab_up
from lab.cli import main
from lab.errors import LabError

ROOT = Path(__file__).resolve().parents[2]
TARGET = "/opt/safeqlab/java.security"
VARS = (java_security.FILE_VAR, java_security.REPLACE_VAR)


@pytest.fixture
def override(tmp_path) -> Path:
    path = tmp_path / "strict.security"
    path.write_text("jdk.certpath.disabledAlgorithms=MD2, MD5, SHA1\n")
    return path


def test_no_option_empties_both_variables():
    assert java_security.compose_env(None) == {java_security.FILE_VAR: "", java_security.REPLACE_VAR: ""}
    assert java_security.describe(java_security.compose_env(None)) is None


def test_a_file_adds_and_an_equals_file_replaces(override):
    adds = java_security.compose_env(str(override))
    assert adds == {java_security.FILE_VAR: str(override), java_security.REPLACE_VAR: ""}
    assert java_security.describe(adds) == f"java.security: {override} adds to the JRE's own in primary, gateway and client"
    replaces = java_security.compose_env(f"={override}")
    assert replaces == {java_security.FILE_VAR: str(override), java_security.REPLACE_VAR: "1"}
    assert "replaces the JRE's own" in java_security.describe(replaces)


def test_a_relative_file_becomes_absolute(override, monkeypatch):
    # compose would read a relative source against compose.yaml's folder, not the caller's.
    monkeypatch.chdir(override.parent)
    assert java_security.compose_env("strict.security")[java_security.FILE_VAR] == str(override)
    assert java_security.compose_env("=strict.security")[java_security.FILE_VAR] == str(override)


@pytest.mark.parametrize("given, message", [
    ("missing.security", r"^--java-security: \S+/missing.security does not exist: give an existing java.security"),
    ("=missing.security", r"^--java-security: \S+/missing.security does not exist"),
    (".", r"^--java-security: \S+ is not a file: give a java.security file"),
    ("=", r"^--java-security '=' names no file: FILE adds to the JRE's java.security, =FILE replaces it$"),
    ("", r"^--java-security '' names no file"),
])
def test_bad_files_are_one_clear_error(given, message, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    with pytest.raises(LabError, match=message):
        java_security.compose_env(given)


def test_an_unreadable_file_is_refused(override, monkeypatch):
    # Java would skip it silently and judge with its own java.security. (os.access: root reads anything.)
    monkeypatch.setattr(java_security.os, "access", lambda path, mode: False)
    with pytest.raises(LabError, match=r"is not readable: fix its permissions \(e.g. chmod a\+r\)$"):
        java_security.compose_env(str(override))


@pytest.fixture
def started(monkeypatch):
    """What `up` hands to compose: the environment when it reaches its first step (then stops)."""
    for var in VARS:
        monkeypatch.setenv(var, "stale")  # restored after the test; a stale export must not leak in
    seen = {}

    def prepare(spec_file, force, env, deadline, port=None, counts=None):
        # What compose will see: the shell's environment under the variables `up` sets (lab.docker.env).
        seen.update({var: {**os.environ, **env}[var] for var in VARS})
        raise LabError("stopped after the environment was set")
    monkeypatch.setattr(lab_up, "prepare", prepare)
    monkeypatch.setattr(docker, "preflight", lambda: pytest.fail("docker touched before the file was checked"))
    return seen


def test_up_hands_the_file_to_compose(override, started):
    result = CliRunner().invoke(main, ["up", "--no-build", "--java-security", f"={override}"])
    assert result.exit_code == 2 and "stopped after the environment was set" in result.stderr
    assert started == {java_security.FILE_VAR: str(override), java_security.REPLACE_VAR: "1"}
    assert f"java.security: {override} replaces the JRE's own" in result.stderr  # progress goes to stderr


def test_up_without_the_option_clears_a_stale_export(started):
    CliRunner().invoke(main, ["up", "--no-build"])
    assert started == {java_security.FILE_VAR: "", java_security.REPLACE_VAR: ""}


def test_up_with_a_missing_file_stops_before_anything(started, tmp_path):
    result = CliRunner().invoke(main, ["up", "--java-security", str(tmp_path / "nope.security")])
    assert result.exit_code == 2 and result.stdout == "" and not started
    assert result.stderr == (f"error: --java-security: {tmp_path / 'nope.security'} does not exist: "
                             "give an existing java.security file (FILE adds to the JRE's java.security, "
                             "=FILE replaces it)\n")


def test_compose_yaml_defaults_to_the_shipped_empty_file():
    text = (ROOT / "compose.yaml").read_text()
    assert "${SAFEQ_LAB_JAVA_SECURITY:-./lab/no-override.java.security}" in text
    shipped = ROOT / "lab" / "no-override.java.security"
    assert all(line.startswith("#") for line in shipped.read_text().splitlines())


def compose_config(monkeypatch, env: dict[str, str]) -> dict:
    if shutil.which("docker") is None or subprocess.run(["docker", "compose", "version"], capture_output=True,
                                                        timeout=20).returncode != 0:
        pytest.skip("docker compose is not installed")
    return topology._config(ROOT, dict(os.environ, SAFEQ_LAB_FILES="/srv/lab-pki", **env))["services"]


def mounts(service: dict) -> list[tuple]:
    return [(v["source"], v.get("read_only")) for v in service["volumes"] if v["target"] == TARGET]


@pytest.mark.parametrize("replace, expected", [("", TARGET), ("1", "=" + TARGET)])
def test_compose_mounts_the_file_read_only_where_the_jres_read_it(replace, expected, monkeypatch, override):
    services = compose_config(monkeypatch, java_security.compose_env(("=" if replace else "") + str(override)))
    for name in ("primary", "gateway", "client"):
        assert services[name]["environment"]["SAFEQ_JAVA_SECURITY"] == expected
        assert mounts(services[name]) == [(str(override), True)]
    assert "SAFEQ_JAVA_SECURITY" not in services["ocsp"].get("environment", {}) and not mounts(services["ocsp"])
    parsed = topology.parse({"name": "safeq-lab", "services": services}, Path("/srv/lab-pki"))
    assert parsed.service("primary").pki_mount == "hosts/primary-host"


def test_compose_without_the_option_leaves_every_jre_alone(monkeypatch):
    services = compose_config(monkeypatch, java_security.compose_env(None))
    for name in ("primary", "gateway", "client"):
        assert services[name]["environment"]["SAFEQ_JAVA_SECURITY"] == ""
        assert mounts(services[name]) == [(str(ROOT / "lab" / "no-override.java.security"), True)]
