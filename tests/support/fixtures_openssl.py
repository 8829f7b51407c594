"""Certificates made with the openssl CLI alone, for checks that must not lean on our own PKI code.

``openssl ca`` signs every non-root certificate, because it is the one openssl 3.0
command that takes explicit start and end dates (expired and not-yet-valid fixtures).
Extensions come as config snippets, exactly as an admin would write them.
"""
from __future__ import annotations

import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509

OPENSSL = shutil.which("openssl")

CA_EXT = """basicConstraints = critical, CA:TRUE
keyUsage = critical, keyCertSign, cRLSign
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid:always
"""
CLIENT_EXT = """basicConstraints = critical, CA:FALSE
keyUsage = critical, digitalSignature
extendedKeyUsage = clientAuth
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid:always
"""
SERVER_EXT = """basicConstraints = critical, CA:FALSE
keyUsage = critical, digitalSignature
extendedKeyUsage = serverAuth
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid:always
"""

_REQ_CONFIG = """[req]
distinguished_name = dn
prompt = no
[dn]
CN = unused
[ext]
{ext}"""

_CA_CONFIG = """[ca]
default_ca = this_ca
[this_ca]
database = {dir}/index.txt
new_certs_dir = {dir}/new
serial = {dir}/serial
policy = any_name
unique_subject = no
copy_extensions = none
email_in_dn = no
default_days = 3650
[any_name]
commonName = supplied
organizationName = optional
[ext]
{ext}"""


class OpenSSLFailed(AssertionError):
    pass


def openssl(*args: str, cwd: Path | None = None, check: bool = True) -> subprocess.CompletedProcess:
    if OPENSSL is None:
        raise OpenSSLFailed("openssl is not on PATH")
    proc = subprocess.run([OPENSSL, *args], capture_output=True, text=True, timeout=60, cwd=cwd)
    if check and proc.returncode != 0:
        raise OpenSSLFailed(f"openssl {' '.join(args)} exited {proc.returncode}: {proc.stderr.strip()}")
    return proc


@dataclass
class Issued:
    name: str  # file name stem, unique per OpenSSLPKI
    cert_path: Path
    key_path: Path

    @property
    def cert(self) -> x509.Certificate:
        return x509.load_pem_x509_certificate(self.cert_path.read_bytes())


class OpenSSLPKI:
    """Keys, CSRs and certificates under one tmp folder, one ``openssl ca`` database per issuer."""

    def __init__(self, workdir: Path):
        self.dir = Path(workdir)
        self.dir.mkdir(parents=True, exist_ok=True)

    def key(self, name: str, key: str = "ec") -> Path:
        """key: "ec" (P-256) or "rsa:BITS"."""
        path = self.dir / f"{name}.key.pem"
        if path.exists():
            # Same file name, other key: certificates already made would silently change.
            raise ValueError(f"{name} exists already; pass subject= to reuse a name")
        if key == "ec":
            opts = ["-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-256"]
        elif key.startswith("rsa:"):
            opts = ["-algorithm", "RSA", "-pkeyopt", f"rsa_keygen_bits:{key[4:]}"]
        else:
            raise ValueError(f"unknown key type {key!r}")
        openssl("genpkey", *opts, "-out", str(path))
        return path

    def _write(self, name: str, text: str) -> Path:
        path = self.dir / name
        path.write_text(text)
        return path

    def root(self, name: str, ext: str = CA_EXT, key: str = "ec", md: str = "sha256",
             subject: str | None = None) -> Issued:
        key_path = self.key(name, key)
        cfg = self._write(f"{name}.req.cnf", _REQ_CONFIG.format(ext=ext))
        cert = self.dir / f"{name}.pem"
        openssl("req", "-x509", "-new", "-key", str(key_path), "-subj", subject or f"/CN={name}/O=Fixture",
                "-days", "36500", f"-{md}", "-config", str(cfg), "-extensions", "ext", "-out", str(cert))
        return Issued(name, cert, key_path)

    def issue(self, name: str, issuer: Issued, ext: str, *, key: str = "ec", md: str = "sha256",
              start: str | None = None, end: str | None = None, subject: str | None = None) -> Issued:
        """A certificate for ``name`` signed by ``issuer``; start/end as YYYYMMDDHHMMSSZ."""
        key_path = self.key(name, key)
        req_cfg = self._write(f"{name}.req.cnf", _REQ_CONFIG.format(ext=""))
        csr = self.dir / f"{name}.csr"
        openssl("req", "-new", "-key", str(key_path), "-subj", subject or f"/CN={name}/O=Fixture",
                "-config", str(req_cfg), "-out", str(csr))
        ca_dir = self._ca_dir(issuer)
        ca_cfg = self._write(f"{name}.ca.cnf", _CA_CONFIG.format(dir=ca_dir, ext=ext))
        cert = self.dir / f"{name}.pem"
        dates = (["-startdate", start] if start else []) + (["-enddate", end] if end else [])
        openssl("ca", "-batch", "-notext", "-config", str(ca_cfg), "-extensions", "ext", "-md", md,
                "-cert", str(issuer.cert_path), "-keyfile", str(issuer.key_path), *dates,
                "-in", str(csr), "-out", str(cert))
        return Issued(name, cert, key_path)

    def _ca_dir(self, issuer: Issued) -> Path:
        ca_dir = self.dir / f"ca-{issuer.name}"
        if not ca_dir.exists():
            (ca_dir / "new").mkdir(parents=True)
            (ca_dir / "index.txt").write_text("")
            (ca_dir / "serial").write_text(openssl("rand", "-hex", "16").stdout.strip() + "\n")
        return ca_dir


def verify(anchors: list[Issued], chain: list[Issued], *args: str) -> str:
    """``openssl verify`` of chain[0] with chain[1:] untrusted: its last line (OK or the error)."""
    workdir = chain[0].cert_path.parent
    ca_file = workdir / "verify-anchors.pem"
    ca_file.write_text("".join(a.cert_path.read_text() for a in anchors))
    untrusted = []
    if len(chain) > 1:
        pool = workdir / "verify-untrusted.pem"
        pool.write_text("".join(c.cert_path.read_text() for c in chain[1:]))
        untrusted = ["-untrusted", str(pool)]
    proc = openssl("verify", "-CAfile", str(ca_file), *untrusted, *args, str(chain[0].cert_path), check=False)
    lines = [line for line in (proc.stdout + proc.stderr).splitlines() if line.strip()]
    errors = [line for line in lines if line.startswith("error ")]
    return (errors[0] if errors else lines[-1]).strip()
