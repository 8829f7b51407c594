"""Shared helpers of the OCSP tests (no tests here): a PKI whose AIA points at a responder
started as a subprocess on 127.0.0.1, and the certificate files the tools need.

The responder runs as ``python images/ocsp/ocsp_responder.py run``, as in its container,
with the installed safeqlab and certkit packages; ``OCSP_TEST_PYTHON`` picks another
interpreter that has them.
"""
from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from dataclasses import dataclass
from pathlib import Path

import pytest
from cryptography import x509

import pki
from certkit import certs

REPO = Path(__file__).resolve().parents[2]
RESPONDER = REPO / "images" / "ocsp" / "ocsp_responder.py"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def load_certs(path: Path | str) -> list[x509.Certificate]:
    return certs.load_certs(Path(path).read_bytes(), str(path))


class Responder:
    """The responder subprocess; its stdout (one line per request) goes to ``log``."""

    def __init__(self, ocsp_dir: Path, port: int, log: Path, **env: str):
        self.port, self.log, self.url = port, log, f"http://127.0.0.1:{port}"
        environ = {**os.environ, "OCSP_DIR": str(ocsp_dir), "OCSP_PORT": str(port), "OCSP_BIND": "127.0.0.1",
                   **env}
        environ.pop("OCSP_LOG", None)
        self.out = open(log, "ab")
        python = os.environ.get("OCSP_TEST_PYTHON", sys.executable)
        self.proc = subprocess.Popen([python, str(RESPONDER), "run"], stdout=self.out, stderr=subprocess.STDOUT,
                                     env=environ)
        try:
            self._wait_ready()
        except BaseException:
            self.stop()  # a responder that never became ready must not outlive the test
            raise

    def _wait_ready(self) -> None:
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise AssertionError(f"the responder exited with {self.proc.returncode}:\n{self.text()}")
            try:
                with urllib.request.urlopen(self.url + "/health", timeout=1) as resp:
                    if resp.status == 200:
                        return
            except OSError:
                time.sleep(0.05)
        raise AssertionError(f"the responder did not answer /health within 15 s:\n{self.text()}")

    def text(self) -> str:
        return self.log.read_text(errors="replace")

    def requests_for(self, serial: str) -> int:
        return sum(f"serial {serial} " in line for line in self.text().splitlines())

    def stop(self) -> float:
        """SIGTERM; returns how long the process took to exit."""
        start = time.monotonic()
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.out.close()
        return time.monotonic() - start


@dataclass
class OcspLab:
    root: Path
    responder: Responder | None

    @property
    def ocsp_dir(self) -> Path:
        return self.root / "hosts" / "ocsp-host"

    @property
    def manifest(self) -> dict:
        return pki.load_manifest(self.root)

    def ca(self, name: str) -> Path:
        return self.root / "cas" / f"{name}.crt"

    def leaf(self, name: str) -> Path:
        return self.root / "entities" / name / f"{name}.crt"

    def chain(self, name: str) -> list[x509.Certificate]:
        return load_certs(self.root / "entities" / name / f"{name}.chain.pem")

    def anchors(self) -> list[x509.Certificate]:
        return load_certs(self.root / "cas" / f"{self.manifest['cas'][0]['name']}.crt")

    def serial(self, name: str) -> str:
        return next(e["serial"] for e in self.manifest["entities"] if e["name"] == name)

    def cafile(self) -> Path:
        """Root and intermediates in one PEM file, for openssl ocsp -CAfile."""
        path = self.root.parent / "cafile.pem"
        path.write_bytes((self.root / "cas" / "chain.pem").read_bytes())
        return path


def start_lab(base: Path, *, responder: bool = True, port: int | None = None, **init) -> OcspLab:
    """A PKI with its AIA OCSP URL on 127.0.0.1:<port> and, unless told not to, its responder."""
    port = port or free_port()
    init.setdefault("ocsp_url", f"http://127.0.0.1:{port}")
    root = Path(pki.init_pki(base / "pki", **init)["dir"])
    running = Responder(root / "hosts" / "ocsp-host", port, base / "responder.log") if responder else None
    return OcspLab(root, running)


@pytest.fixture(scope="module")
def ocsp_lab(tmp_path_factory):
    """Module-wide PKI + responder; tests that revoke use their own (``fresh_ocsp_lab``)."""
    lab = start_lab(tmp_path_factory.mktemp("ocsp"))
    yield lab
    lab.responder.stop()


@pytest.fixture
def fresh_ocsp_lab(tmp_path):
    lab = start_lab(tmp_path)
    yield lab
    lab.responder.stop()
