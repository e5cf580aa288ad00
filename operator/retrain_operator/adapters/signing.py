"""The policy's signing keys as the operator needs them: the public key to verify manifests with,
and whether the trainer's private key is there at all.

Read from the Secrets at each reconcile, like the S3 credentials. The private key is never parsed or
kept: the operator only checks that the trainer Job will find it (a missing Secret would leave the
Job's pod waiting instead of failing). Problems become (reason, message) pairs for `Ready`.
"""

from __future__ import annotations

import base64
import binascii
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from retrain_contract.api.spec import SecretKeyRef, SigningSpec
from retrain_contract.artifacts.signature import SigningKeyError, load_public_key

Problem = tuple[str, str]


def _value(secret: dict[str, Any], key: str) -> bytes | None:
    data, string_data = secret.get("data") or {}, secret.get("stringData") or {}
    if key in data:
        try:
            return base64.b64decode(data[key])
        except (binascii.Error, ValueError):
            return None
    if key in string_data:
        return str(string_data[key]).encode()
    return None


def _missing(ref: SecretKeyRef, field: str, secret: dict[str, Any] | None, namespace: str) -> Problem | None:
    if secret is None:
        return ("SigningSecretNotFound",
                f"Secret {ref.name!r} (spec.signing.{field}) does not exist in namespace {namespace!r}")
    if _value(secret, ref.key) is None:
        return "SigningSecretKeyMissing", f"Secret {ref.name!r} (spec.signing.{field}) has no key {ref.key}"
    return None


def public_key_from_secret(signing: SigningSpec, secret: dict[str, Any] | None,
                           namespace: str) -> tuple[Ed25519PublicKey | None, Problem | None]:
    ref = signing.public_key
    problem = _missing(ref, "publicKeySecret", secret, namespace)
    if problem or secret is None:
        return None, problem
    try:
        return load_public_key(_value(secret, ref.key) or b""), None
    except SigningKeyError as error:
        return None, ("SigningKeyInvalid", f"key {ref.key} of Secret {ref.name!r} (spec.signing.publicKeySecret) "
                                           f"is not an Ed25519 public key: {error}")


def private_key_problem(signing: SigningSpec, secret: dict[str, Any] | None, namespace: str) -> Problem | None:
    """Is the trainer's key where the Job will look for it? Its content is the trainer's to judge."""
    if signing.private_key is None:
        return None
    return _missing(signing.private_key, "privateKeySecret", secret, namespace)


def key_source(signing: SigningSpec) -> str:
    """How a message names the public key: never its bytes."""
    return f"the public key in Secret {signing.public_key.name!r} (key {signing.public_key.key})"
