"""Whose is a finished version? A manifest names the policy incarnation (metadata.uid) and the run
configuration (a digest) it was trained for; nobody takes another incarnation's version as their own.

Pure, shared by the trainer (may it treat an existing manifest as its own finished run?) and the
operator (may it record the manifest it found?).
"""

from __future__ import annotations

import copy
import hashlib
import json
from typing import Any

# How S3 is reached, not what is trained: a retry from another network sees another endpoint.
VOLATILE = (("storage", "endpoint"), ("storage", "region"))


def config_digest(config: dict[str, Any]) -> str:
    """sha256 of the canonical JSON of a run configuration, without the fields in VOLATILE."""
    stable = copy.deepcopy(config)
    for section, key in VOLATILE:
        if isinstance(stable.get(section), dict):
            stable[section].pop(key, None)
    text = json.dumps(stable, sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=str)
    return "sha256:" + hashlib.sha256(text.encode()).hexdigest()


def manifest_uid(manifest: dict[str, Any]) -> str | None:
    policy = manifest.get("policy")
    uid = policy.get("uid") if isinstance(policy, dict) else None
    return str(uid) if uid else None


def foreign_to_policy(manifest: dict[str, Any], uid: str) -> str | None:
    """Why the manifest is not this policy incarnation's, or None. A manifest that names no uid
    (a trainer of your own that writes only the required fields) is judged by where it lies."""
    theirs = manifest_uid(manifest)
    if theirs and uid and theirs != uid:
        return (f"version {manifest.get('version')} was trained for another incarnation of the policy "
                f"(uid {theirs}), not this one (uid {uid})")
    return None


def foreign_to_run(manifest: dict[str, Any], uid: str, digest: str) -> str | None:
    """Why the manifest is not the finished result of this very run, or None: the trainer exits 0 on
    an existing manifest only when both the policy uid and the run configuration's digest match."""
    theirs = manifest_uid(manifest)
    if theirs != (uid or None):
        return (f"version {manifest.get('version')} exists but was trained for policy uid {theirs or '(none)'}, "
                f"not {uid or '(none)'}")
    if manifest.get("configDigest") != digest:
        return (f"version {manifest.get('version')} exists but was trained from another run configuration "
                f"({manifest.get('configDigest') or 'no digest'}, this run's is {digest})")
    return None
