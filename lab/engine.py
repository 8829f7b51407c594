"""The Docker engine, through the Docker SDK for Python: the lab's containers found by compose's labels.

`docker compose` (lab/docker.py) builds, starts and stops; whatever asks the engine something or
runs a command in a container comes through here as API calls, each with a timeout, so no CLI
output is parsed. An engine that cannot be reached is one error: the preflight's.
"""
from __future__ import annotations

import io
import os
import shlex
import socket
import struct
import tarfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from datetime import datetime
from dataclasses import dataclass
from typing import Iterator, Sequence

import docker as sdk
import requests

from .errors import LabError

SETUP_HINT = "on Debian run: sudo scripts/ensure-docker.sh"
QUICK = 20      # seconds for a call that only asks the engine something
DEFAULT = 60    # seconds for one that changes containers, or execs into one
HEALTHCHECK_TIMEOUT = 30
HANG_HINT = "check that Docker responds (`docker info`), see `safeq-lab logs`, and try again"
DEFAULT_HOST = "unix:///var/run/docker.sock"

PROJECT_LABEL = "com.docker.compose.project"
SERVICE_LABEL = "com.docker.compose.service"
NUMBER_LABEL = "com.docker.compose.container-number"
ONEOFF_LABEL = "com.docker.compose.oneoff"  # `compose run` containers: not the lab's services


class CommandTimeout(LabError):
    """``output``: what the command had printed (stdout) before it was given up on."""

    def __init__(self, label: str, seconds: float, hint: str = HANG_HINT, output: str = ""):
        super().__init__(f"`{label}` did not answer in {seconds:.0f} s: {hint}")
        self.seconds, self.output = seconds, output


class NotRunning(LabError):
    def __init__(self, service: str):
        super().__init__(f"the {service} is not running: start the lab with `safeq-lab up`")
        self.service = service


def label(argv: Sequence[str], limit: int = 100) -> str:
    text = shlex.join(argv)
    return text if len(text) <= limit else text[:limit - 1] + "…"


def unreachable(detail: str) -> LabError:
    return LabError(f"the Docker daemon is not running or not reachable ({detail}): "
                    f"start it, e.g. 'sudo systemctl start docker' ({SETUP_HINT})")


# -- the client --------------------------------------------------------------------------------

_api_version: str | None = None  # asked of the engine once per process


def connect(timeout: float) -> sdk.APIClient:
    """A low-level client whose every request gives up after ``timeout`` s.

    The SDK has one timeout per client, so each caller gets its own client (and its own
    connection: safe from several threads). DOCKER_HOST and the CLI context apply as for `docker`."""
    global _api_version
    client = sdk.DockerClient.from_env(version=_api_version or "auto", timeout=timeout).api
    _api_version = client.api_version
    return client


def _causes(exc: BaseException) -> Iterator[BaseException]:
    """The exception and what it wraps: the SDK and requests nest the socket's error deep."""
    todo, seen = [exc], set()
    while todo:
        cur = todo.pop(0)
        if id(cur) in seen:
            continue
        seen.add(id(cur))
        yield cur
        inner = [*getattr(cur, "args", ()), getattr(cur, "reason", None), cur.__cause__, cur.__context__]
        todo += [e for e in inner if isinstance(e, BaseException)]


def _is_timeout(exc: BaseException) -> bool:
    # Not urllib3's TimeoutError: its NewConnectionError (connection refused) is one.
    return any(isinstance(e, (requests.Timeout, socket.timeout)) for e in _causes(exc))


def _reason(exc: BaseException) -> str:
    for cause in _causes(exc):
        if isinstance(cause, OSError) and cause.strerror:
            return cause.strerror
    return str(exc).strip().splitlines()[-1] if str(exc).strip() else type(exc).__name__


@contextmanager
def session(timeout: float, what: str) -> Iterator[sdk.APIClient]:
    """A client for a few calls; the engine's failures become the lab's errors, naming ``what``."""
    try:
        api = connect(timeout)
        try:
            yield api
        finally:
            api.close()
    except sdk.errors.APIError as exc:
        raise LabError(f"`{what}` failed: {exc.explanation or exc}") from None
    except (sdk.errors.DockerException, OSError) as exc:  # requests' errors are OSErrors too
        if _is_timeout(exc):
            raise CommandTimeout(what, timeout) from None
        endpoint = os.environ.get("DOCKER_HOST") or DEFAULT_HOST
        raise unreachable(f"Cannot connect to the Docker daemon at {endpoint}: {_reason(exc)}") from None


def ping(timeout: float = QUICK) -> None:
    with session(timeout, "docker info") as api:
        api.ping()


def project() -> str:
    """The compose project (compose.yaml's `name:`), as `docker compose config` reports it."""
    from . import topology  # imported here: topology uses lab.docker, which builds on this module
    return topology.load().project


# -- containers --------------------------------------------------------------------------------

@dataclass(frozen=True)
class Check:
    """One run of a healthcheck by the engine: when it began (epoch s), whether it passed, what it said."""
    began: float
    passed: bool
    output: str


def epoch(stamp: str | None) -> float:
    """The engine's RFC 3339 time (nanoseconds, "Z") as epoch seconds; 0 for none or the zero time."""
    if not stamp or stamp.startswith("0001-"):
        return 0.0
    try:
        return datetime.fromisoformat(stamp.replace("Z", "+00:00")).timestamp()
    except ValueError:
        return 0.0


@dataclass(frozen=True)
class Container:
    id: str
    name: str
    service: str
    number: int
    state: str                            # running, exited, restarting, ...
    health: str | None                    # the engine's record: healthy, unhealthy, starting
    healthcheck: tuple[str, ...] | None   # compose.yaml's healthcheck test, as the engine runs it
    started: float = 0.0                  # when it last started (epoch s; 0: never)
    last_check: Check | None = None       # the engine's latest run of that healthcheck

    @property
    def running(self) -> bool:
        return self.state == "running"


def _container(info: dict) -> Container:
    labels = info["Config"].get("Labels") or {}
    state = info.get("State") or {}
    test = (info["Config"].get("Healthcheck") or {}).get("Test")
    runs = (state.get("Health") or {}).get("Log") or []
    last = runs[-1] if runs else None
    return Container(id=info["Id"], name=info["Name"].lstrip("/"), service=labels.get(SERVICE_LABEL, ""),
                     number=int(labels.get(NUMBER_LABEL) or 0), state=state.get("Status", ""),
                     health=(state.get("Health") or {}).get("Status") or None,
                     healthcheck=tuple(test) if test else None, started=epoch(state.get("StartedAt")),
                     last_check=Check(epoch(last.get("Start")), last.get("ExitCode") == 0,
                                      (last.get("Output") or "").strip()) if last else None)


def containers(service: str | None = None, timeout: float = QUICK, project_name: str | None = None) -> list[Container]:
    """The lab's containers (another lab's: ``project_name``), stopped ones too (as `docker compose ps
    --all`), by service and number."""
    labels = [f"{PROJECT_LABEL}={project_name or project()}"] + ([f"{SERVICE_LABEL}={service}"] if service else [])
    found = []
    with session(timeout, label(["docker", "ps", "--all", *(f"--filter=label={x}" for x in labels)])) as api:
        for row in api.containers(all=True, filters={"label": labels}):
            if (row.get("Labels") or {}).get(ONEOFF_LABEL) == "True":
                continue
            try:
                found.append(_container(api.inspect_container(row["Id"])))
            except sdk.errors.NotFound:
                continue  # removed since it was listed
    return sorted(found, key=lambda c: (c.service, c.number))


def running(service: str, timeout: float = QUICK) -> Container:
    """The service's running container (the first, as `docker compose exec` picks)."""
    for box in containers(service, timeout):
        if box.running:
            return box
    raise NotRunning(service)


def first(service: str, timeout: float = QUICK) -> Container:
    """The service's first container, running or not (its logs outlive it)."""
    boxes = sorted(containers(service, timeout), key=lambda c: not c.running)
    if not boxes:
        raise NotRunning(service)
    return boxes[0]


# -- exec --------------------------------------------------------------------------------------

@dataclass(frozen=True)
class ExecResult:
    argv: tuple[str, ...]
    returncode: int
    stdout: str
    stderr: str


def execute(target: Container | str, argv: Sequence[str], input: str | None = None,
            timeout: float = DEFAULT) -> ExecResult:
    """``argv`` in the container (a Container, or a service's running one), as `docker exec -i` runs it.

    Past ``timeout`` s: CommandTimeout. As with the CLI, the command may go on in the container."""
    end = time.monotonic() + timeout
    box = target if isinstance(target, Container) else running(target, min(timeout, QUICK))
    code, out, err = _exec(box.id, box.name, box.service or box.name, argv, input, end, timeout)
    return ExecResult(tuple(argv), code, out.decode(errors="replace"), err.decode(errors="replace"))


def exec_bytes(container: str, argv: Sequence[str], timeout: float = DEFAULT) -> tuple[int, bytes, bytes]:
    """``argv`` in the container named (or with the id) ``container``, as `docker exec CONTAINER ...`
    runs it: the exit code, and stdout and stderr as the command wrote them."""
    return _exec(container, container, container, argv, None, time.monotonic() + timeout, timeout)


def _exec(ref: str, name: str, gone: str, argv: Sequence[str], input: str | None, end: float,
          timeout: float) -> tuple[int, bytes, bytes]:
    """One exec in container ``ref``; ``name`` for messages, ``gone`` for NotRunning."""
    what = label(["docker", "exec", *(["-i"] if input is not None else []), name, *argv])
    with session(_left(end, QUICK, what, timeout), what) as api:
        try:
            exec_id = api.exec_create(ref, list(argv), stdin=input is not None)["Id"]
            conn = api.exec_start(exec_id, socket=True)
            sock = getattr(conn, "_sock", conn)  # over a unix socket the SDK hands a SocketIO
            try:
                out, err = _converse(sock, input, end, what, timeout)
            finally:
                sock.close()
                conn.close()
            code = _exit_code(api, exec_id, end, what, timeout)
        except sdk.errors.APIError as exc:
            if exc.status_code in (404, 409):  # removed, or stopped, since it was found
                raise NotRunning(gone) from None
            raise
    return code, out, err


def _left(end: float, cap: float, what: str, timeout: float) -> float:
    left = end - time.monotonic()
    if left <= 0:
        raise CommandTimeout(what, timeout)
    return min(cap, left)


def _converse(sock: socket.socket, input: str | None, end: float, what: str, timeout: float) -> tuple[bytes, bytes]:
    """Send stdin, then its end (the command reads EOF), while reading the output until it ends.

    At once, as `docker exec -i` does: a command that exits without reading all its stdin must not
    leave us blocked on sending it."""
    sock.settimeout(_left(end, timeout, what, timeout))
    if input is not None:
        threading.Thread(target=_send_stdin, args=(sock, input.encode()), daemon=True).start()
    data = bytearray()
    try:
        while True:
            sock.settimeout(_left(end, timeout, what, timeout))
            chunk = sock.recv(65536)
            if not chunk:
                return demux(bytes(data))
            data += chunk
    except (socket.timeout, CommandTimeout):
        raise CommandTimeout(what, timeout, output=demux(bytes(data))[0].decode(errors="replace")) from None


def _send_stdin(sock: socket.socket, data: bytes) -> None:
    try:
        sock.sendall(data)
        sock.shutdown(socket.SHUT_WR)
    except OSError:
        pass  # the command ended unread, or the stream closed: its output and exit code tell what happened


def demux(stream: bytes) -> tuple[bytes, bytes]:
    """stdout and stderr from the engine's multiplexed stream: frames of [kind, 0, 0, 0, size (BE32)] + data."""
    out, err, pos = bytearray(), bytearray(), 0
    while pos + 8 <= len(stream):
        kind, size = struct.unpack_from(">BxxxL", stream, pos)
        (err if kind == 2 else out).extend(stream[pos + 8:pos + 8 + size])
        pos += 8 + size
    return bytes(out), bytes(err)


def _exit_code(api: sdk.APIClient, exec_id: str, end: float, what: str, timeout: float) -> int:
    # The engine records the exit code as the stream ends; a moment's wait covers a slow record.
    while True:
        info = api.exec_inspect(exec_id)
        if not info.get("Running") and info.get("ExitCode") is not None:
            return int(info["ExitCode"])
        _left(end, timeout, what, timeout)
        time.sleep(0.02)


def exec_sh(service: str, command: str, input: str | None = None, check: bool = True,
            timeout: float = DEFAULT) -> ExecResult:
    """A shell command inside a service, as a person at its console would type it.

    check=False: a service that is not running is a failed command (exit 125, as `docker exec`)."""
    try:
        result = execute(service, ["sh", "-c", command], input=input, timeout=timeout)
    except NotRunning as exc:
        if check:
            raise
        return ExecResult(("sh", "-c", command), 125, "", str(exc))
    if check and result.returncode != 0:
        out = (result.stdout + result.stderr).strip()
        raise LabError(f"in {service}: `{command}` failed: {out.splitlines()[-1] if out else result.returncode}")
    return result


# -- health and logs ---------------------------------------------------------------------------

def healthcheck_now(box: Container, timeout: float = HEALTHCHECK_TIMEOUT) -> tuple[bool, str]:
    """Run the container's own healthcheck command (compose.yaml's) right now.

    The engine's recorded health lags by up to interval x retries; right after the primary
    restarts, a gateway can still read "healthy" while it is reconnecting."""
    test = box.healthcheck
    if not test or test[0] not in ("CMD", "CMD-SHELL"):
        return True, "no healthcheck"
    argv = list(test[1:]) if test[0] == "CMD" else ["sh", "-c", test[1]]
    try:
        result = execute(box, argv, timeout=timeout)
    except CommandTimeout:
        return False, f"healthcheck did not answer within {timeout:.0f} s"
    except NotRunning:
        return False, "container is gone"
    return result.returncode == 0, (result.stdout or result.stderr).strip()


def logs(service: str, tail: int | None = None, timeout: float = DEFAULT) -> str:
    """The service's log (stdout and stderr as they came), as `docker logs` shows it."""
    box = first(service, min(timeout, QUICK))
    with session(timeout, label(["docker", "logs", box.name])) as api:
        return api.logs(box.id, tail="all" if tail is None else tail).decode(errors="replace")


# -- throwaway containers and files (the checks' own) -------------------------------------------

def run_detached(image: str, timeout: float = DEFAULT, command: Sequence[str] | None = None) -> Container:
    """`docker run -d --init --network none IMAGE [COMMAND]`: a container of a lab image apart from the lab."""
    argv = ["docker", "run", "-d", "--init", "--network", "none", image, *(command or [])]
    with session(timeout, label(argv)) as api:
        cid = api.create_container(image, command=list(command) if command else None,
                                   host_config=api.create_host_config(init=True, network_mode="none"))["Id"]
        api.start(cid)
        return _container(api.inspect_container(cid))


def start(boxes: Sequence[Container], timeout: float = DEFAULT) -> None:
    """`docker start NAME...` of containers compose created, all at once (the engine starts each in
    its own call; one that already runs is left as it is)."""
    def one(box: Container) -> None:
        with session(timeout, label(["docker", "start", box.name])) as api:
            api.start(box.id)

    if boxes:
        with ThreadPoolExecutor(max_workers=len(boxes)) as pool:
            for started in [pool.submit(one, box) for box in boxes]:
                started.result()


def stop(box: Container, grace: int = 2, timeout: float = DEFAULT) -> tuple[int, bool]:
    """`docker stop -t GRACE`; (exit code, killed for memory) as the engine then records them."""
    with session(timeout, label(["docker", "stop", "-t", str(grace), box.name])) as api:
        api.stop(box.id, timeout=grace)
        state = api.inspect_container(box.id)["State"]
        return int(state["ExitCode"]), bool(state.get("OOMKilled"))


def remove(box: Container, timeout: float = DEFAULT) -> None:
    with session(timeout, label(["docker", "rm", "-f", box.name])) as api:
        api.remove_container(box.id, force=True)


def discard(project_name: str, timeout: float = DEFAULT) -> None:
    """A throwaway lab gone at once (a scenario's, once its outcome is recorded): its containers killed
    and removed, then its volumes and networks, found by compose's project label. `compose down
    --volumes` without the stop's grace: nothing in the lab is judged any more."""
    wanted = {"label": f"{PROJECT_LABEL}={project_name}"}
    with session(timeout, label(["docker", "compose", "-p", project_name, "down", "--volumes"])) as api:
        boxes = api.containers(all=True, filters=wanted)
        with ThreadPoolExecutor(max(1, min(8, len(boxes)))) as pool:
            list(pool.map(lambda box: _gone(api.remove_container, box["Id"], force=True, v=True), boxes))
        for volume in api.volumes(filters=wanted).get("Volumes") or []:
            _gone(api.remove_volume, volume["Name"])
        for network in api.networks(filters=wanted):
            _gone(api.remove_network, network["Id"])


def _gone(remove_it, *args, **kwargs) -> None:
    """Removed now, or by someone else since it was listed."""
    try:
        remove_it(*args, **kwargs)
    except sdk.errors.NotFound:
        return


def remove_volumes(names: Sequence[str], timeout: float = DEFAULT) -> None:
    """`docker volume rm NAME...`, leaving out the ones that do not exist."""
    with session(timeout, label(["docker", "volume", "rm", *names])) as api:
        for name in names:
            try:
                api.remove_volume(name)
            except sdk.errors.NotFound:
                continue


def image_ids(names: Sequence[str], timeout: float = QUICK) -> dict[str, str | None]:
    """The id each image name stands for now (None: no such image)."""
    found: dict[str, str | None] = {}
    with session(timeout, label(["docker", "image", "inspect", *names])) as api:
        for name in names:
            try:
                found[name] = api.inspect_image(name)["Id"]
            except sdk.errors.ImageNotFound:
                found[name] = None
    return found


def project_volumes(project_name: str | None = None, timeout: float = QUICK) -> list[str]:
    """The volumes compose made for the lab (by its project label): also those of extra gateways and
    clients that a smaller `up --gateways/--clients` dropped, which compose.yaml no longer names."""
    wanted = f"{PROJECT_LABEL}={project_name or project()}"
    with session(timeout, label(["docker", "volume", "ls", f"--filter=label={wanted}"])) as api:
        return sorted(v["Name"] for v in api.volumes(filters={"label": wanted}).get("Volumes") or [])


def read_file(service: str, path: str, timeout: float = DEFAULT) -> bytes:
    """`docker cp SERVICE:PATH -`: one file's bytes out of the service's running container."""
    box = running(service, min(timeout, QUICK))
    with session(timeout, label(["docker", "cp", f"{box.name}:{path}", "-"])) as api:
        stream, _ = api.get_archive(box.id, path)
        with tarfile.open(fileobj=io.BytesIO(b"".join(stream))) as tar:
            member = tar.next()
            if member is None or not member.isfile():
                raise LabError(f"{service}:{path} is not a file")
            return tar.extractfile(member).read()


def run_once(image: str, argv: Sequence[str], *, network: str, hostname: str, binds: dict[str, str],
             environment: dict[str, str], timeout: float = DEFAULT) -> ExecResult:
    """`docker run --rm` of a lab image on a lab network, waited for: its exit code and output."""
    what = label(["docker", "run", "--rm", "--network", network, "--hostname", hostname, image, *argv])
    with session(timeout, what) as api:
        config = api.create_host_config(network_mode=network, binds=[f"{h}:{c}:ro" for h, c in binds.items()])
        cid = api.create_container(image, list(argv), hostname=hostname, environment=environment,
                                   host_config=config)["Id"]
        try:
            api.start(cid)
            code = api.wait(cid, timeout=timeout)["StatusCode"]
            out = api.logs(cid, stdout=True, stderr=False).decode(errors="replace")
            err = api.logs(cid, stdout=False, stderr=True).decode(errors="replace")
            return ExecResult(tuple(argv), int(code), out, err)
        finally:
            api.remove_container(cid, force=True)
