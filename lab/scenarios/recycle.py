"""A lab reset between scenarios instead of made anew (`scenarios run`'s labs, `exercise start|reset`).

Once `up` made the lab (all healthy, before any break) ``save`` keeps its baseline: the PKI folder
copied on the host and, in each running container, the files the container changed since it was made
and its volumes (safeqlab.baseline). ``restore`` stops the units, puts all of it back (each
container's fingerprint must be as saved), starts the units, primary first, and waits until every
service passes its own healthcheck. What it cannot put back or prove comes back as a reason, and the
caller makes the lab anew.
"""
from __future__ import annotations

import filecmp
import hashlib
import json
import os
import shutil
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from certkit.fsio import StateError, read_json, write_json

from .. import engine, labstate, project, topology
from ..errors import LabError

STATE = "baseline.json"
PKI_COPY = "baseline-pki"
EXEC_TIMEOUT = 60
HEALTH_POLL = 0.4  # each check is a process in a container: asked less often, the other labs get the CPU


# -- the PKI folder -------------------------------------------------------------------------------

def sync_tree(source: Path, target: Path) -> None:
    """``target`` made the same as ``source`` in place (the containers mount its folders): files and
    folders added since removed, changed or missing ones copied back with their modes."""
    for folder, dirs, files in os.walk(target, topdown=False):
        here = Path(folder)
        for name in files + dirs:
            mine = here / name
            theirs = source / mine.relative_to(target)
            if not os.path.lexists(theirs) or theirs.is_dir() != (mine.is_dir() and not mine.is_symlink()):
                shutil.rmtree(mine) if mine.is_dir() and not mine.is_symlink() else mine.unlink()
    for folder, dirs, files in os.walk(source):
        here = Path(folder)
        mirror = target / here.relative_to(source)
        mirror.mkdir(exist_ok=True)
        shutil.copystat(here, mirror)
        for name in files:
            theirs, mine = here / name, mirror / name
            if not mine.exists() or not filecmp.cmp(theirs, mine, shallow=False):
                shutil.copy2(theirs, mine, follow_symlinks=False)
            shutil.copystat(theirs, mine, follow_symlinks=False)


# -- the engine ---------------------------------------------------------------------------------

def _made(box: engine.Container) -> tuple[float, list[str], str, str]:
    """When the container was made (epoch s), where its writable volumes are, its image's name and id."""
    with engine.session(engine.DEFAULT, engine.label(["docker", "inspect", box.name])) as api:
        info = api.inspect_container(box.id)
    volumes = sorted(m["Destination"] for m in info.get("Mounts") or [] if m.get("Type") == "volume" and m.get("RW"))
    return engine.epoch(info["Created"]), volumes, info["Config"]["Image"], info["Image"]


def _baseline(box: engine.Container, verb: str, plan: dict | None = None) -> dict:
    """`python3 -m safeqlab.baseline VERB` in the container: its JSON answer; its error raised."""
    result = engine.execute(box, ["python3", "-m", "safeqlab.baseline", verb],
                            input=json.dumps(plan) if plan is not None else None, timeout=EXEC_TIMEOUT)
    try:
        answer = json.loads(result.stdout.strip().splitlines()[-1])
    except (ValueError, IndexError):
        raise LabError(f"{box.service}: safeqlab.baseline {verb} answered "
                       f"{result.stdout!r} {result.stderr!r}") from None
    if result.returncode != 0 or "error" in answer:
        raise LabError(f"{box.service}: {answer.get('error') or result.stderr.strip()}")
    return answer


def _each(boxes: list[engine.Container], work) -> list:
    with ThreadPoolExecutor(max(1, len(boxes))) as pool:
        return list(pool.map(work, boxes))


# -- save / restore -----------------------------------------------------------------------------

def _compose_digest() -> str:
    return hashlib.sha256((project.root() / "compose.yaml").read_bytes()).hexdigest()


def _state_file() -> Path:
    return labstate.folder() / STATE


def forget() -> None:
    """No baseline any more (the lab is being made anew)."""
    _state_file().unlink(missing_ok=True)
    shutil.rmtree(labstate.folder() / PKI_COPY, ignore_errors=True)


def save(shape: dict) -> str | None:
    """The lab as it is now is the baseline of the scenarios of this ``shape`` that follow in it: None;
    else why it is not, also kept for the next restore to say (the lab is made anew then)."""
    forget()
    why = _save(shape)
    if why is not None:
        write_json(_state_file(), {"none": why})
    return why


def _save(shape: dict) -> str | None:
    boxes = [box for box in engine.containers() if box.running]
    if "primary" not in {box.service for box in boxes}:
        return "the primary is not running"
    passed = _each(boxes, lambda box: engine.healthcheck_now(box)[0])
    unhealthy = sorted(box.service for box, ok in zip(boxes, passed) if not ok)
    if unhealthy:  # down by design (a refused endpoint): not a state to come back to
        return f"not healthy after `up`: {', '.join(unhealthy)}"

    def one(box: engine.Container) -> dict:
        made, volumes, image_name, image = _made(box)
        if not made:
            raise LabError(f"{box.service}: the engine did not say when its container was made")
        answer = _baseline(box, "save", {"since": made, "volumes": volumes})
        return {"id": box.id, "service": box.service, "volumes": volumes, "fingerprint": answer["fingerprint"],
                "image": image, "image_name": image_name}

    try:
        containers = _each(boxes, one)
    except LabError as exc:
        return str(exc)
    shutil.copytree(project.pki_dir(), labstate.folder() / PKI_COPY, symlinks=True)
    write_json(_state_file(), {"shape": shape, "compose": _compose_digest(), "containers": containers})
    return None


def restore(shape: dict, timeout: float) -> str | None:
    """The lab back at its baseline, every service healthy: None; else why not (nothing is promised
    about the lab then: the caller makes it anew)."""
    try:
        saved = read_json(_state_file())
    except StateError as exc:
        return f"baseline unreadable ({exc})"
    if saved is None:
        return "no baseline yet"
    if isinstance(saved, dict) and "none" in saved:
        return f"no baseline ({saved['none']})"
    if not isinstance(saved, dict) or not {"shape", "compose", "containers"} <= set(saved):
        return "baseline unreadable (not a baseline record)"
    if saved["shape"] != shape:
        return f"baseline made for {saved['shape']}"
    if saved.get("compose") != _compose_digest():
        return "compose.yaml changed since the baseline"
    boxes = {box.id: box for box in engine.containers()}
    ours = {c["id"]: c for c in saved["containers"]}
    if not set(ours) <= set(boxes):
        return "a container of the baseline was removed"
    others = sorted(box.service for cid, box in boxes.items() if box.running and cid not in ours)
    if others:
        return f"running since the baseline: {', '.join(others)}"
    end = time.monotonic() + timeout
    try:
        now = engine.image_ids(sorted({c["image_name"] for c in ours.values()}))
        rebuilt = sorted(c["service"] for c in ours.values() if now[c["image_name"]] != c["image"])
        if rebuilt:
            return f"images built anew since the baseline: {', '.join(rebuilt)}"
        stopped = [boxes[cid] for cid in ours if not boxes[cid].running]  # a scenario stopped it
        engine.start(stopped)
        problems = [why for why in _each(stopped, lambda box: _healthy(box, end)) if why]
        return "; ".join(problems) or _put_back([boxes[cid] for cid in ours], ours, end)
    except LabError as exc:
        return str(exc)


def _healthy(box: engine.Container, end: float) -> str | None:
    """None once the container passes its own healthcheck; why not, past ``end``."""
    while True:
        ok, why = engine.healthcheck_now(box)
        if ok:
            return None
        if time.monotonic() > end:
            return f"{box.service} not healthy: {why}"
        time.sleep(HEALTH_POLL)


def _put_back(boxes: list[engine.Container], ours: dict[str, dict], end: float) -> str | None:
    units: dict[str, list[str]] = {}

    def one(box: engine.Container) -> str | None:
        answer = _baseline(box, "restore", {"volumes": ours[box.id]["volumes"]})
        units[box.id] = answer["units"]
        if answer["fingerprint"] != ours[box.id]["fingerprint"]:
            return f"{box.service}: its files differ from the baseline after the restore"
        return None

    problems = [why for why in _each(boxes, one) if why]
    if problems:
        return "; ".join(problems)
    try:
        sync_tree(labstate.folder() / PKI_COPY, project.pki_dir())  # the units are stopped: nothing reads it
    except OSError as exc:
        return f"the PKI folder was not put back: {exc}"
    return _start(boxes, units, end)


def _start(boxes: list[engine.Container], units: dict[str, list[str]], end: float) -> str | None:
    """Units started as `up` starts services, the primary and what it needs first, until each service
    passes its own healthcheck."""
    def start(box: engine.Container) -> None:
        for unit in units[box.id]:
            done = engine.execute(box, ["systemctl", "start", unit], timeout=EXEC_TIMEOUT)
            if done.returncode != 0:
                raise LabError(f"{box.service}: systemctl start {unit}: {(done.stderr or done.stdout).strip()}")

    # The endpoints start right after the primary, as `up` starts them: they retry until it listens.
    first = topology.load().started_with("primary")
    _each([b for b in boxes if b.service in first], start)
    _each([b for b in boxes if b.service not in first], start)
    problems = [why for why in _each(boxes, lambda box: _healthy(box, end)) if why]
    return "; ".join(problems) or None
