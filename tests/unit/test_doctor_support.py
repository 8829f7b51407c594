"""A corporate-style PKI made with the openssl CLI alone, and specs over it, for the doctor's tests (no tests here).

``corp`` builds the certificates once per module: Corp-Root-CA -> Corp-Issuing-CA -> primary-host,
gateway-host, pcclient-host, plus the odd ones the bad cases need. ``Case`` writes one folder as a
PKI admin would hand it over: PFX files (``openssl pkcs12 -export``), CA files, and corp.toml.
"""
from __future__ import annotations

import importlib.util
import json
import sys
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from click.testing import CliRunner

from fixtures_openssl import CA_EXT, CLIENT_EXT, SERVER_EXT, Issued, OpenSSLPKI, openssl
from lab import cli

PFX_SCRIPT = Path(__file__).resolve().parents[1] / "reference" / "pfx.py"
PRIMARY_EXT = SERVER_EXT + "subjectAltName = DNS:primary-host\n"
GATEWAY_EXT = CLIENT_EXT + "subjectAltName = DNS:gateway-host\n"
NOT_A_CA_EXT = CA_EXT.replace("CA:TRUE", "CA:FALSE")


def _pfx_module():
    """tests/reference/pfx.py (that folder is not on sys.path), under the name the reference tests use."""
    name = "safeq_reference_pfx"
    if name not in sys.modules:
        spec = importlib.util.spec_from_file_location(name, PFX_SCRIPT)
        sys.modules[name] = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(sys.modules[name])
    return sys.modules[name]


pfx = _pfx_module()


class Corp:
    """The certificates, made once; ``key`` picks the key type of the whole tree ("ec" or "rsa:2048")."""

    def __init__(self, workdir: Path, key: str = "ec"):
        self.ca = OpenSSLPKI(workdir)
        self.root = self.ca.root("Corp-Root-CA", key=key)
        self.issuing = self.ca.issue("Corp-Issuing-CA", self.root, CA_EXT, key=key)
        self.primary = self.ca.issue("primary-host", self.issuing, PRIMARY_EXT, key=key)
        self.gateway = self.ca.issue("gateway-host", self.issuing, GATEWAY_EXT, key=key)
        self.client = self.ca.issue("pcclient-host", self.issuing, CLIENT_EXT, key=key)
        self.key = key

    def odd(self, name: str, ext: str, issuer: Issued | None = None, **kwargs) -> Issued:
        """One more certificate, made when a case needs it (once per name)."""
        done = self.ca.dir / f"{name}.pem"
        if done.exists():
            return Issued(name, done, self.ca.dir / f"{name}.key.pem")
        return self.ca.issue(name, issuer or self.issuing, ext, **{"key": self.key, **kwargs})


@dataclass
class Case:
    """One hand-over folder: what each machine gets, written by ``write``."""
    corp: Corp
    primary: list = field(default_factory=list)   # leaf first, then the CA certificates the PFX holds
    gateway: list = field(default_factory=list)
    client: list = field(default_factory=list)
    trusted: list = field(default_factory=list)
    gateway_password: str = "gateway-pfx-password"
    truststore: str = "keytool"  # keytool: truststore_certs (what keytool -importcert builds); nokeys: openssl's
    account_extra: str = ""

    def __post_init__(self) -> None:
        c = self.corp
        self.primary = self.primary or [c.primary, c.issuing, c.root]
        self.gateway = self.gateway or [c.gateway, c.issuing, c.root]
        self.client = self.client or [c.client, c.issuing, c.root]
        self.trusted = self.trusted or [c.root, c.issuing]

    def write(self, folder: Path) -> Path:
        folder.mkdir(parents=True, exist_ok=True)
        for name, chain, password in (("primary-host", self.primary, "changeit"),
                                      ("gateway-host", self.gateway, "gateway-pfx-password"),
                                      ("pcclient-host", self.client, "pcclient-pfx-password")):
            pfx.export(folder / f"{name}.pfx", chain[0].key_path, [i.cert_path for i in chain], password, name)
            (folder / f"{name}.in.pem").unlink()
        for ca in self.trusted:
            pfx.der(folder / f"{ca.name}.cer", ca.cert_path)
        root_cer = pfx.der(folder / "Corp-Root-CA.cer", self.corp.root.cert_path)
        if self.truststore == "nokeys":
            openssl("pkcs12", "-export", "-nokeys", "-in", str(self.corp.root.cert_path), "-passout", "pass:ts-password",
                    "-out", str(folder / "corp-ca.pfx"))
            trust = 'truststore = "corp-ca.pfx"\ntruststore_password = "ts-password"'
        else:
            trust = f'truststore_certs = ["{root_cer.name}"]'
        spec = folder / "corp.toml"
        spec.write_text(f"""[primary]
host = "primary-host"
keystore = "primary-host.pfx"
keystore_password = "changeit"
cacerts = ["{root_cer.name}"]

[account]
policy = "trusted-ca"
trusted_cas = [{", ".join(f'"{ca.name}.cer"' for ca in self.trusted)}]
{self.account_extra}

[[gateway]]
host = "gateway-host"
keystore = "gateway-host.pfx"
keystore_password = "{self.gateway_password}"
{trust}

[[client]]
host = "pcclient-host"
keystore = "pcclient-host.pfx"
keystore_password = "pcclient-pfx-password"
subject = "pcclient-host"
""")
        return spec


@pytest.fixture(scope="module")
def corp(tmp_path_factory) -> Corp:
    return Corp(tmp_path_factory.mktemp("corp"))


@dataclass
class Outcome:
    exit_code: int
    report: dict
    stderr: str

    def codes(self, *severities: str) -> set[str]:
        return {f["code"] for f in self.report.get("findings", []) if not severities or f["severity"] in severities}

    def messages(self, code: str) -> list[str]:
        return [f["message"] for f in self.report["findings"] if f["code"] == code]


def doctor(*args: str, env: dict | None = None) -> Outcome:
    """``safeq-lab doctor ... --json`` in-process (one JRE validator for the whole run of tests)."""
    result = CliRunner().invoke(cli.main, ["doctor", *args, "--json"], env=env)
    if result.exception is not None and not isinstance(result.exception, SystemExit):
        raise result.exception
    report = json.loads(result.stdout) if result.stdout.strip() else {}
    return Outcome(result.exit_code, report, result.stderr)
