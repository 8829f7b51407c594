"""pkilint's RFC 5280 certificate lint: findings of ERROR level and above, with pkilint's codes.

pkilint checks DNS names and URI hosts with the ``validators`` package, which wants a dotted
domain; RFC 5280 allows single-label names (``primary-host``, ``http://ocsp-host:8080``, the vendor
page's names), so a syntax finding that holds only for the missing dot is left out.
"""
from __future__ import annotations

import functools
import re
from pathlib import Path
from urllib.parse import urlsplit

from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding

from certkit.certs import fingerprint, name_str

from .findings import INFO, WARNING, Finding, finding

SYNTAX_CODES = ("pkix.invalid_domain_name_syntax", "pkix.invalid_uri_syntax")
_QUOTED = re.compile(r'"(.*)"')


@functools.lru_cache(maxsize=1)
def _linter():
    """(loader, validator, worst severity reported, validators module): pkilint's lint_pkix_cert set."""
    import validators
    from pkilint import loader
    from pkilint.pkix import certificate, extension, name
    from pkilint.validation import ValidationFindingSeverity

    validator = certificate.create_pkix_certificate_validator_container(
        certificate.create_decoding_validators(name.ATTRIBUTE_TYPE_MAPPINGS, extension.EXTENSION_MAPPINGS),
        [certificate.create_issuer_validator_container([]), certificate.create_validity_validator_container(),
         certificate.create_subject_validator_container([]), certificate.create_extensions_validator_container([]),
         certificate.create_spki_validator_container([])])
    return loader.RFC5280CertificateDocumentLoader(), validator, ValidationFindingSeverity.ERROR, validators


def only_missing_dot(code: str, message: str, validators) -> bool:
    """A syntax finding on a single-label name that passes once the name has a dot."""
    found = _QUOTED.search(message or "")
    if code not in SYNTAX_CODES or found is None:
        return False
    value = found.group(1)
    if code == "pkix.invalid_domain_name_syntax":
        return "." not in value and bool(validators.domain(value + ".example"))
    host = urlsplit(value).hostname or ""
    if not host or "." in host:
        return False
    return bool(validators.url(value.replace(host, host + ".example", 1)))


def lint(cert: x509.Certificate) -> list[tuple[str, str, str]]:
    """(severity, code, message) of each ERROR or FATAL finding."""
    doc_loader, validator, worst, validators = _linter()
    doc = doc_loader.load_der_document(cert.public_bytes(Encoding.DER), name_str(cert.subject))
    return [(f.finding.severity.name, f.finding.code, f.message or "") for result in validator.validate(doc.root)
            for f in result.finding_descriptions
            if f.finding.severity <= worst and not only_missing_dot(f.finding.code, f.message, validators)]


def check(certs: list[tuple[x509.Certificate, Path]]) -> list[Finding]:
    try:
        _linter()
    except ImportError:
        return [finding(INFO, "pkilint.not-installed", None, "pkilint is not installed: the RFC 5280 lint is left out",
                        "pip install pkilint")]
    out, seen = [], set()
    for cert, file in certs:
        if fingerprint(cert) in seen:
            continue
        seen.add(fingerprint(cert))
        for severity, code, message in lint(cert):
            detail = f": {message}" if message else ""
            out.append(finding(WARNING, f"pkilint.{code}", file, f"{name_str(cert.subject)}: pkilint {severity} "
                               f"{code}{detail} (RFC 5280; Java may accept it, other TLS stacks may not)",
                               "reissue the certificate with the CA's profile corrected"))
    return out
