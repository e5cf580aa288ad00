"""What a drift check is given, refused with the error that gives it its exit code (issue 16)."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
import pyarrow as pa
import pytest

from retrain_contract.artifacts.errors import DataError
from retrain_contract.failures import ConfigError, classify
from retrain_trainer import compare, drift_config
from retrain_trainer.drift.engine import to_json
from retrain_trainer.drift.inputs import (
    CurrentColumns,
    Names,
    ProfileError,
    check_profile,
    select_features,
    unreadable,
)
from retrain_trainer.drift.profile import build_profile

PROFILE = to_json(build_profile([pa.table({"x": np.arange(300.0), "plan": ["a", "b", "c"] * 100,
                                           "label": ["y", "n", "n"] * 100})]))
COLUMNS = ["x", "plan", "label"]


def test_a_profile_without_features_or_with_broken_ones_is_refused_with_the_reason():
    check_profile(PROFILE)
    for broken, reason in [([], "JSON object"), ({}, "no features"), ({"features": {}}, "no features"),
                           ({"features": {"x": {"kind": "numeric"}}}, "'x' has no count"),
                           ({"features": {"x": {**PROFILE["features"]["x"], "sample": ["a"]}}}, "must be numbers"),
                           ({"features": {"x": {**PROFILE["features"]["x"], "edges": []}}}, "one entry more"),
                           ({"features": {"p": {"kind": "text"}}}, "no kind")]:
        with pytest.raises(ProfileError, match=reason):
            check_profile(broken)


def test_features_are_every_column_but_the_target():
    assert select_features(COLUMNS, None, "label", ()) == ["x", "plan"]
    assert select_features(COLUMNS, None, None, ()) == COLUMNS  # nothing says which is the label
    assert select_features(COLUMNS, ["plan", "plan"], "label", ["plan"]) == ["plan"]


@pytest.mark.parametrize(("columns", "keys", "message"), [
    (["nosuch"], (), "--columns: nosuch not in the reference"),
    (["x", "label"], (), "label is the target"),
    (None, ["nosuch"], "--key-feature: nosuch not among the checked features"),
    (None, ["label"], "--key-feature: label not among"),  # the target is no key feature either
    (["x"], ["plan"], "--key-feature: plan not among the checked features"),
])
def test_names_that_are_not_features_are_configuration_errors(columns, keys, message):
    with pytest.raises(ConfigError, match=message):
        select_features(COLUMNS, columns, "label", keys)


def test_the_drift_config_is_named_in_its_own_words():
    with pytest.raises(ConfigError, match="keyFeatures: nosuch"):
        select_features(COLUMNS, None, "label", ["nosuch"], Names("features", "keyFeatures", "target"))


def test_a_missing_feature_stops_at_the_first_batch_naming_all_and_hinting_a_rename():
    watcher = CurrentColumns(["x", "plan"], {"x", "plan", "label"})
    renamed = pa.record_batch({"x": [1.0], "tier": ["a"]})
    with pytest.raises(DataError, match=r"column\(s\) plan missing from today.csv \(it has tier.*renamed\?\)"):
        list(watcher.watch([renamed], "today.csv"))
    with pytest.raises(DataError, match=r"column\(s\) x, plan missing"):
        list(watcher.watch([pa.record_batch({"label": ["y"]})], "today.csv"))


def test_extra_columns_are_collected_once_and_event_times_are_not_extra():
    watcher = CurrentColumns(["x"], {"x", "label"})
    batch = pa.record_batch({"x": [1.0], "label": ["y"], "coupon": ["c"],
                             "at": pa.array([0], pa.timestamp("s"))})
    assert len(list(watcher.watch([batch, batch], "today.csv"))) == 2
    assert watcher.extra == ["coupon"]


def test_non_numeric_values_split_into_unreadable_columns_and_partly_unreadable_ones():
    features = {"a": {"nonNumeric": 5, "rows": 0}, "b": {"nonNumeric": 2, "rows": 98}, "c": {"nonNumeric": 0}}
    assert unreadable(features) == ({"a": 5}, {"b": 2})


def test_the_in_cluster_config_refuses_a_bad_minimum():
    base = {"policy": {"namespace": "ml", "name": "churn"},
            "checkId": "d1", "modelVersion": "v1", "data": "s3://d/", "windowSeconds": 60,
            "now": "2026-11-24T10:00:00Z", "storage": {"bucket": "b"}, "target": "label"}
    assert drift_config.parse(json.dumps(base)).raw.get("minRows") is None  # the default applies
    for bad in (0, -5, 2.5, "200", True):
        with pytest.raises(ConfigError, match="minRows"):
            drift_config.parse(json.dumps({**base, "minRows": bad}))
    assert classify(ConfigError("x"))[0] == 2  # the Job fails as a configuration error, not retried


def test_a_saved_profile_that_is_not_one_is_bad_input_and_a_missing_one_is_missing_data(tmp_path: Path):
    (tmp_path / "broken.json").write_text("{not json")
    with pytest.raises(ConfigError, match="not a usable drift profile: not JSON"):
        compare.read_profile(tmp_path / "broken.json")
    with pytest.raises(DataError, match="does not exist"):
        compare.read_profile(tmp_path / "nope.json")


def test_the_target_comes_from_the_profile_else_from_the_manifest_beside_it(tmp_path: Path):
    assert compare.recorded_target({**PROFILE, "target": "label"}, tmp_path / "profile.json") == "label"
    assert compare.recorded_target(PROFILE, tmp_path / "profile.json") is None
    (tmp_path / "manifest.json").write_text(json.dumps({"model": {"target": "churned"}}))
    assert compare.recorded_target(PROFILE, tmp_path / "profile.json") == "churned"


def test_a_crash_is_an_internal_error_never_the_exit_status_of_drift(monkeypatch: pytest.MonkeyPatch,
                                                                     capsys: pytest.CaptureFixture[str]):
    def crash(args: argparse.Namespace) -> int:
        raise ZeroDivisionError("a bug")

    monkeypatch.setattr(compare, "_compare", crash)
    assert compare.run(argparse.Namespace()) == compare.EXIT_INTERNAL != compare.EXIT_DRIFT
    assert "internal error: ZeroDivisionError: a bug" in capsys.readouterr().err
    codes = [compare.EXIT_NO_DRIFT, compare.EXIT_DRIFT, compare.EXIT_BAD_INPUT, compare.EXIT_DATA_ERROR,
             compare.EXIT_INSUFFICIENT_DATA, compare.EXIT_INTERNAL]
    assert len(set(codes)) == len(codes)
    assert all(f"\n  {code} " in compare.EPILOG for code in codes)  # each documented in --help
