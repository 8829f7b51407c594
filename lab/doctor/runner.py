"""`safeq-lab doctor`: every check of a spec, in one list of findings."""
from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field

from certkit.certs import fingerprint
from certkit.jre import ValidatorError

from ..errors import LabError
from ..spec import Spec, SpecError
from . import certchecks, lint, material, ocsp, trust
from .findings import INFO, WARNING, Finding, finding
from .tools import Java

JAVA_HINT = "install a JRE (e.g. openjdk-17-jdk-headless), or build the lab image with `safeq-lab build`"


def java_notes(java: Java) -> list[Finding]:
    """Say clearly what could not be asked of Java."""
    out = []
    if java.keytool is None:
        out.append(finding(WARNING, "java.no-keytool", None,
                           f"no keytool ({java.keytool_source['reason']}): the stores were not loaded by Java "
                           "(passwords as Java reads them, trustedCertEntry, the chain Java builds)", JAVA_HINT))
    if java.validator is None:
        out.append(finding(WARNING, "java.no-jre", None,
                           f"no JRE validator ({java.jre_source['reason']}): no chain verdicts and no host name check; "
                           "only Java's certificate choice and the certificate checks were made", JAVA_HINT))
    return out


def _named(found: material.Material) -> list:
    """Every CA certificate the spec names, with its file: Trusted CA list, cacerts, endpoints' trust."""
    public = {fingerprint(c) for c in found.system}
    trusted = [(c, ep.trust_file or ep.key.file) for ep in found.endpoints for c in ep.anchors
               if fingerprint(c) not in public]
    return found.named + trusted


@dataclass
class Report:
    findings: list[Finding]
    connections: list[trust.Outcome] = field(default_factory=list)  # none without a JRE
    material: material.Material | None = None


def check(spec: Spec, java: Java, *, expiry_days: int = 30, now: dt.datetime | None = None) -> Report:
    """All findings for ``spec``, and each endpoint's connection as the lab will show it; a spec or
    file that cannot be used at all raises SpecError."""
    now = now or dt.datetime.now(dt.timezone.utc)
    try:
        found = material.load(spec, java)
    except SpecError as exc:  # a file that is not what its key says: name the spec it came from
        raise SpecError(f"{spec.source}: {exc}") from None
    findings = java_notes(java) + found.findings
    if spec.account.policy == "built-in":
        findings.append(finding(INFO, "account.policy-built-in", None,
                                "the account uses built-in certificates: these files take effect with the "
                                "trusted-ca policy; they are checked as it would use them"))
    keys = found.key_materials()
    findings += certchecks.check(keys, _named(found), now, expiry_days)
    try:
        findings += trust.check(found, spec.primary.host, java.validator)
        connections = trust.outcomes(found, spec.primary.host, java.validator) if java.validator else []
    except ValidatorError as exc:
        raise LabError(f"the JRE validator failed: {exc}: run the doctor again (--java host or docker)") from None
    findings += ocsp.check(found, spec.account)
    chains = [(cert, key.file) for key in keys for cert in key.chain]
    findings += lint.check(chains + _named(found))
    return Report(findings, connections, found)


def run(spec: Spec, java: Java, *, expiry_days: int = 30, now: dt.datetime | None = None) -> list[Finding]:
    return check(spec, java, expiry_days=expiry_days, now=now).findings
