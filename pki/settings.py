"""The options chosen at ``pki init``, validated once and stored in the CA DB.

CA naming: the root is ``--root-name`` (default ``Acme-CA-Root``). With one
intermediate it is called ``--intermediate-name`` (default
``Acme-CA-Intermediate``, the vendor page's name); with N > 1 they are
``<intermediate-name>-1`` (signed by the root) ... ``<intermediate-name>-N``
(the lowest, which issues the entities).

URL options: ``--ocsp-url`` goes verbatim into the AIA of every intermediate
and entity. ``--ca-issuers-url`` and ``--crl-url`` are *base* URLs, because
each certificate needs its own issuer's file: a certificate issued by CA
``X`` gets ``<base>/X.cer`` (caIssuers) and ``<base>/X.crl`` (CRL DP).
"""
from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

from . import names, passwords
from .errors import PKIError
from .keys import DEFAULT_KEY_TYPE, key_type

DEFAULT_ORG = "Acme"
DEFAULT_ROOT_NAME = "Acme-CA-Root"
DEFAULT_INTERMEDIATE_NAME = "Acme-CA-Intermediate"
DEFAULT_OCSP_URL = "http://ocsp-host:8080"
DEFAULT_DAYS_CA = 3650
DEFAULT_DAYS_ENTITY = 397  # the CA/Browser Forum maximum for TLS leaves
MAX_INTERMEDIATES = 8
MAX_DAYS = 36500

_UNSET: Any = object()


@dataclass
class Settings:
    key_type: str = DEFAULT_KEY_TYPE
    org: str = DEFAULT_ORG
    root_name: str = DEFAULT_ROOT_NAME
    intermediate_names: list[str] = field(default_factory=lambda: [DEFAULT_INTERMEDIATE_NAME])
    days_ca: int = DEFAULT_DAYS_CA
    days_entity: int = DEFAULT_DAYS_ENTITY
    ocsp_url: str | None = DEFAULT_OCSP_URL
    ca_issuers_url: str | None = None
    crl_url: str | None = None
    random_passwords: bool = False
    legacy_pfx: bool = False
    truststore_password: str = passwords.TRUSTSTORE_PASSWORD

    OPTIONS = (
        "org", "root_name", "intermediate_name", "days_ca", "days_entity",
        "ocsp_url", "ca_issuers_url", "crl_url", "random_passwords", "legacy_pfx",
    )

    @classmethod
    def create(cls, intermediates: int = 1, key_type_name: str = DEFAULT_KEY_TYPE, **options: Any) -> "Settings":
        """Validate ``init`` options; ``ocsp_url=None`` means no OCSP URL."""
        unknown = sorted(set(options) - set(cls.OPTIONS))
        if unknown:
            raise PKIError(
                f"unknown init option(s): {', '.join(unknown)}; "
                f"known: {', '.join(cls.OPTIONS)}"
            )
        if isinstance(intermediates, bool) or not isinstance(intermediates, int):
            raise PKIError(f"--intermediates must be a whole number, got {intermediates!r}")
        if intermediates < 0:
            raise PKIError(
                f"--intermediates must be 0 or more (got {intermediates}); "
                "0 means the root issues the entities directly"
            )
        if intermediates > MAX_INTERMEDIATES:
            raise PKIError(f"--intermediates must be at most {MAX_INTERMEDIATES} (got {intermediates})")
        key_type(key_type_name)

        org = options.get("org") or DEFAULT_ORG
        if len(org) > 64 or not org.isprintable() or not org.strip():
            raise PKIError(f"invalid --org {org!r}: use 1-64 printable characters")

        root = names.ca_name(options.get("root_name") or DEFAULT_ROOT_NAME, "--root-name")
        base = names.ca_name(
            options.get("intermediate_name") or DEFAULT_INTERMEDIATE_NAME, "--intermediate-name"
        )
        if intermediates == 1:
            inter = [base]
        else:
            inter = [names.ca_name(f"{base}-{i}", "--intermediate-name") for i in range(1, intermediates + 1)]
        all_names = [root, *inter]
        if len({n.lower() for n in all_names}) != len(all_names):
            raise PKIError("--root-name and --intermediate-name must differ (names are file names)")

        days_ca = _days(options.get("days_ca", DEFAULT_DAYS_CA), "--days-ca")
        days_entity = _days(options.get("days_entity", DEFAULT_DAYS_ENTITY), "--days-entity")

        ocsp = options.get("ocsp_url", _UNSET)
        ocsp = DEFAULT_OCSP_URL if ocsp is _UNSET else ocsp
        if ocsp is not None:
            ocsp = names.url(ocsp, "--ocsp-url")
        ca_issuers = options.get("ca_issuers_url")
        if ca_issuers is not None:
            ca_issuers = names.url(ca_issuers, "--ca-issuers-url").rstrip("/")
        crl = options.get("crl_url")
        if crl is not None:
            crl = names.url(crl, "--crl-url").rstrip("/")

        random_pw = bool(options.get("random_passwords", False))
        return cls(
            key_type=key_type_name,
            org=org,
            root_name=root,
            intermediate_names=inter,
            days_ca=days_ca,
            days_entity=days_entity,
            ocsp_url=ocsp,
            ca_issuers_url=ca_issuers,
            crl_url=crl,
            random_passwords=random_pw,
            legacy_pfx=bool(options.get("legacy_pfx", False)),
            truststore_password=passwords.random_password() if random_pw else passwords.TRUSTSTORE_PASSWORD,
        )

    @property
    def ca_names(self) -> list[str]:
        """Root first, then intermediates top-down; the last one issues entities."""
        return [self.root_name, *self.intermediate_names]

    def ca_issuers_for(self, issuer_name: str) -> str | None:
        return f"{self.ca_issuers_url}/{issuer_name}.cer" if self.ca_issuers_url else None

    def crl_for(self, issuer_name: str) -> str | None:
        return f"{self.crl_url}/{issuer_name}.crl" if self.crl_url else None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "Settings":
        known = {k: data[k] for k in cls.__dataclass_fields__ if k in data}
        missing = set(cls.__dataclass_fields__) - set(known)
        if missing:
            raise KeyError(sorted(missing)[0])
        return cls(**known)


def _days(value: Any, option: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= MAX_DAYS:
        raise PKIError(f"{option} must be a whole number of days from 1 to {MAX_DAYS} (got {value!r})")
    return value
