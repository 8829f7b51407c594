"""The validator process: restarted when it dies, bounded by a timeout when it hangs, thread-safe."""
from __future__ import annotations

import json
import os
import shlex
import signal
import sys
import threading
import time

import pytest

from certkit.jre import Validator, ValidatorError
from support.fixtures_openssl import CA_EXT, CLIENT_EXT, OpenSSLPKI
from test_jre_support import UTC, jre, jre_classes, jre_java  # noqa: F401  (fixtures)

# Stand-ins for a misbehaving validator; each reads requests as the real one does.
SILENT = "import sys\nfor line in sys.stdin:\n    pass\n"
DIES = "import sys\nsys.stdin.readline()\nsys.stderr.write('validator crashed\\n')\nsys.exit(3)\n"
WRONG_ID = "import sys\nfor line in sys.stdin:\n    print('{\"id\": -1, \"ok\": true}', flush=True)\n"
# Hangs on its first request ever (a marker file remembers), answers afterwards.
HANGS_ONCE = """import json, os, sys
marker = sys.argv[1]
for line in sys.stdin:
    if not os.path.exists(marker):
        open(marker, "w").close()
        continue
    print(json.dumps({"id": json.loads(line)["id"], "ok": True, "anchor": "CN=fake"}), flush=True)
"""


@pytest.fixture(scope="module")
def chain(tmp_path_factory):
    p = OpenSSLPKI(tmp_path_factory.mktemp("jre-process-pki"))
    root = p.root("Root")
    inter = p.issue("Inter", root, CA_EXT)
    leaf = p.issue("leaf", inter, CLIENT_EXT)
    return [leaf.cert, inter.cert], [root.cert]


def _fake(tmp_path, source: str, *args: str) -> list[str]:
    script = tmp_path / "fake_validator.py"
    script.write_text(source)
    return [sys.executable, str(script), *args]


def _wait_gone(pid: int, seconds: float = 10) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return True
        time.sleep(0.05)
    return False


def test_a_killed_validator_is_restarted(jre, chain):
    leaf_chain, anchors = chain
    assert jre.judge(leaf_chain, anchors, "client").ok
    first = jre.pid
    os.kill(first, signal.SIGKILL)
    time.sleep(0.2)  # let the kill land, so the next request meets a dead process
    assert jre.judge(leaf_chain, anchors, "client").ok
    assert jre.pid not in (None, first)


def test_a_request_that_never_answers_times_out(tmp_path, chain):
    leaf_chain, anchors = chain
    with Validator(_fake(tmp_path, SILENT), timeout=0.5) as v:
        started = time.monotonic()
        with pytest.raises(ValidatorError, match=r"no answer within 0\.5 s; after a restart: no answer within 0\.5 s"):
            v.judge(leaf_chain, anchors, "client")
        # Two bounded attempts (the first, one after a restart), nothing more.
        assert time.monotonic() - started < 5
        # The hung process was killed, not left behind.
        assert v.pid is None


def test_one_hang_is_cured_by_the_restart(tmp_path, chain):
    leaf_chain, anchors = chain
    with Validator(_fake(tmp_path, HANGS_ONCE, str(tmp_path / "hung")), timeout=0.5) as v:
        verdict = v.judge(leaf_chain, anchors, "client")
    assert (verdict.ok, verdict.anchor) == (True, "CN=fake")


def test_a_validator_that_keeps_dying_is_reported(tmp_path, chain):
    leaf_chain, anchors = chain
    with Validator(_fake(tmp_path, DIES), timeout=5) as v:
        with pytest.raises(ValidatorError) as info:
            v.judge(leaf_chain, anchors, "client")
    text = str(info.value)
    assert "exit code 3" in text and "validator crashed" in text and "after a restart" in text


def test_an_answer_out_of_step_is_refused(tmp_path, chain):
    leaf_chain, anchors = chain
    with Validator(_fake(tmp_path, WRONG_ID), timeout=5) as v:
        with pytest.raises(ValidatorError, match="answered out of protocol"):
            v.judge(leaf_chain, anchors, "client")


def test_a_request_the_validator_refuses(jre):
    with pytest.raises(ValidatorError, match="refused the request: unknown cmd nope"):
        jre._call({"cmd": "nope"})
    with pytest.raises(ValidatorError, match="refused the request: mode must be"):
        jre._call({"mode": "peer", "chain": [], "anchors": []})


def test_bad_arguments_are_caught_before_the_jvm(jre, chain):
    leaf_chain, anchors = chain
    with pytest.raises(ValueError, match="mode must be"):
        jre.judge(leaf_chain, anchors, "peer")
    with pytest.raises(ValueError, match="empty chain"):
        jre.judge([], anchors, "client")


def test_missing_pieces_are_named(tmp_path, jre_java, jre_classes):
    with pytest.raises(ValidatorError, match="validator classes not found"):
        Validator(java=jre_java, classes_dir=tmp_path)
    with pytest.raises(ValidatorError, match="missing or unreadable"):
        Validator(java=jre_java, classes_dir=jre_classes, java_security=str(tmp_path / "absent.security"))
    v = Validator(java=str(tmp_path / "no-java"), classes_dir=jre_classes)
    with pytest.raises(ValidatorError, match="cannot start the validator"):
        v.info()
    with pytest.raises(ValidatorError, match="default command only"):
        Validator(["java"], java_security=str(tmp_path))


def test_command_from_the_environment(monkeypatch, tmp_path, chain):
    leaf_chain, anchors = chain
    monkeypatch.setenv("SAFEQ_VALIDATOR_CMD", shlex.join(_fake(tmp_path, HANGS_ONCE, str(tmp_path / "m"))))
    with Validator(timeout=0.5) as v:
        assert v.judge(leaf_chain, anchors, "client").anchor == "CN=fake"


def test_concurrent_callers_get_their_own_answers(jre, chain):
    leaf_chain, anchors = chain
    results: list[tuple[str, bool]] = []
    lock = threading.Lock()

    def worker(mode: str) -> None:
        for _ in range(5):
            verdict = jre.judge(leaf_chain, anchors, mode)
            with lock:
                results.append((mode, verdict.ok))

    threads = [threading.Thread(target=worker, args=(m,)) for m in ("client", "server") * 4]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    # The client leaf passes as a client and (no serverAuth EKU) fails as a server: answers not swapped.
    assert sorted(set(results)) == [("client", True), ("server", False)]
    assert len(results) == 40


def test_close_ends_the_jvm(jre_java, jre_classes):
    v = Validator(java=jre_java, classes_dir=jre_classes, jvm_options=UTC)
    assert v.info()["java.version"]
    pid = v.pid
    v.close()
    assert _wait_gone(pid)
    assert v.pid is None


# Records every request line it gets, then answers as if each chain were fine.
RECORDS = """import json, sys
log = open(sys.argv[1], "a")
for line in sys.stdin:
    log.write(line); log.flush()
    print(json.dumps({"id": json.loads(line)["id"], "ok": True, "anchor": "CN=fake"}), flush=True)
"""


def test_anchors_cross_the_pipe_once_per_process(tmp_path, chain):
    leaf_chain, anchors = chain
    seen = tmp_path / "requests.jsonl"
    with Validator(_fake(tmp_path, RECORDS, str(seen))) as fake:
        for _ in range(3):
            assert fake.judge(leaf_chain, anchors, "client").ok
        requests = [json.loads(line) for line in seen.read_text().splitlines()]
    assert ["anchors" in r for r in requests] == [True, False, False]
    assert len({r["anchors_ref"] for r in requests}) == 1


def test_anchor_sets_the_jvm_dropped_are_sent_again(jre, chain, tmp_path_factory):
    leaf_chain, anchors = chain
    p = OpenSSLPKI(tmp_path_factory.mktemp("jre-anchor-sets"))
    others = [p.root(f"Other{i}").cert for i in range(10)]  # more sets than the JVM keeps
    assert jre.judge(leaf_chain, anchors, "client").ok
    for other in others:
        refused = jre.judge(leaf_chain, [other], "client")
        assert not refused.ok and refused.message.startswith("PKIX path building failed")
    again = jre.judge(leaf_chain, anchors, "client")
    assert again.ok and again.anchor == "O=Fixture,CN=Root"
