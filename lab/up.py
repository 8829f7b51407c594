"""`safeq-lab up`: PKI -> images -> primary and the doc's steps -> every service healthy.

One deadline bounds the whole run; each step gets the time that is left. Each phase is one line
with its elapsed time (lab.views.Phases); compose's own output is folded unless --verbose.
"""
from __future__ import annotations

import subprocess
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, replace
from pathlib import Path

import pki
from . import admin, docker, engine, images, java_security, labstate, portal, project, scale, spec, stage, status
from . import steps, topology
from .deadline import Deadline
from .errors import LabError
from .spec import Spec
from .views import Phases, console, fold, out, print_summary, print_validation, say

ADMIN_API_WAIT = 60  # the primary's admin API answers within seconds of the container starting

# The file that proves a service's host folder is complete, by compose service (else the folder).
HOST_DIR_PROOF = {"gateway": "unattended-install.conf", "client": "store", "ocsp": "responder.json"}
STAGE_DIR = "spec-lab"  # in the lab's folder (build/, build/labs/NAME/): a spec's files as mounted

POLICY_ENV = {  # how each endpoint is told which certificates to use
    "trusted-ca": {"SAFEQ_GATEWAY_CERTIFICATES": "trusted", "SAFEQ_CLIENT_SYSTEM_CERTIFICATE": "true"},
    "built-in": {"SAFEQ_GATEWAY_CERTIFICATES": "built-in", "SAFEQ_CLIENT_SYSTEM_CERTIFICATE": "false"},
}


def check_host_dirs(files: Path, topo: topology.Topology) -> None:
    """Docker would mount a missing folder as an empty one and the service would fail obscurely."""
    missing = []
    for svc in topo.services:
        if svc.pki_mount is None:
            continue
        proof = f"{svc.pki_mount}/{HOST_DIR_PROOF[svc.role]}" if svc.role in HOST_DIR_PROOF else svc.pki_mount
        if not (files / proof).exists():
            missing.append(proof)
    if missing:
        raise LabError(f"the PKI in {files} lacks {', '.join(missing)}: "
                       "recreate it with `safeq-lab pki init --force`, or complete those folders")


def primary_host_dir(files: Path, topo: topology.Topology) -> Path:
    """The folder the primary sees at /pki: the doc's steps read their files from it."""
    mount = topo.service("primary").pki_mount
    if mount is None:
        raise LabError("compose.yaml mounts no PKI folder into the primary: restore its /pki volume")
    return files / mount


def wait_for_admin_api(deadline: Deadline) -> None:
    until = time.monotonic() + ADMIN_API_WAIT
    while True:
        left = deadline.left(max(1.0, until - time.monotonic()))
        if engine.exec_sh("primary", "safeq-admin account >/dev/null", check=False, timeout=left).returncode == 0:
            return
        if time.monotonic() > until:
            raise LabError("the primary's admin API did not come up: see `safeq-lab logs primary`")
        time.sleep(0.1)  # each try is a command in the container: the API answers about 0.4 s after the start


def start_primary(phases: Phases, deadline: Deadline) -> None:
    with phases.phase("primary started, its admin API answering"):
        with deadline.at("starting primary"):
            phases.show(docker.compose("up", "-d", "--no-build", "primary", timeout=deadline.left(),
                                       quiet=phases.quiet))
        with deadline.at("waiting for the primary's admin API"):
            wait_for_admin_api(deadline)


def apply_primary_steps(todo: list[steps.Step], deadline: Deadline, phases: Phases, title: str) -> None:
    """The steps in one console session on the primary (one shell, as a person at its console): each
    command as typed, in order; the first that fails ends the session and is the error."""
    with phases.phase(title):
        if not todo:
            return
        with deadline.at(f"primary setup: {todo[0].title}"):
            try:
                session = engine.exec_sh("primary", steps.console(todo), check=False,
                                         timeout=deadline.left(docker.DEFAULT * len(todo)))
            except engine.CommandTimeout as exc:  # name the step it hung in
                deadline.step = f"primary setup: {todo[min(len(steps.ended(exc.output)), len(todo) - 1)].title}"
                raise
        done = steps.ended(session.stdout)
        for end in done:
            step = todo[end.index]
            if end.code is None:
                phases.note(f"{step.title}: already done")
            else:
                phases.note(step.title)
                phases.note(f"primary# {step.command}")
        if done and done[-1].code:
            said = done[-1].output.strip().splitlines()
            last = said[-1] if said else done[-1].code
            raise LabError(f"in primary: `{todo[done[-1].index].command}` failed: {last}")
        if len(done) < len(todo):  # the shell itself failed (or the primary's container went away)
            said = (session.stderr or session.stdout).strip().splitlines()
            raise LabError(f"in primary: the doc's steps stopped before `{todo[len(done)].command}`: "
                           f"{said[-1] if said else f'exit {session.returncode}'}")


def own_pki(deadline: Deadline) -> tuple[Path, Spec]:
    pki_dir = project.pki_dir()
    with deadline.at("PKI"):
        if pki.exists(pki_dir):
            say(f"PKI: using {pki_dir}")
        else:
            say(f"PKI: creating {pki_dir}")
            pki.init_pki(pki_dir)
        try:
            return pki_dir, spec.lab_spec(pki_dir)
        except spec.SpecError as exc:
            raise LabError(f"{exc}: recreate the PKI with `safeq-lab pki init --force`") from None


def doctor_first(user: Spec, force: bool) -> list:
    """The doctor's findings above info and its connections, shown; errors stop `up` unless forced."""
    from .doctor import findings as report, runner, tools
    result = runner.check(user, tools.detect("auto"))
    shown = [f for f in report.ordered(result.findings) if f.severity != report.INFO]
    for item in shown:
        say(f"doctor: {report.line(item, user.base)}")
    if not shown:
        say(f"doctor: {user.source}: no errors, no warnings")
    for connection in result.connections:
        say(f"doctor: connection {report.connection_line(connection)}")
    errors = sum(f.severity == report.ERROR for f in result.findings)
    if errors and not force:
        raise LabError(f"the doctor found {errors} error(s) in {user.source} (above): fix them and run `up` again, "
                       "or start the lab anyway with --force (to show the failure, e.g. in a class)")
    return result.connections


def fresh_volumes_if_changed(previous: labstate.LabState, identity: str) -> None:
    """Account settings, Trusted CA list, endpoint records and pinned certificates belong to the
    files they were set up with: other files start from a fresh account, as a new installation."""
    if previous.identity != identity and labstate.path().exists():
        say("other files than the lab's last run: its account settings and endpoint records start fresh")
        docker.compose("down", "--volumes", "--timeout", "2", quiet=True)


@dataclass(frozen=True)
class Plan:
    """What `up` starts: the spec of the files the containers mount (under ``files``), the topology
    compose gives for it, and the connections the doctor foresees (a user's spec only)."""
    mounted: Spec | None
    files: Path
    topo: topology.Topology
    connections: tuple = ()


COUNT_VARS = {"gateway": "SAFEQ_LAB_GATEWAYS", "client": "SAFEQ_LAB_CLIENTS"}  # in the state: `up` keeps them
DRAWN = ("primary", "ocsp", "gateway", "client")  # the roles the portal's Lab page draws


def scaled(state: labstate.LabState, previous: labstate.LabState, counts: dict[str, int | None]) -> labstate.LabState:
    """The lab's extra gateways and clients (lab.scale): certificates issued, compose.scale.yaml written and
    named in the state. A count not given is the lab's last; a spec's lab has compose.yaml's one each."""
    keep = state.own_pki and previous.own_pki
    counts = {b: counts.get(b) or (int(previous.env.get(COUNT_VARS[b], 1)) if keep else 1) for b in scale.BASES}
    if set(counts.values()) == {1} and docker.SCALE_VAR not in previous.env:
        return state
    topo = topology.load()
    items = scale.extras({b: topo.service(b) for b in scale.BASES}, counts)
    issued = scale.issue_missing(state.files, items)
    if issued:
        named = ", ".join(issued[:5]) + (f" ... {issued[-1]}" if len(issued) > 5 else "")
        say(f"PKI: {len(issued)} more endpoint certificate(s) from the lab CA: {named}")
    why = f"safeq-lab up --gateways {counts['gateway']} --clients {counts['client']}"
    drawn = None
    if "portal" in topo.names:  # the Lab page draws compose.yaml's hosts: the extras join them
        drawn = scale.portal_hosts([(s.role, s.host) for s in topo.services if s.role in DRAWN and s.host], items)
    path = scale.write(labstate.folder(), items, project.root() / "compose.yaml", why, drawn)
    env = {k: v for k, v in state.env.items() if k not in (docker.SCALE_VAR, *COUNT_VARS.values())}
    if path:
        env.update({docker.SCALE_VAR: str(path), **{COUNT_VARS[b]: str(n) for b, n in counts.items()}})
    state = replace(state, env=env)
    labstate.save(state)
    return state


def prepare(user: Spec | None, force: bool, env: dict[str, str], deadline: Deadline, port: int | None = None,
            counts: dict[str, int | None] | None = None) -> Plan:
    """Which files the lab runs on (the lab's PKI, or the spec's staged), written down for every later
    command (lab.labstate)."""
    with deadline.at("preflight"):
        docker.preflight()
    if user is None:
        files, mounted = own_pki(deadline)
        identity, connections, source = labstate.identity(mounted), [], None
    else:
        with deadline.at("doctor"):
            connections = doctor_first(user, force)
        identity, source = labstate.identity(user), str(Path(user.source).resolve())
        files = labstate.folder() / STAGE_DIR
    previous = labstate.current()
    fresh_volumes_if_changed(previous, identity)
    if source is not None:
        if previous.identity == identity and previous.spec_file == source and files.is_dir():
            mounted = previous.spec()  # the running containers mount this folder: keep it
        else:
            mounted = stage.stage(user, files)
            say(f"spec: {user.source}, its files staged read-only in {files}")
    primary_port = labstate.free_port(previous, port)
    portal.ensure_login(portal.login_path())
    published = {"SAFEQ_PRIMARY_PORT": str(primary_port),
                 **portal.compose_env(portal.login_path(), labstate.portal_port(previous, primary_port))}
    state = labstate.LabState(files, source, {**env, **labstate.host_env(mounted), **published}, identity)
    labstate.save(state)
    with deadline.at("extra gateways and clients"):
        state = scaled(state, previous, counts or {})
    topo = topology.load()
    check_host_dirs(files, topo)
    return Plan(mounted, files, topo, tuple(connections))


def run(policy: str | None, build: bool, timeout: float, java_security_file: str | None = None,
        verbose: bool = False, spec_file: str | None = None, force: bool = False, port: int | None = None,
        counts: dict[str, int | None] | None = None, lean: bool = False) -> None:
    """``policy`` None: the spec's [account] policy, else trusted-ca (the doc's end state). ``counts``:
    gateways and clients (lab.scale), None for the lab's last. ``lean``: a lab nobody looks at (a scenario
    run's): the services that hold certificates only (a PKI mount: no portal), no summary table."""
    # A bad spec, --java-security file or count is refused before anything starts.
    if spec_file is not None and any((n or 1) > 1 for n in (counts or {}).values()):
        raise LabError("--gateways/--clients issue each extra endpoint a certificate from the lab's own CA: "
                       "a spec's files name their own hosts; leave out --spec, or the counts")
    user = spec.load(spec_file) if spec_file is not None else None
    policy = policy or (user.account.policy if user is not None else "trusted-ca")
    env = {**POLICY_ENV[policy], **java_security.compose_env(java_security_file)}
    deadline = Deadline(timeout)
    note = java_security.describe(env)
    if note:
        say(note)
    plan = prepare(user, force, env, deadline, port, counts)
    topo = plan.topo
    phases = Phases(verbose)
    if build:
        images.build_all(phases, deadline)
    start_primary(phases, deadline)
    later = [svc.name for svc in topo.services
             if svc.name not in topo.started_with("primary") and (svc.pki_mount or not lean)]
    if policy == "trusted-ca":
        todo = steps.primary_steps(plan.mounted, primary_host_dir(plan.files, topo))
        with ThreadPoolExecutor(max_workers=1) as pool:
            # compose makes the later containers while the steps wait on the primary (--remove-orphans:
            # the extra gateways and clients a smaller `--gateways/--clients` left out); converge starts them.
            creating = pool.submit(docker.compose, "create", "--no-build", "--remove-orphans", *later,
                                   timeout=deadline.left(), quiet=True)
            apply_primary_steps(todo, deadline, phases, "primary server setup: the doc's steps, as typed")
            created = creating.result()
        converge(deadline, phases, later, created, refused_services(plan.connections, topo), summary=not lean)
    else:
        apply_primary_steps(steps.builtin_steps(), deadline, phases,
                            "primary server setup: built-in certificates (no trusted-certificate setup needed)")
        start_builtin(deadline, topo, phases, later, summary=not lean)
    if lean:
        return
    show_portal()
    if policy == "trusted-ca":
        print_validation(topo)


def show_portal() -> None:
    out.print(portal.announce(labstate.current(), password=True), markup=False, highlight=False, soft_wrap=True)


def refused_services(connections: list, topo: topology.Topology) -> dict[str, str]:
    """compose service -> the refusal the doctor foresaw for it (a spec started with --force)."""
    by_host = {svc.host: svc.name for svc in topo.services}
    return {by_host[c.host]: f"refused by {c.refused_by}: {c.reason}" for c in connections
            if not c.connects and c.host in by_host}


def converge(deadline: Deadline, phases: Phases, later: list[str], created: subprocess.CompletedProcess,
             expected_down: dict[str, str] | None = None, summary: bool = True) -> None:
    """``later``: the services started once the doc's steps are done (all but the primary and what it
    needs), their containers already made by compose (``created``: its output)."""
    expected_down = expected_down or {}
    since = time.time()  # the engine's checks from here on judge the restarted primary and what starts now
    with deadline.at("starting gateway and client"), phases.phase("endpoints: gateway and client started, the portal"):
        # Started while the restarted primary loads its keystore, not once its check passes (compose.yaml's
        # depends_on): they retry until it listens, as Java's do. Not `--wait`: the services' own
        # healthchecks are the verdict (below).
        made = created.stdout or ""  # captured: compose ran beside the steps' own lines
        for line in [x.strip() for x in made.splitlines() if x.strip()] if phases.verbose else fold(made):
            phases.note(line)
        waiting = [box for box in engine.containers(timeout=deadline.left(engine.QUICK))
                   if box.service in later and not box.running]
        engine.start(waiting, timeout=deadline.left())
        phases.note("started: " + ", ".join(box.name for box in waiting) if waiting else "all were running")
    with deadline.at("waiting until every service is healthy"), \
            phases.phase("healthy: every service passes its own check"):
        failing, health_now = status.wait_converged(deadline.left(), expected_down, since)
        for svc in set(failing) & set(expected_down):
            phases.note(f"{svc}: not connected, as the doctor foresaw ({expected_down[svc]})")
            del failing[svc]
        if failing:
            detail = "; ".join(f"{svc}: {why}" for svc, why in failing.items())
            raise deadline.expired(f"not every service became healthy ({detail})")
    if summary:
        with deadline.at("summary"):
            print_summary(status.collect(health_now, timeout=deadline.left(), asked=status.SUMMARY))


def start_builtin(deadline: Deadline, topo: topology.Topology, phases: Phases, later: list[str],
                  summary: bool = True) -> None:
    with deadline.at("waiting for the primary to be healthy"), phases.phase("primary healthy"):
        wait = str(max(1, int(deadline.left())))
        phases.show(docker.compose("up", "-d", "--no-build", "--wait", "--wait-timeout", wait, "primary",
                                   timeout=deadline.left(), quiet=phases.quiet))
    with deadline.at("starting gateway and client"), phases.phase("endpoints: gateway and client started "
                                                                  "with built-in certificates, the portal"):
        phases.show(docker.compose("up", "-d", "--no-build", "--remove-orphans", *later, timeout=deadline.left(),
                                   quiet=phases.quiet))
    names = {topo.service(name).host for name in ("gateway", "client")}
    with deadline.at("waiting for gateway and client to register"), phases.phase("endpoints registered"):
        while not names <= {ep.get("name") for ep in admin.lab_call("GET", "/api/v1/endpoints", timeout=deadline.left())}:
            if deadline.remaining() <= 0:
                raise deadline.expired("gateway and client did not register with the primary: see `safeq-lab logs`")
            time.sleep(0.5)
    if not summary:
        return
    with deadline.at("summary"):
        print_summary(status.collect(timeout=deadline.left(), asked=status.SUMMARY))
    console.print("Built-in policy: endpoints that are not trusted are refused. Trust them with "
                  "`safeq-lab endpoints trust NAME|ID`, or `safeq-lab account auto-trust on` before they register.")
