"""Which certificate a Java client offers when a server asks for one (pure: no I/O, no TLS library).

A server asking for a client certificate may name the CAs it accepts (certificate_authorities
of the CertificateRequest; a Java server names the subjects of its trust anchors). Java's key
managers (SunX509, the default, and PKIX) then consider a key entry only if the issuer of some
certificate of the entry's chain, as the store holds it, is one of those names; with no names
any entry will do. Nothing matching means no certificate at all, and a Java server logs
"Empty client certificate chain". Names compare as X500Principal does: by their canonical form
(case, spacing and string type do not matter), never by signatures.

Not modelled: the key type filter (a server that signs only with RSA skips EC entries), which
the TLS library applies anyway; name attributes whose value is not a string are refused.
"""
from __future__ import annotations

import unicodedata
from typing import Sequence

from cryptography import x509
from cryptography.x509.oid import ObjectIdentifier

Chain = Sequence[x509.Certificate]

# DER string types a Name may use, with how their bytes decode.
_STRINGS = {0x0C: "utf-8", 0x12: "ascii", 0x13: "ascii", 0x14: "latin-1", 0x16: "ascii",
            0x1A: "ascii", 0x1C: "utf-32-be", 0x1E: "utf-16-be"}
_SEQUENCE, _SET, _OID = 0x30, 0x31, 0x06


def _tlv(data: bytes, pos: int) -> tuple[int, int, int]:
    """(tag, start of value, end of value) of the DER element at ``pos``."""
    if pos + 2 > len(data):
        raise ValueError("truncated DER element")
    tag, length = data[pos], data[pos + 1]
    pos += 2
    if length & 0x80:
        count = length & 0x7F
        if not 0 < count <= 4 or pos + count > len(data):
            raise ValueError("bad DER length")
        length = int.from_bytes(data[pos:pos + count], "big")
        pos += count
    if pos + length > len(data):
        raise ValueError("truncated DER element")
    return tag, pos, pos + length


def _items(data: bytes, start: int, end: int, tag: int) -> list[tuple[int, int]]:
    """The (start, end) of each element between ``start`` and ``end``, each of type ``tag``."""
    out = []
    while start < end:
        got, body, stop = _tlv(data, start)
        if got != tag or stop > end:
            raise ValueError(f"expected DER tag {tag:#x}, found {got:#x}")
        out.append((body, stop))
        start = stop
    return out


def _oid(body: bytes) -> ObjectIdentifier:
    arcs, value = [], 0
    for byte in body:
        value = (value << 7) | (byte & 0x7F)
        if not byte & 0x80:
            arcs.append(value)
            value = 0
    if not arcs or body[-1] & 0x80:
        raise ValueError("bad DER object identifier")
    first = min(arcs[0] // 40, 2)
    return ObjectIdentifier(".".join(str(a) for a in [first, arcs[0] - 40 * first, *arcs[1:]]))


def _attribute(data: bytes, body: int, end: int) -> x509.NameAttribute:
    tag, start, stop = _tlv(data, body)
    if tag != _OID:
        raise ValueError("attribute without a type")
    oid = _oid(data[start:stop])
    tag, start, stop = _tlv(data, stop)
    raw = data[start:stop]
    if tag not in _STRINGS:  # e.g. a BIT STRING x500UniqueIdentifier: not found in a CA's name in practice
        raise ValueError(f"attribute {oid.dotted_string} has a value of DER type {tag:#x}, not a string")
    return x509.NameAttribute(oid, raw.decode(_STRINGS[tag]))


def name_from_der(der: bytes) -> x509.Name:
    """A distinguished name from its DER encoding, as a CertificateRequest carries it."""
    tag, body, end = _tlv(der, 0)
    if tag != _SEQUENCE or end != len(der):
        raise ValueError("not a DER distinguished name")
    rdns = []
    for set_start, set_end in _items(der, body, end, _SET):
        attrs = [_attribute(der, s, e) for s, e in _items(der, set_start, set_end, _SEQUENCE)]
        if not attrs:
            raise ValueError("empty relative distinguished name")
        rdns.append(x509.RelativeDistinguishedName(attrs))
    return x509.Name(rdns)


def _canonical_value(value: str | bytes) -> str:
    if isinstance(value, bytes):
        return "#" + value.hex()
    # X500Principal's canonical form: compatibility-decomposed, trimmed, inner spaces collapsed, lower case.
    text = unicodedata.normalize("NFKD", value)
    return " ".join(text.split()).upper().lower()


def canonical(name: x509.Name) -> tuple:
    """A key equal for two names exactly when X500Principal.equals() holds for them."""
    return tuple(tuple(sorted((a.oid.dotted_string, _canonical_value(a.value)) for a in rdn)) for rdn in name.rdns)


def issuers(chain: Chain) -> list[x509.Name]:
    """The names a key manager matches against: the issuer of every certificate of the chain."""
    return [cert.issuer for cert in chain]


def choose(chains: Sequence[Chain], ca_names: Sequence[x509.Name] | None) -> list[x509.Certificate] | None:
    """The chain a Java client sends, or None for no certificate at all.

    ``chains``: the key entries' chains as the store holds them, leaf first, in the store's
    order. ``ca_names``: the CertificateRequest's certificate_authorities; None or empty when
    the server names none, and then the first chain is taken.
    """
    usable = [list(chain) for chain in chains if chain]
    if not ca_names:
        return usable[0] if usable else None
    wanted = {canonical(name) for name in ca_names}
    for chain in usable:
        if any(canonical(name) in wanted for name in issuers(chain)):
            return chain
    return None
