"""The reference Java server and client (tests/reference) on openssl-made fixtures (no tests here).

Each case is a pair of identities (a PKCS12 file made with ``openssl pkcs12 -export``, the CA
files it trusts) and the host name the client checks. A case runs once per JRE and session;
the test modules pin what came out. JREs: this machine's (the JDK that has javac) and the
lab's base image (its Debian openjdk-21), the latter skipped when docker or the image is missing.
"""
from __future__ import annotations

import importlib.util
import re
import shutil
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

from support.fixtures_openssl import CA_EXT, CLIENT_EXT, SERVER_EXT, Issued, OpenSSLPKI, openssl

REFERENCE_DIR = Path(__file__).resolve().parents[1] / "reference"


def _load(name: str):
    """tests/reference/<name>.py as module ``safeq_reference_<name>`` (that folder is not on sys.path)."""
    full = f"safeq_reference_{name}"
    if full not in sys.modules:
        spec = importlib.util.spec_from_file_location(full, REFERENCE_DIR / f"{name}.py")
        module = importlib.util.module_from_spec(spec)
        sys.modules[full] = module
        spec.loader.exec_module(module)
    return sys.modules[full]


reference = _load("reference")
pfx = _load("pfx")


def lab_pair():
    """tests/reference/lab_pair.py, loaded when asked for: it needs pyOpenSSL and the lab's packages."""
    return _load("lab_pair")


PASSWORD = "changeit"
DOCKER = reference.DockerJava()
DOCKER_MISSING = DOCKER.unavailable()
# The runners every pinned case runs on; the image's only where it can run.
RUNNERS = [
    pytest.param("host", id="host"),
    pytest.param("image", id="image", marks=pytest.mark.skipif(
        DOCKER_MISSING is not None, reason=f"the lab's JRE 21 cannot run here: {DOCKER_MISSING}")),
]


@dataclass(frozen=True)
class Side:
    """One end: the certificates of its PKCS12 file (key's own first; None: no keystore) and its trust files.

    ``truststore`` names a PKCS12 truststore the lab's gateway is given as it is (lab_pair.py); the
    reference, which takes CA files, is given in ``trust`` what Java reads out of that file."""
    chain: tuple[str, ...] | None
    trust: tuple[str, ...]
    password: str = PASSWORD
    truststore: str | None = None


@dataclass(frozen=True)
class Case:
    fixture: str          # the table's wording
    server: Side
    client: Side
    host: str = "primary-host"
    protocols: tuple[str, ...] | None = None


SERVER = Side(("server", "inter"), ("root",))
CLIENT = Side(("client", "inter"), ("root",))
TLS12 = ("TLSv1.2",)

CASES: dict[str, Case] = {
    "good-chain": Case("root → intermediate → leaf on both sides; both trust the root", SERVER, CLIENT),
    "good-chain-tls12": Case("the same, TLS 1.2 only", SERVER, CLIENT, protocols=TLS12),
    "pfx-other-order": Case("client PFX holds leaf, root, intermediate (in that order)", SERVER,
                            Side(("client", "root", "inter"), ("root",))),
    "server-pfx-other-order": Case("server PFX holds leaf, root, intermediate (in that order)",
                                   Side(("server", "root", "inter"), ("root",)), CLIENT),
    "trust-der-and-bundle": Case("server trusts the root as DER; client trusts a PEM bundle (root + intermediate)",
                                 Side(("server", "inter"), ("root-der",)), Side(("client", "inter"), ("bundle",))),
    "server-ip-san-name-in-cn": Case("server leaf: IP-only SAN, CN=primary-host",
                                     Side(("ip-only", "inter"), ("root",)), CLIENT),
    "client-without-clientAuth": Case("client leaf with serverAuth EKU only", SERVER,
                                      Side(("server-eku", "inter"), ("root",))),
    "intermediate-not-ca": Case("client's intermediate without CA:TRUE", SERVER,
                                Side(("under-not-ca", "not-ca"), ("root",))),
    "client-expired": Case("client leaf expired (2020-2021)", SERVER, Side(("expired", "inter"), ("root",))),
    "client-not-yet-valid": Case("client leaf valid from 2099", SERVER, Side(("future", "inter"), ("root",))),
    "client-sha1": Case("client leaf signed with SHA-1 (ecdsa-with-SHA1) by the private intermediate", SERVER,
                        Side(("sha1", "inter"), ("root",))),
    "client-leaf-only-root-trusted": Case("client PFX holds only the leaf; server trusts only the root", SERVER,
                                          Side(("client",), ("root",))),
    "client-leaf-only-root-trusted-tls12": Case("the same, TLS 1.2 only", SERVER, Side(("client",), ("root",)),
                                                protocols=TLS12),
    "client-leaf-only-inter-trusted": Case("client PFX holds only the leaf; server trusts root and intermediate",
                                           Side(("server", "inter"), ("root", "inter")), Side(("client",), ("root",))),
    "client-without-keystore": Case("client has no keystore at all", SERVER, Side(None, ("root",))),
    "server-trusts-other-root": Case("server trusts only an unrelated root", Side(("server", "inter"), ("other",)),
                                     CLIENT),
    "server-trusts-nothing": Case("server's truststore is empty", Side(("server", "inter"), ()), CLIENT),
    "client-trusts-other-root": Case("client trusts only an unrelated root", SERVER,
                                     Side(("client", "inter"), ("other",))),
    # openssl 3.0 writes no trusted-certificate attribute (newer releases do with -jdktrust): Java
    # lists no entry in the file, so the reference client trusts nothing.
    "client-truststore-nokeys": Case("client's truststore made with `openssl pkcs12 -export -nokeys` from the root",
                                     SERVER, Side(("client", "inter"), (), truststore="nokeys")),
    "host-mismatch": Case("client connects as gateway-host; server leaf has DNS:primary-host", SERVER, CLIENT,
                          host="gateway-host"),
    "host-mismatch-tls12": Case("the same, TLS 1.2 only", SERVER, CLIENT, host="gateway-host", protocols=TLS12),
    "client-wrong-password": Case("client PFX opened with the wrong password", SERVER,
                                  Side(("client", "inter"), ("root",), password="wrong")),
}


class ReferencePKI:
    """The fixture certificates (openssl CLI) and, on demand, the PKCS12 and trust files of each case."""

    def __init__(self, workdir: Path):
        p = OpenSSLPKI(workdir)
        self.dir = workdir
        root = p.root("Root")
        inter = p.issue("Inter", root, CA_EXT)
        not_ca = p.issue("NotCA", root, CA_EXT.replace("CA:TRUE", "CA:FALSE"))
        self.certs: dict[str, Issued] = {
            "root": root, "inter": inter, "not-ca": not_ca, "other": p.root("OtherRoot"),
            "server": p.issue("primary-host", inter, SERVER_EXT + "subjectAltName = DNS:primary-host\n"),
            "ip-only": p.issue("ip-only", inter, SERVER_EXT + "subjectAltName = IP:10.0.0.5\n",
                               subject="/CN=primary-host/O=Fixture"),
            "client": p.issue("client", inter, CLIENT_EXT),
            "server-eku": p.issue("server-eku", inter, SERVER_EXT),
            "under-not-ca": p.issue("under-not-ca", not_ca, CLIENT_EXT),
            "expired": p.issue("expired", inter, CLIENT_EXT, start="20200101000000Z", end="20210101000000Z"),
            "future": p.issue("future", inter, CLIENT_EXT, start="20990101000000Z", end="20991231000000Z"),
            "sha1": p.issue("sha1", inter, CLIENT_EXT, md="sha1"),
        }
        self.trust_files = {name: self.certs[name].cert_path for name in ("root", "inter", "other")}
        self.trust_files["root-der"] = pfx.der(workdir / "root.cer", root.cert_path)
        self.trust_files["bundle"] = pfx.bundle(workdir / "bundle.pem", [root.cert_path, inter.cert_path])
        # A truststore as openssl 3.0 makes one: the root in a certificate bag, no trusted-certificate attribute.
        self.truststores = {"nokeys": workdir / "truststore-nokeys.p12"}
        openssl("pkcs12", "-export", "-nokeys", "-in", str(root.cert_path), "-passout", f"pass:{PASSWORD}",
                "-out", str(self.truststores["nokeys"]))
        # Every PKCS12 file up front: runs may then go in parallel.
        self.keystores: dict[tuple[str, ...], Path] = {}
        for case in CASES.values():
            for side in (case.server, case.client):
                if side.chain is not None and side.chain not in self.keystores:
                    self.keystores[side.chain] = pfx.export(
                        workdir / ("pfx-" + "-".join(side.chain) + ".p12"), self.certs[side.chain[0]].key_path,
                        [self.certs[n].cert_path for n in side.chain], PASSWORD)

    def identity(self, side: Side):
        keystore = None if side.chain is None else self.keystores[side.chain]
        return reference.Identity(keystore, side.password, tuple(self.trust_files[t] for t in side.trust))

    def lab_args(self, case: Case) -> list[str]:
        """lab_pair.py's arguments for a case: the reference pair's, and a truststore given as it is."""
        args = reference.pair_args(self.identity(case.server), self.identity(case.client), case.host, case.protocols)
        if case.client.truststore is not None:
            args += ["--client-truststore", self.truststores[case.client.truststore],
                     "--client-truststore-password", PASSWORD]
        return [str(a) for a in args[1:]]  # without the reference's mode word


def java_major(version_line: str) -> str:
    """'openjdk version "17.0.15" 2025-04-15' -> '17'."""
    found = re.search(r'version "(\d+)', version_line)
    assert found, f"not a java -version line: {version_line!r}"
    return found.group(1)


class Runs:
    """Each (runner, case) runs once per session; the tests read the cached JSON."""

    def __init__(self, classes: Path, pki: ReferencePKI):
        self.classes = classes
        self.pki = pki
        self._runners: dict[str, object] = {}
        self._versions: dict[str, str] = {}
        self._results: dict[tuple[str, str], dict] = {}

    def runner(self, label: str):
        if label not in self._runners:
            self._runners[label] = reference.HostJava() if label == "host" else DOCKER
            self._versions[label] = self._runners[label].version()
        return self._runners[label]

    def version(self, label: str) -> str:
        self.runner(label)
        return self._versions[label]

    def result(self, label: str, case_id: str) -> dict:
        key = (label, case_id)
        if key not in self._results:
            case = CASES[case_id]
            self._results[key] = reference.pair(self.runner(label), self.classes, self.pki.identity(case.server),
                                                self.pki.identity(case.client), case.host, case.protocols)
        return self._results[key]


@pytest.fixture(scope="session")
def reference_classes() -> Path:
    if shutil.which("javac") is None:
        pytest.skip("javac (a JDK 17 or later) is not on PATH: the reference is compiled with it")
    return reference.build()


@pytest.fixture(scope="session")
def reference_pki(tmp_path_factory) -> ReferencePKI:
    if shutil.which("openssl") is None:
        pytest.skip("openssl is not on PATH: the reference fixtures are made with it")
    return ReferencePKI(tmp_path_factory.mktemp("reference-pki"))


@pytest.fixture(scope="session")
def reference_runs(reference_classes, reference_pki) -> Runs:
    return Runs(reference_classes, reference_pki)
