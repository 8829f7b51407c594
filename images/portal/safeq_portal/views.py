"""What each page and form does: ask the primary's admin API, then render or redirect.
HTTP details (cookies, CSRF, bodies) stay in server.py."""
from __future__ import annotations

import base64
import datetime
import json
import logging
from dataclasses import dataclass, field

from . import labpage, labview, pages
from .auth import Session
from .forms import Form
from .primary import AdminDown, ApiError, Primary

log = logging.getLogger("safeq-portal")
NO_FILE = "choose a certificate file (PEM or DER) to import"


@dataclass
class Response:
    status: int
    body: bytes
    content_type: str = "text/html; charset=utf-8"
    headers: list = field(default_factory=list)


def html(text: str, status: int = 200) -> Response:
    return Response(status, text.encode())


def redirect(location: str) -> Response:
    return Response(303, b"", "text/plain; charset=utf-8", [("Location", location)])


def as_json(payload, status: int = 200) -> Response:
    return Response(status, json.dumps(payload).encode(), "application/json")


def flashed(session: Session) -> list[str]:
    shown, session.flash = session.flash, []
    return shown


def _status(exc: ApiError) -> int:
    return 503 if isinstance(exc, AdminDown) else 502


def _down(exc: ApiError, what: str) -> None:
    if isinstance(exc, AdminDown):
        log.warning("admin API does not answer (%s): %s", what, exc.detail)


# Account settings ---------------------------------------------------------------------------

def settings_values(account: dict) -> dict:
    ocsp = account.get("ocsp") or {}
    return {"policy": account.get("certificate_policy"), "auto_trust": bool(account.get("auto_trust")),
            "ocsp_enabled": bool(ocsp.get("enabled")), "ocsp_url": ocsp.get("url"),
            "ocsp_on_failure": ocsp.get("on_failure") or "fail-closed"}


def form_values(form: Form, current: dict) -> dict:
    """What the form asks for; an unchecked box is False, a missing radio or select keeps the current value."""
    return {"policy": form.get("policy") or current["policy"],
            "auto_trust": form.has("auto_trust"), "ocsp_enabled": form.has("ocsp_enabled"),
            "ocsp_url": form.get("ocsp_url").strip() or None,
            "ocsp_on_failure": form.get("ocsp_on_failure") or current["ocsp_on_failure"]}


def account_page(api: Primary, session: Session, *, values: dict | None = None, errors=(), notices=(),
                 status: int = 200) -> Response:
    notices, errors = list(notices) + flashed(session), list(errors)
    try:
        account = api.account()
    except ApiError as exc:
        _down(exc, "account")
        return html(pages.account(values, None, session.csrf, notices, errors + [str(exc)]),
                    max(status, _status(exc)))
    errors += account.get("trusted_ca_problems") or []
    shown = values if values is not None else settings_values(account)
    return html(pages.account(shown, account.get("trusted_cas") or [], session.csrf, notices, errors), status)


def save_settings(api: Primary, session: Session, form: Form) -> Response:
    try:
        current = settings_values(api.account())
    except ApiError as exc:
        _down(exc, "account")
        return account_page(api, session, errors=[str(exc)], status=_status(exc))
    wanted = form_values(form, current)
    done = []
    try:
        if wanted["policy"] != current["policy"]:
            api.set_policy(wanted["policy"])
            done.append("certificate policy")
            log.info("%s set the certificate policy to %s", session.user, wanted["policy"])
        if wanted["auto_trust"] != current["auto_trust"]:
            api.set_auto_trust(wanted["auto_trust"])
            done.append("automatic trust")
            log.info("%s set automatic trust %s", session.user, "on" if wanted["auto_trust"] else "off")
        ocsp = ("ocsp_enabled", "ocsp_url", "ocsp_on_failure")
        if any(wanted[k] != current[k] for k in ocsp):
            api.set_ocsp(*(wanted[k] for k in ocsp))
            done.append("OCSP settings")
            log.info("%s set OCSP checks %s, custom URL %s, %s", session.user,
                     "on" if wanted["ocsp_enabled"] else "off", wanted["ocsp_url"] or "none", wanted["ocsp_on_failure"])
    except ApiError as exc:
        _down(exc, "save settings")
        log.info("%s: saving the account settings failed: %s", session.user, exc)
        notices = [f"Saved before the error: {', '.join(done)}."] if done else []
        return account_page(api, session, values=wanted, errors=[str(exc)], notices=notices,
                            status=_status(exc) if isinstance(exc, AdminDown) else 400)
    session.flash.append("Saved." if done else "Saved. (nothing had changed)")
    return redirect("/account")


def import_cas(api: Primary, session: Session, form: Form) -> Response:
    uploads = [u for u in form.files if u.field == "file"]
    if not uploads:
        return account_page(api, session, errors=[NO_FILE], status=400)
    files = [{"name": u.filename or "upload", "data_base64": base64.b64encode(u.data).decode()} for u in uploads]
    try:
        added = api.import_cas(files)
    except ApiError as exc:
        _down(exc, "import")
        log.info("%s: import of %s refused: %s", session.user, ", ".join(f["name"] for f in files), exc)
        return account_page(api, session, errors=[str(exc)], status=503 if isinstance(exc, AdminDown) else 400)
    subjects = [ca.get("subject") for ca in added if isinstance(ca, dict)]
    log.info("%s imported Trusted CA certificate(s): %s", session.user, "; ".join(map(str, subjects)) or "none new")
    session.flash.append(f"Imported {len(subjects)} certificate(s): {'; '.join(map(str, subjects))}."
                         if subjects else "Imported: no new certificate (already trusted).")
    return redirect("/account")


def remove_ca(api: Primary, session: Session, form: Form) -> Response:
    sha256 = form.get("sha256").strip()
    if not sha256:
        return account_page(api, session, errors=["choose a Trusted CA certificate to remove"], status=400)
    try:
        removed = api.remove_ca(sha256)
    except ApiError as exc:
        _down(exc, "remove")
        return account_page(api, session, errors=[str(exc)], status=503 if isinstance(exc, AdminDown) else 400)
    log.info("%s removed Trusted CA certificate %s (%s)", session.user, removed.get("subject"), sha256)
    session.flash.append(f"Removed {removed.get('subject') or sha256}.")
    return redirect("/account")


# Endpoints ----------------------------------------------------------------------------------

def endpoints_page(api: Primary, session: Session, *, errors=(), status: int = 200) -> Response:
    notices, errors = flashed(session), list(errors)
    eps, policy = None, None
    try:
        eps = api.endpoints()
        policy = api.account().get("certificate_policy")
    except ApiError as exc:
        _down(exc, "endpoints")
        errors.append(str(exc))
        status = max(status, _status(exc))
    return html(pages.endpoints(eps, policy, session.csrf, notices, errors), status)


def set_trust(api: Primary, session: Session, form: Form, trust: bool) -> Response:
    ident = form.get("id").strip()
    if not ident:
        return endpoints_page(api, session, errors=["choose an endpoint"], status=400)
    try:
        ep = api.trust(ident) if trust else api.untrust(ident)
    except ApiError as exc:
        _down(exc, "trust")
        return endpoints_page(api, session, errors=[str(exc)], status=503 if isinstance(exc, AdminDown) else 400)
    verb = "trusted" if trust else "untrusted"
    log.info("%s %s endpoint %s (%s %s)", session.user, verb, ep.get("id"), ep.get("role"), ep.get("name"))
    session.flash.append(f"{verb.capitalize()} {ep.get('role') or 'endpoint'} {ep.get('name') or ident}.")
    return redirect("/endpoints")


# Lab ----------------------------------------------------------------------------------------

def lab_model(api: Primary, ocsp_up, hosts: list[tuple[str, str]]) -> dict:
    """Gather what the primary says (each part on its own: one error does not blank the rest)."""
    got, errors = {}, []
    for name in ("server", "account", "endpoints", "refused"):
        try:
            got[name] = getattr(api, name)()
        except AdminDown as exc:
            _down(exc, "lab")
            return _stamped(labview.model(None, None, None, None, ocsp_up(), hosts, api_error=str(exc)))
        except ApiError as exc:
            got[name] = None
            errors.append(f"{name}: {exc}")
    view = labview.model(got["server"], got["account"], got["endpoints"], got["refused"], ocsp_up(), hosts,
                         api_error="; ".join(errors) or None)
    return _stamped(view)


def _stamped(view: dict) -> dict:
    view["updated"] = datetime.datetime.now(datetime.timezone.utc).strftime("%H:%M:%S UTC")
    return view


def lab_page(api: Primary, session: Session, ocsp_up, hosts) -> Response:
    view = lab_model(api, ocsp_up, hosts)
    return html(labpage.lab(view, view["updated"], session.csrf))
