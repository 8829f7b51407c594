"""PFX password defaults and rules.

Defaults reproduce the vendor page's names, so the lab's files can be read
side by side with it:

* any entity with role ``primary``: ``changeit`` (the page's primary-host.pfx);
* ``gateway-host``: ``gateway-pfx-password``;
* ``pcclient-host``: ``pcclient-pfx-password``;
* any other entity: ``<name>-pfx-password`` (e.g. ``gateway-2-pfx-password``);
* the Java truststore ``acme-ca.pfx``: ``acme-ca-pfx-password``.

With ``--random-passwords`` each store gets ``secrets.token_urlsafe(18)``
instead (24 characters), also for entities issued later; ``issue --password``
overrides both. Every password is recorded in the CA database and manifest.
"""
from __future__ import annotations

import secrets

from .errors import PKIError

TRUSTSTORE_PASSWORD = "acme-ca-pfx-password"
_DOC_NAMES = {
    "gateway-host": "gateway-pfx-password",
    "pcclient-host": "pcclient-pfx-password",
}
# keytool refuses store passwords shorter than 6 characters.
MIN_LENGTH = 6
# The password is written into unattended-install.conf as KEY="value";
# these would need shell escaping there, so they are refused.
_FORBIDDEN = set('"\\$`')


def default_entity_password(name: str, role: str) -> str:
    if role == "primary":
        return "changeit"
    return _DOC_NAMES.get(name, f"{name}-pfx-password")


def random_password() -> str:
    return secrets.token_urlsafe(18)


def check(password: str, what: str = "--password") -> str:
    if len(password) < MIN_LENGTH:
        raise PKIError(
            f"{what} is too short: use at least {MIN_LENGTH} characters "
            "(Java keytool rejects shorter store passwords)"
        )
    if any(c in _FORBIDDEN or not (c.isascii() and c.isprintable()) for c in password):
        raise PKIError(
            f"{what} may only contain printable ASCII without '\"', '\\', '$' "
            "and '`' (it is written into shell-style config files)"
        )
    return password
