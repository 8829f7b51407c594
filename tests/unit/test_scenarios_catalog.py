"""The scenario catalog: scenarios/*.toml read and checked offline (lab.scenarios.catalog, .actions).

The real catalog must load and only name things the lab has (defects, units, services, hosts); a bad
scenario file is one ScenarioError naming the file and the key. No Docker anywhere.
"""
from __future__ import annotations

import json
import re
import shlex
import shutil
import subprocess
from pathlib import Path

import pytest

from lab import engine, labstate, project, steps, topology
from lab.scenarios import actions, batch, catalog, checks, observe
from lab.scenarios.catalog import ScenarioError
from pki import defects
from pki.builder import DEFAULT_ENTITIES
from pki.export import unattended_install_conf

ROOT = Path(__file__).resolve().parents[2]
IDS = """baseline no-intermediate two-intermediates wrong-keystore-password keystore-unreadable keystore-missing
ca-not-imported only-root-imported-leaf-only-pfx cacerts-missing-root truststore-without-root
truststore-openssl-nokeys truststore-wrong-password primary-san-mismatch gateway-expired gateway-not-yet-valid
client-without-client-auth-eku intermediate-not-ca gateway-revoked-ocsp-on gateway-revoked-ocsp-off
ocsp-responder-down-fail-closed ocsp-responder-down-fail-open client-subject-matches-nothing
client-subject-matches-issuer builtin-endpoint-not-trusted builtin-auto-trust
self-signed-endpoint-under-trusted-ca global-ca-in-public-bundle policy-switched-live""".split()
# Scenarios that only show something (no break with a fix to find): every other one is an exercise.
DEMOS = {"baseline", "no-intermediate", "two-intermediates", "ocsp-responder-down-fail-open",
         "client-subject-matches-issuer", "builtin-auto-trust", "global-ca-in-public-bundle"}
UNITS = {"primary": "safeq-cloud-server", "gateway": "safeq-gateway", "client": "safeq-client", "ocsp": "safeq-ocsp"}
HOSTS = dict(DEFAULT_ENTITIES)  # host -> role


@pytest.fixture(scope="module")
def real() -> dict[str, catalog.Scenario]:
    return catalog.load()


def _all_checks(scenario: catalog.Scenario) -> list[checks.Check]:
    return [*scenario.expect, *scenario.fixed]


# -- the real catalog -------------------------------------------------------------------------

def test_the_catalog_is_the_28_files_of_scenarios_each_id_its_file_stem(real):
    assert len(IDS) == len(set(IDS)) == 28
    stems = sorted(p.stem for p in (ROOT / "scenarios").glob("*.toml"))
    assert list(real) == stems  # file-name order
    assert set(real) == set(IDS)
    for ident, scenario in real.items():
        assert scenario.id == ident == scenario.file.stem
        assert scenario.file.parent == catalog.folder() == ROOT / "scenarios"
        assert scenario.title and scenario.ticket


def test_exercises_have_a_hint_a_solution_and_fixed_checks(real):
    assert {i for i, s in real.items() if not s.exercise} == DEMOS
    for scenario in real.values():
        if scenario.exercise:
            assert scenario.hint and scenario.solution and scenario.fixed and scenario.breaks, scenario.id
            assert all(isinstance(c, str) and c.strip() for c in scenario.solution), scenario.id
        else:  # a demo: nothing to fix, so nothing that proves a fix
            assert not (scenario.fixed and scenario.solution), scenario.id


def test_every_defect_is_one_pki_defects_knows_on_a_host_of_the_lab_pki(real):
    used = [(s, a) for s in real.values() for a in s.breaks if a.do in ("pki-defect", "pki-revoke")]
    assert used  # the catalog does use them
    for scenario, action in used:
        assert action.get("host") in HOSTS, (scenario.id, action.describe())
        if action.do == "pki-defect":
            assert action.get("defect") in defects.KINDS, (scenario.id, action.describe())
            if action.get("defect") in defects.TRUSTSTORE_KINDS:
                assert HOSTS[action.get("host")] == "gateway", scenario.id
            if action.get("defect") == "leaf-only":
                assert scenario.lab.intermediates >= 1, scenario.id


def test_restarts_name_the_unit_of_the_service_they_run_in(real):
    restarts = [(s.id, a) for s in real.values() for a in s.breaks if a.do == "restart"]
    assert restarts
    for ident, action in restarts:
        assert action.get("unit") in UNITS.values(), ident
        assert UNITS[action.get("service")] == action.get("unit"), ident


def test_every_service_named_is_one_of_compose_yaml(real):
    services = set(topology.file_order((ROOT / "compose.yaml").read_text()))
    # file_order read the file: the units table covers every service a scenario may break (the portal is
    # not part of the product's trusted setup: no scenario names it)
    assert services == set(UNITS) | {"portal"}
    named = []
    for scenario in real.values():
        named += [(scenario.id, a.get("service")) for a in scenario.breaks if "service" in dict(a.args)]
        for check in _all_checks(scenario):
            if check.kind == "log":
                named.append((scenario.id, check.get("service")))
            if check.kind == "health":
                named.append((scenario.id, check.subject))
            if check.kind == "status":  # an endpoint's own status command
                assert check.subject in observe.STATUS_COMMANDS, scenario.id
                named.append((scenario.id, check.subject))
    assert named
    assert [(i, s) for i, s in named if s not in services] == []


def test_endpoint_checks_name_an_endpoint_host_and_ca_actions_fit_the_lab(real):
    endpoints = {host for host, role in HOSTS.items() if role != "primary"}
    for scenario in real.values():
        for check in _all_checks(scenario):
            if check.kind == "endpoint":
                assert check.subject in endpoints, scenario.id
        for action in scenario.breaks:
            if action.do in ("remove-ca", "cacerts-remove", "public-bundle") and action.get("ca") == "intermediate":
                assert scenario.lab.intermediates >= 1, scenario.id


def test_each_scenario_gets_a_valid_lab_name_of_its_own(real):
    names = [batch.lab_name(i) for i in real]
    assert len(set(names)) == len(names)
    assert all(labstate.NAME_RULE.fullmatch(n) for n in names), names


def test_lab_options_come_from_the_lab_table(real):
    assert real["no-intermediate"].lab == catalog.LabOptions(intermediates=0)
    assert real["two-intermediates"].lab == catalog.LabOptions(intermediates=2)
    assert real["builtin-auto-trust"].lab == catalog.LabOptions(policy="built-in")
    assert real["baseline"].lab == catalog.LabOptions(intermediates=1, policy="trusted-ca")


def test_pick_keeps_the_order_asked_and_names_an_unknown_id(real):
    assert [s.id for s in catalog.pick(real, ["gateway-expired", "baseline"])] == ["gateway-expired", "baseline"]
    with pytest.raises(ScenarioError) as err:
        catalog.pick(real, ["baseline", "no-such", "nor-this"])
    assert str(err.value) == "unknown scenario(s) no-such, nor-this: `safeq-lab scenarios list` shows the ids"


# -- bad scenario files -----------------------------------------------------------------------

BREAK = '[[break]]\ndo = "stop"\nservice = "ocsp"\n'
EXPECT = '[[expect]]\nendpoint = "gateway-host"\ndecision = "refused"\n'
FIXED = '[[fixed]]\nendpoint = "gateway-host"\nstate = "connected"\n'


def scenario_text(ident: str, *, top: str = "", solution: str | None = '["true"]', lab: str = "", breaks: str = BREAK,
                  expect: str = EXPECT, fixed: str = FIXED) -> str:
    head = f'id = "{ident}"\ntitle = "A title"\nticket = "A ticket"\nhint = "A hint"\n' + top
    if solution is not None:
        head += f"solution = {solution}\n"
    return "\n".join(part for part in (head, lab, breaks, expect, fixed) if part)


def test_the_template_of_the_bad_files_is_itself_a_good_exercise(tmp_path):
    (tmp_path / "good.toml").write_text(scenario_text("good", lab="[lab]\nintermediates = 3\npolicy = \"built-in\"\n"))
    found = catalog.load(tmp_path)
    good = found["good"]
    assert good.exercise and good.solution == ("true",) and good.hint == "A hint"
    assert good.lab == catalog.LabOptions(intermediates=3, policy="built-in")
    assert good.breaks == (actions.Action("stop", (("service", "ocsp"),)),)
    assert good.expect == (checks.Check("endpoint", "gateway-host", (("decision", "refused"),)),)


def _without_hint(ident: str) -> str:
    return scenario_text(ident).replace('hint = "A hint"\n', "")


BAD = {  # file stem -> (its text, what the error says after "FILE.toml: ")
    "invalid-toml": (lambda i: scenario_text(i, top='colour = "red\n'), r"not valid TOML"),
    "unknown-key": (lambda i: scenario_text(i, top='colour = "red"\n'), r"unknown key\(s\) colour \(known: .*\bticket\b"),
    "missing-expect": (lambda i: scenario_text(i, expect=""), r"at least one \[\[expect\]\] is needed"),
    "expect-not-tables": (lambda i: scenario_text(i, top='expect = "gateway-host"\n', expect=""),
                          r"'expect' must be an array of tables"),
    "fixed-without-solution": (lambda i: scenario_text(i, solution=None), r"\[\[fixed\]\] and 'solution' go together"),
    "solution-without-fixed": (lambda i: scenario_text(i, fixed=""), r"\[\[fixed\]\] and 'solution' go together"),
    "exercise-without-hint": (_without_hint, r"'hint' must be a non-empty string"),
    "unknown-do": (lambda i: scenario_text(i, breaks='[[break]]\ndo = "explode"\n'),
                   r"do = one of pki-defect, .*; got 'explode'"),
    "action-wrong-keys": (lambda i: scenario_text(i, breaks='[[break]]\ndo = "chmod"\nservice = "primary"\npath = "/x"\n'),
                          r"do = 'chmod' takes service, path, mode; got path, service"),
    "action-extra-key": (lambda i: scenario_text(i, breaks='[[break]]\ndo = "stop"\nservice = "ocsp"\nunit = "safeq-ocsp"\n'),
                         r"do = 'stop' takes service; got service, unit"),
    "chmod-bad-mode": (lambda i: scenario_text(
        i, breaks='[[break]]\ndo = "chmod"\nservice = "primary"\npath = "/x"\nmode = "rw-"\n'), r"do = 'chmod': mode is octal"),
    "chmod-mode-not-text": (lambda i: scenario_text(
        i, breaks='[[break]]\ndo = "chmod"\nservice = "primary"\npath = "/x"\nmode = 600\n'), r"do = 'chmod': mode must be a str"),
    "check-two-subjects": (lambda i: scenario_text(i, expect='[[expect]]\nendpoint = "gateway-host"\nstatus = "gateway"\n'
                                                            'state = "x"\n'),
                           r"a check names exactly one of endpoint, status, .*; got \['endpoint', 'state', 'status'\]"),
    "check-no-subject": (lambda i: scenario_text(i, expect='[[expect]]\nstate = "connected"\n'),
                         r"a check names exactly one of"),
    "log-without-file": (lambda i: scenario_text(i, expect='[[expect]]\nlog = "text"\nservice = "primary"\n'),
                         r"a log check names the service and the file"),
    "endpoint-no-expectation": (lambda i: scenario_text(i, fixed='[[fixed]]\nendpoint = "gateway-host"\n'),
                                r"an endpoint check says what it expects: decision, reason, state"),
    "check-foreign-key": (lambda i: scenario_text(i, expect='[[expect]]\nserved = "CN=x"\nicon = "grey"\n'),
                          r"a served check takes no other key; not icon"),
    "health-ok-not-bool": (lambda i: scenario_text(i, expect='[[expect]]\nhealth = "primary"\nok = "yes"\n'),
                           r"ok must be true or false"),
    "lab-bad-policy": (lambda i: scenario_text(i, lab='[lab]\npolicy = "trust-all"\n'),
                       r"\[lab\] policy must be one of trusted-ca, built-in"),
    "lab-intermediates-high": (lambda i: scenario_text(i, lab="[lab]\nintermediates = 4\n"),
                               r"\[lab\] intermediates must be 0 to 3"),
    "lab-intermediates-low": (lambda i: scenario_text(i, lab="[lab]\nintermediates = -1\n"),
                              r"\[lab\] intermediates must be 0 to 3"),
    "lab-intermediates-bool": (lambda i: scenario_text(i, lab="[lab]\nintermediates = true\n"),
                               r"\[lab\] intermediates must be a int"),
    "lab-unknown-key": (lambda i: scenario_text(i, lab='[lab]\nkey-type = "rsa-2048"\n'),
                        r"\[lab\] has an unknown key 'key-type'"),
    "solution-a-string": (lambda i: scenario_text(i, solution='"safeq-lab pki reissue gateway-host"'),
                          r"'solution' must be a list of commands"),
    "solution-not-strings": (lambda i: scenario_text(i, solution="[1, 2]"), r"'solution' must be a list of commands"),
    "solution-blank-command": (lambda i: scenario_text(i, solution='["  "]'), r"'solution' must be a list of commands"),
}


@pytest.mark.parametrize("name", sorted(BAD))
def test_a_bad_scenario_file_is_one_error_naming_the_file_and_the_key(tmp_path, name):
    text, message = BAD[name]
    (tmp_path / f"{name}.toml").write_text(text(name))
    with pytest.raises(ScenarioError) as err:
        catalog.load(tmp_path)
    assert str(err.value).startswith(f"{name}.toml: "), str(err.value)
    assert re.search(message, str(err.value)), str(err.value)
    assert "\n" not in str(err.value)  # one line


def test_an_id_that_is_not_the_file_name_is_refused(tmp_path):
    (tmp_path / "gateway-expired.toml").write_text(scenario_text("gateway-expird"))
    with pytest.raises(ScenarioError, match=r"^gateway-expired\.toml: id 'gateway-expird' must match the file name "
                                            r"\(gateway-expired\)$"):
        catalog.load(tmp_path)


def test_a_demo_needs_no_hint_and_an_empty_folder_is_an_error(tmp_path):
    (tmp_path / "demo.toml").write_text(scenario_text("demo", solution=None, fixed="", breaks="")
                                        .replace('hint = "A hint"\n', ""))
    demo = catalog.load(tmp_path)["demo"]
    assert not demo.exercise and demo.hint == "" and demo.breaks == ()
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(ScenarioError, match=r"^no scenario files \(\*\.toml\) in .*empty$"):
        catalog.load(empty)


def test_a_file_that_is_not_utf8_names_the_file(tmp_path):
    (tmp_path / "latin.toml").write_bytes(scenario_text("latin").replace("A title", "Caf\xe9").encode("latin-1"))
    with pytest.raises(ScenarioError, match=r"^latin\.toml: cannot be read"):
        catalog.load(tmp_path)


# -- actions: parse, `unattended` and `conf` ------------------------------------------------------

def test_parse_freezes_an_action_sorted_and_hashable():
    action = actions.parse({"do": "unattended", "set": {"B": "2", "A": "1"}})
    assert action == actions.Action("unattended", (("set", (("A", "1"), ("B", "2"))),))
    assert action.get("set") == (("A", "1"), ("B", "2"))
    hash(action)
    account = actions.parse({"do": "account", "args": ["ocsp", "on"]})
    assert account.get("args") == ("ocsp", "on")
    assert actions.parse({"do": "chmod", "service": "primary", "path": "/p", "mode": "0644"}).get("mode") == "0644"


@pytest.mark.parametrize("table, message", [
    ({"service": "ocsp"}, r"do = one of .*; got None"),
    ({"do": "remove-ca", "ca": "leaf"}, r"do = 'remove-ca': ca must be one of root, intermediate, all$"),
    ({"do": "cacerts-remove", "ca": "all"}, r"do = 'cacerts-remove': ca must be one of root, intermediate$"),
    ({"do": "public-bundle", "ca": "all"}, r"do = 'public-bundle': ca must be one of root, intermediate$"),
    ({"do": "conf", "set": "a=b"}, r"do = 'conf': set must be a dict"),
    ({"do": "account", "args": "ocsp on"}, r"do = 'account': args must be a list"),
    ({"do": "chmod", "service": "primary", "path": "/p", "mode": "999"}, r"mode is octal"),
    ({"do": "chmod", "service": "primary", "path": "/p", "mode": "60"}, r"mode is octal"),
    ({"do": "restart", "service": "gateway"}, r"do = 'restart' takes service, unit; got service$"),
    ({"do": "pki-revoke", "host": "gateway-host"}, r"takes host, reason; got host$"),
])
def test_parse_refuses_a_bad_action(table, message):
    with pytest.raises(ValueError, match=message):
        actions.parse(table)


def test_remove_ca_takes_all_and_the_others_root_or_intermediate():
    assert actions.parse({"do": "remove-ca", "ca": "all"}).get("ca") == "all"
    for do in ("remove-ca", "cacerts-remove", "public-bundle"):
        for ca in ("root", "intermediate"):
            assert actions.parse({"do": do, "ca": ca}).get("ca") == ca


@pytest.fixture
def gateway_conf(tmp_path, monkeypatch) -> Path:
    monkeypatch.setattr(project, "pki_dir", lambda: tmp_path)
    folder = tmp_path / "hosts" / "gateway-host"
    folder.mkdir(parents=True)
    path = folder / "unattended-install.conf"
    path.write_bytes(unattended_install_conf("gateway-host.pfx", "gateway-pfx-password", "acme-ca.pfx",
                                             "acme-ca-pfx-password", "primary-host"))
    path.chmod(0o640)  # not what atomic_write would choose by itself
    return path


def test_unattended_replaces_a_key_in_place_and_keeps_the_rest_and_the_mode(gateway_conf, monkeypatch):
    monkeypatch.setattr(engine, "exec_sh", lambda *a, **k: pytest.fail("unattended edits a host file, no container"))
    before = gateway_conf.read_text().splitlines()
    at = next(i for i, line in enumerate(before) if line.startswith("HCP_PRIMARY_SERVER_ADDRESS="))
    actions.apply(actions.parse({"do": "unattended", "set": {"HCP_PRIMARY_SERVER_ADDRESS": "primary:2560"}}))
    after = gateway_conf.read_text().splitlines()
    assert after[at] == 'HCP_PRIMARY_SERVER_ADDRESS="primary:2560"'
    assert after[:at] + after[at + 1:] == before[:at] + before[at + 1:]
    assert len(after) == len(before)
    assert gateway_conf.read_text().endswith("\n")
    assert gateway_conf.stat().st_mode & 0o777 == 0o640


def test_unattended_appends_a_key_the_file_lacks(gateway_conf):
    before = gateway_conf.read_text().splitlines()
    actions.apply(actions.parse({"do": "unattended", "set": {"HCP_EXTRA": "yes",
                                                             "HCP_DEFAULT_TRUSTSTORE_PASSWORD": "changeit"}}))
    after = gateway_conf.read_text().splitlines()
    assert after[-1] == 'HCP_EXTRA="yes"'
    assert len(after) == len(before) + 1
    assert 'HCP_DEFAULT_TRUSTSTORE_PASSWORD="changeit"' in after
    assert sum(line.startswith("HCP_DEFAULT_TRUSTSTORE_PASSWORD=") for line in after) == 1
    assert gateway_conf.stat().st_mode & 0o777 == 0o640


def test_conf_edits_application_conf_with_steps_sed_setting(tmp_path, monkeypatch):
    if shutil.which("sed") is None:
        pytest.skip("sed is not on PATH")
    calls = []
    monkeypatch.setattr(engine, "exec_sh", lambda service, command, **kw: calls.append((service, command)))
    wanted = {"default-keystore-password": 'wr&o|ng "pass" \\ x', "default-keystore-file": "/opt/safeqcloud/conf/p.pfx"}
    actions.apply(actions.parse({"do": "conf", "set": wanted}))
    assert len(calls) == 1 and calls[0][0] == "primary"
    argv = shlex.split(calls[0][1])
    assert argv[:2] == ["sed", "-i"] and argv[-1] == actions.CONF == "/opt/safeqcloud/conf/application.conf"
    scripts = argv[2:-1]
    assert scripts == [x for k in sorted(wanted) for x in ("-e", steps.sed_setting(k, wanted[k]))]

    copy = tmp_path / "application.conf"
    original = (ROOT / "images" / "primary" / "application.conf").read_text()
    copy.write_text(original)
    subprocess.run([*argv[:-1], str(copy)], check=True, capture_output=True, timeout=30)
    edited = copy.read_text().splitlines()
    values = {}
    for line in edited:
        key, sep, value = line.partition("=")
        if sep and key.strip() in wanted:
            values[key.strip()] = json.loads(value.strip())  # HOCON quoted string, JSON rules
    assert values == wanted
    untouched = [line for line in original.splitlines() if not line.startswith(tuple(wanted))]
    assert [line for line in edited if not line.startswith(tuple(wanted))] == untouched
