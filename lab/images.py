"""Images: the Debian trixie base (pulled or debootstrapped), then the role images compose.yaml names."""
from __future__ import annotations


from . import docker, project

BASE_IMAGE = "safeq-lab/base:latest"


def build_all(say) -> None:
    root = project.root()
    say("base OS image (scripts/base-image.sh)")
    docker.run(["bash", str(root / "scripts" / "base-image.sh")])
    say(f"{BASE_IMAGE} (images/base)")
    docker.run(["docker", "build", "-q", "-t", BASE_IMAGE, "--build-context", f"certkit={root / 'certkit'}",
                str(root / "images" / "base")])
    say("role images (docker compose build)")
    docker.compose("build", "--quiet")
