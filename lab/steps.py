"""The doc's primary server setup, as the commands a person types in the primary's console.

Running the real commands (not baking the result into the image) is what lets the
checks test the steps, and lets a training mode hand them to a trainee instead.
"""
from __future__ import annotations

import json
import shlex
from dataclasses import dataclass
from pathlib import Path

from certkit.certs import fingerprint, load_cert_file

from .errors import LabError
from .spec import Account, Spec

# Paths inside the primary container (tests point them at a temp folder).
PKI_MOUNT = "/pki"
CONF_DIR = "/opt/safeqcloud/conf"
KEYTOOL = "/opt/safeqcloud/jre/bin/keytool"
CACERTS = "/opt/safeqcloud/jre/lib/security/cacerts"
# The cacerts file's digest as the image ships it: a new container's cacerts holds no lab CA yet, known
# without starting keytool's JVM (half a second of every `up`).
CACERTS_SHIPPED = "/opt/safeqlab/cacerts.sha256"
q = shlex.quote  # every file name: a CA file may be named with spaces, quotes or $(...)


@dataclass(frozen=True)
class Step:
    title: str
    command: str
    stdin: str | None = None
    unless: str | None = None  # skip when this command succeeds (makes `up` re-runnable)


# One console session for all the steps: after each, a line on stdout says how it ended.
MARK = "@@safeq-lab-step"
INPUT_END = "SAFEQ_LAB_INPUT"  # ends a step's typed answers (a here-document)
BEFORE = "before"              # the step's `unless` held: done before


@dataclass(frozen=True)
class Ended:
    index: int
    code: int | None   # None: done before (its `unless` held)
    output: str        # what it printed, stdout and stderr


def console(todo: list[Step]) -> str:
    """The steps as a person types them in one shell on the primary: in order, each as written (its
    answers, if any, on the lines after it), and the first that fails ends the session."""
    parts = []
    for i, step in enumerate(todo):
        typed = step.command
        if step.stdin is not None:
            if INPUT_END in step.stdin.splitlines():
                raise ValueError(f"the answers of step {step.title!r} contain the line {INPUT_END}")
            answers = step.stdin if step.stdin.endswith("\n") else step.stdin + "\n"
            typed = f"{{ {typed}\n}} <<'{INPUT_END}'\n{answers}{INPUT_END}"
        # The marker on a line of its own, whether or not the output ended with one.
        run = f"{{ {typed}\n}} 2>&1; rc=$?; printf '\\n{MARK} {i} %s\\n' $rc; [ $rc -eq 0 ] || exit $rc"
        if step.unless:
            run = f"if {{ {step.unless}\n}} >/dev/null 2>&1; then printf '{MARK} {i} {BEFORE}\\n'; else\n{run}\nfi"
        parts.append(run)
    return "\n".join(parts) + "\n"


def ended(stdout: str) -> list[Ended]:
    """How each step the session reached ended, from its markers (the last one may have failed)."""
    out, lines = [], []
    for line in stdout.splitlines():
        words = line.split()
        if len(words) == 3 and words[0] == MARK and words[1].isdigit():
            text = "\n".join(lines)
            out.append(Ended(int(words[1]), None if words[2] == BEFORE else int(words[2]), text.strip("\n")))
            lines = []
        else:
            lines.append(line)
    return out


def in_container(path: Path, host_dir: Path) -> str:
    """Where the primary sees a file of its host folder: under /pki."""
    try:
        return f"{PKI_MOUNT}/{path.relative_to(host_dir).as_posix()}"
    except ValueError:
        raise LabError(f"{path} is not in {host_dir}, the folder the primary mounts: stage the spec again "
                       "(`safeq-lab up --spec FILE`)") from None


def sed_setting(key: str, value: str) -> str:
    """A sed script that sets KEY to VALUE as a quoted HOCON string (JSON rules: \\ and \")."""
    quoted = json.dumps(value, ensure_ascii=False)
    # sed's replacement treats \ & and the | delimiter specially.
    replacement = quoted.replace("\\", "\\\\").replace("|", "\\|").replace("&", "\\&")
    return f"s|^\\([[:space:]]*{key}[[:space:]]*[=:]\\).*|\\1 {replacement}|"


def cacerts_steps(files: tuple[Path, ...], host_dir: Path) -> list[Step]:
    """The doc's keytool command per root CA file; with several files each gets its own -alias
    (keytool's default alias, mykey, can be used once)."""
    out = []
    for path in files:
        alias = f" -alias {q(path.stem.lower())}" if len(files) > 1 else ""
        out.append(Step(f"Import {path.name} into the Java cacerts (password changeit, answer yes)",
                        f"{q(KEYTOOL)} -importcert -file {q(in_container(path, host_dir))}{alias} -keystore {q(CACERTS)}",
                        stdin="changeit\nyes\n",
                        unless=f"! sha256sum --status -c {q(CACERTS_SHIPPED)} 2>/dev/null && {q(KEYTOOL)} -list "
                               f"-keystore {q(CACERTS)} -storepass changeit | grep -q {q(fingerprint(load_cert_file(path)))}"))
    return out


def ocsp_steps(account: Account) -> list[Step]:
    """The spec's revocation setting; a spec that gives none leaves the account's as it is (settings persist)."""
    if account.ocsp is None and account.ocsp_url is None:
        return []
    state = "" if account.ocsp is None else f" {'on' if account.ocsp else 'off'}"
    url = f" --url {q(account.ocsp_url)}" if account.ocsp_url else ""
    return [Step(f"Account: OCSP revocation checks{state or ' (custom URL)'}", f"safeq-admin account ocsp{state}{url}")]


def primary_steps(spec: Spec, host_dir: Path) -> list[Step]:
    """The doc's steps for ``spec`` (trusted CA policy); ``host_dir``: the folder the primary sees at /pki,
    which holds every file of the [primary] and [account] tables."""
    source = in_container(spec.primary.keystore, host_dir)
    pfx, conf = f"{CONF_DIR}/{spec.primary.keystore.name}", f"{CONF_DIR}/application.conf"
    ca_files = " ".join(q(in_container(p, host_dir)) for p in spec.account.trusted_cas)
    trusted = [Step("Account: import the CA certificates under Trusted CA certificates",
                    f"safeq-admin trusted-ca import {ca_files}", unless=f"safeq-admin trusted-ca contains {ca_files}")
               ] if ca_files else []
    return [
        Step(f"Copy the PFX to {CONF_DIR}", f"cp {q(source)} {q(pfx)}"),
        Step("Make it readable (-rw-r--r--)", f"chmod 644 {q(pfx)}"),
        Step("Set default-keystore-file and default-keystore-password in application.conf",
             f"sed -i -e {q(sed_setting('default-keystore-file', pfx))} "
             f"-e {q(sed_setting('default-keystore-password', spec.primary.keystore_password))} {q(conf)}"),
        *cacerts_steps(spec.primary.cacerts, host_dir),
        *trusted,
        *ocsp_steps(spec.account),
        Step("Account: certificate policy for internal communication = Use trusted CA certificates",
             "safeq-admin account set-policy trusted-ca"),
        Step("Restart the primary server", "systemctl restart safeq-cloud-server"),
    ]


def builtin_steps() -> list[Step]:
    """The product default: nothing to prepare but the account setting."""
    return [Step("Account: certificate policy for internal communication = built-in certificates",
                 "safeq-admin account set-policy built-in")]
