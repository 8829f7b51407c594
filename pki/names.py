"""Validation of host names, CA names, subjectAltName values and URLs."""
from __future__ import annotations

import ipaddress
import re
from urllib.parse import urlsplit

from cryptography import x509

from .errors import PKIError

# RFC 1123 label: letters, digits, hyphen; no hyphen at either end; 1-63 chars.
_LABEL = re.compile(r"^(?!-)[a-z0-9-]{1,63}(?<!-)$")
# CA names become file names and CNs: keep them portable and shell-safe.
_CA_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")


def _is_dns_name(value: str) -> bool:
    # No wildcards: RFC 5280 does not define them in dNSName (pkilint flags them).
    if not value or len(value) > 253 or value.endswith("."):
        return False
    labels = value.split(".")
    # RFC 1123 2.1: the top label is not all-numeric, so a name never looks like an IPv4 address.
    return all(_LABEL.match(label) for label in labels) and not labels[-1].isdigit()


def host_name(value: str) -> str:
    """Validate an entity name (an RFC 1123 host name); returns it lower-cased.

    DNS is case-insensitive, so names are stored lower-case; this also keeps
    ``Gateway-2`` and ``gateway-2`` from becoming two entities.
    """
    name = value.strip().lower()
    if not _is_dns_name(name):
        raise PKIError(
            f"invalid host name {value!r}: use an RFC 1123 host name "
            "(labels of letters, digits and '-', 1-63 characters, not starting "
            "or ending with '-', separated by dots, at most 253 characters)"
        )
    return name


def ca_name(value: str, option: str) -> str:
    if not _CA_NAME.match(value):
        raise PKIError(
            f"invalid CA name {value!r} for {option}: use 1-64 characters from "
            "letters, digits, '.', '_' and '-', starting with a letter or digit"
        )
    return value


def san(value: str) -> x509.GeneralName:
    """Parse one --san value: an IPv4/IPv6 address or a DNS name."""
    text = value.strip()
    try:
        return x509.IPAddress(ipaddress.ip_address(text))
    except ValueError:
        pass
    name = text.lower()
    if not _is_dns_name(name):
        raise PKIError(
            f"invalid --san {value!r}: give a DNS host name (RFC 1123, no "
            "wildcards) or an IPv4/IPv6 address"
        )
    return x509.DNSName(name)


def san_text(general_name: x509.GeneralName) -> str:
    return str(general_name.value)


def url(value: str, option: str, schemes: tuple[str, ...] = ("http", "https")) -> str:
    parts = urlsplit(value)
    if parts.scheme not in schemes or not parts.hostname or any(c.isspace() for c in value):
        raise PKIError(
            f"invalid URL {value!r} for {option}: expected an absolute "
            f"{' or '.join(schemes)} URL such as http://ocsp-host:8080"
        )
    return value
