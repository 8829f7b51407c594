"""Writes the exported files: CA certificates, PFX keystores, the Java
truststore and the per-host directories the containers mount at ``/pki``.

PFX encryption: by default PBES2 (PBKDF2-HMAC-SHA256, AES-256-CBC) with an
HMAC-SHA256 MAC, which Java 17+ keytool and OpenSSL 3 both read. With
``--legacy-pfx``: PBE-SHA1-3DES with an HMAC-SHA1 MAC, for older JREs.

Modes (:func:`mode_for`): a file that holds a private key or a password
(``*.pfx``, ``*.key``, ``*.key.pem``, ``manifest.json``, ``db.json``,
``unattended-install.conf``) is 0600 wherever it is; certificates and the
other public files are 0644; directories 0755 (``ca/`` 0700). The passwords
in those files unlock the PFX keys, and the lab's PFX passwords are the
documented defaults, so both are owner-only.

Host directories (copies, not links, since they are bind-mounted read-only
into containers, where root reads them):

* primary: ``<name>.pfx``, ``cacert.crt`` (its chain's root, PEM, the page's
  file for the cacerts import; ``cacert-<root>.crt`` for each other trusted
  root while a new root is rolled out) and one ``<CA>.cer`` (DER) per trusted
  CA (the "Trusted CA certificates" uploads);
* gateway: ``<name>.pfx``, ``acme-ca.pfx`` (the trusted roots) and
  ``unattended-install.conf``;
* client: a stand-in for the Windows certificate store:
  ``store/My/<name>.crt`` + ``store/My/<name>.key`` (Personal: certificate
  with its key), ``store/CA/<CA>.crt`` per intermediate of its chain,
  ``store/Root/<root>.crt`` per trusted root.

The trusted roots and CAs (:class:`Anchors`) are the chain's own unless a
rotation says more (see :mod:`pki.rotation`).
"""
from __future__ import annotations

import contextlib
import os
import stat
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.serialization import pkcs12

from certkit import certs
from certkit.fsio import FILE_MODE, SECRET_FILE_MODE, write_new

from .authority import CertificateAuthority
from .fsutil import SECRET_DIR_MODE, make_dir
from .keys import PrivateKey

TRUSTSTORE_NAME = "acme-ca.pfx"
TRUSTSTORE_ALIAS = "acme-ca"
CONTAINER_PKI_DIR = "/pki"
PRIMARY_PORT = 2560
# What keytool writes (keystore.pkcs12.keyPbeIterationCount and certPbeIterationCount: 10000). Every
# start of a service loads its stores in a JRE, whose PBKDF2 runs 50000 rounds in 0.15 s more CPU.
KDF_ROUNDS = 10_000
# What holds a private key or a password, by file name (see the module docstring).
SECRET_SUFFIXES = (".pfx", ".key", ".key.pem")
SECRET_NAMES = ("manifest.json", "db.json", "unattended-install.conf")


def mode_for(path: Path) -> int:
    name = Path(path).name
    return SECRET_FILE_MODE if name in SECRET_NAMES or name.endswith(SECRET_SUFFIXES) else FILE_MODE


def write(path: Path, data: bytes) -> None:
    """Write a new file (in a staging directory) with the mode its name calls for."""
    write_new(path, data, mode_for(path))


def tighten_secrets(root: Path) -> None:
    """Make every secret file under ``root`` owner-only: a tree written before
    secrets were 0600 gets there at its next issue, reissue or revoke.

    Runs after the commit, so it is best effort: a file it cannot change (another
    owner's) must not turn a done command into a reported failure."""
    for dirpath, _, filenames in os.walk(root):
        for name in filenames:
            path = Path(dirpath, name)
            with contextlib.suppress(OSError):
                st = path.lstat()
                if stat.S_ISREG(st.st_mode) and st.st_mode & 0o077 and mode_for(path) == SECRET_FILE_MODE:
                    os.chmod(path, SECRET_FILE_MODE)


def pfx_encryption(password: str, legacy: bool) -> serialization.KeySerializationEncryption:
    builder = serialization.PrivateFormat.PKCS12.encryption_builder()
    if legacy:
        builder = builder.kdf_rounds(2048).key_cert_algorithm(
            pkcs12.PBES.PBESv1SHA1And3KeyTripleDESCBC
        ).hmac_hash(hashes.SHA1())
    else:
        builder = builder.kdf_rounds(KDF_ROUNDS).key_cert_algorithm(
            pkcs12.PBES.PBESv2SHA256AndAES256CBC
        ).hmac_hash(hashes.SHA256())
    return builder.build(password.encode("ascii"))


def pem(*chain: x509.Certificate) -> bytes:
    return certs.pem(chain).encode("ascii")


def der(cert: x509.Certificate) -> bytes:
    return cert.public_bytes(serialization.Encoding.DER)


def issuing_chain(cas: list[CertificateAuthority]) -> list[CertificateAuthority]:
    """The CAs above an entity, nearest first: lowest intermediate ... root."""
    return list(reversed(cas))


def entity_pfx(
    name: str, key: PrivateKey, cert: x509.Certificate, cas: list[CertificateAuthority], password: str, legacy: bool
) -> bytes:
    # The whole chain goes in: a Java client only presents its certificate if
    # it can send a chain up to a CA the server accepts.
    extra = [pkcs12.PKCS12Certificate(ca.cert, ca.name.encode()) for ca in issuing_chain(cas)]
    return pkcs12.serialize_key_and_certificates(name.encode(), key, cert, extra, pfx_encryption(password, legacy))


def java_truststore(entries: list[tuple[x509.Certificate, str]], password: str, legacy: bool) -> bytes:
    """A PKCS12 truststore as `keytool -importcert` makes it: each (certificate, alias) a trustedCertEntry."""
    # serialize_java_truststore adds Oracle's trusted-key-usage attribute;
    # without it Java loads the store with zero trusted entries.
    certs = [pkcs12.PKCS12Certificate(cert, alias.encode()) for cert, alias in entries]
    return pkcs12.serialize_java_truststore(certs, pfx_encryption(password, legacy))


def truststore(root: CertificateAuthority, password: str, legacy: bool, *others: CertificateAuthority) -> bytes:
    """The trusted roots as keytool would import them: the first as acme-ca, each other by its name."""
    entries = [(root.cert, TRUSTSTORE_ALIAS)] + [(ca.cert, ca.name.lower()) for ca in others]
    return java_truststore(entries, password, legacy)


@dataclass(frozen=True)
class Anchors:
    """What a host trusts: ``roots`` (truststores, cacerts, the store's Root folder) and ``trusted``
    (the primary's Trusted CA files)."""
    roots: tuple[CertificateAuthority, ...]
    trusted: tuple[CertificateAuthority, ...]

    @classmethod
    def of_chain(cls, cas: list[CertificateAuthority]) -> "Anchors":
        return cls((cas[0],), tuple(cas))


def write_primary_trust(hdir: Path, chain_root: CertificateAuthority, anchors: Anchors) -> None:
    write(hdir / "cacert.crt", pem(chain_root.cert))
    for root in anchors.roots:
        if root.name != chain_root.name:
            write(hdir / f"cacert-{root.name}.crt", pem(root.cert))
    for ca in anchors.trusted:
        write(hdir / f"{ca.name}.cer", der(ca.cert))


def write_store_roots(rootdir: Path, anchors: Anchors) -> None:
    for root in anchors.roots:
        write(rootdir / f"{root.name}.crt", pem(root.cert))


def write_ca_files(cas_dir: Path, cas: list[CertificateAuthority]) -> None:
    for ca in cas:
        write(cas_dir / f"{ca.name}.cer", der(ca.cert))
        write(cas_dir / f"{ca.name}.der", der(ca.cert))
        write(cas_dir / f"{ca.name}.crt", pem(ca.cert))
    write(cas_dir / "chain.pem", pem(*(ca.cert for ca in issuing_chain(cas))))


def write_ca_keys(ca_dir: Path, cas: list[CertificateAuthority]) -> None:
    for ca in cas:
        write(ca_dir / f"{ca.name}.key.pem", certs.key_pem(ca.key))


def write_entity_dir(
    edir: Path, name: str, key: PrivateKey, cert: x509.Certificate, cas: list[CertificateAuthority], pfx: bytes
) -> None:
    write(edir / f"{name}.pfx", pfx)
    write(edir / f"{name}.crt", pem(cert))
    write(edir / f"{name}.chain.pem", pem(cert, *(ca.cert for ca in issuing_chain(cas))))
    write(edir / f"{name}.key.pem", certs.key_pem(key))


def unattended_install_conf(keystore: str, keystore_password: str, truststore: str, truststore_password: str,
                            primary_host: str) -> bytes:
    """The gateway's four trusted-certificate settings and the primary's address; file names as in /pki."""
    lines = [
        "# SAFEQ Cloud gateway unattended installation: trusted-certificate settings",
        f'HCP_DEFAULT_KEYSTORE="{CONTAINER_PKI_DIR}/{keystore}"',
        f'HCP_DEFAULT_KEYSTORE_PASSWORD="{keystore_password}"',
        f'HCP_DEFAULT_TRUSTSTORE="{CONTAINER_PKI_DIR}/{truststore}"',
        f'HCP_DEFAULT_TRUSTSTORE_PASSWORD="{truststore_password}"',
        f'HCP_PRIMARY_SERVER_ADDRESS="{primary_host}:{PRIMARY_PORT}"',
    ]
    return ("\n".join(lines) + "\n").encode()


def write_host_dir(
    hdir: Path,
    *,
    name: str,
    role: str,
    key: PrivateKey,
    cert: x509.Certificate,
    cas: list[CertificateAuthority],
    pfx: bytes,
    pfx_password: str,
    truststore_bytes: bytes,
    truststore_password: str,
    primary_host: str,
    anchors: Anchors | None = None,
) -> None:
    anchors = anchors or Anchors.of_chain(cas)
    if role == "primary":
        write(hdir / f"{name}.pfx", pfx)
        write_primary_trust(hdir, cas[0], anchors)
    elif role == "gateway":
        write(hdir / f"{name}.pfx", pfx)
        write(hdir / TRUSTSTORE_NAME, truststore_bytes)
        conf = unattended_install_conf(f"{name}.pfx", pfx_password, TRUSTSTORE_NAME, truststore_password, primary_host)
        write(hdir / "unattended-install.conf", conf)
    elif role == "client":
        my = make_dir(hdir / "store" / "My")
        write(my / f"{name}.crt", pem(cert))
        write(my / f"{name}.key", certs.key_pem(key))
        inter = make_dir(hdir / "store" / "CA")
        for ca in cas[1:]:
            write(inter / f"{ca.name}.crt", pem(ca.cert))
        write_store_roots(make_dir(hdir / "store" / "Root"), anchors)
    else:  # pragma: no cover - roles are validated before
        raise ValueError(role)


def make_tree_dirs(root: Path) -> dict[str, Path]:
    """Create the fixed top-level directories of a PKI tree with their modes."""
    dirs = {
        "ca": make_dir(root / "ca", SECRET_DIR_MODE),
        "cas": make_dir(root / "cas"),
        "entities": make_dir(root / "entities"),
        "truststores": make_dir(root / "truststores"),
        "hosts": make_dir(root / "hosts"),
    }
    return dirs
