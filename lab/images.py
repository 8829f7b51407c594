"""Images: the Debian trixie base (pulled or debootstrapped), then the role images compose.yaml names."""
from __future__ import annotations

from . import docker, project
from .deadline import Deadline
from .views import Phases

BASE_IMAGE = "safeq-lab/base:latest"
SCRIPT_LOG = "base-image: "  # the prefix of scripts/base-image.sh's lines


def script_said(output: str) -> str:
    """The base image script's last word (e.g. "safeq-lab/os:trixie is present")."""
    said = [line[len(SCRIPT_LOG):].strip() for line in (output or "").splitlines() if line.startswith(SCRIPT_LOG)]
    return said[-1] if said else ""


def build_all(phases: Phases, deadline: Deadline) -> None:
    """Each build gets the time left of the run (a cold build takes minutes: see README)."""
    root = project.root()
    with deadline.at("building the base OS image"), phases.phase("base OS image (scripts/base-image.sh)"):
        proc = docker.run(["bash", str(root / "scripts" / "base-image.sh")], timeout=deadline.left(),
                          quiet=phases.quiet)
        phases.detail = script_said(proc.stdout) if phases.quiet else ""
    with phases.phase(f"images: {BASE_IMAGE} (images/base), then the role images (docker compose build)"):
        with deadline.at(f"building {BASE_IMAGE}"):
            docker.run(["docker", "build", "-q", "-t", BASE_IMAGE, "--build-context", f"certkit={root / 'certkit'}",
                        str(root / "images" / "base")], timeout=deadline.left(), quiet=phases.quiet)
        with deadline.at("building the role images"):
            phases.show(docker.compose("build", "--quiet", timeout=deadline.left(), quiet=phases.quiet))
