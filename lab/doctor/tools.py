"""The Java the doctor asks: keytool for the stores, the JRE validator for chain verdicts (and for the
stores too when keytool is the same host JDK's).

The host's keytool and JRE when there are (the validator compiled with the host's javac into a
cache: build/cache in a checkout, else ~/.cache/safeq-lab), else the lab image's (safeq-lab/base:latest) through ``docker run``; each
says which it was, and why none could be used.
"""
from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import tempfile
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Callable, Sequence

from certkit import javastore
from certkit.jre import CLASSES_DIR, EXPORTS, JVM_OPTIONS, MAIN_CLASS, Validator, ValidatorError

from .. import engine, project
from ..errors import LabError
from ..images import BASE_IMAGE

CHOICES = ("auto", "host", "docker")
COMPILE_TIMEOUT = 180
VALIDATOR_TIMEOUT = 30.0  # per verdict; the first one waits for a container to start

KeytoolCommand = Callable[[Path], Sequence[str]]  # the store's path -> the keytool command prefix


@dataclass
class Java:
    keytool: KeytoolCommand | None
    keytool_source: dict
    validator: Validator | None
    jre_source: dict

    def describe(self) -> dict:
        return {"keytool": self.keytool_source, "jre": self.jre_source}

    def stores_by_jre(self) -> bool:
        """keytool and the running validator are one JDK's on this host: that JRE loads the stores
        (keytool's entries, their order and its refusals, without a keytool JVM per store)."""
        if self.validator is None or (self.keytool_source["source"], self.jre_source["source"]) != ("host", "host"):
            return False
        keytool, java = self.keytool_source["command"], self.jre_source["java"]
        return Path(os.path.realpath(keytool)).parent == Path(os.path.realpath(java)).parent

    def list_store(self, path: Path, password: str) -> list[javastore.Entry]:
        """The PKCS12 store's entries as Java lists them; javastore.StoreError when Java refuses it."""
        if self.stores_by_jre():
            return javastore.list_entries(str(path), password, "PKCS12", jre=self.validator)
        return javastore.list_entries(str(path), password, "PKCS12", self.keytool(path))

    def summary(self) -> str:
        def one(name: str, src: dict) -> str:
            if src["source"] == "none":
                return f"{name}: none ({src['reason']})"
            where = src.get("command") or src.get("java") or ""
            version = f", Java {src['version']}" if src.get("version") else ""
            return f"{name}: {src['source']} {where}{version}".rstrip()
        return "; ".join((one("keytool", self.keytool_source), one("JRE", self.jre_source)))


# --- the lab image through Docker -------------------------------------------------------------------

def docker_image_missing(image: str = BASE_IMAGE) -> str | None:
    """Why the lab image cannot be used here (None when it can): keytool and the validator run
    through the docker command, the image is asked of the engine."""
    if shutil.which("docker") is None:
        return "docker is not on PATH"
    try:
        with engine.session(engine.QUICK, f"docker image inspect {image}") as api:
            try:
                api.inspect_image(image)
            except engine.sdk.errors.ImageNotFound:
                return f"image {image} is not there (build it with `safeq-lab build`)"
    except LabError as exc:
        return str(exc)
    return None


def _csv_field(text: str) -> str:
    return '"' + text.replace('"', '""') + '"'


def _mount(path: Path) -> list[str]:
    """The file, read-only, at the same path inside the container (--mount is CSV: a path may hold commas)."""
    return ["--mount", f"type=bind,{_csv_field(f'source={path}')},{_csv_field(f'target={path}')},readonly"]


def docker_keytool(docker_cmd: str, image: str = BASE_IMAGE) -> KeytoolCommand:
    def command(path: Path) -> list[str]:
        # The password crosses as the environment variable javastore sets (never on a command line).
        return [docker_cmd, "run", "--rm", "--network", "none", "-e", "SAFEQ_STOREPASS",
                *_mount(Path(path).resolve()), image, "keytool"]
    return command


def docker_validator_command(docker_cmd: str, image: str = BASE_IMAGE) -> list[str]:
    """The validator in a throwaway container; it ends (and is removed) when its input closes."""
    return [docker_cmd, "run", "-i", "--rm", "--network", "none", image,
            "java", *EXPORTS, *JVM_OPTIONS, "-cp", CLASSES_DIR, MAIN_CLASS]


# --- the host ---------------------------------------------------------------------------------------

def host_keytool() -> str | None:
    return shutil.which(os.environ.get("SAFEQ_KEYTOOL", "keytool"))


def validator_sources() -> list[Path]:
    """The validator's Java sources: a checkout's images/base/java, else the copy installed with
    certkit (`pip install .` packs them as certkit.validator)."""
    root = project.find()
    if root is not None:
        folder = root / "images" / "base" / "java" / "pkixjudge"
    else:
        folder = Path(str(resources.files("certkit.validator") / "pkixjudge"))
    sources = sorted(folder.glob("*.java"))
    if not sources:
        raise ValidatorError(f"the JRE validator's sources are not installed ({folder}): reinstall safeq-pki-lab, "
                             "or use --java docker")
    return sources


def cache_dir() -> Path:
    """build/cache in a checkout; else the user's cache folder (a plain `pip install .`)."""
    root = project.find()
    if root is not None:
        return root / "build" / "cache"
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "safeq-lab"


def compiled_classes(javac: str) -> Path:
    """The validator compiled by ``javac``, cached (cache_dir()) by sources and compiler."""
    sources = validator_sources()
    digest = hashlib.sha256(os.path.realpath(javac).encode())
    for src in sources:
        digest.update(src.read_bytes())
    cache = cache_dir()
    target = cache / f"pkixjudge-{digest.hexdigest()[:16]}"
    if (target / (MAIN_CLASS.replace(".", "/") + ".class")).is_file():
        return target
    try:
        cache.mkdir(parents=True, exist_ok=True)
        staging = Path(tempfile.mkdtemp(prefix=".pkixjudge-", dir=cache))
    except OSError as exc:
        raise ValidatorError(f"cannot write the validator's cache {cache}: {exc.strerror}") from None
    try:
        proc = subprocess.run([javac, *EXPORTS, "-nowarn", "-d", str(staging), *map(str, sources)],
                              capture_output=True, text=True, timeout=COMPILE_TIMEOUT)
        if proc.returncode != 0:
            raise ValidatorError(f"javac could not compile the validator: {proc.stderr.strip()[-300:]}")
        try:
            staging.rename(target)
        except OSError:  # another doctor compiled it meanwhile
            if not target.is_dir():
                raise
    except subprocess.TimeoutExpired:
        raise ValidatorError(f"javac did not finish within {COMPILE_TIMEOUT} s") from None
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return target


def host_validator() -> tuple[Validator, dict]:
    """SAFEQ_VALIDATOR_CMD or SAFEQ_VALIDATOR_CLASSES when set; else the host JDK's java + javac."""
    if os.environ.get("SAFEQ_VALIDATOR_CMD") or os.environ.get("SAFEQ_VALIDATOR_CLASSES"):
        return Validator(timeout=VALIDATOR_TIMEOUT), {"source": "host", "java": "(SAFEQ_VALIDATOR_* setting)"}
    javac = shutil.which("javac")
    if javac is None:
        raise ValidatorError("no javac on PATH to compile the validator (install a JDK, e.g. openjdk-17-jdk-headless)")
    java = Path(os.path.realpath(javac)).parent / "java"  # compiler and runtime from one JDK
    if not os.access(java, os.X_OK):
        raise ValidatorError(f"{javac} has no java next to it")
    validator = Validator(java=str(java), classes_dir=compiled_classes(javac), timeout=VALIDATOR_TIMEOUT)
    return validator, {"source": "host", "java": str(java)}


# --- choosing ---------------------------------------------------------------------------------------

def _started(make: Callable[[], tuple[Validator, dict]]) -> tuple[Validator | None, dict]:
    """A validator that answered (its version asked), or None with the reason."""
    try:
        validator, source = make()
        info = validator.info()
    except ValidatorError as exc:
        return None, {"source": "none", "reason": str(exc)}
    return validator, {**source, "version": info.get("java.version"), "vendor": info.get("java.vendor")}


def _pick_keytool(choice: str, docker_missing: Callable[[], str | None]) -> tuple[KeytoolCommand | None, dict]:
    host = host_keytool() if choice != "docker" else None
    if host:
        return (lambda _path: [host]), {"source": "host", "command": host}
    why_not_host = "no keytool on PATH" if choice != "docker" else "--java docker"
    if choice != "host" and not docker_missing():
        return docker_keytool(shutil.which("docker")), {"source": "docker", "command": f"{BASE_IMAGE} keytool"}
    reason = why_not_host + ("" if choice == "host" else f"; {docker_missing()}")
    return None, {"source": "none", "reason": reason}


def _pick_validator(choice: str, docker_missing: Callable[[], str | None]) -> tuple[Validator | None, dict]:
    reasons = []
    if choice != "docker":
        validator, source = _started(host_validator)
        if validator is not None:
            return validator, source
        reasons.append(f"host: {source['reason']}")
    if choice != "host":
        missing = docker_missing()
        if missing is None:
            command = docker_validator_command(shutil.which("docker"))
            validator, source = _started(lambda: (Validator(command, timeout=VALIDATOR_TIMEOUT),
                                                  {"source": "docker", "java": f"{BASE_IMAGE} java"}))
            if validator is not None:
                return validator, source
            reasons.append(f"docker: {source['reason']}")
        else:
            reasons.append(f"docker: {missing}")
    return None, {"source": "none", "reason": "; ".join(reasons)}


_cache: dict[str, Java] = {}


def detect(choice: str = "auto") -> Java:
    """The keytool and JRE to use (kept for the process: one JVM however many runs)."""
    if choice not in CHOICES:
        raise ValueError(f"choice must be one of {CHOICES}")
    if choice not in _cache:
        memo: dict[str, str | None] = {}

        def docker_missing() -> str | None:
            if "why" not in memo:
                memo["why"] = docker_image_missing()
            return memo["why"]

        keytool, keytool_source = _pick_keytool(choice, docker_missing)
        validator, jre_source = _pick_validator(choice, docker_missing)
        _cache[choice] = Java(keytool, keytool_source, validator, jre_source)
    return _cache[choice]
