"""safeq-admin: the primary's local admin commands (read by the lab's checks and status)."""
from __future__ import annotations

import argparse
import json
import re
import subprocess
import sys

from cryptography import x509

from safeqlab import util
from safeqlab.tlsinfo import describe, fingerprint

from . import account, paths

ENDPOINT_FIELDS = ("name", "role", "subject", "issuer", "decision", "reason", "state", "last_seen", "address", "sni", "tls", "chain")


def endpoints() -> list[dict]:
    data = util.read_json(paths.ENDPOINTS, {}) or {}
    return [{k: ep.get(k) for k in ENDPOINT_FIELDS} for ep in data.get("endpoints", {}).values()]


def served_certificate(host: str) -> x509.Certificate | None:
    """What `openssl s_client -servername HOST -connect localhost:2560` shows: the doc's own check."""
    proc = subprocess.run(["openssl", "s_client", "-servername", host, "-connect", f"localhost:{paths.PORT}"],
                          input=b"", capture_output=True, timeout=10)
    m = re.search(rb"-----BEGIN CERTIFICATE-----.+?-----END CERTIFICATE-----", proc.stdout, re.S)
    return x509.load_pem_x509_certificate(m.group(0)) if m else None


def health() -> tuple[bool, str]:
    status = util.read_json(paths.STATUS)
    if not status:
        return False, "server has not started"
    if status["state"] == "fallback":
        return False, f"serving the fallback localhost certificate: {status['keystore']['reason']}"
    expected = status["serving"]
    host = expected["subject"].split("CN=", 1)[-1].split(",")[0]
    cert = served_certificate(host)
    if cert is None:
        return False, f"nothing answers TLS on port {paths.PORT}"
    if fingerprint(cert) != expected["sha256"]:
        return False, f"port {paths.PORT} serves {describe(cert)['subject']}, not the keystore certificate"
    return True, f"serving {expected['subject']} issued by {expected['issuer']} ({status['state']})"


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(prog="safeq-admin")
    sub = ap.add_subparsers(dest="cmd", required=True)
    for name in ("endpoints", "status"):
        p = sub.add_parser(name)
        p.add_argument("--json", action="store_true")
    sub.add_parser("health")
    tca = sub.add_parser("trusted-ca")
    tsub = tca.add_subparsers(dest="action", required=True)
    imp = tsub.add_parser("import")
    imp.add_argument("files", nargs="+")
    lst = tsub.add_parser("list")
    lst.add_argument("--json", action="store_true")
    args = ap.parse_args(argv)

    if args.cmd == "endpoints":
        eps = endpoints()
        if args.json:
            print(json.dumps(eps, indent=2))
        else:
            for ep in eps:
                print(f"{ep['name']:<16} {ep['role']:<8} {ep['decision']:<12} {ep['state']:<13} {ep['subject']}  {ep['reason']}")
        return 0
    if args.cmd == "status":
        status = util.read_json(paths.STATUS, {}) or {}
        print(json.dumps(status, indent=2) if args.json else f"{status.get('state')}: {status.get('serving', {}).get('subject')}")
        return 0
    if args.cmd == "health":
        ok, why = health()
        print(why)
        return 0 if ok else 1
    if args.action == "list":
        cas = [describe(c) for c in account.trusted_cas()]
        print(json.dumps(cas, indent=2) if args.json else "\n".join(c["subject"] for c in cas))
        return 0
    try:
        # Validate every file before writing any, so a bad file changes nothing.
        for f in args.files:
            certs = account.load_certs(open(f, "rb").read(), f)
            bad = [c for c in certs if not account.is_ca(c)]
            if bad:
                raise account.ImportError_(f"{f}: {bad[0].subject.rfc4514_string()} is not a CA certificate "
                                           "(BasicConstraints CA=true missing)")
        for f in args.files:
            for c in account.import_ca(f):
                print(f"imported trusted CA {c['subject']}")
    except (OSError, account.ImportError_) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
