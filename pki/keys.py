"""Key types: generation, signature hash, reading a PEM key (certkit.certs.key_pem writes one)."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Union

from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa

from .errors import PKIError

PrivateKey = Union[ec.EllipticCurvePrivateKey, rsa.RSAPrivateKey]
PublicKey = Union[ec.EllipticCurvePublicKey, rsa.RSAPublicKey]


@dataclass(frozen=True)
class KeyType:
    """One supported key algorithm and size, named as on the command line."""

    name: str
    curve: type[ec.EllipticCurve] | None = None
    rsa_bits: int | None = None

    @property
    def is_rsa(self) -> bool:
        return self.rsa_bits is not None

    def generate(self) -> PrivateKey:
        if self.curve is not None:
            return ec.generate_private_key(self.curve())
        return rsa.generate_private_key(public_exponent=65537, key_size=self.rsa_bits)


KEY_TYPES: dict[str, KeyType] = {
    kt.name: kt
    for kt in (
        KeyType("ecdsa-p256", curve=ec.SECP256R1),
        KeyType("ecdsa-p384", curve=ec.SECP384R1),
        KeyType("rsa-2048", rsa_bits=2048),
        KeyType("rsa-3072", rsa_bits=3072),
        KeyType("rsa-4096", rsa_bits=4096),
    )
}
DEFAULT_KEY_TYPE = "ecdsa-p256"


def key_type(name: str) -> KeyType:
    try:
        return KEY_TYPES[name]
    except KeyError:
        raise PKIError(
            f"unknown key type {name!r}; choose one of: {', '.join(KEY_TYPES)}"
        ) from None


def signature_hash(signing_key: PrivateKey) -> hashes.HashAlgorithm:
    """SHA-384 for P-384 keys (matching strength), SHA-256 otherwise."""
    if isinstance(signing_key, ec.EllipticCurvePrivateKey) and signing_key.curve.key_size >= 384:
        return hashes.SHA384()
    return hashes.SHA256()


def load_key_pem(data: bytes, where: str) -> PrivateKey:
    try:
        key = serialization.load_pem_private_key(data, password=None)
    except (ValueError, TypeError) as exc:
        raise PKIError(f"{where} is not a readable unencrypted PEM private key ({exc})") from None
    if not isinstance(key, (ec.EllipticCurvePrivateKey, rsa.RSAPrivateKey)):
        raise PKIError(f"{where} holds an unsupported key type")
    return key
