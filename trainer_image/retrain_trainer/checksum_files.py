"""The `files` section of a manifest: size and sha256 of each file written."""

from __future__ import annotations

from retrain_contract.artifacts.checksums import sha256_bytes


def describe(files: dict[str, bytes]) -> dict[str, dict[str, object]]:
    return {name: {"sha256": sha256_bytes(data), "size": len(data)} for name, data in sorted(files.items())}
