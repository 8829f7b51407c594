"""`pip install .` into a fresh venv, dependencies and all: the installed `safeq-lab` answers
--version, shows verify's and doctor's help, prints the spec template, and has what `verify`
(pytest, testinfra) and `doctor` (pkilint) run. One venv for the session; the pip cache helps."""
import os
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
VERSION = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["version"]
INSTALL_TIMEOUT = 600
# What the checkout holds beside the sources: not part of an install, and build/ is the lab's PKI.
NOT_SOURCES = shutil.ignore_patterns(".venv", "build", ".git", "__pycache__", "*.egg-info", ".pytest_cache")


@pytest.fixture(scope="session")
def venv(tmp_path_factory) -> Path:
    base = tmp_path_factory.mktemp("install")
    # A copy: an in-tree build would write build/lib next to the lab's build/pki.
    shutil.copytree(ROOT, base / "src", ignore=NOT_SOURCES)
    subprocess.run([sys.executable, "-m", "venv", str(base / "venv")], check=True, timeout=120)
    pip = subprocess.run([str(base / "venv" / "bin" / "python"), "-m", "pip", "install", "--quiet",
                          "--disable-pip-version-check", str(base / "src")],
                         capture_output=True, text=True, timeout=INSTALL_TIMEOUT)
    if pip.returncode != 0:
        pytest.fail(f"pip install of the checkout failed:\n{pip.stderr[-3000:]}")
    return base / "venv"


@pytest.fixture
def lab(venv, tmp_path):
    """The installed command, run outside any checkout, with no lab location from the environment."""
    env = {k: v for k, v in os.environ.items() if k not in ("SAFEQ_LAB_HOME", "SAFEQ_PKI_DIR", "VIRTUAL_ENV")}
    env["PATH"] = f"{venv / 'bin'}{os.pathsep}{env.get('PATH', '')}"

    def run(*args: str) -> subprocess.CompletedProcess:
        return subprocess.run([str(venv / "bin" / "safeq-lab"), *args], capture_output=True, text=True,
                              cwd=tmp_path, env=env, timeout=120)
    return run


def test_version(lab):
    result = lab("--version")
    assert (result.returncode, result.stdout) == (0, f"safeq-lab {VERSION}\n"), result.stderr


@pytest.mark.parametrize("command", ["verify", "doctor"])
def test_help_of_what_a_user_runs(lab, command):
    result = lab(command, "--help")
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith(f"Usage: safeq-lab {command} ")


def test_spec_template_is_packaged(lab):
    result = lab("spec", "template")
    assert result.returncode == 0, result.stderr
    assert result.stdout == (ROOT / "lab" / "spec_template.toml").read_text()


def test_no_command_is_the_installed_quick_start(lab):
    result = lab()
    assert result.returncode == 0, result.stderr
    assert "  safeq-lab up " in result.stdout and "  safeq-lab verify " in result.stdout


def test_verify_outside_a_checkout_says_where_the_checks_are(lab, tmp_path):
    result = lab("verify", "--quick")
    assert result.returncode == 2
    assert result.stderr.splitlines() == [
        f"error: the lab's files (compose.yaml, images/, tests/infra) are not in {tmp_path.resolve()} or any folder "
        "above it: the installed command runs the lab of a safeq-pki-lab checkout; run it inside one, or set "
        "SAFEQ_LAB_HOME to one"]


def test_what_verify_and_doctor_run_is_installed(venv):
    code = ("import importlib.resources as r, pytest, testinfra\n"
            "from lab.doctor import lint, runner\n"
            "lint._linter()\n"  # pkilint loads its validators
            "print(r.files('lab').joinpath('no-override.java.security').is_file())")
    result = subprocess.run([str(venv / "bin" / "python"), "-c", code], capture_output=True, text=True,
                            cwd=venv, timeout=120)
    assert (result.returncode, result.stdout) == (0, "True\n"), result.stderr


def test_the_doctor_compiles_the_installed_validator_sources_outside_a_checkout(venv, tmp_path):
    """No checkout around: the validator's sources come with certkit and compile into the user's cache."""
    javac = shutil.which("javac")
    if javac is None:
        pytest.skip("no JDK here: the doctor would use the lab image's JRE instead")
    code = ("import sys\nfrom lab.doctor import tools\n"
            "sources = tools.validator_sources()\n"
            "print(all('site-packages' in str(s) for s in sources), len(sources))\n"
            "print(tools.compiled_classes(sys.argv[1]))")
    env = {k: v for k, v in os.environ.items() if k not in ("SAFEQ_LAB_HOME", "VIRTUAL_ENV")}
    env["XDG_CACHE_HOME"] = str(tmp_path / "cache")
    result = subprocess.run([str(venv / "bin" / "python"), "-c", code, javac], capture_output=True, text=True,
                            cwd=tmp_path, env=env, timeout=300)
    assert result.returncode == 0, result.stderr
    packaged, classes = result.stdout.splitlines()
    assert packaged == f"True {len(list((ROOT / 'images' / 'base' / 'java').rglob('*.java')))}"
    assert Path(classes).parent == tmp_path / "cache" / "safeq-lab"
    assert (Path(classes) / "pkixjudge" / "Main.class").is_file()
