"""The primary's admin API from the host: an exec into the primary (lab.engine), nothing published.

`safeq-lab account|endpoints` are safeqlab.admincli, the same commands as the primary's
`safeq-admin`, with a transport that runs `safeq-admin api METHOD PATH` in the container.
"""
from __future__ import annotations

import json

import click

from safeqlab import admincli

from . import engine
from .errors import LabError


def lab_call(method: str, path: str, body=None, timeout: float = engine.DEFAULT):
    """One API call; LabError with the API's own words when it refuses (NotRunning without a primary)."""
    proc = engine.execute("primary", ["safeq-admin", "api", method, path],
                          input=json.dumps(body) if body is not None else "", timeout=timeout)
    if proc.returncode != 0:
        msg = (proc.stderr or proc.stdout).strip().splitlines()
        raise LabError(msg[-1].removeprefix("error: ") if msg else f"exit {proc.returncode}")
    try:
        return json.loads(proc.stdout)
    except ValueError:
        raise LabError(f"the primary's admin API answered something that is not JSON: {proc.stdout[:200]!r}") from None


def transport(method: str, path: str, body=None):
    """admincli's call(): its errors are admincli's, printed as one `error:` line."""
    try:
        return lab_call(method, path, body)
    except LabError as exc:
        raise admincli.AdminError(str(exc)) from None


def forward(group: str, help: str):
    """A click command that hands its arguments to admincli (which has the options and --help)."""
    @click.command(group, help=help, add_help_option=False,
                   context_settings={"ignore_unknown_options": True, "allow_interspersed_args": False})
    @click.argument("args", nargs=-1, type=click.UNPROCESSED)
    def command(args) -> None:
        raise SystemExit(admincli.main([group, *args], transport, prog="safeq-lab", names=("account", "endpoints")))
    return command


account = forward("account", "Account settings on the primary: certificate policy, auto-trust, Trusted CA "
                             "certificates, OCSP (`safeq-lab account --help`).")
endpoints = forward("endpoints", "Gateways and clients known to the primary; endpoint authorization "
                                 "(`safeq-lab endpoints --help`).")
