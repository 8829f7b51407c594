"""Building and running the reference: the class cache, the one-line contract, timeouts, the container command."""
from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

import pytest

from test_reference_support import (DOCKER, DOCKER_MISSING, CASES, reference, reference_classes,  # noqa: F401
                                    reference_pki)


def _fake_java(tmp_path: Path, body: str) -> str:
    script = tmp_path / "java"
    script.write_text(f"#!{sys.executable}\nimport sys, time\n{body}\n")
    script.chmod(0o755)
    return str(script)


def test_classes_are_compiled_once_per_source(tmp_path):
    first = reference.build(cache_dir=tmp_path)
    main = first / "refpeer" / "Main.class"
    stamp = main.stat().st_mtime_ns
    assert reference.build(cache_dir=tmp_path) == first
    assert main.stat().st_mtime_ns == stamp
    # Classes and folders readable by any user: the container's java need not be this user.
    assert all(p.stat().st_mode & 0o004 for p in [first, *first.rglob("*")])
    assert [p.name for p in tmp_path.iterdir()] == [first.name]  # no build folder left behind


@pytest.mark.parametrize("body, words", [
    ("print('{\"ok\": true}'); print('{\"ok\": true}')", r"2 stdout line\(s\)"),
    ("print('not json')", "not JSON"),
    ("print('[1]')", "not a verdict"),
    ("sys.stderr.write('boom\\n'); sys.exit(3)", "exit code 3"),
])
def test_anything_but_one_json_verdict_is_no_verdict(tmp_path, reference_classes, body, words):
    runner = reference.HostJava(java=_fake_java(tmp_path, body))
    with pytest.raises(reference.RunFailed, match=words):
        runner.run(reference_classes, ["pair"])


def test_a_run_that_hangs_is_killed_at_its_timeout(tmp_path, reference_classes):
    runner = reference.HostJava(java=_fake_java(tmp_path, "time.sleep(60)"))
    started = time.monotonic()
    with pytest.raises(reference.RunFailed, match="no answer within 1 s"):
        runner.run(reference_classes, ["pair"], timeout=1)
    assert time.monotonic() - started < 10


def test_bad_usage_is_exit_code_2_and_no_verdict(reference_classes):
    with pytest.raises(reference.RunFailed, match=r"exit code 2.*usage error: --host is required"):
        reference.HostJava().run(reference_classes, ["pair", "--server-keystore", "x.p12"])


def test_the_server_needs_a_keystore():
    with pytest.raises(ValueError, match="needs a keystore"):
        reference.pair_args(reference.Identity(), reference.Identity(), "primary-host")


def test_container_command_mounts_every_folder_read_only(tmp_path):
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    server = reference.Identity(tmp_path / "a" / "server.p12", "pw", (tmp_path / "b" / "root.pem",))
    client = reference.Identity(tmp_path / "a" / "client.p12", "pw", (tmp_path / "b" / "root.cer",))
    args = reference.pair_args(server, client, "primary-host")
    cmd = reference.DockerJava(docker="docker").command(tmp_path / "classes", args, "ref-test-x")
    assert cmd[:7] == ["docker", "run", "--rm", "--network", "none", "--name", "ref-test-x"]
    volumes = [cmd[i + 1] for i, word in enumerate(cmd) if word == "-v"]
    assert volumes == [f"{tmp_path / 'classes'}:/ref/classes:ro", f"{tmp_path / 'a'}:/ref/in/0:ro",
                       f"{tmp_path / 'b'}:/ref/in/1:ro"]
    tail = cmd[cmd.index(reference.MAIN):]
    assert tail[:9] == [reference.MAIN, "pair", "--server-keystore", "/ref/in/0/server.p12", "--server-password", "pw",
                        "--server-trust", "/ref/in/1/root.pem", "--client-keystore"]
    assert "/ref/in/1/root.cer" in tail and str(tmp_path) not in " ".join(tail)


def test_a_missing_image_says_so():
    reason = reference.DockerJava(image="safeq-lab/no-such-image:none").unavailable()
    assert reason is not None and ("no-such-image" in reason or "docker" in reason)


@pytest.mark.skipif(DOCKER_MISSING is not None, reason=f"the lab's JRE 21 cannot run here: {DOCKER_MISSING}")
def test_a_container_past_its_timeout_is_removed(reference_classes, reference_pki):
    def ours() -> set[str]:
        proc = subprocess.run([DOCKER.docker, "ps", "-a", "--filter", f"name=^{reference.CONTAINER_PREFIX}",
                               "--format", "{{.Names}}"], capture_output=True, text=True, timeout=30, check=True)
        return set(proc.stdout.split())

    before = ours()
    c = CASES["good-chain"]
    args = reference.pair_args(reference_pki.identity(c.server), reference_pki.identity(c.client), c.host)
    with pytest.raises(reference.RunFailed, match="no answer within"):
        DOCKER.run(reference_classes, args, timeout=0.2)
    assert ours() <= before

