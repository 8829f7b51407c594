"""Images: the Debian trixie base (pulled or debootstrapped), then the role images compose.yaml names."""
from __future__ import annotations

import hashlib
import os
import re
from pathlib import Path

from certkit import fsio

from . import docker, engine, project, topology
from .deadline import Deadline
from .views import Phases

BASE_IMAGE = "safeq-lab/base:latest"
SCRIPT_LOG = "base-image: "  # the prefix of scripts/base-image.sh's lines
# What the builds read: their contexts (the toolkit is the base's named context), compose.yaml's
# build sections and the script that makes the OS image.
INPUTS = ("images", "certkit", "compose.yaml", "scripts/base-image.sh")
STAMP = Path("build") / "images.json"  # what the images were last built from, and the ids it gave


def script_said(output: str) -> str:
    """The base image script's last word (e.g. "safeq-lab/os:trixie is present")."""
    said = [line[len(SCRIPT_LOG):].strip() for line in (output or "").splitlines() if line.startswith(SCRIPT_LOG)]
    return said[-1] if said else ""


def inputs_digest(root: Path) -> str:
    """Every file the builds read, by path, mode and content (a symlink by its target)."""
    digest = hashlib.sha256()
    for top in INPUTS:
        base = root / top
        if not os.path.lexists(base):
            digest.update(f"{top}\0missing\0".encode())
            continue
        files = [base] if not base.is_dir() else sorted(p for p in base.rglob("*") if p.is_symlink() or not p.is_dir())
        for path in files:
            st = path.lstat()
            data = os.readlink(path).encode() if path.is_symlink() else path.read_bytes()
            digest.update(f"{path.relative_to(root).as_posix()}\0{st.st_mode:o}\0{len(data)}\0".encode())
            digest.update(data)
    return digest.hexdigest()


def image_names(root: Path) -> list[str]:
    """The OS image the base is built on (its Dockerfile's ARG default), the base, the role images."""
    found = re.search(r"^ARG OS_IMAGE=(\S+)", (root / "images" / "base" / "Dockerfile").read_text(), re.M)
    roles = sorted({s.image for s in topology.load().services if s.image})
    return [*([found.group(1)] if found else []), BASE_IMAGE, *roles]


def built_from(root: Path, inputs: str, names: list[str]) -> bool:
    """Whether the last build was of these very files and every image is still the one it gave; a
    damaged record only means building again (docker's own cache makes that quick)."""
    try:
        record = fsio.read_json(root / STAMP)
    except fsio.StateError:
        return False
    if not isinstance(record, dict) or record.get("inputs") != inputs:
        return False
    ids = engine.image_ids(names)
    return None not in ids.values() and ids == record.get("images")


def build_all(phases: Phases, deadline: Deadline) -> None:
    """Each build gets the time left of the run (a cold build takes minutes: see README)."""
    root = project.root()
    with deadline.at("building the base OS image"), phases.phase("base OS image (scripts/base-image.sh)"):
        proc = docker.run(["bash", str(root / "scripts" / "base-image.sh")], timeout=deadline.left(),
                          quiet=phases.quiet)
        phases.detail = script_said(proc.stdout) if phases.quiet else ""
    inputs, names = inputs_digest(root), image_names(root)
    if built_from(root, inputs, names):
        with phases.phase(f"images: {BASE_IMAGE} and the role images, as built from these very files"):
            return
    with phases.phase(f"images: {BASE_IMAGE} (images/base), then the role images (docker compose build)"):
        with deadline.at(f"building {BASE_IMAGE}"):
            docker.run(["docker", "build", "-q", "-t", BASE_IMAGE, "--build-context", f"certkit={root / 'certkit'}",
                        str(root / "images" / "base")], timeout=deadline.left(), quiet=phases.quiet)
        with deadline.at("building the role images"):
            phases.show(docker.compose("build", "--quiet", timeout=deadline.left(), quiet=phases.quiet))
    remember(root, inputs, names)


def remember(root: Path, inputs: str, names: list[str]) -> None:
    """The ids the build gave, with what it was built from (nothing when an image is missing)."""
    ids = engine.image_ids(names)
    if None not in ids.values():
        fsio.write_json(root / STAMP, {"inputs": inputs, "images": ids})
