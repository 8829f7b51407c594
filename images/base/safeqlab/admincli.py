"""The account, endpoints and trusted-ca commands over the primary's admin API.

One definition for `safeq-admin` (in the primary, HTTP to its loopback) and for
`safeq-lab account|endpoints` (on the host, through `docker compose exec`): the
arguments, the request each command makes, and how the answer is shown. The caller
brings the transport, ``call(method, path, body) -> JSON``, which raises AdminError.
Standard library only: it runs in the containers too.
"""
from __future__ import annotations

import argparse
import base64
import json
import os
import sys
from typing import Callable, Iterable, NamedTuple
from urllib.parse import quote

# The server validates these too; here they give --help and early errors.
POLICIES = ("built-in", "trusted-ca")
ON_FAILURE = ("fail-closed", "fail-open")
ON_OFF = ("on", "off")

Call = Callable[[str, str, object], object]


class AdminError(Exception):
    """A refused request or a bad command line: one `error:` line, exit 2."""

    def __init__(self, message: str, status: int | None = None):
        super().__init__(message)
        self.status = status  # the HTTP status, when the API answered


class Parser(argparse.ArgumentParser):
    def error(self, message):  # one line, like every other error, instead of usage + message
        raise AdminError(f"{message} (see `{self.prog} --help`)")


def _json_flag(p: argparse.ArgumentParser) -> None:
    # SUPPRESS: `endpoints --json` and `endpoints list --json` both work (a leaf's default
    # would otherwise overwrite the flag its parent saw).
    p.add_argument("--json", action="store_true", default=argparse.SUPPRESS, help="machine-readable output")


def _group(sub, name: str, help: str, default: str):
    p = sub.add_parser(name, help=help, description=help)
    _json_flag(p)
    acts = p.add_subparsers(dest="action", metavar="ACTION")
    p.set_defaults(action=default)  # after add_subparsers, so it becomes that action's default
    return p, acts


def _leaf(sub, name: str, help: str) -> argparse.ArgumentParser:
    p = sub.add_parser(name, help=help, description=help)
    _json_flag(p)
    return p


def _account(sub) -> argparse._SubParsersAction:
    _, acts = _group(sub, "account", "the account's PKI and encryption settings and Trusted CA certificates", "show")
    _leaf(acts, "show", "show the settings and the Trusted CA certificates")
    _leaf(acts, "set-policy", "certificate policy for internal communication (applies live)").add_argument(
        "policy", choices=POLICIES)
    _leaf(acts, "auto-trust", "automatically trust new clients/servers (built-in policy only)").add_argument(
        "state", choices=ON_OFF)
    ocsp = _leaf(acts, "ocsp", "OCSP revocation checks")
    ocsp.add_argument("state", nargs="?", choices=ON_OFF)
    url = ocsp.add_mutually_exclusive_group()
    url.add_argument("--url", help="custom OCSP URL for certificates without one")
    url.add_argument("--no-url", action="store_true", help="clear the custom OCSP URL")
    ocsp.add_argument("--on-failure", choices=ON_FAILURE,
                      help="when the responder cannot answer (a lab setting: the product does not document it)")
    _leaf(acts, "import-ca", "import root/intermediate CA certificates (PEM or DER); all or nothing").add_argument(
        "files", nargs="+", metavar="FILE")
    _leaf(acts, "remove-ca", "remove a Trusted CA certificate by SHA-256 (or 8+ hex digits of it) or CN").add_argument(
        "ident", metavar="ID")
    return acts


def _endpoints(sub) -> argparse._SubParsersAction:
    _, acts = _group(sub, "endpoints", "gateways and clients known to the primary; endpoint authorization", "list")
    _leaf(acts, "list", "every endpoint the primary knows")
    _leaf(acts, "trust", "trust an endpoint (built-in policy)").add_argument(
        "ident", metavar="ID", help="the endpoint's id, or its name when only one endpoint has it")
    _leaf(acts, "untrust", "untrust an endpoint; it is disconnected").add_argument(
        "ident", metavar="ID", help="the endpoint's id, or its name when only one endpoint has it")
    return acts


def _trusted_ca(sub) -> argparse._SubParsersAction:
    _, acts = _group(sub, "trusted-ca", "the Trusted CA certificates list", "list")
    _leaf(acts, "list", "the Trusted CA certificates")
    _leaf(acts, "import", "import CA certificate files (PEM or DER); all or nothing").add_argument(
        "files", nargs="+", metavar="FILE")
    _leaf(acts, "remove", "remove one by SHA-256 (or 8+ hex digits of it) or CN").add_argument("ident", metavar="ID")
    return acts


GROUPS = {"account": _account, "endpoints": _endpoints, "trusted-ca": _trusted_ca}


def add_commands(sub, names: Iterable[str] = tuple(GROUPS)) -> dict[str, argparse._SubParsersAction]:
    """Add the command groups to ``sub``; returns each group's actions, for a caller's own extra ones."""
    return {name: GROUPS[name](sub) for name in names}


def parser(prog: str, names: Iterable[str] = tuple(GROUPS)) -> Parser:
    ap = Parser(prog=prog)
    add_commands(ap.add_subparsers(dest="cmd", required=True, metavar="COMMAND", parser_class=Parser), names)
    return ap


def read_files(names: list[str]) -> list[dict]:
    """The files as the API takes them; read where the command runs."""
    files = []
    for name in names:
        try:
            with open(name, "rb") as f:
                data = f.read()
        except OSError as exc:
            raise AdminError(f"{name}: {exc.strerror}") from None
        files.append({"name": os.path.basename(name), "data_base64": base64.b64encode(data).decode()})
    return files


def _ocsp_body(args) -> dict:
    body = {}
    if args.state:
        body["enabled"] = args.state == "on"
    if args.url or args.no_url:
        body["url"] = None if args.no_url else args.url
    if args.on_failure:
        body["on_failure"] = args.on_failure
    return body


def _id(args) -> str:
    return quote(args.ident, safe="")


# -- what each command sends, and how the answer reads --------------------------------------

def account_lines(acc: dict) -> Iterable[str]:
    o = acc["ocsp"]
    yield f"Certificate policy for internal communication: {acc['certificate_policy']}"
    yield f"Automatically trust new clients/servers: {'on' if acc['auto_trust'] else 'off'}"
    yield f"OCSP revocation checks: {'on' if o['enabled'] else 'off'}; custom OCSP URL: {o['url'] or '-'}; on failure: {o['on_failure']}"
    yield "Trusted CA certificates:"
    yield from ca_lines(acc["trusted_cas"])
    for problem in acc.get("trusted_ca_problems") or []:
        yield f"  problem: {problem}"


def ca_lines(cas: list) -> Iterable[str]:
    if not cas:
        yield "  (none)"
    for ca in cas:
        yield f"  {short_sha(ca['sha256'])}  {ca['subject']}  (until {ca['not_after'][:10]})"


def short_sha(sha256: str) -> str:
    return sha256.replace(":", "")[:16].lower()


def endpoint_lines(eps: list) -> Iterable[str]:
    yield f"{'id':<36}  {'name':<16} {'role':<8} {'decision':<12} {'state':<13} last seen             reason"
    for ep in eps:
        yield (f"{ep.get('id') or '?':<36}  {ep.get('name') or '?':<16} {ep.get('role') or '?':<8} "
               f"{ep.get('decision') or '?':<12} {ep.get('state') or '?':<13} {ep.get('last_seen') or '-':<21} "
               f"{ep.get('reason') or ''}")


def endpoint_change(verb: str) -> Callable[[dict], Iterable[str]]:
    def lines(ep: dict) -> Iterable[str]:
        yield f"{verb} endpoint {ep.get('id')} ({ep.get('role') or '?'} {ep.get('name') or '?'})"
        yield f"  sha256 {ep.get('sha256') or '?'}"
        if verb == "untrusted":
            yield "  it is disconnected and refused until trusted again"
    return lines


class Command(NamedTuple):  # not a dataclass: importing dataclasses costs each safeq-admin run 10 ms
    method: str
    path: Callable[[argparse.Namespace], str]
    render: Callable[[object], Iterable[str]]
    body: Callable[[argparse.Namespace], object] = lambda args: None


_IMPORT = Command("POST", lambda a: "/api/v1/trusted-cas",
                  lambda cas: (f"imported trusted CA {c['subject']} ({short_sha(c['sha256'])})" for c in cas),
                  lambda a: {"files": read_files(a.files)})
_REMOVE = Command("DELETE", lambda a: f"/api/v1/trusted-cas/{_id(a)}",
                  lambda c: [f"removed trusted CA {c['subject']} ({short_sha(c['sha256'])})"])
_ACCOUNT = "/api/v1/account"

COMMANDS = {
    ("account", "show"): Command("GET", lambda a: _ACCOUNT, account_lines),
    ("account", "set-policy"): Command("PUT", lambda a: f"{_ACCOUNT}/policy", account_lines,
                                       lambda a: {"policy": a.policy}),
    ("account", "auto-trust"): Command("PUT", lambda a: f"{_ACCOUNT}/auto-trust", account_lines,
                                       lambda a: {"enabled": a.state == "on"}),
    ("account", "ocsp"): Command("PUT", lambda a: f"{_ACCOUNT}/ocsp", account_lines, _ocsp_body),
    ("account", "import-ca"): _IMPORT,
    ("account", "remove-ca"): _REMOVE,
    ("endpoints", "list"): Command("GET", lambda a: "/api/v1/endpoints", endpoint_lines),
    ("endpoints", "trust"): Command("POST", lambda a: f"/api/v1/endpoints/{_id(a)}/trust", endpoint_change("trusted")),
    ("endpoints", "untrust"): Command("POST", lambda a: f"/api/v1/endpoints/{_id(a)}/untrust",
                                      endpoint_change("untrusted")),
    ("trusted-ca", "list"): Command("GET", lambda a: "/api/v1/trusted-cas", ca_lines),
    ("trusted-ca", "import"): _IMPORT,
    ("trusted-ca", "remove"): _REMOVE,
}


def request(args: argparse.Namespace) -> tuple[str, str, object]:
    """(method, path, body) for a parsed command line."""
    cmd = COMMANDS[(args.cmd, args.action)]
    return cmd.method, cmd.path(args), cmd.body(args)


def execute(args: argparse.Namespace, call: Call, out=None) -> int:
    """Send the request, print the answer (JSON with --json); AdminError when refused."""
    out = out or sys.stdout
    result = call(*request(args))
    if getattr(args, "json", False):
        print(json.dumps(result, indent=2), file=out)
    else:
        for line in COMMANDS[(args.cmd, args.action)].render(result):
            print(line, file=out)
    return 0


def main(argv: list[str], call: Call, prog: str, names: Iterable[str] = tuple(GROUPS)) -> int:
    """Parse, send, show; an error is one `error:` line on stderr and exit 2."""
    try:
        return execute(parser(prog, names).parse_args(argv), call)
    except AdminError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
