"""The page shell every portal page shares: head, top navigation, messages. Everything rendered
from data passes through ``esc``."""
from __future__ import annotations

import datetime
from html import escape

SITE = "SAFEQ Cloud portal (lab stand-in)"
NAV = (("/account", "Account settings"), ("/endpoints", "Endpoints"), ("/lab", "Lab"))


def esc(value) -> str:
    return escape("" if value is None else str(value), quote=True)


def attrs(**values) -> str:
    """ HTML attributes; a name ending in _ loses it (class_), other _ become -, None/False are left out."""
    out = []
    for name, value in values.items():
        name = name.rstrip("_").replace("_", "-")
        if value is True:
            out.append(f" {name}")
        elif value is not None and value is not False:
            out.append(f' {name}="{esc(value)}"')
    return "".join(out)


def csrf_field(token: str) -> str:
    return f'<input type="hidden" name="csrf" value="{esc(token)}">'


def post_button(action: str, label: str, csrf: str, **hidden) -> str:
    """A one-button form (Remove, Trust, Log out): a POST with its CSRF token."""
    fields = "".join(f'<input type="hidden" name="{esc(k)}" value="{esc(v)}">' for k, v in hidden.items())
    return (f'<form method="post" action="{esc(action)}" class="inline">{csrf_field(csrf)}{fields}'
            f'<button type="submit">{esc(label)}</button></form>')


def messages(notices=(), errors=()) -> str:
    out = [f'<p class="notice" role="status">{esc(n)}</p>' for n in notices]
    out += [f'<p class="error" role="alert">{esc(e)}</p>' for e in errors]
    return "".join(out)


def nav(current: str, csrf: str) -> str:
    links = "".join(f'<a href="{href}"{attrs(aria_current="page" if href == current else None)}>{esc(label)}</a>'
                    for href, label in NAV)
    return f'<nav class="top" aria-label="Portal">{links}{post_button("/logout", "Log out", csrf)}</nav>'


def page(title: str, body: str, *, current: str | None = None, csrf: str | None = None,
         notices=(), errors=(), scripts=()) -> str:
    """A whole page; with ``csrf`` (a session) it carries the top navigation."""
    head_scripts = "".join(f'<script src="{esc(s)}" defer></script>' for s in scripts)
    top = nav(current or "", csrf) if csrf else ""
    return (
        '<!doctype html>\n<html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1"><link rel="icon" href="data:,">'
        f'<title>{esc(title)} · {esc(SITE)}</title>'
        f'<link rel="stylesheet" href="/static/portal.css">{head_scripts}</head>'
        f'<body><header><span class="brand">{esc(SITE)}</span>{top}</header>'
        f'<main><h1>{esc(title)}</h1>{messages(notices, errors)}{body}</main>'
        '<footer>An independent lab stand-in for the SAFEQ Cloud web portal, not vendor software.</footer>'
        '</body></html>\n')


def when(stamp: str | None) -> str:
    """An ISO 8601 time as 'YYYY-MM-DD HH:MM UTC' (as given when it is not one)."""
    if not stamp:
        return ""
    try:
        moment = datetime.datetime.fromisoformat(stamp.replace("Z", "+00:00"))
    except ValueError:
        return stamp
    if moment.tzinfo:
        moment = moment.astimezone(datetime.timezone.utc)
    return moment.strftime("%Y-%m-%d %H:%M UTC")


def table(table_id: str, headers: list[str], rows: list[str], empty: str) -> str:
    head = "".join(f'<th scope="col">{esc(h)}</th>' for h in headers)
    body = "".join(rows) or f'<tr class="empty"><td colspan="{len(headers)}">{esc(empty)}</td></tr>'
    return f'<table id="{esc(table_id)}"><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>'
