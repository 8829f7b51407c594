"""Enough of HOCON to read application.conf: nested objects, `=`/`:`, quotes, comments."""
from __future__ import annotations

import json
import re

_TOKEN = re.compile(r'\s*(?:(#|//)[^\n]*|("(?:[^"\\\n]|\\.)*")|([{}\n,])|([^\s{}=:,#"]+(?:[ \t]+[^\s{}=:,#"]+)*)|([=:]))')


class HoconError(ValueError):
    pass


def _tokens(text: str):
    pos = 0
    while pos < len(text):
        m = _TOKEN.match(text, pos)
        if not m or m.end() == pos:
            if text[pos:].strip() == "":
                return
            line = text.count("\n", 0, pos) + 1
            raise HoconError(f"line {line}: cannot parse {text[pos:pos + 20]!r}")
        pos = m.end()
        if m.group(1):
            continue
        if m.group(2):
            yield ("str", json.loads(m.group(2)))
        elif m.group(3):
            yield (m.group(3), m.group(3))
        elif m.group(4):
            # An unquoted value ends where a // comment starts.
            yield ("str", m.group(4).split("//")[0].rstrip())
        elif m.group(5):
            yield ("sep", m.group(5))


def parse(text: str) -> dict[str, str]:
    """Flatten to dotted keys: `a { b = 1 }` -> {"a.b": "1"}. Later keys win, as in HOCON."""
    out: dict[str, str] = {}
    stack: list[str] = []
    toks = list(_tokens(text))
    i = 0
    while i < len(toks):
        kind, val = toks[i]
        if kind in ("\n", ","):
            i += 1
            continue
        if kind == "}":
            if not stack:
                raise HoconError("unbalanced '}'")
            stack.pop()
            i += 1
            continue
        if kind != "str":
            raise HoconError(f"expected a key, got {val!r}")
        key = val
        i += 1
        if i < len(toks) and toks[i][0] == "sep":
            i += 1
        if i < len(toks) and toks[i][0] == "{":
            stack.append(key)
            i += 1
            continue
        if i >= len(toks) or toks[i][0] != "str":
            raise HoconError(f"key {key!r} has no value")
        out[".".join(stack + [key])] = toks[i][1]
        i += 1
    if stack:
        raise HoconError("unclosed '{'")
    return out


def setting(conf: dict[str, str], name: str) -> str | None:
    """A setting by its last path component, wherever the file nests it."""
    hits = [v for k, v in conf.items() if k == name or k.endswith("." + name)]
    return hits[-1] if hits else None
