"""What the gateway and client share (safeqlab.service: state file, health, session factory, command line):
no Docker, no network."""
from __future__ import annotations

import datetime as dt
import json
import logging
import runpy
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from certkit import fsio
from certkit.jre import Verdict
from certkit.verdicts import KeptAcceptances
from safeqlab import service
from safeqlab.builtin import BuiltinIdentity
from safeqlab.endpoint import SetupError
from safeqlab.service import StateFile, healthy
from support.fixtures_openssl import OpenSSLPKI

ROOT = Path(__file__).resolve().parents[2]
PEER = {"host": "primary-host", "subject": "CN=primary-host,O=Acme", "issuer": "CN=Acme-CA-Intermediate,O=Acme"}


def iso(seconds_ago: float) -> str:
    return (dt.datetime.now(dt.timezone.utc) - dt.timedelta(seconds=seconds_ago)).isoformat()


def connected(seconds_ago: float = 0, **extra) -> dict:
    return {"state": "connected", "reason": None, "peer": PEER, "since": iso(300), "last_ack": iso(seconds_ago),
            **extra}


class FakeSpec(service.Spec):
    prog = "safeq-fake"
    role = "gateway"
    logger = "safeq-fake"

    def __init__(self, tmp: Path, failures: list[str] | None = None, builtin: bool = False):
        self.state_path = str(tmp / "state.json")
        self.builtin_dir = str(tmp / "builtin")
        self.failures = list(failures or [])
        self.use_builtin = builtin
        self.identity_factory = lambda: None
        self.peer_check = lambda chain, anchors: None

    def builtin(self) -> bool:
        return self.use_builtin

    def address(self) -> tuple[str, int]:
        if self.failures:
            raise SetupError(self.failures.pop(0))
        return "primary-host", 2561

    def trusted_identity(self, log):
        return self.identity_factory

    def check_peer(self):
        return self.peer_check


# --- healthy(): what health and the healthchecks decide on ------------------------------------

@pytest.mark.parametrize("data", [None, {}])
def test_healthy_without_a_state_is_not_started(data):
    assert healthy(data) == (False, "not started")


def test_healthy_reports_a_state_other_than_connected_with_its_reason():
    assert healthy({"state": "refused", "reason": "refused by the primary: endpoint not trusted"}) == (
        False, "refused: refused by the primary: endpoint not trusted")
    assert healthy({"state": "starting", "reason": None}) == (False, "starting: None")


def test_healthy_while_heartbeats_are_answered():
    assert healthy(connected(seconds_ago=1)) == (True, "connected to primary-host (CN=primary-host,O=Acme)")


def test_healthy_fails_once_heartbeats_stop_being_answered():
    ok, why = healthy(connected(seconds_ago=60))
    assert not ok
    assert why == "no heartbeat answered for 60 s"


def test_healthy_counts_from_since_before_the_first_ack():
    assert healthy(connected(last_ack=None, since=iso(1)))[0] is True
    assert healthy(connected(last_ack=None, since=iso(60)))[0] is False


# --- main(): status and health exit codes -------------------------------------------------------

def write_state(spec: FakeSpec, data: dict) -> None:
    fsio.write_json(spec.state_path, data)


def test_health_exits_0_only_while_healthy(tmp_path, capsys):
    spec = FakeSpec(tmp_path)
    write_state(spec, connected(seconds_ago=1))
    assert service.main(["health"], spec) == 0
    assert capsys.readouterr().out == "connected to primary-host (CN=primary-host,O=Acme)\n"
    write_state(spec, connected(seconds_ago=60))
    assert service.main(["health"], spec) == 1
    assert capsys.readouterr().out == "no heartbeat answered for 60 s\n"


def test_health_without_a_state_file_exits_1(tmp_path, capsys):
    assert service.main(["health"], FakeSpec(tmp_path)) == 1
    assert capsys.readouterr().out == "not started\n"


def test_status_reports_and_exits_0_whatever_the_state(tmp_path, capsys):
    spec = FakeSpec(tmp_path)
    assert service.main(["status"], spec) == 0
    assert capsys.readouterr().out == "not started\n"
    write_state(spec, {"state": "error", "reason": "keystore file /pki/x.pfx does not exist"})
    assert service.main(["status"], spec) == 0
    assert capsys.readouterr().out == "error: keystore file /pki/x.pfx does not exist\n"


def test_status_json_prints_the_state_document(tmp_path, capsys):
    spec = FakeSpec(tmp_path)
    data = connected(seconds_ago=1)
    write_state(spec, data)
    assert service.main(["status", "--json"], spec) == 0
    assert json.loads(capsys.readouterr().out) == data


def test_a_damaged_state_file_is_an_error_not_a_default(tmp_path):
    spec = FakeSpec(tmp_path)
    Path(spec.state_path).write_text('{"state": "conn')
    with pytest.raises(fsio.StateError):
        service.main(["health"], spec)


def test_unknown_command_is_a_usage_error(tmp_path, capsys):
    with pytest.raises(SystemExit) as exit_:
        service.main(["restart"], FakeSpec(tmp_path))
    assert exit_.value.code == 2
    assert "safeq-fake: error: argument cmd: invalid choice: 'restart'" in capsys.readouterr().err


def test_test_connection_reports_a_setup_error_as_failed(tmp_path, capsys):
    assert service.main(["test-connection"], FakeSpec(tmp_path, failures=["HCP file lacks X"])) == 1
    assert capsys.readouterr().out.splitlines()[-1] == "failed: HCP file lacks X"


# --- the service loop: a SetupError is retried and reported -----------------------------------

def test_setup_errors_are_retried_and_reported_in_the_state_file(tmp_path, monkeypatch, caplog):
    monkeypatch.setattr(service, "RETRY_SECONDS", 0)
    spec = FakeSpec(tmp_path, failures=["lacks HCP_DEFAULT_KEYSTORE", "lacks HCP_DEFAULT_KEYSTORE"])
    reports = []

    class Recording(StateFile):
        def set(self, state, reason=None, **extra):
            super().set(state, reason, **extra)
            reports.append((state, reason))

    log = logging.getLogger("test-endpoint-service")
    with caplog.at_level(logging.ERROR, logger=log.name):
        session = service.wait_for_setup(spec, Recording(spec.state_path), log, threading.Event())
    assert (session.host, session.port, session.role) == ("primary-host", 2561, "gateway")
    assert reports == [("error", "lacks HCP_DEFAULT_KEYSTORE")] * 2
    assert json.loads(Path(spec.state_path).read_text())["reason"] == "lacks HCP_DEFAULT_KEYSTORE"
    assert [r.getMessage() for r in caplog.records] == ["lacks HCP_DEFAULT_KEYSTORE"]  # logged once, not every try


def test_setup_loop_ends_when_the_service_is_stopped(tmp_path):
    spec = FakeSpec(tmp_path, failures=["broken"] * 100)
    stop = threading.Event()
    stop.set()
    state = StateFile(spec.state_path)
    assert service.wait_for_setup(spec, state, logging.getLogger("test"), stop) is None
    assert (state.data["state"], state.data["reason"]) == ("error", "broken")


# --- the session factory: built-in or trusted certificates --------------------------------------

def test_session_with_trusted_certificates_uses_the_specs_identity_peer_check_and_the_shared_jre(tmp_path):
    spec = FakeSpec(tmp_path)
    s = service.session(spec, "primary-host", 2560, None, logging.getLogger("test"), threading.Event())
    assert s.builtin is None
    assert s.trusted is spec.identity_factory
    assert s.check_peer is spec.peer_check
    assert s.validator is service.trusted_validator
    assert not Path(spec.builtin_dir).exists()


@pytest.mark.parametrize("kept_before", [False, True], ids=["first start", "acceptance kept"])
def test_the_jvm_starts_before_the_first_handshake_unless_an_acceptance_is_kept(tmp_path, monkeypatch, kept_before):
    root = OpenSSLPKI(tmp_path / "pki").root("Root").cert

    class Accepting:
        cmd = [sys.executable, "-cp", str(tmp_path / "classes"), "pkixjudge.Main"]

        def judge(self, chain, anchors, mode, host=None, auth_type="UNKNOWN"):
            return Verdict(ok=True, anchor="O=Fixture,CN=Root", path=(root,))
    kept, validator, early = tmp_path / "chain-verdicts.json", Accepting(), threading.Event()
    monkeypatch.setenv(service.CHAIN_VERDICTS_VAR, str(kept))
    monkeypatch.setattr(service, "shared_validator", lambda: validator)
    monkeypatch.setattr(service, "_judges", [])
    monkeypatch.setattr(service, "start_validator_early", early.set)
    if kept_before:  # the service's last run accepted the primary's chain
        KeptAcceptances(validator, kept).judge([root], [root], "server", host="primary-host")
    s = service.session(FakeSpec(tmp_path), "primary-host", 2560, None, logging.getLogger("test"), threading.Event())
    assert isinstance(s.validator(), KeptAcceptances) and s.validator().validator is validator
    assert early.wait(0.5 if kept_before else 10) is not kept_before


def test_session_with_builtin_certificates_makes_its_own_identity(tmp_path):
    spec = FakeSpec(tmp_path, builtin=True)
    s = service.session(spec, "primary-host", 2560, None, logging.getLogger("test"), threading.Event())
    assert isinstance(s.builtin, BuiltinIdentity)
    assert s.trusted is None
    assert s.check_peer is None  # the pinned primary is the check
    assert (Path(spec.builtin_dir) / "certificate.pem").exists()


# --- the executables stay thin -------------------------------------------------------------------

@pytest.mark.parametrize("script", ["images/gateway/bin/safeq-gateway", "images/client/bin/safeq-client"])
def test_executables_can_be_imported_without_running(script):
    names = runpy.run_path(str(ROOT / script), run_name="not_main")
    assert callable(names["main"])


@pytest.mark.parametrize("script, prog", [("images/gateway/bin/safeq-gateway", "safeq-gateway"),
                                          ("images/client/bin/safeq-client", "safeq-client")])
def test_executables_run_their_main(script, prog):
    proc = subprocess.run([sys.executable, str(ROOT / script), "--help"], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.startswith(f"usage: {prog} ")
    assert "{run,status,health,test-connection}" in proc.stdout


def test_one_jre_validator_per_process_started_on_first_use(monkeypatch):
    made = []

    class CountingValidator:
        def __init__(self):
            made.append(self)
    monkeypatch.setattr(service, "Validator", CountingValidator)
    monkeypatch.setattr(service, "_validators", [])
    assert made == []  # nothing started before a session needs it
    first = service.shared_validator()
    assert service.shared_validator() is first
    assert made == [first]


def test_reconnections_are_spread_between_half_and_all_of_the_backoff():
    from safeqlab import endpoint
    assert endpoint.retry_delay(8, rng=lambda: 0.0) == 4.0
    assert endpoint.retry_delay(8, rng=lambda: 0.999) == pytest.approx(7.996)
    delays = [endpoint.retry_delay(2) for _ in range(200)]
    assert min(delays) >= 1.0 and max(delays) <= 2.0 and len(set(delays)) > 100  # not in lockstep
