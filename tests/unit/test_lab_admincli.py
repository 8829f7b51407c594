"""One definition of the account/endpoints/trusted-ca commands (safeqlab.admincli) for
`safeq-admin` in the primary and `safeq-lab` on the host: requests, output, errors."""
import base64
import json

import pytest
from click.testing import CliRunner

from lab import docker, engine, topology
from lab.cli import main as lab_main
from safeqlab import admincli

ACCOUNT = {"certificate_policy": "trusted-ca", "auto_trust": False,
           "ocsp": {"enabled": True, "url": None, "on_failure": "fail-closed"},
           "trusted_cas": [{"subject": "CN=Acme-CA-Root,O=Acme", "sha256": "AB:CD:" + "00:" * 29 + "EF",
                            "not_after": "2036-01-01T00:00:00+00:00"}]}
ENDPOINT = {"id": "0b8e0e8e-1111-4222-8333-944455556666", "name": "gateway-host", "role": "gateway",
            "sha256": "12:34:56", "trusted": True, "decision": "accepted", "state": "connected"}


class Recorder:
    """A transport that answers from a table and records what was asked."""

    def __init__(self, answer=None, error=None):
        self.calls, self.answer, self.error = [], answer, error

    def __call__(self, method, path, body=None):
        self.calls.append((method, path, body))
        if self.error:
            raise self.error
        return self.answer


def run(argv, call, capsys):
    code = admincli.main(argv, call, prog="safeq-admin")
    out, err = capsys.readouterr()
    return code, out, err


@pytest.mark.parametrize("argv, sent", [
    (["account"], ("GET", "/api/v1/account", None)),
    (["account", "show", "--json"], ("GET", "/api/v1/account", None)),
    (["account", "set-policy", "built-in"], ("PUT", "/api/v1/account/policy", {"policy": "built-in"})),
    (["account", "auto-trust", "on"], ("PUT", "/api/v1/account/auto-trust", {"enabled": True})),
    (["account", "ocsp", "on", "--url", "http://ocsp-host:8080", "--on-failure", "fail-open"],
     ("PUT", "/api/v1/account/ocsp", {"enabled": True, "url": "http://ocsp-host:8080", "on_failure": "fail-open"})),
    (["account", "ocsp", "--no-url"], ("PUT", "/api/v1/account/ocsp", {"url": None})),
    (["account", "ocsp", "off"], ("PUT", "/api/v1/account/ocsp", {"enabled": False})),
    (["account", "remove-ca", "CN=A b/c"], ("DELETE", "/api/v1/trusted-cas/CN%3DA%20b%2Fc", None)),
    (["endpoints"], ("GET", "/api/v1/endpoints", None)),
    (["endpoints", "--json"], ("GET", "/api/v1/endpoints", None)),
    (["endpoints", "list", "--json"], ("GET", "/api/v1/endpoints", None)),
    (["endpoints", "trust", "gw 1"], ("POST", "/api/v1/endpoints/gw%201/trust", None)),
    (["endpoints", "untrust", "x/y"], ("POST", "/api/v1/endpoints/x%2Fy/untrust", None)),
    (["trusted-ca"], ("GET", "/api/v1/trusted-cas", None)),
    (["trusted-ca", "remove", "abcdef12"], ("DELETE", "/api/v1/trusted-cas/abcdef12", None)),
])
def test_each_command_is_one_request(argv, sent):
    assert admincli.request(admincli.parser("safeq-admin").parse_args(argv)) == sent


@pytest.mark.parametrize("group", [["account", "import-ca"], ["trusted-ca", "import"]])
def test_import_reads_the_files_where_it_runs_and_sends_them_base64(tmp_path, capsys, group):
    a, b = tmp_path / "Root CA.cer", tmp_path / "inter.pem"
    a.write_bytes(b"\x30\x82der")
    b.write_bytes(b"-----BEGIN CERTIFICATE-----\n")
    call = Recorder([{"subject": "CN=Root", "sha256": "AA:BB"}])
    code, out, _ = run([*group, str(a), str(b)], call, capsys)
    assert code == 0 and out == "imported trusted CA CN=Root (aabb)\n"
    assert call.calls == [("POST", "/api/v1/trusted-cas", {"files": [
        {"name": "Root CA.cer", "data_base64": base64.b64encode(b"\x30\x82der").decode()},
        {"name": "inter.pem", "data_base64": base64.b64encode(b"-----BEGIN CERTIFICATE-----\n").decode()}]})]


def test_a_missing_file_is_one_error_line_and_nothing_is_sent(tmp_path, capsys):
    call = Recorder([])
    code, out, err = run(["account", "import-ca", str(tmp_path / "nope.cer")], call, capsys)
    assert (code, out, err) == (2, "", f"error: {tmp_path / 'nope.cer'}: No such file or directory\n")
    assert call.calls == []


def test_json_output_is_the_api_answer(capsys):
    for argv, answer in ((["account", "show", "--json"], ACCOUNT), (["endpoints", "--json"], [ENDPOINT]),
                         (["endpoints", "trust", "gateway-host", "--json"], ENDPOINT)):
        code, out, _ = run(argv, Recorder(answer), capsys)
        assert code == 0 and json.loads(out) == answer


def test_trust_says_which_certificate_it_trusted(capsys):
    code, out, _ = run(["endpoints", "trust", "gateway-host"], Recorder(ENDPOINT), capsys)
    assert code == 0
    assert out.splitlines() == [f"trusted endpoint {ENDPOINT['id']} (gateway gateway-host)", "  sha256 12:34:56"]


def test_account_text(capsys):
    _, out, _ = run(["account"], Recorder(ACCOUNT), capsys)
    assert out.splitlines() == [
        "Certificate policy for internal communication: trusted-ca",
        "Automatically trust new clients/servers: off",
        "OCSP revocation checks: on; custom OCSP URL: -; on failure: fail-closed",
        "Trusted CA certificates:",
        "  abcd000000000000  CN=Acme-CA-Root,O=Acme  (until 2036-01-01)"]


def test_an_ambiguous_name_is_the_api_s_409_message_on_one_line(capsys):
    message = "name gw matches 2 endpoints (id-a, id-b): give the id"
    code, out, err = run(["endpoints", "trust", "gw"], Recorder(error=admincli.AdminError(message, 409)), capsys)
    assert (code, out, err) == (2, "", f"error: {message}\n")


@pytest.mark.parametrize("argv, words", [
    (["account", "ocsp", "--url", "http://x", "--no-url"], "argument --no-url: not allowed with argument --url"),
    (["account", "set-policy", "nope"], "invalid choice: 'nope'"),
    (["endpoints", "trust"], "the following arguments are required: ID"),
    (["frob"], "invalid choice: 'frob'"),
])
def test_a_bad_command_line_is_one_error_line(capsys, argv, words):
    code, out, err = run(argv, Recorder(), capsys)
    assert code == 2 and out == "" and len(err.splitlines()) == 1
    assert err.startswith("error: ") and words in err and "--help`)" in err


# -- safeq-lab: the same commands through an exec of `safeq-admin api` in the primary (lab.engine) --

def fake_exec(monkeypatch, calls, stdout="", stderr="", rc=0, raises=None):
    def execute(target, argv, input=None, timeout=None):
        calls.append((target, tuple(argv), input, timeout))
        if raises:
            raise raises
        return engine.ExecResult(tuple(argv), rc, stdout, stderr)
    monkeypatch.setattr(engine, "execute", execute)


def test_safeq_lab_sends_the_request_through_safeq_admin_api(monkeypatch):
    calls = []
    fake_exec(monkeypatch, calls, stdout=json.dumps(ENDPOINT))
    result = CliRunner().invoke(lab_main, ["endpoints", "trust", "gateway-host", "--json"])
    assert result.exit_code == 0 and json.loads(result.stdout) == ENDPOINT
    [(target, argv, body, timeout)] = calls
    assert (target, argv) == ("primary", ("safeq-admin", "api", "POST", "/api/v1/endpoints/gateway-host/trust"))
    assert body == "" and timeout == engine.DEFAULT


def test_safeq_lab_account_ocsp_body_goes_on_stdin(monkeypatch):
    calls = []
    fake_exec(monkeypatch, calls, stdout=json.dumps(ACCOUNT))
    result = CliRunner().invoke(lab_main, ["account", "ocsp", "on", "--on-failure", "fail-closed", "--json"])
    assert result.exit_code == 0 and json.loads(result.stdout) == ACCOUNT
    assert json.loads(calls[0][2]) == {"enabled": True, "on_failure": "fail-closed"}


@pytest.mark.parametrize("answer, line", [
    ({"stderr": "error: name gw matches 2 endpoints (a, b): give the id\n", "rc": 2},
     "error: name gw matches 2 endpoints (a, b): give the id"),
    ({"raises": engine.NotRunning("primary")}, "error: the primary is not running: start the lab with `safeq-lab up`"),
    ({"rc": 137}, "error: exit 137"),
])
def test_safeq_lab_errors_are_one_line_exit_2(monkeypatch, answer, line):
    fake_exec(monkeypatch, [], **answer)
    result = CliRunner().invoke(lab_main, ["endpoints", "trust", "gw", "--json"])
    assert result.exit_code == 2 and result.stdout == ""
    assert result.stderr.splitlines() == [line]


def test_safeq_lab_help_is_admincli_s(monkeypatch):
    result = CliRunner().invoke(lab_main, ["account", "--help"])
    assert result.exit_code == 0
    assert result.stdout.startswith("usage: safeq-lab account") and "import-ca" in result.stdout


def test_safeq_lab_without_docker_says_what_to_install(monkeypatch):
    def missing(argv, **kwargs):
        raise FileNotFoundError(2, "No such file or directory", argv[0])
    monkeypatch.setattr(docker.subprocess, "run", missing)
    monkeypatch.setattr(topology, "_cache", {})  # the project name comes from `docker compose config`
    monkeypatch.setattr(engine, "connect", lambda timeout: pytest.fail("reached the engine"))
    result = CliRunner().invoke(lab_main, ["account", "show"])
    assert result.exit_code == 2
    assert result.stderr.splitlines() == ["error: the docker command is not installed: install Docker Engine with "
                                          "Compose v2 (on Debian run: sudo scripts/ensure-docker.sh)"]
