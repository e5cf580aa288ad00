"""Ed25519 signatures over manifest.json: authenticity on top of the checksums' integrity.

A checksum proves the files match the manifest; a signature proves the manifest came from whoever
holds the private key. Shared by the trainer (signs), the operator (verifies before recording) and
the model server (verifies before unpickling). The signature file holds base64 of the raw 64-byte
Ed25519 signature over the exact bytes of manifest.json as stored.
"""

from __future__ import annotations

import base64
import binascii

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from .layout import SIGNATURE_FILE


class SigningKeyError(ValueError):
    """A key that is not an Ed25519 key in PEM; the message never contains key material."""


def _pem(text: str | bytes) -> bytes:
    return text.encode() if isinstance(text, str) else text


def load_private_key(pem: str | bytes) -> Ed25519PrivateKey:
    """A PKCS8 PEM Ed25519 private key (`openssl genpkey -algorithm ed25519`)."""
    try:
        key = serialization.load_pem_private_key(_pem(pem), password=None)
    except (ValueError, TypeError) as error:
        raise SigningKeyError(f"not an unencrypted PEM private key ({type(error).__name__})") from None
    if not isinstance(key, Ed25519PrivateKey):
        raise SigningKeyError(f"not an Ed25519 key but {type(key).__name__}")
    return key


def load_public_key(pem: str | bytes) -> Ed25519PublicKey:
    """A SubjectPublicKeyInfo PEM Ed25519 public key (`openssl pkey -pubout`)."""
    try:
        key = serialization.load_pem_public_key(_pem(pem))
    except (ValueError, TypeError) as error:
        raise SigningKeyError(f"not a PEM public key ({type(error).__name__})") from None
    if not isinstance(key, Ed25519PublicKey):
        raise SigningKeyError(f"not an Ed25519 key but {type(key).__name__}")
    return key


def sign(key: Ed25519PrivateKey, manifest_bytes: bytes) -> bytes:
    """The content of manifest.json.sig for these manifest bytes."""
    return base64.b64encode(key.sign(manifest_bytes)) + b"\n"


def signature_problem(key: Ed25519PublicKey, manifest_bytes: bytes, signature: bytes | None,
                      key_source: str = "the public key") -> str | None:
    """Why the manifest is not signed by `key`, or None when the signature verifies."""
    if signature is None:
        return f"no {SIGNATURE_FILE}"
    try:
        raw = base64.b64decode(signature.strip(), validate=True)
    except (binascii.Error, ValueError):
        return f"{SIGNATURE_FILE} is not base64"
    try:
        key.verify(raw, manifest_bytes)
    except InvalidSignature:
        return f"{SIGNATURE_FILE} does not verify with {key_source}"
    return None
