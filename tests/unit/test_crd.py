"""The CRD is generated from one schema source; it agrees with the typed spec and the checked-in YAML."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

import yaml

from retrain_contract.api.schema import spec_schema
from retrain_contract.api.spec import PolicySpec
from retrain_operator.api import crd as crd_module

ROOT = Path(__file__).resolve().parents[2]
MINIMAL = {"model": {"estimator": "SGDClassifier", "target": "y"}, "data": {"history": "s3://data/x/"},
           "storage": {"bucket": "models", "credentialsSecret": {"name": "s3"}}}


def test_the_checked_in_crd_is_the_generated_one():
    on_disk = (ROOT / crd_module.CRD_PATH).read_text()
    assert on_disk == crd_module.render_yaml(), "run: python -m retrain_operator.api.crd --write"


def _walk(schema: dict[str, Any], path: str = "spec"):
    yield path, schema
    for name, child in (schema.get("properties") or {}).items():
        yield from _walk(child, f"{path}.{name}")
    if isinstance(schema.get("items"), dict):
        yield from _walk(schema["items"], f"{path}[]")
    if isinstance(schema.get("additionalProperties"), dict):
        yield from _walk(schema["additionalProperties"], f"{path}{{}}")


def test_the_schema_is_structural():
    for path, node in _walk(crd_module.crd()["spec"]["versions"][0]["schema"]["openAPIV3Schema"]):
        assert "type" in node or node.get("x-kubernetes-int-or-string") or \
            node.get("x-kubernetes-preserve-unknown-fields"), path


def _default(path: str) -> Any:
    node: dict[str, Any] = spec_schema()
    for part in path.split("."):
        node = node["properties"][part]
    return node.get("default")


# schema path -> how the typed spec exposes it
DEFAULTS = {
    "model.task": lambda s: s.model.task,
    "data.format": lambda s: s.data.format,
    "data.validation.minRows": lambda s: s.data.validation.min_rows,
    "data.validation.maxNullFraction": lambda s: s.data.validation.max_null_fraction,
    "storage.prefix": lambda s: s.storage.prefix,
    "storage.region": lambda s: s.storage.region,
    "storage.credentialsSecret.accessKeyIdKey": lambda s: s.storage.credentials.access_key_id_key,
    "storage.credentialsSecret.secretAccessKeyKey": lambda s: s.storage.credentials.secret_access_key_key,
    "triggers.minNewSamples": lambda s: s.triggers.min_new_samples,
    "triggers.schedule.timeZone": lambda _: PolicySpec.from_dict(
        {**MINIMAL, "triggers": {"schedule": {"cron": "0 3 * * *"}}}).triggers.schedule.time_zone,
    "triggers.manualBypassesCooldown": lambda s: s.triggers.manual_bypasses_cooldown,
    "training.strategy": lambda s: s.training.strategy,
    "training.incremental.replayFraction": lambda s: s.training.replay_fraction,
    "training.window.duration": lambda s: s.training.window.duration,
    "training.testFraction": lambda s: s.training.test_fraction,
    "training.randomSeed": lambda s: s.training.random_seed,
    "training.backoffLimit": lambda s: s.training.backoff_limit,
    "training.activeDeadlineSeconds": lambda s: s.training.active_deadline_seconds,
    "training.ttlSecondsAfterFinished": lambda s: s.training.ttl_seconds_after_finished,
    "historyLimit": lambda s: s.history_limit,
    "suspend": lambda s: s.suspend,
    "promotion.gates.minComparisonRows": lambda s: s.gates.min_comparison_rows,
    "promotion.gates.olderData.enabled": lambda s: s.gates.older_data_metric is not None,
}
SERVED = {**MINIMAL, "serving": {"capture": {"uri": "s3://data/captured/"}}, "promotion": {"canary": {
    "steps": [{"setWeight": 10}], "analysis": {"prometheus": [{"name": "q", "query": "up",
                                                               "successCondition": "result > 0"}]}}},
          "signing": {"publicKeySecret": {"name": "pub"}, "privateKeySecret": {"name": "priv"}}}
# Defaults of optional sections, read from a policy that has them.
SECTION_DEFAULTS = {
    "serving.replicas": lambda s: s.serving.replicas,
    "serving.port": lambda s: s.serving.port,
    "serving.capture.fraction": lambda s: s.serving.capture_fraction,
    "serving.router.type": lambda s: s.serving.router.type,
    "signing.publicKeySecret.key": lambda s: s.signing.public_key.key,
    "signing.privateKeySecret.key": lambda s: s.signing.private_key.key,
    "promotion.canary.analysis.minRequests": lambda s: s.canary.analysis.min_requests,
    "promotion.canary.analysis.maxErrorRateIncrease": lambda s: s.canary.analysis.max_error_rate_increase,
    "promotion.canary.analysis.maxLatencyRatio": lambda s: s.canary.analysis.max_latency_ratio,
    "promotion.canary.analysis.maxPredictionShift": lambda s: s.canary.analysis.max_prediction_shift,
    "promotion.canary.analysis.failureLimit": lambda s: s.canary.analysis.failure_limit,
    "promotion.canary.analysis.inconclusiveLimit": lambda s: s.canary.analysis.inconclusive_limit,
    "promotion.canary.scaleDownStable": lambda s: s.canary.scale_down_stable,
    "promotion.canary.mirror": lambda s: s.canary.mirror,
}
SECTION_DURATION_DEFAULTS = {
    "promotion.canary.analysis.interval": lambda s: s.canary.analysis.interval,
    "promotion.canary.readyTimeout": lambda s: s.canary.ready_timeout,
}


def test_optional_sections_default_as_the_schema_says():
    from retrain_contract.api.spec import parse_duration

    parsed = PolicySpec.from_dict(SERVED)
    for path, read in SECTION_DEFAULTS.items():
        assert _default(path) == read(parsed), path
    for path, read in SECTION_DURATION_DEFAULTS.items():
        assert parse_duration(_default(path)) == read(parsed), path
    assert parsed.canary.analysis.prometheus[0].failure_limit == 0


# Defaults inside list items: the schema's and the typed spec's, per item.
ITEM_DEFAULTS = {
    "promotion.gates.compare[].relative": (
        lambda: spec_schema()["properties"]["promotion"]["properties"]["gates"]["properties"]["compare"]["items"]
        ["properties"]["relative"]["default"],
        lambda: PolicySpec.from_dict({**MINIMAL, "promotion": {"gates": {"compare": [{"metric": "accuracy"}]}}})
        .gates.compare[0].relative),
    **{f"notify[].{path}": (
        lambda path=path: _item_default(spec_schema()["properties"]["notify"]["items"], path),
        lambda read=read: read(PolicySpec.from_dict({**MINIMAL, "notify": [{"name": "ops", "urlSecret": {
            "name": "hook"}}]}).notify[0]))
       for path, read in {"type": lambda n: n.type, "minSeverity": lambda n: n.min_severity,
                          "urlSecret.key": lambda n: n.url.key}.items()},
}


def _item_default(node: dict, path: str):
    for part in path.split("."):
        node = node["properties"][part]
    return node["default"]


def _drift():
    return PolicySpec.from_dict({**MINIMAL, "triggers": {"drift": {"data": "s3://data/recent/"}}}).triggers.drift


# Duration defaults are strings in the schema and timedeltas in the typed spec.
DURATION_DEFAULTS = {
    "triggers.drift.window": lambda drift: drift.window,
    "triggers.drift.interval": lambda drift: drift.interval,
}


def test_duration_defaults_parse_to_the_typed_defaults():
    from retrain_contract.api.spec import parse_duration

    for path, read in DURATION_DEFAULTS.items():
        assert parse_duration(_default(path)) == read(_drift()), path


# Plain defaults of the drift section, read from a policy that has one.
DRIFT_DEFAULTS = {"triggers.drift.minRows": lambda drift: drift.min_rows}


def test_drift_defaults_equal_the_typed_defaults():
    for path, read in DRIFT_DEFAULTS.items():
        assert _default(path) == read(_drift()), path


def test_schema_defaults_equal_the_typed_specs_defaults():
    parsed = PolicySpec.from_dict(MINIMAL)
    for path, read in DEFAULTS.items():
        assert _default(path) == read(parsed), path


def test_every_schema_default_is_checked():
    defaulted = {path.removeprefix("spec.") for path, node in _walk(spec_schema()) if "default" in node}
    assert defaulted == (set(DEFAULTS) | set(DURATION_DEFAULTS) | set(DRIFT_DEFAULTS) | set(ITEM_DEFAULTS)
                         | set(SECTION_DEFAULTS) | set(SECTION_DURATION_DEFAULTS)
                         | {"promotion.canary.analysis.prometheus[].failureLimit"})


def test_list_item_defaults_equal_the_typed_specs_defaults():
    for path, (schema_default, typed_default) in ITEM_DEFAULTS.items():
        assert schema_default() == typed_default(), path


def test_every_field_the_typed_spec_reads_is_in_the_schema():
    # The typed spec is built from these camelCase keys; each must be a schema property.
    source = (ROOT / "contract/retrain_contract/api/spec.py").read_text()
    import re

    keys = set(re.findall(r'\.get\("([A-Za-z]+)"', source)) | set(re.findall(r'\["([A-Za-z]+)"\]', source))
    properties = {path.rsplit(".", 1)[-1] for path, _ in _walk(spec_schema())}
    assert keys - properties == set()
    assert dataclasses.is_dataclass(PolicySpec)


def test_printer_columns_cover_what_kubectl_get_shows():
    columns = {c["name"]: c for c in crd_module.crd()["spec"]["versions"][0]["additionalPrinterColumns"]}
    assert {"Phase", "Model", "Last Trained", "Next Run", "Age"} <= set(columns)
    assert columns["Model"]["jsonPath"] == ".status.currentModel.version"


def test_the_crd_yaml_parses_and_has_the_status_subresource():
    document = yaml.safe_load((ROOT / crd_module.CRD_PATH).read_text())
    version = document["spec"]["versions"][0]
    assert version["subresources"] == {"status": {}}
    assert document["spec"]["names"]["shortNames"] == ["rtp"]


def test_the_checked_in_field_reference_is_the_generated_one():
    from retrain_operator.api import reference

    on_disk = (ROOT / reference.REFERENCE_PATH).read_text()
    assert on_disk == reference.render_markdown(), "run: python -m retrain_operator.api.reference --write"


def test_the_field_reference_names_every_spec_field_and_rule():
    from retrain_operator.api import reference

    text = reference.render_markdown()
    for path, node in _walk(spec_schema()):
        if path != "spec" and "{" not in path and not path.endswith("[]"):
            assert f"| `{path}` |" in text, path
        for rule in node.get("x-kubernetes-validations", []):
            assert rule["message"] in text
