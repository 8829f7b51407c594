"""Images: the Debian trixie base (pulled or debootstrapped), then the role images compose.yaml names."""
from __future__ import annotations

from . import docker, project
from .deadline import Deadline

BASE_IMAGE = "safeq-lab/base:latest"


def build_all(say, deadline: Deadline) -> None:
    """Each build gets the time left of the run (a cold build takes minutes: see README)."""
    root = project.root()
    with deadline.at("building the base OS image"):
        say("base OS image (scripts/base-image.sh)")
        docker.run(["bash", str(root / "scripts" / "base-image.sh")], timeout=deadline.left())
    with deadline.at(f"building {BASE_IMAGE}"):
        say(f"{BASE_IMAGE} (images/base)")
        docker.run(["docker", "build", "-q", "-t", BASE_IMAGE, "--build-context", f"certkit={root / 'certkit'}",
                    str(root / "images" / "base")], timeout=deadline.left())
    with deadline.at("building the role images"):
        say("role images (docker compose build)")
        docker.compose("build", "--quiet", timeout=deadline.left())
