"""Build and run the reference Java server and client (``java/refpeer``); each run is one JSON line.

The sources are compiled once with this machine's ``javac --release 17`` into a cache folder
named by a hash of the sources and the compiler, so the same classes run on the host's JRE
and on the lab's JRE 21 (``safeq-lab/base:latest``, Debian's openjdk-21-jre-headless).

A run answers what JSSE says, with the JRE's own defaults, for one handshake:

    classes = build()
    result = pair(HostJava(), classes, server=Identity(pfx, "pw", (root,)),
                  client=Identity(client_pfx, "pw", (root,)), host="primary-host")
    # {"ok": false, "side": "server", "message": "Empty client certificate chain", ...}
"""
from __future__ import annotations

import hashlib
import json
import os
import secrets
import shutil
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

SOURCES = Path(__file__).resolve().parent / "java"
MAIN = "refpeer.Main"
IMAGE = "safeq-lab/base:latest"
CONTAINER_PREFIX = "ref-test-"
# Pinned messages carry dates (NotAfter: ...) in the JVM's zone and locale: fix both.
# The rest makes a one-handshake JVM start faster (no tiered C2, no perf file, one GC thread).
JVM_OPTIONS = ("-Duser.timezone=UTC", "-Duser.language=en", "-Duser.country=US",
               "-XX:+UseSerialGC", "-XX:TieredStopAtLevel=1", "-XX:-UsePerfData")
HANDSHAKE_TIMEOUT_MS = 10_000
# A run waits for accept, handshake and the first read, each bounded by the handshake timeout.
RUN_TIMEOUT = 60.0
DOCKER_TIMEOUT = 30.0


class RunFailed(RuntimeError):
    """No verdict: the program did not build, start, finish in time or print its one JSON line."""


@dataclass(frozen=True)
class Identity:
    """One end's files: its PKCS12 keystore (None: no identity) and the CA certificates it trusts."""
    keystore: Path | None = None
    password: str = ""
    trust: tuple[Path, ...] = ()


def _javac() -> str:
    javac = shutil.which("javac")
    if javac is None:
        raise RunFailed("javac (a JDK 17 or later) is not on PATH: the reference is compiled with it")
    return javac


def default_cache() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "safeq-pki-lab" / "reference"


def build(cache_dir: Path | None = None, javac: str | None = None) -> Path:
    """The compiled classes, compiled now unless this source and compiler were compiled before."""
    javac = javac or _javac()
    sources = sorted(SOURCES.rglob("*.java"))
    version = subprocess.run([javac, "-version"], capture_output=True, text=True, timeout=60)
    if version.returncode != 0:
        raise RunFailed(f"{javac} -version exited {version.returncode}: {version.stderr.strip()}")
    digest = hashlib.sha256((version.stdout + version.stderr).encode())
    for src in sources:
        digest.update(str(src.relative_to(SOURCES)).encode() + b"\0" + src.read_bytes() + b"\0")
    root = Path(cache_dir) if cache_dir else default_cache()
    out = root / digest.hexdigest()[:16]
    if (out / "refpeer" / "Main.class").is_file():
        return out
    root.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(dir=root, prefix=".build-"))
    try:
        proc = subprocess.run([javac, "--release", "17", "-Xlint:all", "-Werror", "-d", str(tmp),
                               *map(str, sources)], capture_output=True, text=True, timeout=180)
        if proc.returncode != 0:
            raise RunFailed(f"javac exited {proc.returncode}:\n{proc.stderr.strip()}")
        # Readable by the container's user whatever this machine's umask.
        for path in [tmp, *tmp.rglob("*")]:
            path.chmod(0o755 if path.is_dir() else 0o644)
        try:
            tmp.rename(out)
        except OSError:
            if not (out / "refpeer" / "Main.class").is_file():
                raise
            # Another process compiled the same sources first: its classes are ours.
    finally:
        if tmp.exists():
            shutil.rmtree(tmp)
    return out


def _parse(proc_returncode: int, stdout: str, stderr: str, where: str) -> dict:
    lines = stdout.splitlines()
    tail = " | ".join(stderr.strip().splitlines()[-5:])
    if proc_returncode != 0 or len(lines) != 1:
        raise RunFailed(f"{where}: exit code {proc_returncode}, {len(lines)} stdout line(s) "
                        f"{stdout.strip()[:300]!r}; stderr: {tail}")
    try:
        reply = json.loads(lines[0])
    except json.JSONDecodeError as exc:
        raise RunFailed(f"{where}: not JSON ({exc}): {lines[0][:300]!r}") from None
    if not isinstance(reply, dict) or not isinstance(reply.get("ok"), bool):
        raise RunFailed(f"{where}: not a verdict: {lines[0][:300]!r}")
    return reply


class HostJava:
    """This machine's JRE: by default the java next to javac, so compiler and runtime are one JDK."""

    label = "host"

    def __init__(self, java: str | None = None):
        if java is None:
            java = str(Path(os.path.realpath(_javac())).parent / "java")
        if not os.access(java, os.X_OK):
            raise RunFailed(f"no java at {java}")
        self.java = java

    def command(self, classes: Path, args: Sequence[str | Path]) -> list[str]:
        return [self.java, *JVM_OPTIONS, "-cp", str(classes), MAIN, *map(str, args)]

    def run(self, classes: Path, args: Sequence[str | Path], timeout: float = RUN_TIMEOUT) -> dict:
        cmd = self.command(classes, args)
        try:
            proc = subprocess.run(cmd, capture_output=True, text=True, encoding="utf-8", errors="replace",
                                  timeout=timeout)
        except subprocess.TimeoutExpired:
            raise RunFailed(f"{self.java}: no answer within {timeout:g} s") from None
        return _parse(proc.returncode, proc.stdout, proc.stderr, self.java)

    def start(self, classes: Path, args: Sequence[str | Path]) -> subprocess.Popen:
        """A run in the background (a standalone server); collect it with ``finish``."""
        return subprocess.Popen(self.command(classes, args), stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                text=True, encoding="utf-8", errors="replace")

    def finish(self, proc: subprocess.Popen, timeout: float = RUN_TIMEOUT) -> dict:
        try:
            out, err = proc.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.communicate(timeout=10)
            raise RunFailed(f"{self.java}: no answer within {timeout:g} s") from None
        return _parse(proc.returncode, out, err, self.java)

    def version(self) -> str:
        proc = subprocess.run([self.java, "-version"], capture_output=True, text=True, timeout=60)
        return proc.stderr.splitlines()[0] if proc.stderr else ""


class DockerJava:
    """The lab's JRE: ``java`` inside a throwaway container of the base image, no network,
    the classes and every fixture folder mounted read-only."""

    label = "image"

    def __init__(self, image: str = IMAGE, docker: str | None = None):
        self.image = image
        self.docker = docker or shutil.which("docker")

    def unavailable(self) -> str | None:
        """Why this runner cannot run here (None when it can)."""
        if self.docker is None:
            return "docker is not on PATH"
        try:
            proc = subprocess.run([self.docker, "image", "inspect", "--format", "{{.Id}}", self.image],
                                  capture_output=True, text=True, timeout=DOCKER_TIMEOUT)
        except subprocess.TimeoutExpired:
            return f"docker image inspect {self.image} did not answer within {DOCKER_TIMEOUT:g} s"
        if proc.returncode != 0:
            return f"image {self.image} is not available ({proc.stderr.strip()[:200]}); make base-image and build it"
        return None

    def command(self, classes: Path, args: Sequence[str | Path], name: str) -> list[str]:
        mounts = {Path(classes).resolve(): "/ref/classes"}
        mapped: list[str] = []
        for arg in args:
            if isinstance(arg, Path):
                folder = arg.resolve().parent
                mounts.setdefault(folder, f"/ref/in/{len(mounts) - 1}")
                mapped.append(f"{mounts[folder]}/{arg.name}")
            else:
                mapped.append(arg)
        volumes = [opt for host, inside in mounts.items() for opt in ("-v", f"{host}:{inside}:ro")]
        return [self.docker, "run", "--rm", "--network", "none", "--name", name, *volumes, self.image,
                "java", *JVM_OPTIONS, "-cp", "/ref/classes", MAIN, *mapped]

    def run(self, classes: Path, args: Sequence[str | Path], timeout: float = RUN_TIMEOUT) -> dict:
        if self.docker is None:
            raise RunFailed("docker is not on PATH")
        name = CONTAINER_PREFIX + secrets.token_hex(6)
        try:
            proc = subprocess.run(self.command(classes, args, name), capture_output=True, text=True,
                                  encoding="utf-8", errors="replace", timeout=timeout)
        except subprocess.TimeoutExpired:
            # Killing the docker client leaves the container running: remove it by its name.
            subprocess.run([self.docker, "rm", "-f", name], capture_output=True, timeout=DOCKER_TIMEOUT)
            raise RunFailed(f"container {name}: no answer within {timeout:g} s") from None
        return _parse(proc.returncode, proc.stdout, proc.stderr, f"{self.image} ({name})")

    def version(self) -> str:
        proc = subprocess.run([self.docker, "run", "--rm", "--network", "none", self.image, "java", "-version"],
                              capture_output=True, text=True, timeout=RUN_TIMEOUT)
        return proc.stderr.splitlines()[0] if proc.stderr else ""


def _identity_args(identity: Identity, prefix: str) -> list[str | Path]:
    args: list[str | Path] = []
    if identity.keystore is not None:
        args += [f"--{prefix}keystore", Path(identity.keystore), f"--{prefix}password", identity.password]
    for ca in identity.trust:
        args += [f"--{prefix}trust", Path(ca)]
    return args


def _common(protocols: Sequence[str] | None, timeout_ms: int) -> list[str]:
    return (["--protocols", ",".join(protocols)] if protocols else []) + ["--timeout-ms", str(timeout_ms)]


def pair_args(server: Identity, client: Identity, host: str, protocols: Sequence[str] | None = None,
              timeout_ms: int = HANDSHAKE_TIMEOUT_MS) -> list[str | Path]:
    if server.keystore is None:
        raise ValueError("the reference server needs a keystore")
    return ["pair", *_identity_args(server, "server-"), *_identity_args(client, "client-"), "--host", host,
            *_common(protocols, timeout_ms)]


def pair(runner: HostJava | DockerJava, classes: Path, server: Identity, client: Identity, host: str,
         protocols: Sequence[str] | None = None, timeout_ms: int = HANDSHAKE_TIMEOUT_MS) -> dict:
    """One handshake between a Java server (client certificate required) and a Java client checking ``host``."""
    return runner.run(classes, pair_args(server, client, host, protocols, timeout_ms))


def server_args(identity: Identity, port_file: Path, bind: str = "127.0.0.1", port: int = 0,
                protocols: Sequence[str] | None = None, timeout_ms: int = HANDSHAKE_TIMEOUT_MS) -> list[str | Path]:
    # The port file is written, not read: passed as text so a container runner does not mount it read-only.
    return ["server", *_identity_args(identity, ""), "--bind", bind, "--port", str(port),
            "--port-file", str(port_file), *_common(protocols, timeout_ms)]


def client_args(identity: Identity, address: str, port: int, host: str, protocols: Sequence[str] | None = None,
                timeout_ms: int = HANDSHAKE_TIMEOUT_MS) -> list[str | Path]:
    return ["client", *_identity_args(identity, ""), "--connect", f"{address}:{port}", "--host", host,
            *_common(protocols, timeout_ms)]
