"""OCSP with checks on: the primary checks an endpoint's leaf and intermediates at the OCSP URL of
their AIA extension, else at the account's custom OCSP URL; a certificate with neither is not checked."""
from __future__ import annotations

from certkit.certs import fingerprint, name_str
from safeqlab.ocspcheck import ocsp_urls

from ..spec import Account
from .certchecks import self_signed
from .findings import WARNING, Finding, finding
from .material import Material


def check(material: Material, account: Account) -> list[Finding]:
    if not account.ocsp or account.ocsp_url:
        return []
    out, seen = [], set()
    for ep in material.endpoints:
        for cert in ep.key.chain:
            if self_signed(cert) or fingerprint(cert) in seen:
                continue  # a root is checked by nobody
            seen.add(fingerprint(cert))
            if not ocsp_urls(cert):
                out.append(finding(WARNING, "ocsp.no-url", ep.key.file,
                                   f"{name_str(cert.subject)} carries no OCSP URL (AIA) and [account] ocsp_url is "
                                   "not set: with OCSP checks on, the primary cannot check it and lets it pass",
                                   "set [account] ocsp_url to the CA's OCSP responder, or reissue the certificate "
                                   "with an AIA OCSP URL"))
    return out
