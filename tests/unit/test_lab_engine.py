"""lab.engine: the lab's containers by compose's labels, exec with stdin and a deadline, the
healthcheck run now, and one clear error for an engine that cannot be reached. No Docker needed:
a stub stands in for the SDK's client, and real sockets for the engine's exec stream."""
import socket
import struct
import threading
import time
from socket import SHUT_WR, socketpair

import docker as sdk
import pytest
import requests

from lab import engine
from lab.errors import LabError

PROJECT = "safeq-lab"


def inspect(service: str, state: str = "running", project: str = PROJECT, health: str | None = "healthy",
            test=("CMD", "safeq-admin", "health"), number: int = 1, oneoff: bool = False) -> dict:
    labels = {engine.PROJECT_LABEL: project, engine.SERVICE_LABEL: service, engine.NUMBER_LABEL: str(number),
              engine.ONEOFF_LABEL: "True" if oneoff else "False"}
    return {"Id": f"id-{project}-{service}-{number}-{state}", "Name": f"/{project}-{service}-{number}",
            "Config": {"Labels": labels, "Healthcheck": {"Test": list(test)} if test else None},
            "State": {"Status": state, **({"Health": {"Status": health}} if health else {})}}


def api_error(status: int, cls=sdk.errors.APIError):
    response = requests.Response()
    response.status_code = status
    return cls(f"{status} Client Error", response=response, explanation=f"engine says {status}")


def frames(*parts: tuple[int, bytes]) -> bytes:
    return b"".join(struct.pack(">BxxxL", kind, len(data)) + data for kind, data in parts)


class FakeApi:
    """The SDK's low-level client as far as lab.engine uses it; answers are per command."""

    def __init__(self, boxes: list[dict], answers: dict | None = None):
        self.boxes, self.answers = boxes, answers or {}
        self.filters, self.created, self.peers, self.stdin, self.closed = [], [], [], [], 0
        self.lock = threading.Lock()

    def containers(self, all=False, filters=None):
        assert all  # stopped containers too, as `compose ps --all`
        self.filters.append(filters)
        return [{"Id": b["Id"], "Labels": b["Config"]["Labels"]} for b in self.boxes
                if set(filters["label"]) <= {f"{k}={v}" for k, v in b["Config"]["Labels"].items()}]

    def inspect_container(self, cid):
        for box in self.boxes:
            if box["Id"] == cid:
                return box
        raise api_error(404, sdk.errors.NotFound)

    def exec_create(self, cid, cmd, stdin=False):
        box = self.inspect_container(cid)
        if box["State"]["Status"] != "running":
            raise api_error(409)
        with self.lock:
            self.created.append((cid, tuple(cmd), stdin))
            return {"Id": str(len(self.created) - 1)}

    def exec_start(self, exec_id, socket=False):
        assert socket
        ours, peer = socketpair()
        _, cmd, stdin = self.created[int(exec_id)]
        answer = self.answers.get(cmd, (0, b"", b""))

        def command():  # like keytool: reads all of stdin, then answers (a "true" reads none)
            self.stdin.append(read_to_end(peer) if stdin and cmd != ("true",) else None)
            if answer != "hang":
                peer.sendall(frames((1, answer[1]), (2, answer[2])))
                peer.shutdown(SHUT_WR)
        threading.Thread(target=command, daemon=True).start()
        self.peers.append(peer)
        return ours

    def exec_inspect(self, exec_id):
        answer = self.answers.get(self.created[int(exec_id)][1], (0, b"", b""))
        return {"Running": False, "ExitCode": answer[0]}

    def logs(self, cid, tail="all"):
        return b"line 1\nline 2\n"

    def ping(self):
        return True

    def close(self):
        self.closed += 1


@pytest.fixture
def fake(monkeypatch):
    """The engine as a stub; returns a function that installs one and records each client's timeout."""
    timeouts = []

    def install(boxes, answers=None):
        api = FakeApi(boxes, answers)
        monkeypatch.setattr(engine, "connect", lambda timeout: timeouts.append(timeout) or api)
        api.timeouts = timeouts
        return api
    monkeypatch.setattr(engine, "project", lambda: PROJECT)
    return install


def read_to_end(peer: socket.socket) -> bytes:
    data = b""
    while chunk := peer.recv(65536):
        data += chunk
    return data


# -- containers by compose's labels -------------------------------------------------------------

def test_containers_are_found_by_the_project_label(fake):
    api = fake([inspect("primary"), inspect("gateway", state="exited", health=None),
                inspect("primary", project="other"), inspect("client", oneoff=True)])
    boxes = engine.containers()
    assert api.filters == [{"label": [f"{engine.PROJECT_LABEL}={PROJECT}"]}]
    assert [(b.service, b.name, b.state, b.health) for b in boxes] == [
        ("gateway", "safeq-lab-gateway-1", "exited", None), ("primary", "safeq-lab-primary-1", "running", "healthy")]
    assert boxes[1].healthcheck == ("CMD", "safeq-admin", "health") and boxes[1].running
    assert api.closed == 1


def test_a_container_carries_when_it_started_and_the_engine_s_latest_check(fake):
    box = inspect("gateway", health="starting")
    box["State"].update(StartedAt="2026-11-29T03:46:04.196099306Z", Health={"Status": "starting", "Log": [
        {"Start": "2026-11-29T03:46:05.379518994Z", "ExitCode": 1, "Output": "starting: None\n"},
        {"Start": "2026-11-29T03:46:05.999045558Z", "ExitCode": 0, "Output": "connected to primary-host\n"}]})
    fresh = inspect("client", health="starting")
    fresh["State"].update(StartedAt="0001-01-01T00:00:00Z", Health={"Status": "starting", "Log": []})
    fake([box, fresh])
    client, gateway = engine.containers()
    assert gateway.started == pytest.approx(1795923964.196099)  # 2026-11-29 03:46:04.196 UTC
    assert gateway.last_check == engine.Check(pytest.approx(1795923965.999045), True, "connected to primary-host")
    assert (client.started, client.last_check) == (0.0, None)


def test_a_service_is_found_by_its_service_label(fake):
    api = fake([inspect("primary", state="exited", number=1), inspect("primary", number=2), inspect("gateway")])
    box = engine.running("primary")
    assert api.filters == [{"label": [f"{engine.PROJECT_LABEL}={PROJECT}", f"{engine.SERVICE_LABEL}=primary"]}]
    assert (box.name, box.number) == ("safeq-lab-primary-2", 2)


def test_a_service_without_a_running_container_is_not_running(fake):
    fake([inspect("primary", state="exited")])
    with pytest.raises(engine.NotRunning, match=r"^the primary is not running: start the lab with `safeq-lab up`$"):
        engine.running("primary")


def test_an_engine_error_names_the_call(fake, monkeypatch):
    api = fake([])
    monkeypatch.setattr(api, "containers", lambda **kw: (_ for _ in ()).throw(api_error(500)))
    with pytest.raises(LabError, match=r"^`docker ps --all --filter=label=com.docker.compose.project=safeq-lab` "
                                       r"failed: engine says 500$"):
        engine.containers()


# -- exec ---------------------------------------------------------------------------------------

def test_exec_returns_the_command_s_code_and_output(fake):
    fake([inspect("primary")], {("safeq-admin", "api", "GET", "/x"): (3, b"out\n", b"error: no\n")})
    result = engine.execute("primary", ["safeq-admin", "api", "GET", "/x"], timeout=5)
    assert (result.returncode, result.stdout, result.stderr) == (3, "out\n", "error: no\n")


def test_exec_sends_stdin_then_its_end(fake):
    api = fake([inspect("primary")], {("keytool",): (0, b"Certificate was added to keystore\n", b"")})
    # The command answers only once stdin ends: without its end this would time out.
    result = engine.execute("primary", ["keytool"], input="changeit\nyes\n", timeout=2)
    assert result.stdout == "Certificate was added to keystore\n"
    assert api.created[0][2] is True and api.stdin == [b"changeit\nyes\n"]
    engine.execute("primary", ["true"], timeout=5)
    assert api.created[1][2] is False  # stdin attached only when there is input


def test_a_command_that_does_not_read_stdin_does_not_block_the_exec(fake):
    fake([inspect("primary")], {("true",): (0, b"done\n", b"")})
    result = engine.execute("primary", ["true"], input="x" * 4_000_000, timeout=2)  # more than a socket holds
    assert (result.returncode, result.stdout) == (0, "done\n")


def test_exec_past_its_timeout_is_a_command_timeout(fake):
    api = fake([inspect("primary")], {("sleep", "9"): "hang"})
    start = time.monotonic()
    with pytest.raises(engine.CommandTimeout, match=r"^`docker exec safeq-lab-primary-1 sleep 9` did not answer "
                                                    r"in 0 s: check that Docker responds"):
        engine.execute("primary", ["sleep", "9"], timeout=0.3)
    assert 0.3 <= time.monotonic() - start < 2
    assert all(0 < t <= 0.3 for t in api.timeouts), api.timeouts  # each API call within what was left


def test_exec_in_a_container_that_stopped_is_not_running(fake, monkeypatch):
    api = fake([inspect("primary", state="exited")])
    with pytest.raises(engine.NotRunning):
        engine.execute(engine._container(api.boxes[0]), ["true"])
    api.boxes[0]["State"]["Status"] = "running"
    monkeypatch.setattr(api, "exec_inspect", lambda exec_id: (_ for _ in ()).throw(api_error(404)))
    with pytest.raises(engine.NotRunning):  # removed while the command ran
        engine.execute(engine._container(api.boxes[0]), ["true"])


def test_exec_sh_failure_and_a_missing_service(fake):
    fake([inspect("primary")], {("sh", "-c", "false"): (1, b"", b"first\nlast words\n")})
    with pytest.raises(LabError, match=r"^in primary: `false` failed: last words$"):
        engine.exec_sh("primary", "false")
    assert engine.exec_sh("primary", "false", check=False).returncode == 1
    missing = engine.exec_sh("gateway", "true", check=False)  # as a command that failed, not a pass
    assert (missing.returncode, missing.stderr) == (
        125, "the gateway is not running: start the lab with `safeq-lab up`")
    with pytest.raises(engine.NotRunning):
        engine.exec_sh("gateway", "true")


def test_demux_splits_interleaved_frames():
    assert engine.demux(frames((1, b"a"), (2, b"E"), (1, b"b"), (2, b""), (1, b"c"))) == (b"abc", b"E")
    assert engine.demux(frames((1, b"whole")) + b"\x01\x00\x00") == (b"whole", b"")  # a cut-off header


# -- the healthcheck, run now -------------------------------------------------------------------

@pytest.mark.parametrize("test, argv", [
    (("CMD", "safeq-admin", "health"), ("safeq-admin", "health")),
    (("CMD-SHELL", "safeq-admin health || exit 1"), ("sh", "-c", "safeq-admin health || exit 1")),
])
def test_healthcheck_now_runs_the_container_s_own_test(fake, test, argv):
    api = fake([inspect("primary", test=test)], {argv: (1, b"", b"serving CN=localhost\n")})
    assert engine.healthcheck_now(engine.running("primary")) == (False, "serving CN=localhost")
    assert api.created[-1][1] == argv


def test_healthcheck_now_without_a_test_gone_or_hanging(fake):
    api = fake([inspect("ocsp", test=None), inspect("primary", test=("NONE",)), inspect("client", state="exited"),
                inspect("gateway", test=("CMD", "hang"))], {("hang",): "hang"})
    none, disabled, gone, hanging = (engine._container(b) for b in api.boxes)
    assert engine.healthcheck_now(none) == engine.healthcheck_now(disabled) == (True, "no healthcheck")
    assert engine.healthcheck_now(gone) == (False, "container is gone")
    assert engine.healthcheck_now(hanging, timeout=0.2) == (False, "healthcheck did not answer within 0 s")


def test_logs(fake):
    fake([inspect("primary", state="exited")])
    assert engine.logs("primary", tail=10) == "line 1\nline 2\n"  # a stopped container's log too


# -- an engine that cannot be reached (the real SDK, a socket that is not the engine's) ---------

@pytest.fixture
def docker_host(monkeypatch, tmp_path):
    monkeypatch.setattr(engine, "_api_version", None)
    path = tmp_path / "docker.sock"
    monkeypatch.setenv("DOCKER_HOST", f"unix://{path}")
    return path


def test_no_socket_is_the_preflight_error(docker_host):
    with pytest.raises(LabError) as err:
        engine.ping()
    assert str(err.value) == (
        f"the Docker daemon is not running or not reachable (Cannot connect to the Docker daemon at "
        f"unix://{docker_host}: No such file or directory): start it, e.g. 'sudo systemctl start docker' "
        "(on Debian run: sudo scripts/ensure-docker.sh)")


def test_nobody_listening_is_the_preflight_error(docker_host):
    stale = socket.socket(socket.AF_UNIX)
    stale.bind(str(docker_host))  # a socket file left by a daemon that stopped
    stale.close()
    with pytest.raises(LabError, match=r"^the Docker daemon is not running or not reachable \(Cannot connect to "
                                       r"the Docker daemon at unix://.*: Connection refused\): start it"):
        engine.ping()


def test_an_engine_that_does_not_answer_is_a_timeout(docker_host):
    server = socket.socket(socket.AF_UNIX)
    server.bind(str(docker_host))
    server.listen(4)  # accepts, never answers
    start = time.monotonic()
    try:
        with pytest.raises(engine.CommandTimeout, match=r"^`docker info` did not answer in 0 s: check that Docker"):
            engine.ping(timeout=0.3)
    finally:
        server.close()
    assert time.monotonic() - start < 3


def test_every_call_runs_under_a_timeout_and_closes_its_client(fake):
    api = fake([inspect("primary")])
    engine.containers(timeout=7)
    engine.execute("primary", ["true"], timeout=9)
    engine.healthcheck_now(engine.running("primary", timeout=5), timeout=11)
    engine.logs("primary", timeout=13)
    engine.ping(timeout=3)
    assert api.timeouts and all(0 < t <= 13 for t in api.timeouts), api.timeouts
    assert api.closed == len(api.timeouts)


def test_exec_from_threads_at_once(fake):
    """status runs its commands at once: each call has its own client and socket."""
    api = fake([inspect("primary")], {("a",): (0, b"A", b""), ("b",): (0, b"B", b"")})
    results = {}
    threads = [threading.Thread(target=lambda c=c: results.__setitem__(c, engine.execute("primary", [c]).stdout))
               for c in "ab" * 4]
    for t in threads:
        t.start()
    for t in threads:
        t.join(5)
    assert results == {"a": "A", "b": "B"} and len(api.created) == 8


# --- the checks' own throwaway containers and files ----------------------------------------------

class ThrowawayApi:
    """Records what a throwaway container went through."""

    def __init__(self, exit_code=0, archive=b"", volumes=("v1",)):
        self.calls, self.exit_code, self.archive, self.existing = [], exit_code, archive, set(volumes)

    def create_host_config(self, **kw):
        return kw

    def create_container(self, image, command=None, **kw):
        self.calls.append(("create", image, command, kw))
        return {"Id": "cid"}

    def start(self, cid):
        self.calls.append(("start", cid))

    def stop(self, cid, timeout):
        self.calls.append(("stop", cid, timeout))

    def wait(self, cid, timeout):
        return {"StatusCode": self.exit_code}

    def logs(self, cid, stdout=True, stderr=True):
        return b"out\n" if stdout else b"err\n"

    def inspect_container(self, cid):
        return {**inspect("throwaway"), "Id": cid, "State": {"Status": "exited", "ExitCode": self.exit_code,
                                                             "OOMKilled": False}}

    def remove_container(self, cid, force):
        self.calls.append(("remove", cid, force))

    def volumes(self, filters):
        self.calls.append(("volumes", filters))
        return {"Volumes": [{"Name": n} for n in sorted(self.existing, reverse=True)]}

    def remove_volume(self, name):
        if name not in self.existing:
            raise api_error(404, sdk.errors.NotFound)
        self.calls.append(("remove-volume", name))

    def get_archive(self, cid, path):
        return iter([self.archive[:10], self.archive[10:]]), {}

    def close(self):
        pass


def test_start_starts_each_container_in_a_call_of_its_own(fake):
    api = fake([inspect("gateway", state="created"), inspect("client", state="created")])
    started = []
    api.start = lambda cid: started.append(cid)
    engine.start(engine.containers(), timeout=5)
    assert sorted(started) == [f"id-{PROJECT}-client-1-created", f"id-{PROJECT}-gateway-1-created"] and api.closed == 3  # the listing's client too
    engine.start([], timeout=5)
    assert api.closed == 3


def test_a_throwaway_container_runs_stops_and_goes(monkeypatch):
    api = ThrowawayApi(exit_code=0)
    monkeypatch.setattr(engine, "connect", lambda timeout: api)
    box = engine.run_detached("safeq-lab/primary:latest")
    assert engine.stop(box, grace=2) == (0, False)
    engine.remove(box)
    create = api.calls[0]
    assert create[:2] == ("create", "safeq-lab/primary:latest")
    assert create[3]["host_config"] == {"init": True, "network_mode": "none"}  # apart from the lab
    assert [c[0] for c in api.calls] == ["create", "start", "stop", "remove"]
    assert api.calls[2] == ("stop", "cid", 2)


def test_run_once_waits_reports_and_always_removes(monkeypatch):
    api = ThrowawayApi(exit_code=3)
    monkeypatch.setattr(engine, "connect", lambda timeout: api)
    result = engine.run_once("img", ["cmd", "arg"], network="lab-net", hostname="gw-2",
                             binds={"/host/dir": "/pki"}, environment={"A": "1"})
    assert (result.returncode, result.stdout, result.stderr) == (3, "out\n", "err\n")
    _, _, command, kw = api.calls[0]
    assert command == ["cmd", "arg"] and kw["hostname"] == "gw-2" and kw["environment"] == {"A": "1"}
    assert kw["host_config"] == {"network_mode": "lab-net", "binds": ["/host/dir:/pki:ro"]}
    assert api.calls[-1] == ("remove", "cid", True)


def test_missing_volumes_are_left_out(monkeypatch):
    api = ThrowawayApi(volumes=("v1",))
    monkeypatch.setattr(engine, "connect", lambda timeout: api)
    engine.remove_volumes(["v1", "gone"])
    assert api.calls == [("remove-volume", "v1")]


def test_a_labs_volumes_are_found_by_its_project_label(monkeypatch):
    api = ThrowawayApi(volumes=("lab_gateway-3-data", "lab_client-data"))
    monkeypatch.setattr(engine, "connect", lambda timeout: api)
    assert engine.project_volumes("lab") == ["lab_client-data", "lab_gateway-3-data"]
    assert api.calls == [("volumes", {"label": "com.docker.compose.project=lab"})]


def test_an_image_that_does_not_exist_has_no_id(monkeypatch):
    class Api:
        def inspect_image(self, name):
            if name != "safeq-lab/base:latest":
                raise engine.sdk.errors.ImageNotFound(f"No such image: {name}")
            return {"Id": "sha256:b"}

        def close(self):
            pass
    monkeypatch.setattr(engine, "connect", lambda timeout: Api())
    assert engine.image_ids(["safeq-lab/base:latest", "safeq-lab/gone:latest"]) == {
        "safeq-lab/base:latest": "sha256:b", "safeq-lab/gone:latest": None}


def test_read_file_takes_the_one_file_out_of_the_engine_s_archive(fake, monkeypatch):
    import io
    import tarfile
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tar:
        info = tarfile.TarInfo("garbage.cer")
        info.size = 5
        tar.addfile(info, io.BytesIO(b"\x00\x01abc"))
    fake([inspect("primary")])
    api = ThrowawayApi(archive=buf.getvalue())
    monkeypatch.setattr(engine, "running", lambda service, timeout=None: engine._container(inspect(service)))
    monkeypatch.setattr(engine, "connect", lambda timeout: api)
    assert engine.read_file("primary", "/tmp/bad/garbage.cer") == b"\x00\x01abc"


class LabObjectsApi:
    """Containers, volumes and networks of two labs, by compose's project label."""

    def __init__(self):
        self.objects = {kind: {f"{lab}-{kind}-{i}": lab for lab in ("scn-a", "scn-b") for i in (1, 2)}
                        for kind in ("container", "volume", "network")}
        self.calls, self.lock = [], threading.Lock()

    def _of(self, kind, filters):
        [wanted] = filters["label"] if isinstance(filters["label"], list) else [filters["label"]]
        return [name for name, lab in self.objects[kind].items() if wanted == f"{engine.PROJECT_LABEL}={lab}"]

    def _remove(self, kind, name, **kw):
        with self.lock:
            self.calls.append((kind, name, kw))
            if self.objects[kind].pop(name, None) is None or name.endswith("-2") and kind == "volume":
                raise api_error(404, sdk.errors.NotFound)  # the second volume went with its container

    def containers(self, all=False, filters=None):
        assert all
        return [{"Id": name} for name in self._of("container", filters)]

    def volumes(self, filters):
        return {"Volumes": [{"Name": name} for name in self._of("volume", filters)]}

    def networks(self, filters):
        return [{"Id": name} for name in self._of("network", filters)]

    def remove_container(self, cid, force, v):
        self._remove("container", cid, force=force, v=v)

    def remove_volume(self, name):
        self._remove("volume", name)

    def remove_network(self, nid):
        self._remove("network", nid)

    def close(self):
        pass


def test_discard_removes_a_labs_containers_at_once_then_its_volumes_and_networks(monkeypatch):
    api = LabObjectsApi()
    monkeypatch.setattr(engine, "connect", lambda timeout: api)
    engine.discard("scn-a")
    assert sorted(c[:2] for c in api.calls[:2]) == [("container", "scn-a-container-1"), ("container", "scn-a-container-2")]
    assert all(kw == {"force": True, "v": True} for _, _, kw in api.calls[:2])  # killed, not stopped with grace
    assert [c[:2] for c in api.calls[2:]] == [("volume", "scn-a-volume-1"), ("volume", "scn-a-volume-2"),
                                              ("network", "scn-a-network-1"), ("network", "scn-a-network-2")]
    assert all(lab == "scn-b" for kind in api.objects.values() for lab in kind.values())
    assert len(api.objects["container"]) == 2  # the other lab untouched


def test_exec_bytes_by_container_keeps_the_bytes_and_testinfra_runs_through_it(fake):
    from support.engine_backend import EngineBackend
    import testinfra
    box = inspect("primary")
    raw = b"\xff\xfe not UTF-8\n"
    api = fake([box], {("/bin/sh", "-c", "cat -- /pki/cacert.der"): (0, raw, b""),
                       ("/bin/sh", "-c", "exit 3"): (3, b"", b"why\n")})
    assert engine.exec_bytes(box["Id"], ["/bin/sh", "-c", "exit 3"], timeout=5) == (3, b"", b"why\n")
    host = testinfra.get_host(f"{EngineBackend.NAME}://{box['Id']}")
    assert host.run("cat -- %s", "/pki/cacert.der").stdout_bytes == raw  # as the command wrote it
    result = host.run("exit 3")
    assert (result.rc, result.stderr) == (3, "why\n")
    assert [c[:2] for c in api.created] == [(box["Id"], ("/bin/sh", "-c", "exit 3")),
                                            (box["Id"], ("/bin/sh", "-c", "cat -- /pki/cacert.der")),
                                            (box["Id"], ("/bin/sh", "-c", "exit 3"))]
