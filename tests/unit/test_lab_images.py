"""The images are built again unless they are the very ones built from the files the builds read."""
import io
import os
import shutil
import subprocess
from types import SimpleNamespace

import pytest
from rich.console import Console

from lab import docker, engine, images
from lab.deadline import Deadline
from lab.views import Phases

NAMES = ["safeq-lab/os:trixie", "safeq-lab/base:latest", "safeq-lab/gateway:latest"]
IDS = {name: f"sha256:{i}" for i, name in enumerate(NAMES)}


@pytest.fixture
def tree(tmp_path):
    """A checkout's build inputs: a role image's context, the toolkit, compose.yaml, the OS script."""
    root = tmp_path / "checkout"
    (root / "images" / "base").mkdir(parents=True)
    (root / "images" / "base" / "Dockerfile").write_text("ARG OS_IMAGE=safeq-lab/os:trixie\nFROM ${OS_IMAGE}\n")
    (root / "images" / "gateway" / "bin").mkdir(parents=True)
    (root / "images" / "gateway" / "bin" / "safeq-gateway").write_text("#!/usr/bin/python3\n")
    (root / "certkit").mkdir()
    (root / "certkit" / "certs.py").write_text("X = 1\n")
    (root / "compose.yaml").write_text("services: {}\n")
    (root / "scripts").mkdir()
    (root / "scripts" / "base-image.sh").write_text("echo base-image: present\n")
    return root


@pytest.mark.parametrize("change", ["content", "mode", "added", "removed", "renamed", "symlink", "compose",
                                    "script gone"])
def test_any_change_to_what_the_builds_read_changes_the_digest(tree, change):
    before = images.inputs_digest(tree)
    tool = tree / "certkit" / "certs.py"
    if change == "content":
        tool.write_text("X = 2\n")
    elif change == "mode":
        tool.chmod(0o755)
    elif change == "added":
        (tree / "images" / "gateway" / "bin" / "extra").write_text("")
    elif change == "removed":
        tool.unlink()
    elif change == "renamed":
        tool.rename(tree / "certkit" / "other.py")
    elif change == "symlink":
        (tree / "images" / "gateway" / "link").symlink_to("bin/safeq-gateway")
    elif change == "compose":
        (tree / "compose.yaml").write_text("services: {a: {}}\n")
    else:
        (tree / "scripts" / "base-image.sh").unlink()
    assert images.inputs_digest(tree) != before


def test_a_copy_of_the_same_files_is_the_same_digest(tree, tmp_path):
    copy = tmp_path / "clone"
    shutil.copytree(tree, copy, symlinks=True)
    os.utime(copy / "certkit" / "certs.py", (1, 1))  # a fresh clone's times: the files are the same
    assert images.inputs_digest(copy) == images.inputs_digest(tree)


def test_the_os_image_is_read_from_the_base_dockerfile(tree, monkeypatch):
    services = [SimpleNamespace(image="safeq-lab/gateway:latest"), SimpleNamespace(image=None)]
    monkeypatch.setattr(images.topology, "load", lambda: SimpleNamespace(services=services))
    assert images.image_names(tree) == NAMES


@pytest.fixture
def builds(tree, monkeypatch):
    """build_all on ``tree`` with the engine's image ids from ``now``; the builds it ran."""
    ran, now = [], dict(IDS)
    monkeypatch.setattr(images.project, "root", lambda: tree)
    monkeypatch.setattr(images, "image_names", lambda root: list(NAMES))
    monkeypatch.setattr(engine, "image_ids", lambda names: {n: now.get(n) for n in names})
    monkeypatch.setattr(docker, "run", lambda cmd, timeout, quiet: ran.append(cmd[:2]) or
                        subprocess.CompletedProcess(cmd, 0, stdout="base-image: present\n"))
    monkeypatch.setattr(docker, "compose", lambda *args, timeout=None, quiet=False: ran.append(list(args)) or
                        subprocess.CompletedProcess(args, 0, stdout=""))

    def build() -> tuple[list, str]:
        ran.clear()
        out = io.StringIO()
        images.build_all(Phases(console=Console(file=out, width=200)), Deadline(100))
        return [cmd for cmd in ran if cmd[0] != "bash"], out.getvalue()
    return build, now


BUILDS = [["docker", "build"], ["build", "--quiet"]]


def test_built_once_then_skipped_while_nothing_changed(builds):
    build, _ = builds
    assert build()[0] == BUILDS
    ran, said = build()
    assert ran == [] and "as built from these very files" in said


@pytest.mark.parametrize("change", ["a file", "an image rebuilt elsewhere", "an image removed", "damaged record"])
def test_built_again_after_any_change(builds, tree, change):
    build, now = builds
    build()
    if change == "a file":
        (tree / "certkit" / "certs.py").write_text("X = 3\n")
    elif change == "an image rebuilt elsewhere":  # e.g. the same tag built from another checkout
        now["safeq-lab/os:trixie"] = "sha256:other"
    elif change == "an image removed":
        now.pop("safeq-lab/gateway:latest")
    else:
        (tree / images.STAMP).write_text("{not json")
    assert build()[0] == BUILDS


def test_nothing_recorded_when_an_image_is_missing_after_the_build(builds, tree):
    build, now = builds
    now.pop("safeq-lab/base:latest")
    build()
    assert not (tree / images.STAMP).exists()
    assert build()[0] == BUILDS
