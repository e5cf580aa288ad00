"""Fetch a policy's latest drift report from its S3 storage, as the operator recorded it in status."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Protocol

import boto3
from botocore.exceptions import BotoCoreError, ClientError
from kubernetes.client.exceptions import ApiException

from retrain_contract.api.spec import PolicySpec

from ..adapters.storage import client_for, credentials_from_secret


class ReportError(Exception):
    """Why the report cannot be fetched, in words a user can act on."""


class SecretReader(Protocol):
    namespace: str
    core: Any


def split_uri(uri: str) -> tuple[str, str]:
    if not uri.startswith("s3://") or "/" not in uri[len("s3://"):]:
        raise ReportError(f"not an s3:// object URI: {uri!r}")
    bucket, _, key = uri[len("s3://"):].partition("/")
    return bucket, key


def default_path(policy: str, drift: dict[str, Any]) -> str:
    return f"{policy}-{drift.get('checkId') or 'latest'}-drift-report.html"


def fetch_report(session: SecretReader, policy: dict[str, Any], output: str | None, endpoint: str | None = None,
                 env_credentials: bool = False) -> tuple[str, dict[str, Any]]:
    """Download `status.drift.reportUri`; returns (saved path, the status.drift record)."""
    name = policy["metadata"]["name"]
    drift = (policy.get("status") or {}).get("drift") or {}
    if not drift:
        raise ReportError(f"{name} has no drift check yet (spec.triggers.drift sets how often one runs)")
    if not drift.get("reportUri"):
        error = drift.get("error") or {}
        raise ReportError(f"drift check {drift.get('checkId')} of {name} left no report"
                          + (f": {error.get('reason')}: {error.get('message')}" if error else ""))
    bucket, key = split_uri(drift["reportUri"])
    spec = PolicySpec.from_dict(policy.get("spec") or {})
    if env_credentials:
        client = boto3.client("s3", endpoint_url=endpoint or spec.storage.endpoint or None,
                              region_name=spec.storage.region)
    else:
        secret_name = spec.storage.credentials.name
        try:
            secret = json.loads(session.core.read_namespaced_secret(secret_name, session.namespace,
                                                                    _preload_content=False).data)
        except ApiException as error:
            if error.status == 404:
                secret = None
            elif error.status == 403:
                raise ReportError(f"you may not read Secret {secret_name!r} in {session.namespace!r}; "
                                  "use --env-credentials with your own S3 credentials") from error
            else:
                raise
        credentials, problem = credentials_from_secret(spec, secret, session.namespace)
        if credentials is None:
            assert problem is not None
            raise ReportError(problem[1])
        client = client_for(spec, credentials, endpoint=endpoint)
    path = Path(output or default_path(name, drift))
    try:
        body = client.get_object(Bucket=bucket, Key=key)["Body"].read()
    except ClientError as error:
        code = error.response.get("Error", {}).get("Code", "")
        raise ReportError(f"cannot read {drift['reportUri']}: {code or error}") from error
    except BotoCoreError as error:
        raise ReportError(f"cannot reach S3 for {drift['reportUri']}: {error} "
                          "(from outside the cluster, --endpoint points at a reachable address)") from error
    path.write_bytes(body)
    return str(path), drift
