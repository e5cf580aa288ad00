"""Where a version's files live in S3: one layout for the trainer, the operator and the server."""

from __future__ import annotations

MODEL_FILE = "model.joblib"
METRICS_FILE = "metrics.json"
MANIFEST_FILE = "manifest.json"
ERROR_FILE = "error.json"
PROFILE_FILE = "profile.json"  # reference profile of the training data, for drift checks


def version_prefix(prefix: str, namespace: str, policy: str, version: str) -> str:
    """`<prefix>/<namespace>/<policy>/<version>/` without a leading slash; the prefix may be empty."""
    parts = [part.strip("/") for part in (prefix, namespace, policy, version)]
    return "/".join(part for part in parts if part) + "/"


def drift_prefix(prefix: str, namespace: str, policy: str, check: str) -> str:
    """`<prefix>/<namespace>/<policy>/drift/<check>/`: one folder per drift check."""
    return version_prefix(prefix, namespace, policy, f"drift/{check}")
