"""``safeq-lab pki ...``: build and manage the lab's PKI.

Errors print ``error: <message>`` on stderr and exit with status 2, with no
traceback (status 2 is also what click uses for malformed options).
"""
from __future__ import annotations

import functools
import sys
from pathlib import Path
from typing import Any, Callable

import click
from rich.console import Console
from rich.table import Table

from . import builder, defects, rotation
from .database import REASONS
from .errors import PKIError
from .keys import DEFAULT_KEY_TYPE, KEY_TYPES
from .profiles import ROLES
from .settings import (
    DEFAULT_DAYS_CA,
    DEFAULT_DAYS_ENTITY,
    DEFAULT_INTERMEDIATE_NAME,
    DEFAULT_OCSP_URL,
    DEFAULT_ORG,
    DEFAULT_ROOT_NAME,
)

EXIT_ERROR = 2

dir_option = click.option(
    "--dir", "directory", type=click.Path(file_okay=False, path_type=Path), default=builder.DEFAULT_DIR,
    envvar="SAFEQ_PKI_DIR", show_default=True,
    help="PKI directory (relative to the current directory); `safeq-lab --lab NAME pki` uses that lab's.",
)


def reports_errors(func: Callable[..., Any], *user_errors: type[Exception]) -> Callable[..., Any]:
    """One `error:` line and exit 2 for a problem the user can fix; no traceback."""
    @functools.wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return func(*args, **kwargs)
        except (PKIError, *user_errors) as exc:
            click.echo(f"error: {exc}", err=True)
            sys.exit(EXIT_ERROR)
        except OSError as exc:
            # Disk full, permission denied...: the write was rolled back.
            where = f" ({exc.filename})" if exc.filename else ""
            click.echo(f"error: {exc.strerror or exc}{where}; nothing was changed", err=True)
            sys.exit(EXIT_ERROR)

    return wrapper


def _summary(manifest: dict[str, Any], names: list[str] | None = None) -> None:
    console = Console()
    for ent in manifest["entities"]:
        if names is None or ent["name"] in names:
            console.print(
                f"  {ent['name']:<16} {ent['role']:<8} serial {ent['serial']}  {ent['status']}  "
                f"{ent['pfx_path']} (password {ent['pfx_password']})",
                highlight=False, soft_wrap=True,
            )


@click.group("pki", context_settings={"help_option_names": ["-h", "--help"]})
def pki_group() -> None:
    """Corporate PKI for the lab: root CA -> intermediate CA(s) -> one certificate per host."""


@pki_group.command("init")
@dir_option
@click.option("--intermediates", type=int, default=1, show_default=True, help="Number of intermediate CAs (0 = root issues directly).")
@click.option("--key-type", default=DEFAULT_KEY_TYPE, show_default=True, metavar="|".join(KEY_TYPES), help="Key algorithm for every key.")
@click.option("--force", is_flag=True, help="Replace an existing PKI in --dir.")
@click.option("--org", default=DEFAULT_ORG, show_default=True, help="Subject O= of every certificate.")
@click.option("--root-name", default=DEFAULT_ROOT_NAME, show_default=True)
@click.option("--intermediate-name", default=DEFAULT_INTERMEDIATE_NAME, show_default=True,
              help="With N>1 intermediates they are named <name>-1 (under the root) ... <name>-N (issues entities).")
@click.option("--days-ca", type=int, default=DEFAULT_DAYS_CA, show_default=True)
@click.option("--days-entity", type=int, default=DEFAULT_DAYS_ENTITY, show_default=True)
@click.option("--ocsp-url", default=None, help=f"OCSP URL put in the AIA extension [default: {DEFAULT_OCSP_URL}]")
@click.option("--no-ocsp-url", is_flag=True, help="Issue certificates without an OCSP URL.")
@click.option("--ca-issuers-url", default=None, help="Base URL for AIA caIssuers: <URL>/<issuer>.cer.")
@click.option("--crl-url", default=None, help="Base URL for CRL distribution points: <URL>/<issuer>.crl.")
@click.option("--random-passwords", is_flag=True, help="Random PFX/truststore passwords instead of the documented ones.")
@click.option("--legacy-pfx", is_flag=True, help="PBE-SHA1-3DES PFX files with SHA-1 MAC, for old JREs.")
@reports_errors
def init_cmd(directory: Path, intermediates: int, key_type: str, force: bool, ocsp_url: str | None,
             no_ocsp_url: bool, **options: Any) -> None:
    """Create the CA hierarchy and the hosts primary-host, gateway-host, pcclient-host."""
    if no_ocsp_url and ocsp_url is not None:
        raise PKIError("--ocsp-url and --no-ocsp-url contradict each other; give one of them")
    if no_ocsp_url:
        options["ocsp_url"] = None
    elif ocsp_url is not None:
        options["ocsp_url"] = ocsp_url
    manifest = builder.init_pki(directory, intermediates=intermediates, key_type=key_type, force=force, **options)
    chain = " -> ".join(ca["name"] for ca in manifest["cas"])
    click.echo(f"created PKI in {manifest['dir']} ({manifest['key_type']}): {chain}")
    _summary(manifest)


@pki_group.command("issue")
@click.argument("name")
@dir_option
@click.option("--role", required=True, metavar="|".join(ROLES), help="What the host does.")
@click.option("--san", "sans", multiple=True, help="Extra subjectAltName (DNS name or IP); repeatable.")
@click.option("--password", default=None, help="PFX password (default: see `pki show`).")
@reports_errors
def issue_cmd(name: str, directory: Path, role: str, sans: tuple[str, ...], password: str | None) -> None:
    """Issue a certificate for a new host NAME."""
    manifest = builder.issue(directory, name, role, sans, password)
    click.echo(f"issued {manifest['entities'][-1]['name']}:")
    _summary(manifest, [manifest["entities"][-1]["name"]])


@pki_group.command("revoke")
@click.argument("name")
@dir_option
@click.option("--reason", default="unspecified", show_default=True, metavar="|".join(REASONS))
@reports_errors
def revoke_cmd(name: str, directory: Path, reason: str) -> None:
    """Record the revocation of host NAME's current certificate."""
    manifest = builder.revoke(directory, name, reason)
    ent = next(e for e in manifest["entities"] if e["name"] == name.strip().lower())
    click.echo(f"revoked {ent['name']} serial {ent['serial']} ({ent['revocation']['reason']} at {ent['revocation']['time']})")


@pki_group.command("reissue")
@click.argument("name")
@dir_option
@reports_errors
def reissue_cmd(name: str, directory: Path) -> None:
    """Give host NAME a fresh key and certificate (same name, role, SANs, password)."""
    manifest = builder.reissue(directory, name)
    host = name.strip().lower()
    click.echo(f"reissued {host}:")
    _summary(manifest, [host])


@pki_group.command("defect")
@click.argument("host")
@click.option("--defect", "kind", required=True, metavar="KIND", help=f"One of: {', '.join(defects.KINDS)}.")
@dir_option
@reports_errors
def defect_cmd(host: str, kind: str, directory: Path) -> None:
    """Replace host HOST's files in hosts/HOST/ with ones that carry a deliberate defect, for training;
    `safeq-lab pki reissue HOST` puts good ones back."""
    written = defects.apply(directory, host, kind)
    for path in written:
        click.echo(f"wrote {path} ({kind})")
    name = host.strip().lower()
    where = "" if directory == builder.DEFAULT_DIR else f" --dir {directory}"
    click.echo(f"undo: `safeq-lab pki reissue {name}{where}` gives {name} good files again")


@pki_group.group("ca")
def ca_group() -> None:
    """A CA rotation: add a CA beside the old one, make it the issuing CA, retire the old one."""


@ca_group.command("add")
@click.argument("name")
@click.option("--under", metavar="CA", help="The CA that signs it (default: the root above the issuing CA).")
@click.option("--root", is_flag=True, help="A new root CA, trusted by every host beside the old one.")
@dir_option
@reports_errors
def ca_add_cmd(name: str, under: str | None, root: bool, directory: Path) -> None:
    """Issue a new CA NAME with its OCSP signer (the responder must restart to answer for it)."""
    manifest = rotation.add_ca(directory, name, under, root)
    where = "as a new root, trusted beside the old one" if root else f"under {under or manifest['cas'][0]['name']}"
    click.echo(f"added CA {name} {where}; the issuing CA is still {manifest['issuing']} "
               f"(`safeq-lab pki ca issuing CA` switches)")


@ca_group.command("issuing")
@click.argument("name")
@dir_option
@reports_errors
def ca_issuing_cmd(name: str, directory: Path) -> None:
    """Make CA NAME sign new and reissued certificates (`pki reissue HOST` moves a host to it)."""
    rotation.set_issuing(directory, name)
    click.echo(f"CA {name} now issues new and reissued certificates")


@ca_group.command("retire")
@click.argument("name")
@dir_option
@reports_errors
def ca_retire_cmd(name: str, directory: Path) -> None:
    """CA NAME is no longer among the primary's Trusted CA files (what it issued still gets OCSP answers)."""
    rotation.retire(directory, name)
    click.echo(f"CA {name} retired: the doc's Trusted CA import no longer takes it")


@pki_group.command("show")
@dir_option
@click.option("--json", "as_json", is_flag=True, help="Print the manifest as JSON (same as manifest.json).")
@reports_errors
def show_cmd(directory: Path, as_json: bool) -> None:
    """Show the CAs, hosts and truststores."""
    from .manifest import to_json

    manifest = builder.load_manifest(directory)
    if as_json:
        click.echo(to_json(manifest), nl=False)
        return
    console = Console()
    root = Path(manifest["dir"])
    console.print(f"PKI in [bold]{root}[/bold] (keys: {manifest['key_type']})", highlight=False)
    cas = Table(title="Certificate authorities (root first)", title_justify="left")
    cas.add_column("name", no_wrap=True)
    cas.add_column("not after", no_wrap=True)
    cas.add_column("serial", overflow="fold")
    cas.add_column("use", no_wrap=True)
    for ca in manifest["cas"]:
        use = "issues entities" if ca["name"] == manifest["issuing"] else "retired" if ca["name"] in manifest["retired"] else ""
        cas.add_row(ca["name"], ca["not_after"][:10], ca["serial"], use)
    console.print(cas)
    ents = Table(title="Hosts", title_justify="left")
    ents.add_column("name", no_wrap=True)
    ents.add_column("role")
    ents.add_column("status", no_wrap=True)
    ents.add_column("not after", no_wrap=True)
    ents.add_column("PFX password", no_wrap=True)
    ents.add_column("SANs", overflow="fold")
    for e in manifest["entities"]:
        rev = e["revocation"]
        status = "[green]good[/green]" if rev is None else f"[red]revoked[/red] ({rev['reason']})"
        ents.add_row(e["name"], e["role"], status, e["not_after"][:10], e["pfx_password"], ", ".join(e["sans"]))
    console.print(ents)
    console.print("PFX files: entities/<name>/<name>.pfx; container files: hosts/<name>/; details: --json", highlight=False)
    oc = manifest["ocsp"]
    url = oc["url"] or "none (certificates carry no OCSP URL)"
    if oc["host_dir"]:
        console.print(
            f"OCSP: URL {url}; responder folder {Path(oc['host_dir']).relative_to(root)}/ "
            f"(signers: {', '.join(s['subject'] for s in oc['signers'])})", highlight=False, soft_wrap=True,
        )
    else:
        console.print(f"OCSP: URL {url}; no OCSP signers in this PKI (made before they existed; "
                      "`pki init --force` re-creates it with them)", highlight=False, soft_wrap=True)
    for ts in manifest["truststores"]:
        console.print(
            f"truststore {Path(ts['path']).relative_to(root)} (password {ts['password']}): "
            f"{', '.join(ts['entries'])}", highlight=False,
        )

