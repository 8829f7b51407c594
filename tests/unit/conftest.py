"""Shared fixtures for the PKI unit tests.

Read-only PKI variants are built once per session; tests that change a PKI
build their own (an ECDSA tree takes well under a second). Assertions lean
on independent tools (openssl, keytool, pkilint), not on our own parser.
Helpers reach the tests through the ``pki_tools`` fixture (importing conftest
directly is fragile when several test directories have one).
"""
from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
from pathlib import Path

import pytest
from click.testing import CliRunner

import pki
from pki.cli import pki_group

# The OCSP tests' fixtures (responder subprocess over a throwaway PKI).
pytest_plugins = ["test_ocsp_support"]

OPENSSL = shutil.which("openssl")


@pytest.fixture(autouse=True)
def no_running_lab_state(tmp_path_factory, monkeypatch):
    """build/lab.json of the checkout (a lab someone started) must not steer the unit tests."""
    from lab import labstate
    state = tmp_path_factory.mktemp("labstate") / "lab.json"
    monkeypatch.setattr(labstate, "path", lambda lab=None: state)
    # `--lab NAME` sets both in os.environ for the process: each test gets them back as they were.
    monkeypatch.delenv(labstate.NAME_VAR, raising=False)
    monkeypatch.delenv("SAFEQ_PKI_DIR", raising=False)
    return state

KEYTOOL = shutil.which("keytool")


@pytest.fixture
def images_never_built(monkeypatch):
    """images.build_all runs every build, without asking the engine or reading the checkout's record of
    what was built (that record: test_lab_images)."""
    from lab import images
    monkeypatch.setattr(images, "image_names", lambda root: [])
    monkeypatch.setattr(images, "built_from", lambda root, inputs, names: False)
    monkeypatch.setattr(images, "remember", lambda root, inputs, names: None)


def run(*args: str, check: bool = True, input: bytes | None = None) -> subprocess.CompletedProcess:
    proc = subprocess.run(args, capture_output=True, input=input, timeout=120)
    if check and proc.returncode != 0:
        raise AssertionError(
            f"{' '.join(args)} exited {proc.returncode}\nstdout: {proc.stdout.decode(errors='replace')}\n"
            f"stderr: {proc.stderr.decode(errors='replace')}"
        )
    return proc


def openssl(*args: str, check: bool = True) -> subprocess.CompletedProcess:
    if OPENSSL is None:
        pytest.skip("openssl is not on PATH")
    return run(OPENSSL, *args, check=check)


def keytool(*args: str, check: bool = True) -> subprocess.CompletedProcess:
    if KEYTOOL is None:
        pytest.skip("keytool (a Java JDK/JRE) is not on PATH; Java-semantics checks need it")
    return run(KEYTOOL, *args, check=check)


def tree_state(root: Path) -> dict[str, tuple]:
    """Every path under ``root`` with its type, mode and content hash."""
    state: dict[str, tuple] = {}
    if not root.exists():
        return state
    for dirpath, dirnames, filenames in os.walk(root):
        for name in dirnames + filenames:
            path = Path(dirpath) / name
            st = path.lstat()
            digest = hashlib.sha256(path.read_bytes()).hexdigest() if path.is_file() else None
            state[str(path.relative_to(root))] = (st.st_mode, digest)
    return state


class Cli:
    """Runs ``pki ...`` in-process with stdout and stderr kept apart."""

    def __init__(self) -> None:
        self.runner = CliRunner()

    def __call__(self, *args: str):
        return self.runner.invoke(pki_group, list(args), catch_exceptions=False)


class Tools:
    run = staticmethod(run)
    openssl = staticmethod(openssl)
    keytool = staticmethod(keytool)
    tree_state = staticmethod(tree_state)

    @staticmethod
    def entity(manifest: dict, name: str) -> dict:
        return next(e for e in manifest["entities"] if e["name"] == name)

    @staticmethod
    def cert_paths(manifest: dict) -> list[Path]:
        """Every certificate of a PKI: the CAs and each entity's leaf."""
        root = Path(manifest["dir"])
        out = [Path(ca["pem_path"]) for ca in manifest["cas"]]
        out += [root / "entities" / e["name"] / f"{e['name']}.crt" for e in manifest["entities"]]
        return out


@pytest.fixture(scope="session")
def pki_tools() -> Tools:
    return Tools()


@pytest.fixture(scope="session")
def pki_cli() -> Cli:
    return Cli()


def build(base: Path, **kwargs) -> dict:
    return pki.init_pki(base / "pki", **kwargs)


@pytest.fixture(scope="session")
def pki_by_depth(tmp_path_factory) -> dict[int, dict]:
    """Default ECDSA P-256 PKIs with 0, 1 and 2 intermediates."""
    return {n: build(tmp_path_factory.mktemp(f"depth{n}"), intermediates=n) for n in (0, 1, 2)}


@pytest.fixture(scope="session")
def default_pki(pki_by_depth) -> dict:
    return pki_by_depth[1]


@pytest.fixture(scope="session")
def rsa_pki(tmp_path_factory) -> dict:
    return build(tmp_path_factory.mktemp("rsa"), key_type="rsa-2048")


@pytest.fixture(scope="session")
def p384_pki(tmp_path_factory) -> dict:
    return build(tmp_path_factory.mktemp("p384"), key_type="ecdsa-p384", intermediates=2)


@pytest.fixture(scope="session")
def legacy_pki(tmp_path_factory) -> dict:
    return build(tmp_path_factory.mktemp("legacy"), legacy_pfx=True)


@pytest.fixture(scope="session")
def fqdn_pki(tmp_path_factory) -> dict:
    """Fully qualified names and every URL option, plus an entity with extra SANs."""
    manifest = build(
        tmp_path_factory.mktemp("fqdn"),
        intermediates=2,
        ocsp_url="http://ocsp.acme.example:8080",
        ca_issuers_url="http://pki.acme.example/ca/",
        crl_url="http://pki.acme.example/crl",
    )
    return pki.issue(manifest["dir"], "gw2.acme.example", "gateway", sans=["10.0.0.5", "fd00::5", "gw2-alt.acme.example"])


@pytest.fixture(scope="session")
def foreign_pki(tmp_path_factory) -> dict:
    """A second, unrelated PKI with the same names: its certificates must not verify against ours."""
    return build(tmp_path_factory.mktemp("foreign"))


@pytest.fixture
def fresh_pki(tmp_path) -> Path:
    """A PKI of one's own, for tests that change it."""
    return Path(pki.init_pki(tmp_path / "pki")["dir"])

