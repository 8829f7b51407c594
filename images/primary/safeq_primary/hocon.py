"""Enough of HOCON to read application.conf: nested objects, `=`/`:`, quotes, comments.

Every mistake is a HoconError with its line number; the caller falls back and logs it.
Messages never quote a value: the file holds the keystore password.
"""
from __future__ import annotations

import json
import re

_TOKEN = re.compile(r'\s*(?:(#|//)[^\n]*|("(?:[^"\\\n]|\\.)*")|([{}\n,])|([^\s{}=:,#"]+(?:[ \t]+[^\s{}=:,#"]+)*)|([=:]))')


class HoconError(ValueError):
    pass


def _where(text: str, pos: int) -> str:
    line = text.count("\n", 0, pos) + 1
    column = pos - (text.rfind("\n", 0, pos) + 1) + 1
    return f"line {line}, column {column}"


def _quoted(text: str, start: int, token: str) -> str:
    """A quoted string follows JSON's rules, as in HOCON: a lone backslash or a raw tab is an error."""
    try:
        return json.loads(token)
    except ValueError as exc:
        pos = start + getattr(exc, "pos", 0)
        reason = getattr(exc, "msg", "not a valid quoted string").removesuffix(" at")
        raise HoconError(f"{_where(text, pos)}: {reason} in a quoted value (quoted values follow JSON: "
                         "write a backslash as \\\\ and a tab as \\t, or leave the value unquoted)") from None


def _tokens(text: str):
    """(kind, value, position) triples."""
    pos = 0
    while pos < len(text):
        m = _TOKEN.match(text, pos)
        if not m or m.end() == pos:
            if text[pos:].strip() == "":
                return
            start = pos + len(text[pos:]) - len(text[pos:].lstrip())
            hint = " (a quote that is not closed on its line?)" if text[start] == '"' else ""
            raise HoconError(f"{_where(text, start)}: cannot parse{hint}")
        pos = m.end()
        if m.group(1):
            continue
        if m.group(2):
            yield ("str", _quoted(text, m.start(2), m.group(2)), m.start(2))
        elif m.group(3):
            yield (m.group(3), m.group(3), m.start(3))
        elif m.group(4):
            # An unquoted value ends where a // comment starts.
            yield ("str", m.group(4).split("//")[0].rstrip(), m.start(4))
        elif m.group(5):
            yield ("sep", m.group(5), m.start(5))


def parse(text: str) -> dict[str, str]:
    """Flatten to dotted keys: `a { b = 1 }` -> {"a.b": "1"}. Later keys win, as in HOCON."""
    out: dict[str, str] = {}
    stack: list[tuple[str, int]] = []
    toks = list(_tokens(text))
    i = 0
    while i < len(toks):
        kind, val, pos = toks[i]
        if kind in ("\n", ","):
            i += 1
            continue
        if kind == "}":
            if not stack:
                raise HoconError(f"{_where(text, pos)}: '}}' without a matching '{{'")
            stack.pop()
            i += 1
            continue
        if kind != "str":
            raise HoconError(f"{_where(text, pos)}: expected a key, got {val!r}")
        key = val
        i += 1
        if i < len(toks) and toks[i][0] == "sep":
            i += 1
        if i < len(toks) and toks[i][0] == "{":
            stack.append((key, pos))
            i += 1
            continue
        if i >= len(toks) or toks[i][0] != "str":
            raise HoconError(f"{_where(text, pos)}: key {key!r} has no value")
        out[".".join([k for k, _ in stack] + [key])] = toks[i][1]
        i += 1
    if stack:
        raise HoconError(f"{_where(text, stack[-1][1])}: '{{' of {stack[-1][0]!r} is never closed")
    return out


def setting(conf: dict[str, str], name: str) -> str | None:
    """A setting by its last path component, wherever the file nests it."""
    hits = [v for k, v in conf.items() if k == name or k.endswith("." + name)]
    return hits[-1] if hits else None
