"""safeq-admin: the primary's admin commands, a thin client of its admin API.

account, endpoints and trusted-ca are safeqlab.admincli (the same commands as
`safeq-lab account|endpoints`) over HTTP to the loopback; status and health are read
locally so they work while the service restarts.
"""
from __future__ import annotations

import json
import socket
import sys
from urllib.parse import urlsplit

from safeqlab import admincli

from . import paths

API = f"http://127.0.0.1:{paths.ADMIN_PORT}"
TIMEOUT = 30  # s for each step of a call: connect, send, each read
NOT_RUNNING = ("the primary server is not running (its admin API does not answer): "
               "check `systemctl status safeq-cloud-server`")


def call(method: str, path: str, body=None):
    """One HTTP/1.0 request to the admin API on the loopback, JSON in and out. A plain socket, not
    urllib: `up` runs this command several times (its polls, the doc's steps, the summary), and
    urllib's imports were half of each run's CPU."""
    where = urlsplit(API)
    data = json.dumps(body).encode() if body is not None else b""
    head = (f"{method} {path} HTTP/1.0\r\nHost: {where.netloc}\r\nContent-Type: application/json\r\n"
            f"Content-Length: {len(data)}\r\n\r\n").encode()
    try:
        with socket.create_connection((where.hostname, where.port), timeout=TIMEOUT) as sock:
            sock.sendall(head + data)
            reply = b"".join(iter(lambda: sock.recv(65536), b""))
    except OSError:
        raise admincli.AdminError(NOT_RUNNING) from None
    status_line, _, rest = reply.partition(b"\r\n")
    words = status_line.split(None, 2)
    if len(words) < 2 or not words[0].startswith(b"HTTP/") or not words[1].isdigit():
        raise admincli.AdminError(NOT_RUNNING)
    status, payload = int(words[1]), rest.partition(b"\r\n\r\n")[2]
    try:
        answer = json.loads(payload)
    except ValueError:
        answer = None
    if status >= 400:
        said = answer.get("error") if isinstance(answer, dict) else None
        reason = words[2].decode(errors="replace") if len(words) > 2 else str(status)
        raise admincli.AdminError(said or reason, status)
    if answer is None and payload.strip() != b"null":
        raise admincli.AdminError(NOT_RUNNING)
    return answer


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
        from certkit import fsio
        status = fsio.read_json(paths.STATUS, {}) or {}
        if args.json:
            print(json.dumps(status, indent=2))
            return 0
        print(f"{status.get('state')}: {status.get('serving', {}).get('subject')}")
        print("\n".join(jre_lines(status)))
        return 0
    if args.cmd == "health":
        from . import health
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
