"""safeq-admin: the primary's admin commands, a thin client of its admin API.

account, endpoints and trusted-ca are safeqlab.admincli (the same commands as
`safeq-lab account|endpoints`) over HTTP to the loopback; status and health are read
locally so they work while the service restarts.
"""
from __future__ import annotations

import json
import sys
import http.client
import urllib.error
import urllib.request

from certkit import fsio
from safeqlab import admincli

from . import health, paths

API = f"http://127.0.0.1:{paths.ADMIN_PORT}"


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
        raise admincli.AdminError(msg, exc.code) from None
    except (urllib.error.URLError, OSError, http.client.HTTPException, ValueError):
        raise admincli.AdminError("the primary server is not running (its admin API does not answer): "
                                  "check `systemctl status safeq-cloud-server`") from None


def _algorithms(value) -> str:
    """A disabledAlgorithms list evenly spaced: an override file may space its entries as it likes."""
    if value is None:
        return "(not set)"
    return ", ".join(" ".join(item.split()) for item in str(value).split(",") if item.strip())


def jre_lines(status: dict) -> list[str]:
    """The JRE that judges chains, as the server recorded it at start-up (status["jre"])."""
    jre = status.get("jre")
    if jre is None:
        return ["JRE: not recorded in the status file (written by an older server)"]
    if not isinstance(jre, dict):
        return [f"JRE: the status file's jre entry is not an object: {jre!r}"]
    if "error" in jre:
        return [f"JRE: could not be asked: {jre['error']}"]
    lines = [f"JRE: {jre.get('java.version')} ({jre.get('java.vendor')}, VM {jre.get('java.vm.version')}) "
             f"in {jre.get('java.home')}",
             f"  java.security: {jre.get('java.security')}"]
    if jre.get("java.security.error"):
        lines.append(f"  java.security real path unknown: {jre['java.security.error']}")
    override = str(jre.get("java.security.properties") or "")
    if not override:
        lines.append("  override: none")
    elif override.startswith("="):
        lines.append(f"  override: {override[1:]} (replaces java.security)")
    else:
        lines.append(f"  override: {override} (adds to / overrides java.security)")
    # The security properties the JRE reported, in its order (disabledAlgorithms and the like).
    lines += [f"  {key}: {_algorithms(value)}" for key, value in jre.items() if key.startswith("jdk.")]
    return lines


def parser() -> admincli.Parser:
    ap = admincli.Parser(prog="safeq-admin")
    sub = ap.add_subparsers(dest="cmd", required=True, metavar="COMMAND", parser_class=admincli.Parser)
    p = sub.add_parser("status", help="the server's own report (read locally: works while it restarts)")
    p.add_argument("--json", action="store_true")
    sub.add_parser("health", help="the healthcheck: port 2560 serves the certificate the policy calls for")
    sub.add_parser("openapi", help="the admin API's schema")
    api = sub.add_parser("api", help="raw call: METHOD PATH, JSON body on stdin")
    api.add_argument("method", choices=["GET", "POST", "PUT", "DELETE"])
    api.add_argument("path")
    groups = admincli.add_commands(sub)
    contains = groups["trusted-ca"].add_parser("contains", help="exit 0 when every certificate in FILEs is listed")
    contains.add_argument("files", nargs="+", metavar="FILE")
    return ap


def contains(names: list[str]) -> int:
    """0 when every certificate in the files is in the Trusted CA list (makes `up` re-runnable)."""
    from certkit.certs import fingerprint  # crypto for this command only: the others answer without it
    from . import account
    present = {c["sha256"] for c in call("GET", "/api/v1/trusted-cas")}
    wanted = set()
    for name in names:
        try:
            with open(name, "rb") as f:
                data = f.read()
        except OSError as exc:
            raise admincli.AdminError(f"{name}: {exc.strerror}") from None
        try:
            wanted |= {fingerprint(c) for c in account.load_certs(data, name)}
        except account.AccountError as exc:
            raise admincli.AdminError(str(exc)) from None
    return 0 if wanted <= present else 1


def run(args) -> int:
    if args.cmd == "status":
        status = fsio.read_json(paths.STATUS, {}) or {}
        if args.json:
            print(json.dumps(status, indent=2))
            return 0
        print(f"{status.get('state')}: {status.get('serving', {}).get('subject')}")
        print("\n".join(jre_lines(status)))
        return 0
    if args.cmd == "health":
        return health.main()
    if args.cmd == "api":
        raw = sys.stdin.read() if not sys.stdin.isatty() else ""
        try:
            body = json.loads(raw) if raw.strip() else None
        except ValueError:
            raise admincli.AdminError("the request body on stdin is not JSON") from None
        print(json.dumps(call(args.method, args.path, body), indent=2))
        return 0
    if args.cmd == "openapi":
        print(json.dumps(call("GET", "/openapi.json"), indent=2))
        return 0
    if args.cmd == "trusted-ca" and args.action == "contains":
        return contains(args.files)
    return admincli.execute(args, call)


def main(argv=None) -> int:
    try:
        return run(parser().parse_args(argv))
    except admincli.AdminError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
