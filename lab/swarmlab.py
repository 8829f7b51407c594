"""`up --engine swarm` and `down` of a lab deployed as a Docker Swarm stack (lab.swarm writes the file).

The same run as a compose lab's: the lab's files, the images, the stack deployed, the doc's primary
steps typed in the primary's console, every service's own healthcheck the verdict.
"""
from __future__ import annotations

import time
from dataclasses import replace

from . import docker, engine, images, labstate, status, steps, swarm, topology, up
from .deadline import Deadline
from .errors import LabError
from .views import Phases, print_summary, say

SWARM_HINT = ("this Docker Engine is not a swarm manager: `docker swarm init --advertise-addr 127.0.0.1` makes "
              "this machine a one-node swarm (`docker swarm leave --force` undoes it); see the README for several hosts")


def is_swarm(state: labstate.LabState | None = None) -> bool:
    return (state or labstate.current()).env.get(swarm.ENGINE_VAR) == "swarm"


def require_compose(what: str) -> None:
    """Drills rewrite PKI files on this host that a compose lab's containers read as they change; a stack
    carries them as immutable configs and secrets."""
    if is_swarm():
        raise LabError(f"{what} changes the PKI files the containers read from this host, and this lab runs as a "
                       "swarm stack (its files are configs and secrets): run it on a lab started without --engine swarm")


def require_manager() -> None:
    proc = docker.run_timed(["docker", "info", "--format", "{{.Swarm.ControlAvailable}}"], docker.QUICK,
                            capture_output=True, text=True)
    if proc.returncode != 0 or proc.stdout.strip() != "true":
        raise LabError(SWARM_HINT)


def deploy(phases: Phases, deadline: Deadline) -> None:
    config = topology.config()
    path = swarm.write(labstate.folder(), swarm.stack_file(config, topology.load().project))
    with deadline.at("docker stack deploy"), phases.phase(f"stack deployed ({path.name}: configs, secrets, overlay network)"):
        phases.show(docker.run(["docker", "stack", "deploy", "--detach=true", "--prune", "--compose-file", str(path),
                                topology.load().project], timeout=deadline.left(docker.DEFAULT), quiet=phases.quiet))


def wait_primary(deadline: Deadline, phases: Phases) -> None:
    with deadline.at("waiting for the primary's task"), phases.phase("primary started, its admin API answering"):
        while not any(box.running for box in engine.containers("primary")):
            if deadline.remaining() <= 0:
                raise deadline.expired("the stack's primary did not start: `docker stack ps "
                                       f"{topology.load().project} --no-trunc` says why")
            time.sleep(0.5)
        up.wait_for_admin_api(deadline)


def run(build: bool, timeout: float, verbose: bool = False, counts: dict | None = None) -> None:
    """The lab's own PKI as a stack, the trusted CA policy set up as the doc says."""
    deadline, phases = Deadline(timeout), Phases(verbose)
    docker.preflight()
    require_manager()
    if not is_swarm() and engine.containers():
        raise LabError("this lab runs on compose: `safeq-lab down` it first, or run another lab with `--lab NAME`")
    plan = up.prepare(None, False, {**up.POLICY_ENV["trusted-ca"], swarm.ENGINE_VAR: "swarm"}, deadline,
                      counts=counts)
    if build:
        images.build_all(phases, deadline)
    if engine.containers(project_name=plan.topo.project):
        # A stack updated in place replaces its tasks one by one, the primary's too, after the doc's steps
        # ran in the old one: remove it and deploy again (its volumes, the account's settings, stay).
        with deadline.at("docker stack rm"), phases.phase("the running stack removed, to deploy it again"):
            down(False, keep_engine=True)
    deploy(phases, deadline)
    wait_primary(deadline, phases)
    todo = steps.primary_steps(plan.mounted, up.primary_host_dir(plan.files, plan.topo))
    up.apply_primary_steps(todo, deadline, phases, "primary server setup: the doc's steps, as typed")
    with deadline.at("waiting until every service is healthy"), phases.phase("healthy: every service passes its own check"):
        failing, health_now = status.wait_converged(deadline.left(), {})
        if failing:
            raise deadline.expired("not every service became healthy ("
                                   + "; ".join(f"{svc}: {why}" for svc, why in failing.items()) + ")")
    print_summary(status.collect(health_now, timeout=deadline.left(), asked=status.SUMMARY))
    say(f"swarm: stack {plan.topo.project}; `docker stack ps {plan.topo.project}` lists its tasks, "
        "`safeq-lab down` removes it")


def down(volumes: bool, timeout: float = 60, keep_engine: bool = False) -> None:
    """`docker stack rm`, then until its containers are gone (their volumes can only go after them)."""
    name = topology.load().project
    docker.run(["docker", "stack", "rm", name], timeout=docker.DEFAULT, quiet=True)
    until = time.monotonic() + timeout
    while engine.containers(project_name=name):
        if time.monotonic() > until:
            raise LabError(f"the stack {name}'s containers are still there after {timeout:.0f} s: "
                           f"`docker stack ps {name}` says why")
        time.sleep(0.5)
    network = topology.load().network  # removed by the engine after the containers: a new deploy needs the name
    while docker.run_timed(["docker", "network", "inspect", network], docker.QUICK, capture_output=True).returncode == 0:
        if time.monotonic() > until:
            raise LabError(f"the stack {name}'s network {network} is still there after {timeout:.0f} s")
        time.sleep(0.5)
    if volumes:
        engine.remove_volumes([f"{name}_{v}" for v in topology.config().get("volumes", {})])
    if not keep_engine:
        state = labstate.current()
        labstate.save(replace(state, env={k: v for k, v in state.env.items() if k != swarm.ENGINE_VAR}))
