"""The run configuration (RETRAIN_RUN_CONFIG), parsed and checked before any data is read."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from retrain_contract.api import names
from retrain_contract.api.estimators import estimator_problem
from retrain_contract.api.spec import parse_duration
from retrain_contract.artifacts.identity import config_digest
from retrain_contract.artifacts.layout import version_prefix
from retrain_contract.artifacts.uris import parse_s3_uri

from .errors import ConfigError


@dataclass(frozen=True)
class RunConfig:
    namespace: str
    policy: str
    version: str
    parent_version: str | None
    trigger: dict[str, Any]
    estimator: str
    params: dict[str, Any]
    task: str
    target: str
    features: tuple[str, ...] | None
    history: str | None
    incoming: str | None
    timestamp_column: str | None
    min_rows: int
    max_null_fraction: float
    labels: tuple[Any, ...] | None
    strategy: str
    replay_fraction: float
    window_seconds: float
    half_life_seconds: float | None
    test_fraction: float
    random_seed: int
    bucket: str
    prefix: str
    endpoint: str | None
    region: str
    uid: str = ""  # the policy incarnation; empty in configs of operators before it was sent
    parent_uri: str | None = None  # the parent's recorded location; None: computed from the layout
    digest: str = ""  # config_digest of the configuration as received
    # The environment variable holding the PEM private key to sign manifest.json with; None: do not sign.
    signing_key_env: str | None = None

    @property
    def output_prefix(self) -> str:
        """Where this run's files go: `<prefix>/<namespace>/<policy>/<uid>/<version>/`."""
        return version_prefix(self.prefix, self.namespace, self.policy, self.version, uid=self.uid)


def parse(text: str) -> RunConfig:
    try:
        raw = json.loads(text)
        policy, model, data = raw["policy"], raw["model"], raw["data"]
        training, storage = raw["training"], raw["storage"]
        validation = data.get("validation") or {}
        window = training.get("window") or {}
        config = RunConfig(
            namespace=str(policy["namespace"]), policy=str(policy["name"]), version=str(raw["version"]),
            parent_version=raw.get("parentVersion"), trigger=dict(raw.get("trigger") or {}),
            estimator=str(model["estimator"]), params=dict(model.get("params") or {}),
            task=str(model.get("task", "classification")), target=str(model["target"]),
            features=tuple(model["features"]) if model.get("features") else None,
            history=data.get("history"), incoming=data.get("incoming"),
            timestamp_column=data.get("timestampColumn"),
            min_rows=int(validation.get("minRows", 50)),
            max_null_fraction=float(validation.get("maxNullFraction", 0.2)),
            labels=tuple(validation["labels"]) if validation.get("labels") else None,
            strategy=str(training.get("strategy", "full")),
            replay_fraction=float(training.get("replayFraction", 0.8)),
            window_seconds=parse_duration(window.get("duration") or "7d").total_seconds(),
            half_life_seconds=(parse_duration(window["halfLife"]).total_seconds() if window.get("halfLife")
                               else None),
            test_fraction=float(training.get("testFraction", 0.2)),
            random_seed=int(training.get("randomSeed", 42)),
            bucket=str(storage["bucket"]), prefix=str(storage.get("prefix") or ""),
            endpoint=storage.get("endpoint") or None, region=str(storage.get("region") or "us-east-1"),
            uid=str(policy.get("uid") or ""),
            parent_uri=(raw.get("parentUri") or None) if raw.get("parentVersion") else None,
            digest=config_digest(raw),
            signing_key_env=(str((raw.get("signing") or {}).get("keyEnv") or names.ENV_SIGNING_KEY)
                             if raw.get("signing") else None),
        )
    except (KeyError, TypeError, ValueError) as error:
        raise ConfigError(f"invalid run configuration: {error!r}") from error
    problem = estimator_problem(config.estimator, config.task, config.strategy)
    if problem:
        raise ConfigError(problem)
    if config.strategy not in {"full", "incremental", "window"}:
        raise ConfigError(f"unknown strategy {config.strategy!r}")
    if not config.history and not config.incoming:
        raise ConfigError("data.history or data.incoming is required")
    for uri in (config.history, config.incoming, config.parent_uri):
        if uri:
            try:
                parse_s3_uri(uri)
            except ValueError as error:
                raise ConfigError(str(error)) from error
    if not 0 <= config.replay_fraction < 1:
        raise ConfigError("replayFraction must be in [0, 1)")
    return config
