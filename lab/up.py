"""`safeq-lab up`: PKI -> images -> primary and the doc's steps -> every service healthy.

One deadline bounds the whole run; each step gets the time that is left. Each phase is one line
with its elapsed time (lab.views.Phases); compose's own output is folded unless --verbose.
"""
from __future__ import annotations

import os
import time
from pathlib import Path

import pki
from . import admin, docker, engine, images, java_security, project, status, steps, topology
from .deadline import Deadline
from .errors import LabError
from .views import Phases, console, print_summary, print_validation, say

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


def start_primary(phases: Phases, deadline: Deadline) -> None:
    with phases.phase("primary started, its admin API answering"):
        with deadline.at("starting primary"):
            phases.show(docker.compose("up", "-d", "--no-build", "primary", timeout=deadline.left(),
                                       quiet=phases.quiet))
        with deadline.at("waiting for the primary's admin API"):
            wait_for_admin_api(deadline)


def apply_primary_steps(todo: list[steps.Step], deadline: Deadline, phases: Phases, title: str) -> None:
    with phases.phase(title):
        for step in todo:
            with deadline.at(f"primary setup: {step.title}"):
                if step.unless and engine.exec_sh("primary", step.unless, check=False,
                                                  timeout=deadline.left(docker.DEFAULT)).returncode == 0:
                    phases.note(f"{step.title}: already done")
                    continue
                phases.note(step.title)
                phases.note(f"primary# {step.command}")
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


def run(policy: str, build: bool, timeout: float, java_security_file: str | None = None,
        verbose: bool = False) -> None:
    # A bad --java-security file is refused before anything starts.
    env = {**POLICY_ENV[policy], **java_security.compose_env(java_security_file)}
    deadline = Deadline(timeout)
    os.environ.update(env)
    note = java_security.describe(env)
    if note:
        say(note)
    manifest, topo = prepare(deadline)
    phases = Phases(verbose)
    if build:
        images.build_all(phases, deadline)
    start_primary(phases, deadline)
    if policy == "trusted-ca":
        todo = steps.primary_steps(manifest, primary_host_dir(project.pki_dir(), topo))
        apply_primary_steps(todo, deadline, phases, "primary server setup: the doc's steps, as typed")
        converge(deadline, phases)
        print_validation(topo)
    else:
        apply_primary_steps(steps.builtin_steps(), deadline, phases,
                            "primary server setup: built-in certificates (no trusted-certificate setup needed)")
        start_builtin(deadline, topo, phases)


def converge(deadline: Deadline, phases: Phases) -> None:
    with deadline.at("starting gateway and client"), phases.phase("endpoints: gateway and client started"):
        # Not `--wait`: a gateway reconnecting after the primary's restart may read unhealthy for a
        # moment; the services' own healthchecks, run now, are the verdict.
        phases.show(docker.compose("up", "-d", "--no-build", timeout=deadline.left(), quiet=phases.quiet))
    with deadline.at("waiting until every service is healthy"), \
            phases.phase("healthy: every service passes its own check"):
        failing, health_now = status.wait_converged(deadline.left())
        if failing:
            detail = "; ".join(f"{svc}: {why}" for svc, why in failing.items())
            raise deadline.expired(f"not every service became healthy ({detail})")
    with deadline.at("summary"):
        print_summary(status.collect(health_now, timeout=deadline.left()))


def start_builtin(deadline: Deadline, topo: topology.Topology, phases: Phases) -> None:
    with deadline.at("waiting for the primary to be healthy"), phases.phase("primary healthy"):
        wait = str(max(1, int(deadline.left())))
        phases.show(docker.compose("up", "-d", "--no-build", "--wait", "--wait-timeout", wait, "primary",
                                   timeout=deadline.left(), quiet=phases.quiet))
    with deadline.at("starting gateway and client"), phases.phase("endpoints: gateway and client started "
                                                                  "with built-in certificates"):
        phases.show(docker.compose("up", "-d", "--no-build", "gateway", "client", timeout=deadline.left(),
                                   quiet=phases.quiet))
    names = {topo.service(name).host for name in ("gateway", "client")}
    with deadline.at("waiting for gateway and client to register"), phases.phase("endpoints registered"):
        while not names <= {ep.get("name") for ep in admin.lab_call("GET", "/api/v1/endpoints", timeout=deadline.left())}:
            if deadline.remaining() <= 0:
                raise deadline.expired("gateway and client did not register with the primary: see `safeq-lab logs`")
            time.sleep(0.5)
    with deadline.at("summary"):
        print_summary(status.collect(timeout=deadline.left()))
    console.print("Built-in policy: endpoints that are not trusted are refused. Trust them with "
                  "`safeq-lab endpoints trust NAME|ID`, or `safeq-lab account auto-trust on` before they register.")
