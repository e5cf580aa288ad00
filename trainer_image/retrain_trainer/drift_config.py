"""The drift check's configuration (RETRAIN_RUN_CONFIG of a drift Job), checked field by field before
any S3 request and before the drift engine's libraries are imported: a wrong field is a ConfigError
naming it (exit 2), never a KeyError deep in the check."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

from retrain_contract.api.names import ENV_RUN_CONFIG
from retrain_contract.artifacts.layout import drift_prefix, version_prefix
from retrain_contract.artifacts.store import ArtifactStore
from retrain_contract.artifacts.uris import parse_s3_uri

from .errors import ConfigError
from .fields import Fields, http_url, load

PERFORMANCE_METRICS = {"classification": ("accuracy", "f1Weighted", "f1Macro"), "regression": ("rmse", "mae", "r2")}
THRESHOLD_FIELDS = {"psi": "psi", "ksPValue": "ks_pvalue", "ksStatistic": "ks_statistic",
                    "chi2PValue": "chi2_pvalue", "jensenShannon": "jensen_shannon",
                    "nullShareIncrease": "null_share_increase", "unseenShare": "unseen_share",
                    "datasetShare": "dataset_share"}


@dataclass(frozen=True)
class DriftConfig:
    raw: dict[str, Any]

    def __getitem__(self, key: str) -> Any:
        return self.raw[key]

    @property
    def storage(self) -> dict[str, Any]:
        return self.raw["storage"]

    @property
    def output_prefix(self) -> str:
        policy = self.raw["policy"]
        return drift_prefix(self.storage.get("prefix", ""), policy["namespace"], policy["name"], self.raw["checkId"],
                            uid=str(policy.get("uid") or ""))

    def model_location(self, store: ArtifactStore) -> tuple[ArtifactStore, str]:
        """The checked model's folder: its recorded URI, else this incarnation's folder of the version."""
        uri = self.raw.get("modelUri")
        if uri:
            bucket, key = parse_s3_uri(uri)
            key = key if not key or key.endswith("/") else key + "/"
            return (store if bucket == store.bucket else ArtifactStore(store.client, bucket)), key
        policy = self.raw["policy"]
        return store, version_prefix(self.storage.get("prefix", ""), policy["namespace"], policy["name"],
                                     self.raw["modelVersion"], uid=str(policy.get("uid") or ""))


def instant(value: Any) -> dt.datetime:
    """An RFC 3339 time with its offset (`now` of the configuration)."""
    moment = dt.datetime.fromisoformat(str(value).replace("Z", "+00:00"))
    if moment.tzinfo is None:
        raise ValueError(f"must be an RFC 3339 time with an offset (2026-11-24T03:00:00Z), got {value!r}")
    return moment


def parse(text: str, source: str = f"${ENV_RUN_CONFIG}") -> DriftConfig:
    """The drift check configuration in `text` (from `source`); ConfigError naming the field that is wrong."""
    try:
        raw = load(text, source)
        _check(raw)
    except ConfigError as error:
        raise ConfigError(f"invalid drift check configuration: {error}") from error
    return DriftConfig(raw.raw)


def _positive(value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not value > 0:
        raise ValueError(f"must be a positive number of seconds, got {value!r}")
    return float(value)


def _min_rows(value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValueError(f"must be a whole number of at least 1, got {value!r}")
    return value


def _check(raw: Fields) -> None:
    """Every field `run` reads, checked before any S3 request: a wrong one is named, never a KeyError."""
    policy, storage = raw.object("policy"), raw.object("storage")
    for fields, key in ((policy, "namespace"), (policy, "name"), (storage, "bucket"), (raw, "checkId"),
                        (raw, "modelVersion"), (raw, "target")):
        fields.string(key)
    for fields, key in ((policy, "uid"), (storage, "prefix"), (storage, "region"), (raw, "task")):
        fields.string(key, None)
    storage.parsed("endpoint", http_url, None)
    raw.parsed("data", parse_s3_uri)
    raw.parsed("modelUri", parse_s3_uri, None)
    raw.parsed("now", instant)
    raw.parsed("windowSeconds", _positive)
    raw.parsed("minRows", _min_rows, None)
    raw.strings("features")
    raw.strings("keyFeatures")
    thresholds = raw.object("thresholds", required=False)
    for key in THRESHOLD_FIELDS:  # others are ignored: a newer operator may send more than this image knows
        thresholds.number(key, None)
    thresholds.string("correction", None)
    performance = raw.object("performance", required=False)
    metric = performance.string("metric", "accuracy")
    known = PERFORMANCE_METRICS["regression" if raw.raw.get("task") == "regression" else "classification"]
    if performance.raw and metric not in known:
        raise performance.error("metric", f"{metric!r} is not a metric of this task; known: {', '.join(known)}")
    for key in ("floor", "maxDrop", "pValue", "minDrop"):
        performance.number(key, None)
    performance.parsed("minRows", _min_rows, None)
