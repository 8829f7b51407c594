"""PKI builder of the SAFEQ Cloud trusted-certificates lab.

Creates a corporate-style PKI (root CA -> intermediate CA(s) -> one
certificate per host) and exports it in the forms the vendor's setup page
uses: PFX keystores, a Java truststore, DER/PEM CA certificates and per-host
directories for the lab's containers. See :mod:`pki.builder` for the
operations and :mod:`pki.manifest` for the JSON contract.
"""
from __future__ import annotations

from .builder import LabPKI, exists, init_pki, issue, issue_many, load_manifest, reissue, revoke
from .errors import PKIError
from .rotation import add_ca, retire, set_issuing

__all__ = ["LabPKI", "PKIError", "add_ca", "exists", "init_pki", "issue", "issue_many", "load_manifest", "reissue", "retire",
           "revoke", "set_issuing"]
