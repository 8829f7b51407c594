"""First contact: `safeq-lab --version`, `safeq-lab` alone (the quick start), the lab's files
looked for outside a checkout, and `make`'s own Docker set-up (scripts/ensure-docker.sh)."""
import shutil
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


# -- make: Docker set up by the targets that need it -----------------------------------------------

STUB = "#!/bin/sh\n{body}\n"


@pytest.fixture
def machine(tmp_path):
    """A PATH of stubs: docker (answers or not), id (uid), sudo (present or not), and the set-up script."""
    if shutil.which("make") is None:
        pytest.skip("make is not installed")
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    for tool in ("bash", "timeout"):
        (bin_dir / tool).symlink_to(shutil.which(tool))
    script = tmp_path / "ensure-docker.sh"
    script.write_text(f'echo "ensure-docker ran as uid $(id -u)"; echo ran >> {tmp_path}/ran\n')

    def run(docker_ok: bool, uid: int, sudo: bool) -> tuple[str, int]:
        """What make printed, and how often the script ran."""
        for name, body in (("docker", f"exit {0 if docker_ok else 1}"), ("id", f"echo ${{FAKE_UID:-{uid}}}")):
            (bin_dir / name).write_text(STUB.format(body=body))
            (bin_dir / name).chmod(0o755)
        (bin_dir / "sudo").unlink(missing_ok=True)
        if sudo:  # runs the command as root
            (bin_dir / "sudo").write_text(STUB.format(body='FAKE_UID=0 exec "$@"'))
            (bin_dir / "sudo").chmod(0o755)
        proc = subprocess.run([shutil.which("make"), "-s", "-C", str(ROOT), "docker-ready", f"ENSURE_DOCKER={script}"],
                              env={"PATH": str(bin_dir)}, capture_output=True, text=True, timeout=60)
        ran = (tmp_path / "ran").read_text().count("ran") if (tmp_path / "ran").exists() else 0
        (tmp_path / "ran").unlink(missing_ok=True)
        return proc.stdout + proc.stderr, ran
    run.script = script
    return run


def test_make_leaves_a_working_docker_alone(machine):
    assert machine(docker_ok=True, uid=1000, sudo=True) == ("", 0)


def test_make_as_root_sets_docker_up_directly(machine):
    assert machine(docker_ok=False, uid=0, sudo=True) == ("ensure-docker ran as uid 0\n", 1)  # no sudo line


def test_make_as_a_user_asks_sudo_and_says_so_first(machine):
    out, ran = machine(docker_ok=False, uid=1000, sudo=True)
    assert ran == 1
    assert out.splitlines() == [
        f"make: Docker Engine or Compose v2 is missing here: running 'sudo {machine.script}' to install and start "
        "them (sudo may ask for your password)",
        "ensure-docker ran as uid 0"]


def test_make_without_sudo_runs_the_script_for_its_message(machine):
    assert machine(docker_ok=False, uid=1000, sudo=False) == ("ensure-docker ran as uid 1000\n", 1)


def test_lab_up_and_test_need_docker_ready():
    text = (ROOT / "Makefile").read_text()
    targets = {line.split(":")[0]: line.split(":", 1)[1].split() for line in text.splitlines()
               if line and not line[0].isspace() and ":" in line and "=" not in line}
    assert "docker-ready" in targets["lab-up"] and "docker-ready" in targets["test"]
    assert targets["test"].index("docker-ready") == 0
