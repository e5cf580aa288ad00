"""The run configuration (RETRAIN_RUN_CONFIG), parsed and checked before any data is read."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from retrain_contract.api import names
from retrain_contract.api.estimators import estimator_problem
from retrain_contract.api.spec import parse_duration
from retrain_contract.artifacts.identity import config_digest
from retrain_contract.artifacts.layout import version_prefix
from retrain_contract.artifacts.uris import parse_s3_uri

from .errors import ConfigError
from .fields import Fields, http_url, load

STRATEGIES = ("full", "incremental", "window")


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
    # GPUs the policy gives the Job (training.resources.limits nvidia.com/gpu): XGBoost uses one when seen.
    gpus: int = 0

    @property
    def output_prefix(self) -> str:
        """Where this run's files go: `<prefix>/<namespace>/<policy>/<uid>/<version>/`."""
        return version_prefix(self.prefix, self.namespace, self.policy, self.version, uid=self.uid)


def parse(text: str, source: str = f"${names.ENV_RUN_CONFIG}") -> RunConfig:
    """The run configuration in `text` (from `source`); ConfigError naming the field that is wrong."""
    try:
        return _parse(load(text, source))
    except ConfigError as error:
        raise ConfigError(f"invalid run configuration: {error}") from error


def _duration_seconds(value: Any) -> float:
    duration = parse_duration(value)
    if duration is None or duration.total_seconds() <= 0:
        raise ValueError(f"must be a positive duration, got {value!r}")
    return duration.total_seconds()


def _parse(raw: Fields) -> RunConfig:
    policy, model, data = raw.object("policy"), raw.object("model"), raw.object("data")
    training, storage = raw.object("training"), raw.object("storage")
    validation, window = data.object("validation", required=False), training.object("window", required=False)
    params = model.object("params", required=False).raw
    parent_version = raw.string("parentVersion", None)
    config = RunConfig(
        namespace=policy.string("namespace"), policy=policy.string("name"), version=raw.string("version"),
        parent_version=parent_version, trigger=dict(raw.object("trigger", required=False).raw),
        estimator=model.string("estimator"), params=dict(params),
        task=model.string("task", "classification"), target=model.string("target"),
        features=model.strings("features"),
        history=data.parsed("history", _s3_uri, None), incoming=data.parsed("incoming", _s3_uri, None),
        timestamp_column=data.string("timestampColumn", None) or None,
        min_rows=validation.integer("minRows", 50, low=1),
        max_null_fraction=validation.between("maxNullFraction", validation.number("maxNullFraction", 0.2), 0, 1),
        labels=validation.values("labels"),
        strategy=training.string("strategy", "full"),
        replay_fraction=training.between("replayFraction", training.number("replayFraction", 0.8), 0, 1,
                                         open_high=True),
        window_seconds=window.parsed("duration", _duration_seconds, 7 * 24 * 3600.0),
        half_life_seconds=window.parsed("halfLife", _duration_seconds, None),
        test_fraction=training.between("testFraction", training.number("testFraction", 0.2), 0, 1,
                                       open_low=True, open_high=True),
        random_seed=training.integer("randomSeed", 42, low=0),
        bucket=storage.string("bucket"), prefix=storage.string("prefix", ""),
        endpoint=storage.parsed("endpoint", http_url, None), region=storage.string("region", None) or "us-east-1",
        uid=policy.string("uid", ""),
        parent_uri=raw.parsed("parentUri", _s3_uri, None) if parent_version else None,
        digest=config_digest(raw.raw),
        signing_key_env=_signing_key_env(raw),
        gpus=training.integer("gpus", 0, low=0),
    )
    if config.strategy not in STRATEGIES:
        raise training.error("strategy", f"unknown strategy {config.strategy!r}; allowed: {', '.join(STRATEGIES)}")
    problem = estimator_problem(config.estimator, config.task, config.strategy)
    if problem:
        raise model.error("estimator", problem)
    if not config.history and not config.incoming:
        raise ConfigError("data.history or data.incoming is required")
    return config


def _s3_uri(value: Any) -> str:
    parse_s3_uri(value)
    return str(value)


def _signing_key_env(raw: Fields) -> str | None:
    """The environment variable with the signing key; None: the run does not sign."""
    if not raw.raw.get("signing"):
        return None
    return raw.object("signing").string("keyEnv", None) or names.ENV_SIGNING_KEY
