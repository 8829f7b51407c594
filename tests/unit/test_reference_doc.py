"""docs/how-the-lab-decides.md and the README's "How the lab decides" carry the pinned verdicts:
their table is rendered from them.

The Java and openssl verdicts it shows are the ones test_reference_pairs and
test_reference_openssl check on real runs, so the table says what the runs said.
To rewrite the tables after a pinned verdict changed:
``SAFEQ_REFERENCE_WRITE_DOC=1 .venv/bin/python -m pytest -q tests/unit/test_reference_doc.py``.
"""
from __future__ import annotations

import os
from pathlib import Path

import pytest

from test_reference_expected import JAVA, OPENSSL, SETUP, Accepted, Refused, worded
from test_reference_support import CASES

ROOT = Path(__file__).resolve().parents[2]
DOCS = [ROOT / "docs" / "how-the-lab-decides.md", ROOT / "README.md"]
BEGIN = "<!-- reference table: rendered by tests/unit/test_reference_doc.py -->"
END = "<!-- end of reference table -->"
SHOWN = "21"  # the lab's JRE; JRE 17's differences are named in the cells

# Where a decision by OpenSSL alone (openssl verify, or an OpenSSL-based peer) would differ from Java's.
NOTES = {
    "good-chain": "",
    "good-chain-tls12": "",
    "pfx-other-order": "",
    "server-pfx-other-order": "Same decision. Java serves the chain rebuilt from the PFX: leaf, intermediate, root.",
    "trust-der-and-bundle": "",
    "server-ip-san-name-in-cn": "Same decision: both fall back to the CN when there is no DNS SAN.",
    "client-without-clientAuth": "",
    "intermediate-not-ca": "",
    "client-expired": "",
    "client-not-yet-valid": "",
    "client-sha1": "**Differs at TLS security level ≥ 1:** `openssl verify -auth_level 2` (Debian's TLS default) "
                   "says error 68 \"CA signature digest algorithm too weak\"; Java accepts SHA-1 below a private "
                   "root.",
    "client-leaf-only-root-trusted": "**Differs in the reason:** an OpenSSL client sends the leaf anyway and the "
                                     "server fails it (error 20); a Java client sends nothing, so the Java server "
                                     "logs an empty chain, not a path error.",
    "client-leaf-only-root-trusted-tls12": "As above.",
    "client-leaf-only-inter-trusted": "Same decision, other reason: Java ends the path at the trusted "
                                      "intermediate; openssl verify reaches the root through the CA file (with "
                                      "only the intermediate trusted it needs `-partial_chain`).",
    "client-without-keystore": "",
    "server-trusts-other-root": "**Differs in the reason:** OpenSSL would see the chain and fail it (error 20); "
                                "the Java client matches its chain against the server's CA names and sends "
                                "nothing.",
    "server-trusts-nothing": "**Differs in the reason:** an empty trust store is an internal error in Java "
                             "(internal_error alert), not an untrusted chain.",
    "client-trusts-other-root": "",
    "client-truststore-nokeys": "**Differs in what is trusted:** the file holds the root and OpenSSL reads it "
                                "(`openssl pkcs12 -in … -nokeys`); Java lists no entry in it (no trusted-certificate "
                                "attribute: openssl 3.0 cannot write one, 3.5 has `-jdktrust`) and trusts nothing. "
                                "The `openssl verify` column checks against what Java reads: nothing.",
    "host-mismatch": "",
    "host-mismatch-tls12": "",
    "client-wrong-password": "Not a handshake: the keystore does not open, nothing is sent.",
}


def _code(text: str) -> str:
    return "`" + text.replace("|", "\\|") + "`"


def _short(exception: str) -> str:
    return exception.rsplit(".", 1)[-1]


def _chain(subjects, empty: str = "nothing") -> str:
    return ", ".join(s.split("CN=")[-1] for s in subjects) if subjects else empty


def _offer(offered, requested) -> str:
    return f"offered {_chain(offered)} for CA names {_chain(requested, 'none (empty list)')}"


def _reaction(want: Refused) -> str:
    alert = want.alert[SHOWN]
    text = f"gets {_code(worded(SHOWN, alert, f'Received fatal alert: {alert}'))} (or a broken pipe)"
    return text + (f"; JRE 17: alert {want.alert['17']}" if want.alert["17"] != alert else "")


def _refusal(want: Refused) -> str:
    alert = want.alert[SHOWN]
    text = f"**refuses**: {_code(_short(want.exception) + ': ' + worded(SHOWN, alert, want.message))}"
    deepest = want.causes[-1] if want.causes else ""
    if deepest and deepest.split(": ", 1)[-1] not in want.message:
        text += f" (cause: {_code(deepest)})"
    return text + (f"; JRE 17 sends {want.alert['17']}, no prefix" if want.alert["17"] != alert else "")


def _java_cells(case_id: str) -> tuple[str, str]:
    if case_id in SETUP:
        setup = SETUP[case_id]
        return "no handshake", f"**cannot load its keystore**: {_code(setup['message'])}"
    want = JAVA[case_id]
    if isinstance(want, Accepted):
        return (f"accepts ({want.protocol}); received {_chain(want.server_saw)}",
                f"accepts; {_offer(want.offered, want.requested)}")
    offered = "" if want.requested is None else "; " + _offer(want.offered, want.requested)
    if want.side == "server":
        return _refusal(want), _reaction(want) + offered
    return _reaction(want), _refusal(want) + offered


def _openssl_cell(case_id: str) -> str:
    server, client = OPENSSL[case_id]
    return f"server side: {server or 'no chain'}; client side: {client}"


def render() -> str:
    rows = ["| fixture | Java server says | Java client says | `openssl verify` on the same chains "
            "| where OpenSSL alone would decide otherwise |",
            "| --- | --- | --- | --- | --- |"]
    for case_id, case in CASES.items():
        server, client = _java_cells(case_id)
        rows.append(f"| **{case_id}**: {case.fixture} | {server} | {client} | {_openssl_cell(case_id)} "
                    f"| {NOTES[case_id] or 'same decision'} |")
    return "\n".join(rows)


def test_every_case_has_a_note():
    assert set(NOTES) == set(CASES)


@pytest.mark.parametrize("doc", DOCS, ids=[d.name for d in DOCS])
def test_the_doc_shows_the_pinned_verdicts(doc):
    table = render()
    lines = doc.read_text(encoding="utf-8").split("\n")
    assert BEGIN in lines and END in lines, f"{doc} lacks the lines {BEGIN} and {END}"
    first, last = lines.index(BEGIN) + 1, lines.index(END)
    current = "\n".join(lines[first:last])
    if current != table and os.environ.get("SAFEQ_REFERENCE_WRITE_DOC") == "1":
        doc.write_text("\n".join(lines[:first] + [table] + lines[last:]), encoding="utf-8")
        return
    assert current == table, f"{doc.name}'s table is not the pinned verdicts; SAFEQ_REFERENCE_WRITE_DOC=1 rewrites it"
