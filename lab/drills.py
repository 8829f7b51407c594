"""Drills: what a PKI action does to every endpoint at once, observed on the primary.

`drill revoke --count K`: with OCSP revocation checks on, K endpoints' certificates are revoked at the
lab CA; exactly those must be refused ("OCSP: Certificate has been revoked"), every other endpoint stays
connected. Then each revoked endpoint gets a new certificate (`pki reissue`) and a restart, and all must
be back. The account's OCSP settings are put back as they were.
"""
from __future__ import annotations

import json
import shlex
import time
from dataclasses import asdict, dataclass, field
from typing import Callable

import click

import pki
from pki.cli import reports_errors
from safeqlab.records import current_record

from . import admin, engine, project, swarmlab, topology
from .errors import LabError

REVOKED = "OCSP: Certificate has been revoked"
UNITS = {"gateway": "safeq-gateway", "client": "safeq-client"}  # the service each endpoint runs
WAIT = 90.0  # s for the primary to see each step (its revocation re-check runs every 2 s)


@dataclass
class Report:
    drill: str
    acted_on: list[str] = field(default_factory=list)
    steps: list[dict] = field(default_factory=list)
    ok: bool = True

    def step(self, what: str, seen: dict[str, str], wrong: list[str], seconds: float) -> None:
        self.steps.append({"step": what, "seconds": round(seconds, 1), "connected": sum(
            v == "accepted, connected" for v in seen.values()), "endpoints": seen, "unexpected": wrong})
        self.ok = self.ok and not wrong


def endpoints(topo: topology.Topology) -> dict[str, tuple[str, str]]:
    """host -> (compose service, role) for every gateway and client the lab runs (the extra ones too).
    A container of several client installs (lab.scale) has each install's host as a network alias."""
    return {host: (s.name, s.role) for s in topo.services if s.role in UNITS
            for host in (s.aliases or ((s.host,) if s.host else ()))}


def restart_endpoint(by_host: dict[str, tuple[str, str]], host: str) -> None:
    """Restart one endpoint's service (it reads its key and certificate again), as its admin would.
    A client names its install: in a container of several, only that install's service restarts."""
    service, role = by_host[host]
    if role == "client":
        engine.exec_sh(service, f"safeq-client restart --install {shlex.quote(host)}")
    else:
        engine.exec_sh(service, f"systemctl restart {UNITS[role]}")


def _number(host: str) -> int:
    tail = host.rpartition("-")[2]
    return int(tail) if tail.isdigit() else 1


def pick(roles: dict[str, str], count: int) -> list[str]:
    """The K endpoints a drill acts on (host -> role given): clients first, the last added first, then gateways."""
    if not 1 <= count <= len(roles):
        raise LabError(f"--count {count}: the lab runs {len(roles)} gateways and clients; give 1 to {len(roles)} "
                       "(`safeq-lab up --gateways N --clients M` runs more)")
    return sorted(roles, key=lambda h: (roles[h] != "client", -_number(h), h))[:count]


def observe(records: list[dict], hosts: list[str], dropped: dict[str, tuple[str, str]]) -> tuple[dict[str, str], list[str]]:
    """Each host as the primary records it now, and what is not as expected: each ``dropped`` host with
    its (decision, words of the reason), every other one accepted and connected."""
    seen, wrong = {}, []
    for host in hosts:
        rec = current_record(records, host) or {}
        seen[host] = f"{rec.get('decision') or 'never seen'}, {rec.get('state') or '-'}"
        if host in dropped:
            decision, words = dropped[host]
            if rec.get("decision") != decision or words not in (rec.get("reason") or ""):
                wrong.append(f"{host}: expected {decision} ({words}), the primary says {seen[host]}: {rec.get('reason')}")
        elif seen[host] != "accepted, connected":
            wrong.append(f"{host}: expected accepted and connected, the primary says {seen[host]}: {rec.get('reason')}")
    return seen, wrong


def wait_for(report: Report, what: str, hosts: list[str], dropped: dict[str, tuple[str, str]],
             also: Callable[[list[dict]], list[str]] = lambda records: [], interval: float = 1.0) -> None:
    """Until the primary shows what observe() expects and ``also(records)`` finds nothing wrong (or WAIT
    passed); one step of the report."""
    began = time.monotonic()
    while True:
        records = admin.lab_call("GET", "/api/v1/endpoints")
        seen, wrong = observe(records, hosts, dropped)
        wrong += also(records)
        if not wrong or time.monotonic() - began > WAIT:
            report.step(what, seen, wrong, time.monotonic() - began)
            return
        time.sleep(interval)


def revoke(count: int, reason: str = "keyCompromise") -> Report:
    swarmlab.require_compose("the revocation drill")
    topo = topology.load()
    by_host = endpoints(topo)
    hosts = sorted(by_host)
    chosen = pick({h: role for h, (_, role) in by_host.items()}, count)
    pki_dir = project.pki_dir()
    if not pki.exists(pki_dir):
        raise LabError(f"the drill revokes at the lab's own CA, and there is no PKI in {pki_dir}: "
                       "run it on a lab started without --spec")
    report = Report("revoke", chosen)
    before = admin.lab_call("GET", "/api/v1/account")["ocsp"]
    wait_for(report, "before: every endpoint accepted and connected", hosts, {})
    if not report.ok:
        return report
    admin.lab_call("PUT", "/api/v1/account/ocsp", {"enabled": True, "on_failure": "fail-closed"})
    try:
        for host in chosen:
            pki.revoke(pki_dir, host, reason)
        wait_for(report, f"{count} revoked at the CA, OCSP checks on: exactly those refused", hosts,
                 {h: ("refused", REVOKED) for h in chosen})
        for host in chosen:  # the way back: a new certificate and key, then the endpoint's restart
            pki.reissue(pki_dir, host)
            restart_endpoint(by_host, host)
        wait_for(report, "each revoked endpoint reissued and restarted: all back", hosts, {})
    finally:
        admin.lab_call("PUT", "/api/v1/account/ocsp", before)
    return report


def lines(report: Report) -> list[str]:
    """The report as `drill` prints it: each step, its figures, what was not as expected."""
    out = [f"drill {report.drill}: {', '.join(report.acted_on)}"]
    for step in report.steps:
        out.append(f"  {step['step']}: {step['connected']}/{len(step['endpoints'])} connected ({step['seconds']} s)")
        out += [f"    not as expected: {w}" for w in step["unexpected"]]
    out.append("observed as expected" if report.ok else "NOT as expected")
    return out


@click.group("drill")
def drill() -> None:
    """Drills: a PKI action on many endpoints at once, observed on the primary; exit 0 only as expected."""


@drill.command("revoke")
@click.option("--count", "count", type=click.IntRange(min=1), required=True, metavar="K",
              help="How many endpoints to revoke (clients first, the last added first).")
@click.option("--json", "as_json", is_flag=True, help="The report as JSON.")
def revoke_cmd(count: int, as_json: bool) -> None:
    """K endpoints revoked with OCSP checks on: exactly those refused; then reissued and back."""
    report = reports_errors(revoke, LabError)(count)  # a problem the user can fix: one `error:` line, exit 2
    click.echo(json.dumps(asdict(report), indent=2) if as_json else "\n".join(lines(report)))
    raise SystemExit(0 if report.ok else 1)
