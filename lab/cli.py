"""The `safeq-lab` command line: PKI -> images -> compose -> checks."""
from __future__ import annotations

import base64
import json
import os
import subprocess
import sys
import time
from pathlib import Path
from urllib.parse import quote

import click
from rich.console import Console
from rich.table import Table

import pki
from pki.cli import pki_group
from pki.cli import reports_errors as pki_reports_errors

from . import admin, docker, images, project, status, steps
from .errors import LabError

console = Console(stderr=True)
out = Console(width=None if sys.stdout.isatty() else 200)


def reports_errors(func):
    return pki_reports_errors(func, LabError)


def say(message: str) -> None:
    console.print(f"[bold cyan]==>[/] {message}")


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
def main() -> None:
    """SAFEQ Cloud trusted-certificates lab (an independent stand-in, not vendor software)."""


main.add_command(pki_group, name="pki")


def wait_for_admin_api(timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while docker.exec_sh("primary", "safeq-admin account >/dev/null", check=False).returncode != 0:
        if time.monotonic() > deadline:
            raise LabError("the primary's admin API did not come up: see `safeq-lab logs primary`")
        time.sleep(0.3)


def apply_primary_steps(todo: list[steps.Step]) -> None:
    wait_for_admin_api()
    for step in todo:
        if step.unless and docker.exec_sh("primary", step.unless, check=False).returncode == 0:
            console.print(f"    [dim]{step.title}: already done[/]")
            continue
        console.print(f"    {step.title}\n    [dim]primary# {step.command}[/]")
        docker.exec_sh("primary", step.command, input=step.stdin)


MOUNTED_HOST_DIRS = {  # what compose.yaml mounts, and the file that proves each is complete
    "primary-host": "cacert.crt", "gateway-host": "unattended-install.conf",
    "pcclient-host": "store", "ocsp-host": "responder.json",
}


def check_host_dirs(pki_dir: Path) -> None:
    """Docker would mount a missing folder as an empty one and the service would fail obscurely."""
    missing = [f"hosts/{d}/{f}" for d, f in MOUNTED_HOST_DIRS.items() if not (pki_dir / "hosts" / d / f).exists()]
    if missing:
        raise LabError(f"the PKI in {pki_dir} lacks {', '.join(missing)}: "
                       "recreate it with `safeq-lab pki init --force`, or complete those folders")


POLICY_ENV = {  # how each endpoint is told which certificates to use
    "trusted-ca": {"SAFEQ_GATEWAY_CERTIFICATES": "trusted", "SAFEQ_CLIENT_SYSTEM_CERTIFICATE": "true"},
    "built-in": {"SAFEQ_GATEWAY_CERTIFICATES": "built-in", "SAFEQ_CLIENT_SYSTEM_CERTIFICATE": "false"},
}


@main.command()
@click.option("--policy", type=click.Choice(["trusted-ca", "built-in"]), default="trusted-ca", show_default=True,
              help="Certificate policy for the whole lab: trusted-ca (the doc's end state) or built-in (the product default).")
@click.option("--build/--no-build", default=True, help="Build images before starting (fast when cached).")
@click.option("--timeout", default=180, show_default=True, help="Seconds to wait for every service to be healthy.")
@reports_errors
def up(policy: str, build: bool, timeout: int) -> None:
    """Start the lab: PKI if missing, images, primary setup steps, all services healthy."""
    docker.preflight()
    os.environ.update(POLICY_ENV[policy])
    pki_dir = project.pki_dir()
    if pki.exists(pki_dir):
        say(f"PKI: using {pki_dir}")
    else:
        say(f"PKI: creating {pki_dir}")
        pki.init_pki(pki_dir)
    manifest = pki.load_manifest(pki_dir)
    check_host_dirs(pki_dir)
    if build:
        images.build_all(say)
    say("starting primary")
    docker.compose("up", "-d", "--no-build", "primary")
    if policy == "trusted-ca":
        say("primary server setup (the doc's steps)")
        host_dir = project.pki_dir() / "hosts" / steps.primary_entity(manifest)["name"]
        apply_primary_steps(steps.primary_steps(manifest, host_dir))
    else:
        say("primary server setup: built-in certificates (no trusted-certificate setup needed)")
        apply_primary_steps(steps.builtin_steps())
        say("starting gateway and client with built-in certificates")
        docker.compose("up", "-d", "--no-build", "--wait", "--wait-timeout", str(timeout), "primary")
        docker.compose("up", "-d", "--no-build", "gateway", "client")
        names = {"gateway-host", "pcclient-host"}
        deadline = time.monotonic() + timeout
        while not names <= {ep.get("name") for ep in admin.api("GET", "/api/v1/endpoints")}:
            if time.monotonic() > deadline:
                raise LabError("gateway and client did not register with the primary: see `safeq-lab logs`")
            time.sleep(0.5)
        print_summary(status.collect())
        console.print("Built-in policy: endpoints that are not trusted are refused. Trust them with "
                      "`safeq-lab endpoints trust NAME|ID`, or `safeq-lab account auto-trust on` before they register.")
        return
    say("starting gateway and client; waiting until all are healthy")
    # Not `--wait`: a gateway reconnecting after the primary's restart may read unhealthy for a
    # moment; the services' own healthchecks, run now, are the verdict.
    docker.compose("up", "-d", "--no-build")
    failing, health_now = status.wait_converged(timeout)
    result = status.collect(health_now)
    print_summary(result)
    if failing:
        detail = "; ".join(f"{svc}: {why}" for svc, why in failing.items())
        raise LabError(f"not every service became healthy ({detail}): see `safeq-lab status` and `safeq-lab logs SERVICE`")


def print_summary(result: dict) -> None:
    table = Table(title="safeq-lab")
    for col in ("service", "host", "port", "certificate subject", "issuer", "state"):
        table.add_column(col)
    for row in status.summary_rows(result):
        table.add_row(*row)
    out.print(table)


def print_account(acc: dict) -> None:
    o = acc["ocsp"]
    out.print(f"Certificate policy for internal communication: [bold]{acc['certificate_policy']}[/]")
    out.print(f"Automatically trust new clients/servers: {'on' if acc['auto_trust'] else 'off'}")
    out.print(f"OCSP revocation checks: {'on' if o['enabled'] else 'off'}; custom OCSP URL: {o['url'] or '-'}; "
              f"on failure: {o['on_failure']}")
    table = Table(title="Trusted CA certificates")
    for col in ("sha256", "subject", "not after"):
        table.add_column(col)
    for ca in acc["trusted_cas"]:
        table.add_row(ca["sha256"].replace(":", "")[:16].lower(), ca["subject"], ca["not_after"][:10])
    out.print(table)


def print_endpoints(eps: list[dict]) -> None:
    table = Table(title="endpoints known to the primary")
    for col in ("id", "name", "role", "decision", "state", "reason", "last seen"):
        table.add_column(col)
    for ep in eps:
        table.add_row(ep.get("id") or "", ep.get("name") or "", ep.get("role") or "", ep.get("decision") or "",
                      ep.get("state") or "", ep.get("reason") or "", ep.get("last_seen") or "")
    out.print(table)


def emit(data, as_json: bool, render) -> None:
    if as_json:
        click.echo(json.dumps(data, indent=2))
    else:
        render(data)


json_option = click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")


@main.group()
def account() -> None:
    """Account settings on the primary: certificate policy, auto-trust, Trusted CA certificates, OCSP."""


@account.command("show")
@json_option
@reports_errors
def account_show(as_json: bool) -> None:
    emit(admin.api("GET", "/api/v1/account"), as_json, print_account)


@account.command("set-policy")
@click.argument("policy", type=click.Choice(["built-in", "trusted-ca"]))
@json_option
@reports_errors
def account_set_policy(policy: str, as_json: bool) -> None:
    """Certificate policy for internal communication (applies live)."""
    emit(admin.api("PUT", "/api/v1/account/policy", {"policy": policy}), as_json, print_account)


@account.command("auto-trust")
@click.argument("state", type=click.Choice(["on", "off"]))
@json_option
@reports_errors
def account_auto_trust(state: str, as_json: bool) -> None:
    """Automatically trust new clients/servers (built-in policy only)."""
    emit(admin.api("PUT", "/api/v1/account/auto-trust", {"enabled": state == "on"}), as_json, print_account)


@account.command("import-ca")
@click.argument("files", nargs=-1, required=True, type=click.Path(dir_okay=False, path_type=Path))
@json_option
@reports_errors
def account_import_ca(files, as_json: bool) -> None:
    """Import root/intermediate CA certificates (PEM or DER; .cer .der .crt .pem). All or nothing."""
    body = []
    for f in files:
        try:
            body.append({"name": f.name, "data_base64": base64.b64encode(f.read_bytes()).decode()})
        except OSError as exc:
            raise LabError(f"{f}: {exc.strerror}") from None
    added = admin.api("POST", "/api/v1/trusted-cas", {"files": body})
    emit(added, as_json, lambda cas: [out.print(f"imported trusted CA {c['subject']}") for c in cas])


@account.command("remove-ca")
@click.argument("ident")
@json_option
@reports_errors
def account_remove_ca(ident: str, as_json: bool) -> None:
    """Remove a Trusted CA certificate by SHA-256 (or a prefix of 8+ hex digits) or CN."""
    emit(admin.api("DELETE", f"/api/v1/trusted-cas/{quote(ident, safe='')}"), as_json,
         lambda c: out.print(f"removed trusted CA {c['subject']}"))


@account.command("ocsp")
@click.argument("state", type=click.Choice(["on", "off"]), required=False)
@click.option("--url", help="Custom OCSP URL for certificates without one.")
@click.option("--no-url", is_flag=True, help="Clear the custom OCSP URL.")
@click.option("--on-failure", type=click.Choice(["fail-closed", "fail-open"]),
              help="When the responder cannot answer (a lab setting: the product does not document it).")
@json_option
@reports_errors
def account_ocsp(state, url, no_url, on_failure, as_json: bool) -> None:
    """OCSP revocation checks."""
    body = {}
    if state:
        body["enabled"] = state == "on"
    if url or no_url:
        body["url"] = None if no_url else url
    if on_failure:
        body["on_failure"] = on_failure
    emit(admin.api("PUT", "/api/v1/account/ocsp", body), as_json, print_account)


@main.group()
def endpoints() -> None:
    """Gateways and clients known to the primary; endpoint authorization (built-in policy)."""


@endpoints.command("list")
@json_option
@reports_errors
def endpoints_list(as_json: bool) -> None:
    emit(admin.api("GET", "/api/v1/endpoints"), as_json, print_endpoints)


@endpoints.command("trust")
@click.argument("ident")
@json_option
@reports_errors
def endpoints_trust(ident: str, as_json: bool) -> None:
    """Trust endpoint ID (or its unique name)."""
    emit(admin.api("POST", f"/api/v1/endpoints/{quote(ident, safe='')}/trust"), as_json, lambda ep: print_endpoints([ep]))


@endpoints.command("untrust")
@click.argument("ident")
@json_option
@reports_errors
def endpoints_untrust(ident: str, as_json: bool) -> None:
    """Untrust endpoint ID (or its unique name); it is disconnected."""
    emit(admin.api("POST", f"/api/v1/endpoints/{quote(ident, safe='')}/untrust"), as_json, lambda ep: print_endpoints([ep]))


@main.command()
@reports_errors
def down() -> None:
    """Stop and remove the lab's containers (the PKI stays)."""
    docker.preflight()
    docker.compose("down", "--timeout", "2")


@main.command(name="status")
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
@reports_errors
def status_cmd(as_json: bool) -> None:
    """Services, their health, and every endpoint the primary knows."""
    docker.preflight()
    result = status.collect()
    if as_json:
        click.echo(json.dumps({"services": result["services"], "endpoints": result["endpoints"]}, indent=2))
        return
    print_summary(result)
    if result["endpoints"]:
        print_endpoints(result["endpoints"])


@main.command(context_settings={"ignore_unknown_options": True})
@click.option("--quick", is_flag=True, help="Only the checks that leave the lab as it is (no scenarios).")
@click.argument("pytest_args", nargs=-1, type=click.UNPROCESSED)
@reports_errors
def verify(quick: bool, pytest_args) -> None:
    """Run the testinfra checks against the running lab (scenarios change it and put it back)."""
    docker.preflight()
    named = any(not a.startswith("-") and (project.root() / a.split("::")[0]).exists() for a in pytest_args)
    default = [] if named else [str(project.root() / "tests" / "infra")]
    select = ["-m", "not scenario"] if quick else []
    argv = [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", *default, *select, *pytest_args]
    sys.exit(subprocess.run(argv, cwd=project.root()).returncode)


@main.command()
@click.argument("service", required=False)
@click.option("-f", "--follow", is_flag=True)
@reports_errors
def logs(service: str | None, follow: bool) -> None:
    """Logs of one service, or of all."""
    docker.preflight()
    docker.compose("logs", *(["-f"] if follow else []), *([service] if service else []))


@main.command()
@click.option("--pki", "remove_pki", is_flag=True, help="Also delete the generated PKI (CA keys included).")
@reports_errors
def clean(remove_pki: bool) -> None:
    """Remove containers, network, images and the lab's volumes (account settings, endpoints);
    the PKI only with --pki. The Debian OS image (safeq-lab/os) is kept."""
    docker.preflight()
    docker.compose("down", "--timeout", "2", "--rmi", "all", "--volumes", "--remove-orphans")
    subprocess.run(["docker", "image", "rm", images.BASE_IMAGE], capture_output=True)
    if remove_pki:
        import shutil
        shutil.rmtree(project.pki_dir(), ignore_errors=True)
        say(f"removed {project.pki_dir()}")


if __name__ == "__main__":
    main()
