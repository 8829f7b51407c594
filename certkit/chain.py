"""Issued-by and chain building: leaf -> issuer -> ... -> trust anchor, by signatures, never by names alone."""
from __future__ import annotations

from cryptography import x509
from cryptography.exceptions import InvalidSignature, UnsupportedAlgorithm

from .certs import fingerprint

MAX_PATH = 10  # longer paths are not a corporate PKI; stop a hostile pool from looping


def issued_by(cert: x509.Certificate, issuer: x509.Certificate) -> bool:
    """Names match and ``issuer``'s key verifies ``cert``'s signature."""
    try:
        cert.verify_directly_issued_by(issuer)
    except (ValueError, TypeError, InvalidSignature, UnsupportedAlgorithm):
        return False
    return True


def build_chain(leaf: x509.Certificate, pool: list[x509.Certificate],
                anchors: list[x509.Certificate]) -> list[x509.Certificate] | None:
    """The path leaf first, ending in one of ``anchors``, or None.

    As Java does, any anchor ends the path (a trusted intermediate too), and only
    certificates that really issued the one before count: a certificate that merely
    travels along (``pool``) but issued nothing on the path is never used.
    """
    anchor_fps = {fingerprint(a) for a in anchors}
    if fingerprint(leaf) in anchor_fps:
        return [leaf]
    path = [leaf]
    while len(path) <= MAX_PATH:
        current = path[-1]
        anchor = next((a for a in anchors if issued_by(current, a)), None)
        if anchor is not None:
            return path + [anchor]
        used = {fingerprint(c) for c in path}
        parent = next((c for c in pool if fingerprint(c) not in used and issued_by(current, c)), None)
        if parent is None:
            return None
        if fingerprint(parent) in anchor_fps:
            return path + [parent]
        path.append(parent)
    return None


def order_chain(leaf: x509.Certificate, pool: list[x509.Certificate]) -> list[x509.Certificate]:
    """Leaf first, then each issuer found in ``pool`` (stops at a self-signed root or a gap)."""
    path = [leaf]
    while len(path) <= MAX_PATH:
        current = path[-1]
        if current.subject == current.issuer and issued_by(current, current):
            break
        used = {fingerprint(c) for c in path}
        parent = next((c for c in pool if fingerprint(c) not in used and issued_by(current, c)), None)
        if parent is None:
            break
        path.append(parent)
    return path
