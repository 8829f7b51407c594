"""Certificate profiles (RFC 5280): which extensions each kind of certificate gets.

* root: BasicConstraints CA (critical, no pathLen), KeyUsage keyCertSign +
  cRLSign (critical), SKI.
* intermediate: BasicConstraints CA with pathLen counting down to 0 for the
  lowest, KeyUsage digitalSignature (so it may sign OCSP responses itself) +
  keyCertSign + cRLSign, SKI, AKI, AIA (OCSP, caIssuers) and CRL DP when
  configured.
* entity: BasicConstraints CA=false (critical), KeyUsage digitalSignature
  (+ keyEncipherment for RSA keys, for RSA key transport) critical, EKU by
  role, SAN, SKI, AKI, AIA, CRL DP.
* OCSP signer (RFC 6960 4.2.2.2 delegated responder, one per CA): BasicConstraints
  CA=false (critical), KeyUsage digitalSignature (critical), EKU id-kp-OCSPSigning
  only, id-pkix-ocsp-nocheck (so clients need not ask about the signer itself),
  SKI, AKI; no AIA.
"""
from __future__ import annotations

from dataclasses import dataclass

from cryptography import x509
from cryptography.x509.oid import AuthorityInformationAccessOID, ExtendedKeyUsageOID

from .errors import PKIError
from .keys import PublicKey

# Order matters only for display ("openssl x509 -text" prints it as stored).
ROLE_EKUS: dict[str, tuple[x509.ObjectIdentifier, ...]] = {
    # Serves port 2560 and talks to gateways as a client.
    "primary": (ExtendedKeyUsageOID.SERVER_AUTH, ExtendedKeyUsageOID.CLIENT_AUTH),
    # Client of the primary; also serves its own API on port 7400.
    "gateway": (ExtendedKeyUsageOID.CLIENT_AUTH, ExtendedKeyUsageOID.SERVER_AUTH),
    "client": (ExtendedKeyUsageOID.CLIENT_AUTH,),
}
ROLES = tuple(ROLE_EKUS)


def check_role(role: str) -> str:
    if role not in ROLE_EKUS:
        raise PKIError(f"unknown role {role!r}; choose one of: {', '.join(ROLES)}")
    return role


@dataclass(frozen=True)
class Urls:
    """Where relying parties find status and issuer certificates of one issuer."""

    ocsp: str | None = None
    ca_issuers: str | None = None
    crl: str | None = None


Extension = tuple[x509.ExtensionType, bool]  # (value, critical)


def _usage(*, digital_signature=False, key_encipherment=False, cert_sign=False) -> x509.KeyUsage:
    return x509.KeyUsage(
        digital_signature=digital_signature,
        content_commitment=False,
        key_encipherment=key_encipherment,
        data_encipherment=False,
        key_agreement=False,
        key_cert_sign=cert_sign,
        crl_sign=cert_sign,
        encipher_only=False,
        decipher_only=False,
    )


def _locations(urls: Urls) -> list[Extension]:
    out: list[Extension] = []
    access = []
    if urls.ocsp:
        access.append(x509.AccessDescription(AuthorityInformationAccessOID.OCSP, x509.UniformResourceIdentifier(urls.ocsp)))
    if urls.ca_issuers:
        access.append(
            x509.AccessDescription(AuthorityInformationAccessOID.CA_ISSUERS, x509.UniformResourceIdentifier(urls.ca_issuers))
        )
    if access:
        out.append((x509.AuthorityInformationAccess(access), False))
    if urls.crl:
        point = x509.DistributionPoint([x509.UniformResourceIdentifier(urls.crl)], None, None, None)
        out.append((x509.CRLDistributionPoints([point]), False))
    return out


def root_extensions(public_key: PublicKey) -> list[Extension]:
    return [
        (x509.BasicConstraints(ca=True, path_length=None), True),
        (_usage(cert_sign=True), True),
        (x509.SubjectKeyIdentifier.from_public_key(public_key), False),
    ]


def intermediate_extensions(
    public_key: PublicKey, issuer: x509.Certificate, path_length: int, urls: Urls
) -> list[Extension]:
    return [
        (x509.BasicConstraints(ca=True, path_length=path_length), True),
        (_usage(digital_signature=True, cert_sign=True), True),
        (x509.SubjectKeyIdentifier.from_public_key(public_key), False),
        (_authority_key_id(issuer), False),
        *_locations(urls),
    ]


def entity_extensions(
    public_key: PublicKey,
    issuer: x509.Certificate,
    role: str,
    sans: list[x509.GeneralName],
    is_rsa: bool,
    urls: Urls,
) -> list[Extension]:
    return [
        (x509.BasicConstraints(ca=False, path_length=None), True),
        (_usage(digital_signature=True, key_encipherment=is_rsa), True),
        (x509.ExtendedKeyUsage(list(ROLE_EKUS[check_role(role)])), False),
        # Non-critical: the subject DN is not empty (RFC 5280 4.2.1.6).
        (x509.SubjectAlternativeName(sans), False),
        (x509.SubjectKeyIdentifier.from_public_key(public_key), False),
        (_authority_key_id(issuer), False),
        *_locations(urls),
    ]


def ocsp_signer_extensions(public_key: PublicKey, issuer: x509.Certificate) -> list[Extension]:
    return [
        (x509.BasicConstraints(ca=False, path_length=None), True),
        (_usage(digital_signature=True), True),
        (x509.ExtendedKeyUsage([ExtendedKeyUsageOID.OCSP_SIGNING]), False),
        (x509.OCSPNoCheck(), False),
        (x509.SubjectKeyIdentifier.from_public_key(public_key), False),
        (_authority_key_id(issuer), False),
    ]


def _authority_key_id(issuer: x509.Certificate) -> x509.AuthorityKeyIdentifier:
    ski = issuer.extensions.get_extension_for_class(x509.SubjectKeyIdentifier).value
    return x509.AuthorityKeyIdentifier.from_issuer_subject_key_identifier(ski)
