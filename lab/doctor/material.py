"""Every file of a spec, read as the machine that uses it reads it.

Primary: its PFX (the chain Java serves), the Trusted CA list and the public CA bundle (what it
trusts inbound), cacerts (its own Java-side check). Gateway: its PFX and its truststore's
trustedCertEntry certificates. Client: the Windows-store stand-in (a PFX imported into it, or a
store folder): the Personal certificate the subject selects, the chain it sends (leaf and
intermediates), and Root/ + CA/ + the public bundle as what it trusts.
"""
from __future__ import annotations

import warnings
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

from cryptography import x509
from cryptography.utils import CryptographyDeprecationWarning

from certkit.certs import CertificateError, load_certs, name_str, same_public_key
from safeqlab import client as store_client
from safeqlab.endpoint import SetupError

from ..spec import Client, Gateway, Spec, SpecError
from . import stores
from .certchecks import self_signed
from .findings import ERROR, INFO, Finding, finding
from .stores import KeyMaterial
from .tools import Java

SYSTEM_BUNDLE = Path(store_client.SYSTEM_BUNDLE)  # the public CAs primary and client trust


@dataclass
class Endpoint:
    """A gateway or client: the chain it offers, and what it judges the primary's chain against."""
    key: KeyMaterial
    anchors: list[x509.Certificate]
    trust_label: str  # where those anchors come from, for messages
    trust_file: Path | None = None
    trust_failed: bool = False  # the trust source could not be read (reported already)


@dataclass
class Material:
    primary: KeyMaterial
    trusted_cas: list[x509.Certificate]
    cacerts: list[x509.Certificate]
    system: list[x509.Certificate]
    endpoints: list[Endpoint]
    findings: list[Finding] = field(default_factory=list)
    named: list[tuple[x509.Certificate, Path]] = field(default_factory=list)  # CA files the spec names

    def key_materials(self) -> list[KeyMaterial]:
        return [self.primary, *(e.key for e in self.endpoints)]


def cert_files(paths, label: str) -> list[tuple[x509.Certificate, Path]]:
    out = []
    for i, path in enumerate(paths):
        try:
            out += [(cert, path) for cert in load_certs(path.read_bytes(), str(path))]
        except (CertificateError, OSError) as exc:
            raise SpecError(f"{label}[{i}]: {getattr(exc, 'strerror', None) or exc}: give a CA certificate "
                            "file (.cer/.der or PEM)") from None
    return out


def system_bundle(path: Path | None = None) -> tuple[list[x509.Certificate], list[Finding]]:
    path = path or SYSTEM_BUNDLE
    try:
        with warnings.catch_warnings():  # a public CA's odd serial number is not the spec's business
            warnings.simplefilter("ignore", CryptographyDeprecationWarning)
            return load_certs(path.read_bytes(), str(path)), []
    except (OSError, CertificateError) as exc:
        return [], [finding(INFO, "system.no-ca-bundle", path, f"no public CA bundle here ({exc}); "
                            "global CAs are left out of what primary and client trust")]


def gateway(gw: Gateway, index: int, java: Java) -> tuple[Endpoint, list[Finding]]:
    where = f"[[gateway]] #{index} ({gw.host})"
    key, findings = stores.keystore(gw.keystore, gw.keystore_password, f"{where} keystore", "gateway", gw.host, java)
    if gw.truststore is not None:
        anchors, more = stores.truststore(gw.truststore, gw.truststore_password, f"{where} truststore", java)
        return Endpoint(key, anchors, f"its truststore {gw.truststore.name}", gw.truststore, bool(more)), findings + more
    certs = [c for c, _ in cert_files(gw.truststore_certs, f"{where} truststore_certs")]
    return Endpoint(key, certs, "its truststore_certs"), findings


def _selected(cl: Client, certs: list[x509.Certificate]) -> bool:
    """"Use pre-configured system certificate": the subject substring in the leaf's subject or issuer."""
    needle = cl.subject.lower()
    return any(needle in name_str(n).lower() for n in (certs[0].subject, certs[0].issuer))


def client(cl: Client, index: int, java: Java) -> tuple[Endpoint, list[Finding]]:
    where = f"[[client]] #{index} ({cl.host})"
    if cl.store is not None:
        return _client_store(cl, where)
    # A PFX imported into the Windows store: key and leaf to Personal, roots to Root, the rest to CA.
    key, findings = stores.keystore(cl.keystore, cl.keystore_password, f"{where} keystore", "client", cl.host, java,
                                    with_java=False)
    if not key.usable:
        return Endpoint(key, [], "its Windows store"), findings
    cas = [c for c in key.pool if c != key.chain[0]]
    key.chain = store_client.chain_for(key.chain[0], [c for c in cas if not self_signed(c)])
    if not _selected(cl, key.chain):
        findings.append(finding(ERROR, "client.subject-no-match", cl.keystore,
                                f"{where} subject: '{cl.subject}' is in neither the subject nor the issuer of "
                                f"{name_str(key.chain[0].subject)}: the client finds no system certificate",
                                "set subject to a part of the certificate's subject or of its issuer's"))
    return Endpoint(key, cas, "its Windows store (Root/ and CA/)"), findings


def _client_store(cl: Client, where: str) -> tuple[Endpoint, list[Finding]]:
    """The store folder, read by the client stand-in's own code."""
    key = KeyMaterial("client", cl.host, cl.store)
    try:
        cert, private_key = store_client.select_certificate(cl.store, cl.subject)
        intermediates = store_client.load_dir(cl.store / "CA")
        roots = store_client.load_dir(cl.store / "Root")
    except SetupError as exc:
        return Endpoint(key, [], "its store"), [finding(ERROR, "client.no-certificate", cl.store, f"{where}: {exc}",
                                                        "put the certificate and its key under My/ and check subject")]
    key.chain = store_client.chain_for(cert, intermediates)
    key.pool = [cert, *intermediates, *roots]
    findings = []
    if not same_public_key(private_key.public_key(), cert.public_key()):
        findings.append(finding(ERROR, "pfx.key-mismatch", cl.store, f"{where}: the key in My/ does not belong to "
                                f"{name_str(cert.subject)}", "put the certificate's own key next to it"))
    return Endpoint(key, intermediates + roots, "its store (Root/ and CA/)", cl.store), findings


def load(spec: Spec, java: Java) -> Material:
    """Read every file; keytool runs side by side (each is a JVM start)."""
    system, notes = system_bundle()
    trusted = cert_files(spec.account.trusted_cas, "[account] trusted_cas")
    cacerts = cert_files(spec.primary.cacerts, "[primary] cacerts")
    with ThreadPoolExecutor(max_workers=4) as pool:
        primary = pool.submit(stores.keystore, spec.primary.keystore, spec.primary.keystore_password,
                              "[primary] keystore", "primary", spec.primary.host, java)
        jobs = [pool.submit(gateway, gw, i, java) for i, gw in enumerate(spec.gateways, 1)]
        jobs += [pool.submit(client, cl, i, java) for i, cl in enumerate(spec.clients, 1)]
        primary_key, findings = primary.result()
        endpoints = []
        for job in jobs:
            endpoint, more = job.result()
            endpoint.anchors = endpoint.anchors + (system if endpoint.key.role == "client" else [])
            endpoints.append(endpoint)
            findings += more
    return Material(primary_key, [c for c, _ in trusted], [c for c, _ in cacerts], system, endpoints,
                    notes + findings, trusted + cacerts)
