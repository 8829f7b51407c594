"""First contact: `safeq-lab --version`, `safeq-lab` alone (the quick start), and the lab's files
looked for outside a checkout."""
import subprocess
import tomllib
from pathlib import Path

import pytest
from click.testing import CliRunner

from lab import cli, docker, project
from lab.cli import main
from lab.errors import LabError

ROOT = Path(__file__).resolve().parents[2]
VERSION = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["version"]


def test_version_is_the_packages():
    result = CliRunner().invoke(main, ["--version"])
    assert (result.exit_code, result.output) == (0, f"safeq-lab {VERSION}\n")


def test_no_command_in_a_checkout_is_the_makefiles_quick_start():
    result = CliRunner().invoke(main, [])
    assert result.exit_code == 0
    assert result.output.splitlines()[1:] == [
        "  make lab-up     # PKI, images, the doc's primary steps, every service healthy",
        "  make test       # images, unit tests, then lab up + testinfra checks + lab down",
        f"README: {ROOT / 'README.md'}",
        "All commands: safeq-lab --help"]


@pytest.fixture
def installed(monkeypatch, tmp_path):
    """This package as `pip install .` puts it: in site-packages, no checkout around it; the cwd elsewhere."""
    monkeypatch.setattr(project, "__file__", str(tmp_path / "venv/lib/python3/site-packages/lab/project.py"))
    monkeypatch.delenv("SAFEQ_LAB_HOME", raising=False)
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(docker, "preflight", lambda: pytest.fail("Docker asked before the checkout was found"))
    return tmp_path


def test_no_command_installed_is_the_commands_quick_start(installed):
    result = CliRunner().invoke(main, [])
    assert result.exit_code == 0
    assert result.output.splitlines()[1:3] == [
        "  safeq-lab up       # PKI, images, the doc's primary steps, every service healthy",
        "  safeq-lab verify   # the testinfra checks against the running lab"]
    assert "set SAFEQ_LAB_HOME to one" in result.output
    assert "README: README.md of the safeq-pki-lab checkout" in result.output


def test_installed_inside_a_checkout_names_its_readme(installed, monkeypatch):
    monkeypatch.chdir(ROOT / "lab")
    result = CliRunner().invoke(main, [])
    assert "  safeq-lab up " in result.output and f"README: {ROOT / 'README.md'}" in result.output


def test_outside_a_checkout_the_lab_says_where_it_looked(installed):
    with pytest.raises(LabError) as err:
        project.root()
    assert str(err.value) == (f"the lab's files (compose.yaml, images/, tests/infra) are not in {installed} or any "
                              "folder above it: the installed command runs the lab of a safeq-pki-lab checkout; "
                              "run it inside one, or set SAFEQ_LAB_HOME to one")


def test_a_lab_home_that_is_no_checkout_is_refused(installed, monkeypatch):
    monkeypatch.setenv("SAFEQ_LAB_HOME", str(installed))
    with pytest.raises(LabError, match=r"^SAFEQ_LAB_HOME=.* is not a safeq-pki-lab checkout \(no compose.yaml"):
        project.root()
    monkeypatch.setenv("SAFEQ_LAB_HOME", str(ROOT))
    assert project.root() == ROOT


def test_verify_outside_a_checkout_is_one_line_before_docker(installed):
    result = CliRunner().invoke(main, ["verify", "--quick"])
    assert result.exit_code == 2
    assert result.stderr.splitlines() == ["error: the lab's files (compose.yaml, images/, tests/infra) are not in "
                                          f"{installed} or any folder above it: the installed command runs the lab "
                                          "of a safeq-pki-lab checkout; run it inside one, or set SAFEQ_LAB_HOME to one"]


def test_verify_in_a_checkout_without_its_checks(installed, monkeypatch):
    (installed / "images").mkdir()
    (installed / "compose.yaml").write_text("name: safeq-lab\n")
    result = CliRunner().invoke(main, ["verify"])
    assert result.exit_code == 2
    assert result.stderr == (f"error: {installed / 'tests' / 'infra'} holds no testinfra checks: `safeq-lab verify` "
                             "runs those of a complete safeq-pki-lab checkout (git checkout tests/infra, or point "
                             "SAFEQ_LAB_HOME at a clone)\n")


def test_verify_without_pytest_says_what_to_install(monkeypatch):
    monkeypatch.setattr(cli.importlib.util, "find_spec", lambda name: None if name == "testinfra" else object())
    monkeypatch.setattr(docker, "preflight", lambda: pytest.fail("Docker asked before pytest was found"))
    result = CliRunner().invoke(main, ["verify"])
    assert result.exit_code == 2
    assert result.stderr.splitlines() == [
        f"error: {cli.sys.executable} lacks testinfra (dependencies of safeq-pki-lab): install them with "
        f"`{cli.sys.executable} -m pip install pytest pytest-testinfra`"]


def test_verify_runs_the_checkouts_checks_with_a_timeout(monkeypatch):
    seen = {}

    def run(argv, **kwargs):
        seen.update(argv=argv, **kwargs)
        return subprocess.CompletedProcess(argv, 0)
    monkeypatch.setattr(docker, "preflight", lambda: None)
    monkeypatch.setattr(cli.subprocess, "run", run)
    result = CliRunner().invoke(main, ["verify", "--quick"])
    assert result.exit_code == 0
    assert seen["argv"][-3:] == [str(ROOT / "tests" / "infra"), "-m", "not scenario"]
    assert (seen["cwd"], seen["timeout"]) == (ROOT, cli.VERIFY_TIMEOUT)
