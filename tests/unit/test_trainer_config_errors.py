"""Every configuration error of `retrain-trainer` exits 2 (EXIT_CONFIG, which the Job's podFailurePolicy
fails at once) naming the field (`storage.bucket`), the option or the file; before, a missing
--config file exited 1 (retried until backoffLimit) and a partial configuration said KeyError('bucket').
Run as the Job runs it: the console script, a process, the configuration from a file or the environment."""

from __future__ import annotations

import copy
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from retrain_contract.api.names import ENV_RUN_CONFIG
from retrain_contract.failures import EXIT_CONFIG, EXIT_DATA
from retrain_trainer import config as run_config
from retrain_trainer import drift_config
from retrain_trainer.errors import ConfigError

TRAINER = Path(sys.executable).parent / "retrain-trainer"

RUN = {
    "apiVersion": "retrain.mlops.dev/v1alpha1", "kind": "RunConfig",
    "policy": {"namespace": "ml", "name": "churn", "uid": "uid-1"}, "version": "v2", "parentVersion": "v1",
    "parentUri": "s3://models/retrain/ml/churn/uid-1/v1/", "trigger": {"type": "manual"},
    "model": {"estimator": "SGDClassifier", "params": {}, "task": "classification", "target": "churned",
              "features": ["tenure", "plan"]},
    "data": {"history": "s3://data/churn/history/", "incoming": "s3://data/churn/incoming/",
             "timestampColumn": None, "validation": {"minRows": 100, "maxNullFraction": 0.2, "labels": None}},
    "training": {"strategy": "incremental", "replayFraction": 0.8, "window": {"duration": "7d", "halfLife": None},
                 "testFraction": 0.2, "randomSeed": 42},
    "storage": {"bucket": "models", "prefix": "retrain", "endpoint": "http://127.0.0.1:1", "region": "us-east-1"},
}
DRIFT = {
    "apiVersion": "retrain.mlops.dev/v1alpha1", "kind": "DriftCheckConfig",
    "policy": {"namespace": "ml", "name": "churn", "uid": "uid-1"}, "checkId": "d1", "modelVersion": "v1",
    "modelUri": "s3://models/retrain/ml/churn/uid-1/v1/", "now": "2026-11-24T03:00:00Z",
    "data": "s3://data/churn/recent/", "windowSeconds": 86400.0, "features": None, "keyFeatures": ["tenure"],
    "thresholds": {"psi": 0.2}, "performance": {"metric": "accuracy", "floor": 0.8, "maxDrop": None},
    "target": "churned", "task": "classification",
    "storage": {"bucket": "models", "prefix": "retrain", "endpoint": "http://127.0.0.1:1", "region": "us-east-1"},
}


def changed(document: dict[str, Any], path: str, value: Any) -> dict[str, Any]:
    """`document` with the dotted `path` set to `value` (removed when value is ...)."""
    copied = copy.deepcopy(document)
    *parents, last = path.split(".")
    node = copied
    for key in parents:
        node = node[key]
    if value is ...:
        del node[last]
    else:
        node[last] = value
    return copied


def trainer(*args: str, config: str | None = None,
            env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    assert TRAINER.exists(), "the retrain-trainer console script is not installed"
    environment = {k: v for k, v in os.environ.items() if k != ENV_RUN_CONFIG and not k.startswith("RETRAIN_")}
    if config is not None:
        environment[ENV_RUN_CONFIG] = config
    return subprocess.run([str(TRAINER), *args], capture_output=True, text=True, timeout=120,
                          env={**environment, **(env or {})})


def config_error(result: subprocess.CompletedProcess[str]) -> str:
    """The trainer's one error line; fails unless it exited 2 with one."""
    assert result.returncode == EXIT_CONFIG, (result.returncode, result.stderr)
    assert "Traceback" not in result.stderr
    lines = [line for line in result.stderr.splitlines() if line.startswith("retrain-trainer: error: ")]
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("retrain-trainer: error: ConfigError: "), lines[0]
    return lines[0]


# --- the configuration file ------------------------------------------------------------------------------

@pytest.mark.parametrize("command", ["train", "drift"])
def test_a_config_file_that_cannot_be_used_is_named(command: str, tmp_path: Path):
    missing = tmp_path / "nosuch.json"
    assert f"--config {missing}: cannot read the file: No such file or directory" in config_error(
        trainer(command, "--config", str(missing)))
    assert f"--config {tmp_path}: cannot read the file: Is a directory" in config_error(
        trainer(command, "--config", str(tmp_path)))
    empty = tmp_path / "empty.json"
    empty.write_text("\n")
    assert f"--config {empty} is empty" in config_error(trainer(command, "--config", str(empty)))
    broken = tmp_path / "broken.json"
    broken.write_text('{"policy": ')
    assert f"--config {broken} is not valid JSON: Expecting value: line 1 column 12" in config_error(
        trainer(command, "--config", str(broken)))
    listed = tmp_path / "list.json"
    listed.write_text("[]")
    assert f"--config {listed} is not a JSON object (a list)" in config_error(
        trainer(command, "--config", str(listed)))


def test_no_configuration_and_a_bad_one_in_the_environment_name_the_variable():
    assert f"set ${ENV_RUN_CONFIG} or pass --config" in config_error(trainer("train"))
    assert f"${ENV_RUN_CONFIG} is not valid JSON" in config_error(trainer("drift", config="{nope"))


# --- fields of the run configuration ---------------------------------------------------------------------

TRAIN_CASES = [
    ("storage.bucket", ..., "storage.bucket is required"),
    ("storage", ..., "storage is required"),
    ("policy.name", 7, "policy.name: must be a string, got number 7"),
    ("version", "", "version is required"),
    ("model.target", ..., "model.target is required"),
    ("model.estimator", "os.system", "model.estimator: unknown estimator 'os.system'"),
    ("model.features", ["tenure", 3], "model.features[1]: must be a non-empty string, got 3"),
    ("model.params", [1], "model.params: must be an object, got list [1]"),
    ("data.history", "http://x/y", "data.history: not an S3 URI"),
    ("data.validation.minRows", 0, "data.validation.minRows: must be >= 1, got 0"),
    ("data.validation.maxNullFraction", "0.2", "data.validation.maxNullFraction: must be a number, got string"),
    ("training.strategy", "magic", "training.strategy: unknown strategy 'magic'"),
    ("training.replayFraction", 1, "training.replayFraction: must be in [0, 1), got 1"),
    ("training.testFraction", 0, "training.testFraction: must be in (0, 1), got 0"),
    ("training.window.duration", "soon", "training.window.duration: "),
    ("training.randomSeed", True, "training.randomSeed: must be an integer, got boolean True"),
    ("parentUri", "models/v1/", "parentUri: not an S3 URI"),
    ("signing", {"keyEnv": 5}, "signing.keyEnv: must be a string"),
    ("storage.endpoint", "minio:9000", "storage.endpoint: must be an http:// or https:// URL, got 'minio:9000'"),
]


@pytest.mark.parametrize("path, value, message", TRAIN_CASES, ids=[case[0] for case in TRAIN_CASES])
def test_each_wrong_field_of_the_run_configuration_is_named(path: str, value: Any, message: str):
    with pytest.raises(ConfigError) as error:
        run_config.parse(json.dumps(changed(RUN, path, value)))
    assert str(error.value).startswith(f"invalid run configuration: {message}"), error.value


def test_the_job_exits_2_naming_the_field_from_a_file_and_from_the_environment(tmp_path: Path):
    path = tmp_path / "run.json"
    path.write_text(json.dumps(changed(RUN, "storage.bucket", ...)))
    assert config_error(trainer("train", "--config", str(path))).endswith(
        "invalid run configuration: storage.bucket is required")
    line = config_error(trainer("train", config=json.dumps(changed(RUN, "training.replayFraction", "lots"))))
    assert line.endswith("training.replayFraction: must be a number, got string 'lots'")


def test_the_example_run_configuration_parses():
    parsed = run_config.parse(json.dumps(RUN))
    assert (parsed.bucket, parsed.strategy, parsed.window_seconds, parsed.parent_uri) == (
        "models", "incremental", 7 * 86400, RUN["parentUri"])


# --- fields of the drift check configuration -------------------------------------------------------------

DRIFT_CASES = [
    ("checkId", ..., "checkId is required"),
    ("storage.bucket", None, "storage.bucket is required"),
    ("data", "recent/", "data: not an S3 URI"),
    ("windowSeconds", "1d", "windowSeconds: must be a positive number of seconds, got '1d'"),
    ("now", "2026-11-24T03:00:00", "now: must be an RFC 3339 time with an offset"),
    ("now", "yesterday", "now: Invalid isoformat string"),
    ("thresholds.psi", "high", "thresholds.psi: must be a number, got string 'high'"),
    ("keyFeatures", "tenure", "keyFeatures: must be a list of strings, got string 'tenure'"),
    ("performance.metric", "rmse", "performance.metric: 'rmse' is not a metric of this task"),
    ("modelUri", "http://x/", "modelUri: not an S3 URI"),
    ("storage.endpoint", "http://", "storage.endpoint: must be an http:// or https:// URL"),
]


@pytest.mark.parametrize("path, value, message", DRIFT_CASES, ids=[f"{c[0]}={c[1]}" for c in DRIFT_CASES])
def test_each_wrong_field_of_the_drift_configuration_is_named(path: str, value: Any, message: str):
    with pytest.raises(ConfigError) as error:
        drift_config.parse(json.dumps(changed(DRIFT, path, value)))
    assert str(error.value).startswith(f"invalid drift check configuration: {message}"), error.value


def test_the_drift_job_exits_2_naming_the_field():
    line = config_error(trainer("drift", config=json.dumps(changed(DRIFT, "windowSeconds", -1))))
    assert line.endswith("invalid drift check configuration: windowSeconds: must be a positive number of "
                         "seconds, got -1")
    assert drift_config.parse(json.dumps(DRIFT)).output_prefix == "retrain/ml/churn/uid-1/drift/d1/"


# --- serve and compare: options --------------------------------------------------------------------------

@pytest.mark.parametrize("args, env, message", [
    (["--model-uri", "http://x/"], {}, "--model-uri: not an S3 URI (s3://bucket/key): 'http://x/'"),
    ([], {}, "no model: pass --model-uri or set RETRAIN_MODEL_URI"),
    (["--model-uri", "s3://m/v1/", "--capture-uri", "captures/"], {}, "--capture-uri: not an S3 URI"),
    (["--model-uri", "s3://m/v1/", "--port", "70000"], {}, "--port must be within 0..65535, got 70000"),
    (["--model-uri", "s3://m/v1/"], {"RETRAIN_CAPTURE_FRACTION": "2"}, "--capture-fraction must be within 0..1"),
    (["--model-uri", "s3://m/v1/", "--manifest-sha256", "abc"], {}, "--manifest-sha256 must be 64 hex digits"),
    (["--model-uri", "s3://m/v1/"], {"AWS_ENDPOINT_URL": "minio:9000"}, "--endpoint (or $AWS_ENDPOINT_URL): must be"),
])
def test_serve_exits_2_naming_the_option(args: list[str], env: dict[str, str], message: str):
    assert message in config_error(trainer("serve", *args, env=env))


def test_a_default_from_the_environment_that_is_wrong_is_a_usage_error_naming_the_option():
    result = trainer("serve", "--model-uri", "s3://m/v1/", env={"RETRAIN_SERVE_PORT": "http"})
    assert result.returncode == EXIT_CONFIG and "Traceback" not in result.stderr
    assert result.stderr.splitlines()[-1] == "retrain-trainer serve: error: argument --port: invalid int value: 'http'"
    assert "$RETRAIN_LOG_LEVEL: unknown level 'LOUD'" in config_error(trainer("train", env={
        "RETRAIN_LOG_LEVEL": "loud"}))


def test_compare_names_a_profile_it_cannot_use_and_an_output_it_cannot_write(tmp_path: Path):
    current = tmp_path / "current.csv"
    current.write_text("a\n1\n")
    for text, problem in (("{", "not JSON"), ("{}", "features")):
        profile = tmp_path / "profile.json"
        profile.write_text(text)
        result = trainer("compare", "--reference", str(profile), "--current", str(current))
        # 2: bad input (docs/drift.md#exit-codes); 1 would be drift
        assert result.returncode == EXIT_CONFIG and "Traceback" not in result.stderr
        assert result.stderr.strip().startswith(
            f"retrain-trainer compare: bad input: {profile} is not a usable drift profile")
        assert problem in result.stderr
    missing = tmp_path / "nosuch.json"
    result = trainer("compare", "--reference", str(missing), "--current", str(current))
    assert (result.returncode, result.stderr.strip()) == (
        EXIT_DATA, f"retrain-trainer compare: data error: {missing} does not exist")
    result = trainer("compare", "--reference", str(current), "--current", str(current),
                     "--json", str(tmp_path / "nodir" / "drift.json"))
    assert (result.returncode, result.stderr.strip()) == (
        EXIT_CONFIG, f"retrain-trainer compare: bad input: --json {tmp_path / 'nodir' / 'drift.json'}: "
                     f"the directory {tmp_path / 'nodir'} does not exist")
