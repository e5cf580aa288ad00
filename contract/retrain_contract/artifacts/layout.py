"""Where a version's files live in S3: one layout for the trainer, the operator and the server.

A policy's files live under its incarnation, `<prefix>/<namespace>/<policy>/<uid>/`: a policy
deleted and created again with the same name has a new metadata.uid, so it never finds, records,
overwrites or prunes the versions of the one before (docs/trainer-contract.md, "Outputs").
An empty uid gives the layout of versions trained before the uid was part of it.
"""

from __future__ import annotations

MODEL_FILE = "model.joblib"
METRICS_FILE = "metrics.json"
MANIFEST_FILE = "manifest.json"
SIGNATURE_FILE = "manifest.json.sig"  # optional Ed25519 signature, written before the manifest
ERROR_FILE = "error.json"
PROFILE_FILE = "profile.json"  # reference profile of the training data, for drift checks


def _join(*parts: str) -> str:
    return "/".join(part for part in (p.strip("/") for p in parts) if part) + "/"


def policy_root(prefix: str, namespace: str, policy: str) -> str:
    """`<prefix>/<namespace>/<policy>/`: every incarnation of the policy lives below it."""
    return _join(prefix, namespace, policy)


def version_prefix(prefix: str, namespace: str, policy: str, version: str, *, uid: str) -> str:
    """`<prefix>/<namespace>/<policy>/<uid>/<version>/` without a leading slash; the prefix may be empty."""
    return _join(prefix, namespace, policy, uid, version)


def drift_prefix(prefix: str, namespace: str, policy: str, check: str, *, uid: str) -> str:
    """`<prefix>/<namespace>/<policy>/<uid>/drift/<check>/`: one folder per drift check."""
    return _join(prefix, namespace, policy, uid, "drift", check)
