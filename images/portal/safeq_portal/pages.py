"""The portal's HTML pages: login, Account settings, Endpoints (the lab page is labpage.py)."""
from __future__ import annotations

from .layout import attrs, csrf_field, esc, page, post_button, table, when

POLICIES = (("built-in", "Use built-in certificates"), ("trusted-ca", "Use trusted CA certificates"))
ON_FAILURE = (("fail-closed", "refuse the connection (fail-closed)"),
              ("fail-open", "accept the connection (fail-open)"))
CERT_ACCEPT = ".pem,.crt,.cer,.der"


def login(csrf: str, error: str | None = None) -> str:
    body = (
        '<form method="post" action="/login" class="login">'
        f'{csrf_field(csrf)}'
        '<label for="user">User name</label>'
        '<input type="text" id="user" name="user" autocomplete="username" required autofocus>'
        '<label for="password">Password</label>'
        '<input type="password" id="password" name="password" autocomplete="current-password" required>'
        '<button type="submit">Log in</button></form>'
        '<p class="help">The lab\'s login is in <code>build/portal-login.json</code>, written by '
        '<code>safeq-lab up</code>.</p>')
    return page("Log in", body, errors=[error] if error else [])


def settings_form(values: dict, csrf: str) -> str:
    """The "PKI and encryption" form; ``values``: policy, auto_trust, ocsp_enabled, ocsp_url, ocsp_on_failure."""
    radios = "".join(
        f'<label><input{attrs(type="radio", name="policy", value=v, checked=values.get("policy") == v)}> {esc(label)}</label>'
        for v, label in POLICIES)
    options = "".join(f'<option{attrs(value=v, selected=values.get("ocsp_on_failure") == v)}>{esc(label)}</option>'
                      for v, label in ON_FAILURE)
    return (
        '<form method="post" action="/account" id="settings">'
        f'{csrf_field(csrf)}'
        f'<fieldset><legend>Certificate policy for internal communication</legend>{radios}</fieldset>'
        f'<label><input{attrs(type="checkbox", name="auto_trust", value="on", checked=bool(values.get("auto_trust")))}>'
        ' Automatically trust new clients/servers</label>'
        f'<label><input{attrs(type="checkbox", name="ocsp_enabled", value="on", checked=bool(values.get("ocsp_enabled")))}>'
        ' Enable OCSP revocation checks</label>'
        '<label for="ocsp_url">Custom OCSP URL</label>'
        f'<input{attrs(type="text", id="ocsp_url", name="ocsp_url", value=values.get("ocsp_url") or "", aria_describedby="ocsp_url_help")}>'
        '<p id="ocsp_url_help" class="help">For certificates that do not carry an OCSP URL.</p>'
        '<label for="ocsp_on_failure">When the OCSP responder cannot be reached</label>'
        f'<select id="ocsp_on_failure" name="ocsp_on_failure">{options}</select>'
        '<button type="submit">Save</button></form>')


def trusted_cas(cas: list[dict], csrf: str) -> str:
    rows = [f'<tr{attrs(data_sha256=ca.get("sha256"))}><td>{esc(ca.get("subject"))}</td><td>{esc(ca.get("issuer"))}</td>'
            f'<td>{esc(when(ca.get("not_after")))}</td><td class="fingerprint">{esc(ca.get("sha256"))}</td>'
            f'<td>{post_button("/trusted-cas/remove", "Remove", csrf, sha256=ca.get("sha256") or "")}</td></tr>'
            for ca in cas]
    importer = (
        '<form method="post" action="/trusted-cas" enctype="multipart/form-data" id="import">'
        f'{csrf_field(csrf)}'
        '<label for="ca-file">Certificate files (PEM or DER)</label>'
        f'<input type="file" id="ca-file" name="file" multiple accept="{CERT_ACCEPT}">'
        '<button type="submit">Import</button></form>')
    return ('<div class="panel"><h3>Trusted CA certificates</h3>'
            + table("trusted-cas", ["Subject", "Issuer", "Valid to", "SHA-256", "Action"], rows,
                    "No Trusted CA certificates.")
            + importer + '</div>')


def account(values: dict | None, cas: list[dict] | None, csrf: str, notices=(), errors=()) -> str:
    """Account settings; ``values``/``cas`` None when the admin API gave nothing to show."""
    settings = settings_form(values, csrf) if values is not None else '<p>The settings cannot be shown.</p>'
    certificates = trusted_cas(cas, csrf) if cas is not None else '<p>The Trusted CA certificates cannot be shown.</p>'
    body = (f'<section aria-labelledby="pki"><h2 id="pki">PKI and encryption</h2>{settings}</section>'
            f'<section aria-labelledby="certs"><h2 id="certs">CERTIFICATES</h2>{certificates}</section>')
    return page("Account settings", body, current="/account", csrf=csrf, notices=notices, errors=errors)


def endpoint_row(ep: dict, csrf: str) -> str:
    action = ("/endpoints/untrust", "Untrust") if ep.get("trusted") else ("/endpoints/trust", "Trust")
    cells = "".join(f"<td>{esc(ep.get(k))}</td>" for k in ("name", "role", "decision", "state", "reason"))
    return (f'<tr{attrs(data_endpoint_id=ep.get("id"), data_name=ep.get("name"), data_trusted=str(bool(ep.get("trusted"))).lower())}>'
            f'{cells}<td>{esc(when(ep.get("last_seen")))}</td>'
            f'<td>{post_button(action[0], action[1], csrf, id=ep.get("id") or "")}</td></tr>')


def endpoints(eps: list[dict] | None, policy: str | None, csrf: str, notices=(), errors=()) -> str:
    explain = ('<p class="help">Trust and Untrust matter under “Use built-in certificates”: an endpoint with its '
               'built-in certificate connects only once trusted. Under “Use trusted CA certificates” the Trusted '
               'CA certificates decide.'
               + (f' The account uses “{esc(dict(POLICIES).get(policy, policy))}” now.' if policy else '') + '</p>')
    if eps is None:
        listing = '<p>The endpoints cannot be shown.</p>'
    else:
        rows = [endpoint_row(ep, csrf) for ep in eps]
        listing = table("endpoints", ["Name", "Role", "Decision", "State", "Reason", "Last seen", "Action"], rows,
                        "No endpoint has connected yet.")
    return page("Endpoints", explain + listing, current="/endpoints", csrf=csrf, notices=notices, errors=errors)


def problem(title: str, message: str, csrf: str | None = None) -> str:
    """A page for a failure (internal error, not found), with the navigation when logged in."""
    return page(title, "", csrf=csrf, errors=[message])
