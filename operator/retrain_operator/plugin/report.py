"""Fetch a policy's latest drift report from its S3 storage, as the operator recorded it in status."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Protocol

from kubernetes.client.exceptions import ApiException

from retrain_contract.api.spec import PolicySpec
from retrain_contract.artifacts.errors import STORAGE_UNREACHABLE
from retrain_contract.artifacts.s3 import make_client
from retrain_contract.failures import S3_ERRORS, s3_failure

from ..adapters.s3clients import OPERATOR_TIMEOUTS
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
    client = report_client(session, PolicySpec.from_dict(policy.get("spec") or {}), endpoint, env_credentials)
    path = Path(output or default_path(name, drift))
    try:
        body = client.get_object(Bucket=bucket, Key=key)["Body"].read()
    except S3_ERRORS as error:
        failure = s3_failure(error)
        if failure.reason == STORAGE_UNREACHABLE:
            raise ReportError(f"cannot reach S3 for {drift['reportUri']}: {error} "
                              "(from outside the cluster, --endpoint points at a reachable address)") from error
        raise ReportError(f"cannot read {drift['reportUri']}: {failure.code or error}") from error
    try:
        path.write_bytes(body)
    except OSError as error:
        raise ReportError(f"cannot save the report to {path}: {error.strerror or error}") from error
    return str(path), drift


def report_client(session: SecretReader, spec: PolicySpec, endpoint: str | None, env_credentials: bool) -> Any:
    """An S3 client for the policy's storage, with the operator's timeouts: the credentials in the policy's
    Secret, or with `env_credentials` the user's own (boto3's chain: AWS_ACCESS_KEY_ID, ~/.aws, ...)."""
    if env_credentials:
        return make_client(endpoint or spec.storage.endpoint, spec.storage.region, timeouts=OPERATOR_TIMEOUTS)
    secret_name = spec.storage.credentials.name
    try:
        secret = json.loads(session.core.read_namespaced_secret(secret_name, session.namespace,
                                                                _preload_content=False,
                                                                _request_timeout=session.timeout).data)
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
    return client_for(spec, credentials, endpoint=endpoint)
