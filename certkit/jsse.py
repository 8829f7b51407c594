"""What a JRE logs for the TLS failures it does not leave to a trust manager: alerts and transport errors.

Chain and host name verdicts come from the JRE itself (certkit.jre). What remains is said by
the TLS layer or the network, and one table turns what was reported (an alert's name, an
OpenSSL reason, an exception class) into JSSE's words; OpenSSL's own words follow in brackets.
"""
from __future__ import annotations

import re
import ssl

PKIX = ("PKIX path building failed: sun.security.provider.certpath.SunCertPathBuilderException: "
        "unable to find valid certification path to requested target")
EMPTY_CHAIN = "Empty client certificate chain"
UNRECOGNIZED = "Unsupported or unrecognized SSL message"

# TLS alert names (RFC 8446 and before), as JSSE prints them after "Received fatal alert: ".
ALERT_NAMES = (
    "unexpected_message", "bad_record_mac", "decryption_failed", "record_overflow", "decompression_failure",
    "handshake_failure", "no_certificate", "bad_certificate", "unsupported_certificate", "certificate_revoked",
    "certificate_expired", "certificate_unknown", "illegal_parameter", "unknown_ca", "access_denied",
    "decode_error", "decrypt_error", "protocol_version", "insufficient_security", "internal_error",
    "inappropriate_fallback", "user_canceled", "no_renegotiation", "missing_extension", "unsupported_extension",
    "unrecognized_name", "bad_certificate_status_response", "unknown_psk_identity", "certificate_required",
    "no_application_protocol",
)

# What was reported -> what a JRE logs. Keys: an alert name, an OpenSSL reason in words, an exception class.
REPORTED: dict[str | type, str] = {
    **{name: f"Received fatal alert: {name}" for name in ALERT_NAMES},
    "peer did not return a certificate": EMPTY_CHAIN,
    "wrong version number": UNRECOGNIZED,
    "http request": UNRECOGNIZED,
    TimeoutError: "Read timed out",
    ConnectionRefusedError: "Connection refused",
}

# OpenSSL's words for an alert from the peer: "tlsv1 alert unknown ca", "tlsv13 alert certificate
# required", "tlsv1 unrecognized name"; older releases say "sslv3 alert handshake failure", 3.x
# "ssl/tls alert handshake failure", 4.x "tls alert handshake failure".
_ALERT = re.compile(r"^(?:(?:sslv3|ssl/tls|tlsv1|tlsv13|tls) alert|tlsv1) (.+)$")
_SPELLING = {"user_cancelled": "user_canceled"}  # OpenSSL's spelling -> the RFC's, which Java prints


def openssl_words(reason: str) -> str:
    """OpenSSL's reason in words, whether given as Python's ssl names it (TLSV1_ALERT_UNKNOWN_CA)
    or as OpenSSL prints it (tlsv1 alert unknown ca)."""
    return reason.strip().lower().replace("_", " ")


def reported(words: str) -> str:
    """The table key for an OpenSSL reason: the alert's name if it is one, else the words."""
    alert = _ALERT.match(words)
    if alert:
        name = alert.group(1).replace(" ", "_")
        name = _SPELLING.get(name, name)
        if name in REPORTED:
            return name
    return words


def tls_reason(reason: str, java_version: str | None = None) -> str:
    """A TLS-layer failure in JSSE's words. An alert is said as the JRE says it ("Received fatal
    alert: unknown_ca", on JRE 21 with "(unknown_ca) " in front); other failures keep OpenSSL's
    own words in brackets, where they say more than the JRE's."""
    words = openssl_words(reason)
    key = reported(words)
    if key in ALERT_NAMES:
        return handshake_message(key, REPORTED[key], java_version)
    java = REPORTED.get(key)
    return f"{java} (openssl: {words})" if java else f"TLS error (openssl: {words})"


def java_reason(exc: BaseException, java_version: str | None = None) -> str:
    """One line for a failed connection, in a JRE's words where it has any (``java_version``:
    the JRE whose wording to follow, see handshake_message)."""
    if isinstance(exc, ssl.SSLError):
        reason = getattr(exc, "reason", None)
        return tls_reason(reason, java_version) if reason else f"TLS error (openssl: {exc})"
    for cls in type(exc).__mro__:
        if cls in REPORTED:
            return REPORTED[cls]
    if isinstance(exc, OSError) and exc.strerror:
        return exc.strerror
    return str(exc) or exc.__class__.__name__


def refusal_alert(certificate_exception: bool) -> str:
    """The alert a Java endpoint sends when its trust manager refuses the peer: certificate
    problems are certificate_unknown, anything else (an empty trust store) internal_error."""
    return "certificate_unknown" if certificate_exception else "internal_error"


def java_major(version: str | None) -> int:
    """21 for "21.0.13", 8 for "1.8.0_402"; 0 when unknown."""
    parts = re.findall(r"\d+", version or "")
    if not parts:
        return 0
    return int(parts[1]) if parts[0] == "1" and len(parts) > 1 else int(parts[0])


def handshake_message(alert: str, message: str, java_version: str | None) -> str:
    """The message of the exception a Java endpoint logs as it sends ``alert`` for ``message``.

    Seen in the reference runs: JRE 21 (21.0.13) puts the alert first, "(certificate_unknown)
    PKIX path ...", JRE 17 (17.0.15) gives the message alone."""
    return f"({alert}) {message}" if java_major(java_version) >= 21 else message


# JSSE's key exchange names by the start of OpenSSL's TLS 1.2 cipher suite name.
_KEY_EXCHANGE = (("ECDHE-ECDSA-", "ECDHE_ECDSA"), ("ECDHE-RSA-", "ECDHE_RSA"), ("DHE-RSA-", "DHE_RSA"),
                 ("DHE-DSS-", "DHE_DSS"), ("ECDH-ECDSA-", "ECDH_ECDSA"), ("ECDH-RSA-", "ECDH_RSA"))


def auth_type(version: str | None, cipher: str | None) -> str:
    """The authType JSSE hands its trust manager: "UNKNOWN" under TLS 1.3 (the certificate's
    own key decides), else the key exchange of the negotiated suite."""
    if not cipher or version == "TLSv1.3" or cipher.startswith("TLS_"):
        return "UNKNOWN"
    for prefix, name in _KEY_EXCHANGE:
        if cipher.startswith(prefix):
            return name
    # Plain RSA key transport has no prefix ("AES128-GCM-SHA256"); PSK and anonymous suites name theirs.
    if any(part in cipher.split("-") for part in ("PSK", "SRP", "ADH", "AECDH", "ECDHE", "DHE")):
        return "UNKNOWN"
    return "RSA"


def ecdhe_auth_type(leaf) -> str:
    """JSSE's authType for a TLS 1.2 ECDHE suite, from the server certificate's key (the suite
    is not known yet while the chain is judged; an ECDHE-only offer makes this exact)."""
    from cryptography.hazmat.primitives.asymmetric import ec, ed448, ed25519, rsa
    key = leaf.public_key()
    if isinstance(key, (ec.EllipticCurvePublicKey, ed25519.Ed25519PublicKey, ed448.Ed448PublicKey)):
        return "ECDHE_ECDSA"
    return "ECDHE_RSA" if isinstance(key, rsa.RSAPublicKey) else "UNKNOWN"


def java_sni(host: str) -> str | None:
    """The server name a Java client sends (SNI) when it connects to ``host``: a host name with a
    dot in it, not an address and not ending in a dot; none otherwise (JSSE's rule)."""
    import ipaddress
    name = host.strip("[]")
    try:
        ipaddress.ip_address(name)
        return None
    except ValueError:
        pass
    return name if "." in name.strip(".") and not name.endswith(".") else None
