"""pkilint's RFC 5280 certificate linter (the validators behind ``lint_pkix_cert``).

pkilint checks dNSName and URI host syntax with the ``validators`` package,
which wants a dotted domain with a top-level label. RFC 5280 (via RFC 1034
3.5 / RFC 1123 2.1) and RFC 3986 allow single-label names, and the lab uses
the vendor page's single-label host names (``primary-host``) and OCSP URL
(``http://ocsp-host:8080``). Those two findings, and only for single-label
names, are therefore accepted for the default PKIs; the FQDN variant, which
exercises every extension, must be free of any ERROR or FATAL finding.
"""
from __future__ import annotations

import re
import shutil
import sys
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import pytest
import validators
from pkilint import loader
from pkilint.pkix import certificate, extension, name
from pkilint.validation import ValidationFindingSeverity

SINGLE_LABEL = re.compile(r"^(?!-)[a-z0-9-]{1,63}(?<!-)$")


@pytest.fixture(scope="module")
def lint():
    # The same validator set as pkilint's lint_pkix_cert command.
    validator = certificate.create_pkix_certificate_validator_container(
        certificate.create_decoding_validators(name.ATTRIBUTE_TYPE_MAPPINGS, extension.EXTENSION_MAPPINGS),
        [
            certificate.create_issuer_validator_container([]),
            certificate.create_validity_validator_container(),
            certificate.create_subject_validator_container([]),
            certificate.create_extensions_validator_container([]),
            certificate.create_spki_validator_container([]),
        ],
    )
    doc_loader = loader.RFC5280CertificateDocumentLoader()

    def run(path) -> list[tuple[str, str, str]]:
        doc = doc_loader.load_pem_document(path.read_text(), str(path))
        return [
            (f.finding.severity.name, f.finding.code, f.message or "")
            for result in validator.validate(doc.root)
            for f in result.finding_descriptions
            if f.finding.severity <= ValidationFindingSeverity.ERROR
        ]

    return run


def _single_label_false_positive(code: str, message: str) -> bool:
    value = re.search(r'"(.*)"', message).group(1)
    if code == "pkix.invalid_domain_name_syntax":
        return bool(SINGLE_LABEL.match(value))
    if code == "pkix.invalid_uri_syntax":
        parts = urlsplit(value)
        if not SINGLE_LABEL.match(parts.hostname or ""):
            return False
        dotted = parts._replace(netloc=parts.netloc.replace(parts.hostname, parts.hostname + ".example", 1))
        return bool(validators.url(urlunsplit(dotted)))
    return False


@pytest.mark.parametrize("variant", ["pki_by_depth", "rsa_pki", "p384_pki", "legacy_pki"])
def test_no_error_findings_beyond_single_label_names(lint, pki_tools, request, variant):
    value = request.getfixturevalue(variant)
    manifests = list(value.values()) if variant == "pki_by_depth" else [value]
    for manifest in manifests:
        for path in pki_tools.cert_paths(manifest):
            real = [f for f in lint(path) if not _single_label_false_positive(f[1], f[2])]
            assert real == [], f"{path.name}: {real}"


def test_fqdn_variant_has_no_error_findings_at_all(lint, pki_tools, fqdn_pki):
    # Its CAs and its FQDN entity (the default entities keep single-label names).
    paths = [p for p in pki_tools.cert_paths(fqdn_pki) if "." in p.stem or p.stem.startswith("Acme-CA")]
    assert len(paths) == 4
    for path in paths:
        assert lint(path) == [], path.name


def test_single_label_allowance_is_narrow(lint, pki_tools, default_pki):
    # The allowance must not hide anything else: the default leaf has exactly
    # the two single-label findings (SAN and OCSP URI), nothing more.
    findings = lint(pki_tools.cert_paths(default_pki)[-1])
    assert sorted(f[1] for f in findings) == ["pkix.invalid_domain_name_syntax", "pkix.invalid_uri_syntax"]
    assert not _single_label_false_positive("pkix.invalid_domain_name_syntax", 'x: "bad_name.example"')
    assert not _single_label_false_positive("pkix.invalid_uri_syntax", 'x: "http://bad_host:8080"')


def test_lint_pkix_cert_command(pki_tools, fqdn_pki):
    # The console script sits next to the interpreter when the venv is not on PATH.
    exe = shutil.which("lint_pkix_cert") or shutil.which("lint_pkix_cert", path=str(Path(sys.executable).parent))
    if exe is None:
        pytest.skip("pkilint's lint_pkix_cert command is not on PATH")
    leaf = pki_tools.cert_paths(fqdn_pki)[-1]
    proc = pki_tools.run(exe, "lint", "-s", "ERROR", str(leaf), check=False)
    assert proc.returncode == 0, proc.stdout.decode()
