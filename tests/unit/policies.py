"""Policy fixtures for the unit tests of the core (plain dicts, as the API server sends them)."""

from __future__ import annotations

import copy
import datetime as dt
from typing import Any

from retrain_operator.core.decide import PolicyState

CREATED = dt.datetime(2026, 11, 20, 12, 0, tzinfo=dt.UTC)

BASE_SPEC: dict[str, Any] = {
    "model": {"estimator": "RandomForestClassifier", "task": "classification", "target": "churned",
              "params": {"n_estimators": 50}},
    "data": {"history": "s3://data/churn/history/", "incoming": "s3://data/churn/incoming/"},
    "storage": {"bucket": "models", "prefix": "retrain", "endpoint": "http://127.0.0.1:8333",
                "credentialsSecret": {"name": "s3-creds"}},
    "training": {"strategy": "full"},
}


def spec(**sections: Any) -> dict[str, Any]:
    """BASE_SPEC with sections merged in (one level deep)."""
    result = copy.deepcopy(BASE_SPEC)
    for key, value in sections.items():
        if isinstance(value, dict) and isinstance(result.get(key), dict):
            result[key] = {**result[key], **value}
        else:
            result[key] = value
    return result


def policy(spec_: dict[str, Any] | None = None, status: dict[str, Any] | None = None,
           annotations: dict[str, str] | None = None, generation: int = 1) -> PolicyState:
    return PolicyState(
        name="churn", namespace="ml", uid="uid-1", generation=generation, created=CREATED,
        spec=spec_ if spec_ is not None else spec(), status=status or {}, annotations=annotations or {},
    )
