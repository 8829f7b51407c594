"""`safeq-lab up`: PKI -> images -> primary and the doc's steps -> every service healthy.

One deadline bounds the whole run; each step gets the time that is left.
"""
from __future__ import annotations

import os
import time
from pathlib import Path

import pki
from rich.markup import escape

from . import admin, docker, engine, images, java_security, project, status, steps, topology
from .deadline import Deadline
from .errors import LabError
from .views import console, print_summary, say

ADMIN_API_WAIT = 60  # the primary's admin API answers within seconds of the container starting

# The file that proves each service's PKI folder is complete, by compose service.
HOST_DIR_PROOF = {"primary": "cacert.crt", "gateway": "unattended-install.conf",
                  "client": "store", "ocsp": "responder.json"}

POLICY_ENV = {  # how each endpoint is told which certificates to use
    "trusted-ca": {"SAFEQ_GATEWAY_CERTIFICATES": "trusted", "SAFEQ_CLIENT_SYSTEM_CERTIFICATE": "true"},
    "built-in": {"SAFEQ_GATEWAY_CERTIFICATES": "built-in", "SAFEQ_CLIENT_SYSTEM_CERTIFICATE": "false"},
}


def check_host_dirs(pki_dir: Path, topo: topology.Topology) -> None:
    """Docker would mount a missing folder as an empty one and the service would fail obscurely."""
    missing = []
    for svc in topo.services:
        if svc.pki_mount is None:
            continue
        proof = f"{svc.pki_mount}/{HOST_DIR_PROOF[svc.name]}" if svc.name in HOST_DIR_PROOF else svc.pki_mount
        if not (pki_dir / proof).exists():
            missing.append(proof)
    if missing:
        raise LabError(f"the PKI in {pki_dir} lacks {', '.join(missing)}: "
                       "recreate it with `safeq-lab pki init --force`, or complete those folders")


def primary_host_dir(pki_dir: Path, topo: topology.Topology) -> Path:
    """The folder the primary sees at /pki: the doc's steps read their files from it."""
    mount = topo.service("primary").pki_mount
    if mount is None:
        raise LabError("compose.yaml mounts no PKI folder into the primary: restore its /pki volume")
    return pki_dir / mount


def wait_for_admin_api(deadline: Deadline) -> None:
    until = time.monotonic() + ADMIN_API_WAIT
    while True:
        left = deadline.left(max(1.0, until - time.monotonic()))
        if engine.exec_sh("primary", "safeq-admin account >/dev/null", check=False, timeout=left).returncode == 0:
            return
        if time.monotonic() > until:
            raise LabError("the primary's admin API did not come up: see `safeq-lab logs primary`")
        time.sleep(0.3)


def apply_primary_steps(todo: list[steps.Step], deadline: Deadline) -> None:
    with deadline.at("waiting for the primary's admin API"):
        wait_for_admin_api(deadline)
    for step in todo:
        with deadline.at(f"primary setup: {step.title}"):
            if step.unless and engine.exec_sh("primary", step.unless, check=False,
                                              timeout=deadline.left(docker.DEFAULT)).returncode == 0:
                console.print(f"    [dim]{escape(step.title)}: already done[/]")
                continue
            # escape: a sed script's [[:space:]] or a file name in brackets is not markup
            console.print(f"    {escape(step.title)}\n    [dim]primary# {escape(step.command)}[/]")
            engine.exec_sh("primary", step.command, input=step.stdin, timeout=deadline.left(docker.DEFAULT))


def prepare(deadline: Deadline) -> tuple[dict, topology.Topology]:
    with deadline.at("preflight"):
        docker.preflight()
    pki_dir = project.pki_dir()
    with deadline.at("PKI"):
        if pki.exists(pki_dir):
            say(f"PKI: using {pki_dir}")
        else:
            say(f"PKI: creating {pki_dir}")
            pki.init_pki(pki_dir)
        manifest = pki.load_manifest(pki_dir)
        topo = topology.load()
        check_host_dirs(pki_dir, topo)
    return manifest, topo


def run(policy: str, build: bool, timeout: float, java_security_file: str | None = None) -> None:
    # A bad --java-security file is refused before anything starts.
    env = {**POLICY_ENV[policy], **java_security.compose_env(java_security_file)}
    deadline = Deadline(timeout)
    os.environ.update(env)
    note = java_security.describe(env)
    if note:
        say(note)
    manifest, topo = prepare(deadline)
    if build:
        images.build_all(say, deadline)
    with deadline.at("starting primary"):
        say("starting primary")
        docker.compose("up", "-d", "--no-build", "primary", timeout=deadline.left())
    if policy == "trusted-ca":
        say("primary server setup (the doc's steps)")
        apply_primary_steps(steps.primary_steps(manifest, primary_host_dir(project.pki_dir(), topo)), deadline)
        converge(deadline)
    else:
        say("primary server setup: built-in certificates (no trusted-certificate setup needed)")
        apply_primary_steps(steps.builtin_steps(), deadline)
        start_builtin(deadline, topo)


def converge(deadline: Deadline) -> None:
    say("starting gateway and client; waiting until all are healthy")
    with deadline.at("starting gateway and client"):
        # Not `--wait`: a gateway reconnecting after the primary's restart may read unhealthy for a
        # moment; the services' own healthchecks, run now, are the verdict.
        docker.compose("up", "-d", "--no-build", timeout=deadline.left())
    with deadline.at("waiting until every service is healthy"):
        failing, health_now = status.wait_converged(deadline.left())
        if failing:
            detail = "; ".join(f"{svc}: {why}" for svc, why in failing.items())
            raise deadline.expired(f"not every service became healthy ({detail})")
    with deadline.at("summary"):
        print_summary(status.collect(health_now, timeout=deadline.left()))


def start_builtin(deadline: Deadline, topo: topology.Topology) -> None:
    say("starting gateway and client with built-in certificates")
    with deadline.at("waiting for the primary to be healthy"):
        wait = str(max(1, int(deadline.left())))
        docker.compose("up", "-d", "--no-build", "--wait", "--wait-timeout", wait, "primary", timeout=deadline.left())
    with deadline.at("starting gateway and client"):
        docker.compose("up", "-d", "--no-build", "gateway", "client", timeout=deadline.left())
    names = {topo.service(name).host for name in ("gateway", "client")}
    with deadline.at("waiting for gateway and client to register"):
        while not names <= {ep.get("name") for ep in admin.lab_call("GET", "/api/v1/endpoints", timeout=deadline.left())}:
            if deadline.remaining() <= 0:
                raise deadline.expired("gateway and client did not register with the primary: see `safeq-lab logs`")
            time.sleep(0.5)
    with deadline.at("summary"):
        print_summary(status.collect(timeout=deadline.left()))
    console.print("Built-in policy: endpoints that are not trusted are refused. Trust them with "
                  "`safeq-lab endpoints trust NAME|ID`, or `safeq-lab account auto-trust on` before they register.")
