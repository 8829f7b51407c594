"""TLS failures in the words a JRE logs (JSSE and PKIX), with OpenSSL's words in brackets."""
from __future__ import annotations

import ssl

PKIX = ("PKIX path building failed: sun.security.provider.certpath.SunCertPathBuilderException: "
        "unable to find valid certification path to requested target")
EMPTY_CHAIN = "Empty client certificate chain"

# OpenSSL verify codes -> JSSE wording: the words admins search for.
_VERIFY = {
    2: PKIX, 18: PKIX, 19: PKIX, 20: PKIX, 21: PKIX,
    10: "PKIX path validation failed: java.security.cert.CertPathValidatorException: validity check failed",
    9: "PKIX path validation failed: java.security.cert.CertPathValidatorException: validity check failed",
    23: "PKIX path validation failed: java.security.cert.CertPathValidatorException: Certificate has been revoked",
}
_ALERTS = {
    "TLSV1_ALERT_UNKNOWN_CA": "Received fatal alert: unknown_ca",
    "SSLV3_ALERT_BAD_CERTIFICATE": "Received fatal alert: bad_certificate",
    "TLSV13_ALERT_CERTIFICATE_REQUIRED": "Received fatal alert: certificate_required",
    "SSLV3_ALERT_CERTIFICATE_EXPIRED": "Received fatal alert: certificate_expired",
    "SSLV3_ALERT_UNSUPPORTED_CERTIFICATE": "Received fatal alert: unsupported_certificate",
    "SSLV3_ALERT_HANDSHAKE_FAILURE": "Received fatal alert: handshake_failure",
    "PEER_DID_NOT_RETURN_A_CERTIFICATE": EMPTY_CHAIN,
    "WRONG_VERSION_NUMBER": "Unsupported or unrecognized SSL message",
    "HTTP_REQUEST": "Unsupported or unrecognized SSL message",
}


def java_reason(exc: BaseException, *, hostname: str | None = None, client_side: bool = True) -> str:
    """One line: the JSSE-style reason, then OpenSSL's own words in brackets."""
    if isinstance(exc, ssl.SSLCertVerificationError):
        code, msg = exc.verify_code, exc.verify_message
        if code == 62 or "hostname mismatch" in (msg or "").lower() or "IP address mismatch" in (msg or ""):
            java = f"No subject alternative DNS name matching {hostname} found."
        elif code == 26:
            java = ("Extended key usage does not permit use for TLS "
                    f"{'server' if client_side else 'client'} authentication")
        else:
            java = _VERIFY.get(code, "PKIX path validation failed")
        return f"{java} (openssl: {msg})"
    if isinstance(exc, ssl.SSLError):
        reason = getattr(exc, "reason", None) or ""
        java = _ALERTS.get(reason)
        detail = reason.lower().replace("_", " ") if reason else str(exc)
        return f"{java} (openssl: {detail})" if java else f"TLS error (openssl: {detail})"
    if isinstance(exc, TimeoutError):
        return "Read timed out"
    if isinstance(exc, ConnectionRefusedError):
        return "Connection refused"
    if isinstance(exc, OSError) and exc.strerror:
        return exc.strerror
    return str(exc) or exc.__class__.__name__
