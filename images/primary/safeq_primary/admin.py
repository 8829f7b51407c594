"""safeq-admin: the primary's admin commands, a thin client of its admin API.

status and health are read locally so they work while the service restarts.
"""
from __future__ import annotations

import argparse
import base64
import json
import re
import subprocess
import sys
import http.client
import urllib.error
import urllib.request
from urllib.parse import quote

from cryptography import x509

from certkit import fsio
from safeqlab import util
from certkit.certs import describe, fingerprint

from . import account, paths

API = f"http://127.0.0.1:{paths.ADMIN_PORT}"


class AdminError(Exception):
    pass


def call(method: str, path: str, body=None):
    data = json.dumps(body).encode() if body is not None else None
    req = urllib.request.Request(API + path, data=data, method=method, headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(req, timeout=30) as resp:
            return json.loads(resp.read())
    except urllib.error.HTTPError as exc:
        try:
            msg = json.loads(exc.read()).get("error")
        except ValueError:
            msg = exc.reason
        raise AdminError(msg) from None
    except (urllib.error.URLError, OSError, http.client.HTTPException, ValueError):
        raise AdminError("the primary server is not running (its admin API does not answer): "
                         "check `systemctl status safeq-cloud-server`") from None


def served_certificate(host: str) -> x509.Certificate | None:
    """What `openssl s_client -servername HOST -connect localhost:2560` shows: the doc's own check."""
    try:
        proc = subprocess.run(["openssl", "s_client", "-servername", host, "-connect", f"localhost:{paths.PORT}"],
                              input=b"", capture_output=True, timeout=10)
    except subprocess.TimeoutExpired:
        return None
    m = re.search(rb"-----BEGIN CERTIFICATE-----.+?-----END CERTIFICATE-----", proc.stdout, re.S)
    return x509.load_pem_x509_certificate(m.group(0)) if m else None


def health() -> tuple[bool, str]:
    status = fsio.read_json(paths.STATUS)
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
        return False, f"port {paths.PORT} serves {describe(cert)['subject']}, not the configured certificate"
    return True, f"serving {expected['subject']} issued by {expected['issuer']} ({status['state']})"


def show(data, as_json: bool, lines) -> None:
    print(json.dumps(data, indent=2) if as_json else "\n".join(lines(data)))


def endpoint_lines(eps):
    for ep in eps:
        yield (f"{ep['id']}  {ep.get('name') or '?':<16} {ep.get('role') or '?':<8} {ep.get('decision') or '?':<12} "
               f"{ep.get('state') or '?':<13} {ep.get('subject') or ''}  {ep.get('reason') or ''}")


def account_lines(acc):
    yield f"Certificate policy for internal communication: {acc['certificate_policy']}"
    yield f"Automatically trust new clients/servers: {'on' if acc['auto_trust'] else 'off'}"
    o = acc["ocsp"]
    yield f"OCSP revocation checks: {'on' if o['enabled'] else 'off'}; custom OCSP URL: {o['url'] or '-'}; on failure: {o['on_failure']}"
    yield "Trusted CA certificates:"
    for ca in acc["trusted_cas"]:
        yield f"  {ca['sha256'].replace(':', '')[:16].lower()}  {ca['subject']}  (until {ca['not_after'][:10]})"


def parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(prog="safeq-admin")
    sub = ap.add_subparsers(dest="cmd", required=True)
    p = sub.add_parser("status"); p.add_argument("--json", action="store_true")
    sub.add_parser("health")
    sub.add_parser("openapi")
    api = sub.add_parser("api", help="raw call: METHOD PATH, JSON body on stdin")
    api.add_argument("method", choices=["GET", "POST", "PUT", "DELETE"])
    api.add_argument("path")
    ep = sub.add_parser("endpoints"); ep.add_argument("--json", action="store_true")
    ep.add_argument("action", nargs="?", choices=["list", "trust", "untrust"], default="list")
    ep.add_argument("id", nargs="?")
    acc = sub.add_parser("account"); acc.add_argument("--json", action="store_true")
    acc.add_argument("action", nargs="?", choices=["show", "set-policy", "auto-trust", "ocsp"], default="show")
    acc.add_argument("value", nargs="?")
    acc.add_argument("--url"); acc.add_argument("--no-url", action="store_true")
    acc.add_argument("--on-failure", choices=list(account.ON_FAILURE))
    tca = sub.add_parser("trusted-ca"); tca.add_argument("--json", action="store_true")
    tca.add_argument("action", choices=["import", "list", "remove", "contains"])
    tca.add_argument("args", nargs="*")
    return ap


def run(args) -> int:
    if args.cmd == "status":
        status = fsio.read_json(paths.STATUS, {}) or {}
        show(status, args.json, lambda s: [f"{s.get('state')}: {s.get('serving', {}).get('subject')}"])
        return 0
    if args.cmd == "health":
        ok, why = health()
        print(why)
        return 0 if ok else 1
    if args.cmd == "api":
        raw = sys.stdin.read() if not sys.stdin.isatty() else ""
        try:
            body = json.loads(raw) if raw.strip() else None
        except ValueError:
            raise AdminError("the request body on stdin is not JSON") from None
        print(json.dumps(call(args.method, args.path, body), indent=2))
        return 0
    if args.cmd == "openapi":
        print(json.dumps(call("GET", "/openapi.json"), indent=2))
        return 0
    if args.cmd == "endpoints":
        if args.action == "list":
            show(call("GET", "/api/v1/endpoints"), args.json, endpoint_lines)
            return 0
        if not args.id:
            raise AdminError(f"endpoints {args.action} needs an endpoint id (or a unique name)")
        show([call("POST", f"/api/v1/endpoints/{quote(args.id, safe='')}/{args.action}")], args.json, endpoint_lines)
        return 0
    if args.cmd == "account":
        if args.action == "show":
            result = call("GET", "/api/v1/account")
        elif args.action == "set-policy":
            result = call("PUT", "/api/v1/account/policy", {"policy": args.value})
        elif args.action == "auto-trust":
            if args.value not in ("on", "off"):
                raise AdminError("auto-trust takes on or off")
            result = call("PUT", "/api/v1/account/auto-trust", {"enabled": args.value == "on"})
        else:
            body = {}
            if args.value is not None:
                if args.value not in ("on", "off"):
                    raise AdminError("ocsp takes on or off")
                body["enabled"] = args.value == "on"
            if args.url or args.no_url:
                body["url"] = None if args.no_url else args.url
            if args.on_failure:
                body["on_failure"] = args.on_failure
            result = call("PUT", "/api/v1/account/ocsp", body)
        show(result, args.json, account_lines)
        return 0
    # trusted-ca
    if args.action == "list":
        show(call("GET", "/api/v1/trusted-cas"), args.json, lambda cas: [c["subject"] for c in cas])
        return 0
    if args.action == "remove":
        if len(args.args) != 1:
            raise AdminError("trusted-ca remove takes one fingerprint (or CN)")
        ca = call("DELETE", f"/api/v1/trusted-cas/{quote(args.args[0], safe='')}")
        print(f"removed trusted CA {ca['subject']}")
        return 0
    if not args.args:
        raise AdminError(f"trusted-ca {args.action} needs at least one file")
    files = []
    for name in args.args:
        try:
            with open(name, "rb") as f:
                files.append((name, f.read()))
        except OSError as exc:
            raise AdminError(f"{name}: {exc.strerror}") from None
    if args.action == "contains":
        present = {c["sha256"] for c in call("GET", "/api/v1/trusted-cas")}
        wanted = {fingerprint(c) for name, data in files for c in account.load_certs(data, name)}
        return 0 if wanted <= present else 1
    added = call("POST", "/api/v1/trusted-cas",
                 {"files": [{"name": n, "data_base64": base64.b64encode(d).decode()} for n, d in files]})
    for ca in added:
        print(f"imported trusted CA {ca['subject']}")
    return 0


def main(argv=None) -> int:
    args = parser().parse_args(argv)
    try:
        return run(args)
    except (AdminError, account.AccountError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
