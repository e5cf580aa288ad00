"""Too few rows for a verdict: "insufficient data", never drift and never no drift (issue 16)."""

from __future__ import annotations

import numpy as np
import pyarrow as pa

from retrain_contract.api.schema import triggers_schema
from retrain_contract.api.spec import PolicySpec
from retrain_operator.core.jobs import DriftRequest, PolicyRef, drift_config
from retrain_trainer.drift import sufficiency
from retrain_trainer.drift.engine import DriftCheck, Thresholds
from retrain_trainer.drift.profile import build_profile

from .policies import spec

RNG = np.random.default_rng(0)
REFERENCE = {"x": RNG.normal(size=20000), "y": RNG.normal(size=20000), "c": RNG.choice(list("abcd"), 20000)}


def result(current: dict, min_rows: int = sufficiency.DEFAULT_MIN_ROWS, reference: dict | None = None,
           **thresholds) -> dict:
    profile = build_profile([pa.table(reference or REFERENCE)])
    return DriftCheck(profile, Thresholds(**thresholds), min_rows=min_rows).add_all([pa.table(current)]).result()


def shifted(rows: int, seed: int = 1) -> dict:
    rng = np.random.default_rng(seed)
    return {"x": rng.normal(3, 1, rows), "y": rng.normal(3, 1, rows), "c": rng.choice(list("ab"), rows)}


def test_three_rows_are_insufficient_data_not_drift():
    # Far off the reference, but three rows: without the minimum this was "DATASET DRIFT".
    assert result(shifted(3), min_rows=1)["datasetDrift"]
    three = result(shifted(3))
    assert three["verdict"] == sufficiency.INSUFFICIENT_DATA and not three["datasetDrift"]
    assert three["insufficientFeatures"] == ["x", "y", "c"] and three["driftedFeatures"] == []
    assert all(feature["insufficient"] and not feature["drifted"] for feature in three["features"].values())
    assert three["topFeatures"] == [] and three["minRows"] == sufficiency.DEFAULT_MIN_ROWS
    assert sufficiency.summary(three) == "3 current rows, at least 200 needed"


def test_no_rows_at_all_are_insufficient_data():
    empty = result({"x": np.empty(0), "y": np.empty(0), "c": pa.array([], pa.string())}, min_rows=1)
    assert empty["verdict"] == sufficiency.INSUFFICIENT_DATA and empty["rows"] == 0


def test_enough_rows_give_a_verdict_either_way():
    assert result(shifted(500))["verdict"] == sufficiency.DRIFT
    rng = np.random.default_rng(4)
    same = result({"x": rng.normal(size=500), "y": rng.normal(size=500), "c": rng.choice(list("abcd"), 500)})
    assert same["verdict"] == sufficiency.NO_DRIFT and same["insufficientFeatures"] == []


def test_a_feature_with_too_few_values_is_not_judged_and_the_others_are():
    rng = np.random.default_rng(2)
    current = {"x": rng.normal(size=1000), "y": rng.normal(size=1000), "c": rng.choice(list("abcd"), 1000)}
    reference = {**REFERENCE, "y": np.where(np.arange(20000) % 10 == 0, 5.0, np.nan)}  # 2,000 values, 90 % null
    current["y"] = np.where(np.arange(1000) % 10 == 0, 9.0, np.nan)  # 100 values, far off, null share as before
    checked = result(current, reference=reference)
    assert checked["insufficientFeatures"] == ["y"] and not checked["features"]["y"]["drifted"]
    assert checked["verdict"] == sufficiency.NO_DRIFT and checked["driftedShare"] == 0.0
    assert checked["features"]["y"]["ksStatistic"] == 1.0  # the statistics are still reported


def test_a_column_that_went_missing_is_drift_on_all_its_rows():
    rng = np.random.default_rng(3)
    current = {"x": rng.normal(size=1000), "y": np.full(1000, np.nan), "c": rng.choice(list("abcd"), 1000)}
    checked = result(current, dataset_share=0.3)
    assert checked["features"]["y"]["drifted"] and "y" not in checked["insufficientFeatures"]
    assert checked["verdict"] == sufficiency.DRIFT  # 1 of 3 judged features


def test_a_reference_with_too_few_values_gives_no_verdict():
    tiny = {"x": np.arange(50.0), "y": np.arange(50.0), "c": ["a", "b"] * 25}
    checked = result(shifted(5000), reference=tiny)
    assert checked["verdict"] == sufficiency.INSUFFICIENT_DATA
    assert "features have fewer than 200 values (now or in the reference)" in sufficiency.summary(checked)


def test_a_key_feature_that_cannot_be_judged_withholds_no_drift_but_not_drift():
    rng = np.random.default_rng(5)
    current = {"x": rng.normal(size=1000), "y": np.r_[rng.normal(size=20), np.full(980, np.nan)],
               "c": rng.choice(list("abcd"), 1000)}
    reference = {**REFERENCE, "y": np.r_[RNG.normal(size=400), np.full(19600, np.nan)]}  # 98 % null there too
    keyed = result(current, reference=reference, key_features=("y",))
    assert keyed["insufficientFeatures"] == ["y"] and keyed["verdict"] == sufficiency.INSUFFICIENT_DATA
    assert "key feature(s) y" in sufficiency.summary(keyed)
    current["x"] = current["x"] + 2  # drift among the judged features stands
    assert result(current, reference=reference, key_features=("y",), dataset_share=0.5)["verdict"] == \
        sufficiency.DRIFT


def test_performance_drift_outweighs_the_data_verdict():
    assert sufficiency.overall(sufficiency.INSUFFICIENT_DATA, {"drifted": True}) == sufficiency.DRIFT
    assert sufficiency.overall(sufficiency.NO_DRIFT, {"drifted": False}) == sufficiency.NO_DRIFT
    assert sufficiency.overall(sufficiency.INSUFFICIENT_DATA, None) == sufficiency.INSUFFICIENT_DATA


def test_the_default_minimum_is_where_false_alarms_fall_to_the_tests_level():
    """The documented reason for the default: a sample of the reference's own distribution is flagged
    about as often as the tests' 5 % at the default, and very often at a quarter of it."""
    profile = build_profile([pa.table(REFERENCE)])

    def alarm_rate(rows: int, seeds: int = 60) -> float:
        alarms = 0
        for seed in range(seeds):
            rng = np.random.default_rng(100 + seed)
            same = {"x": rng.normal(size=rows), "y": rng.normal(size=rows), "c": rng.choice(list("abcd"), rows)}
            features = DriftCheck(profile, min_rows=1).add_all([pa.table(same)]).result()["features"]
            alarms += sum(feature["drifted"] for feature in features.values())
        return alarms / (3 * seeds)

    assert alarm_rate(sufficiency.DEFAULT_MIN_ROWS) <= 0.08
    assert alarm_rate(sufficiency.DEFAULT_MIN_ROWS // 4) >= 0.3


def test_the_policy_default_is_the_engine_default_and_reaches_the_check():
    assert triggers_schema()["properties"]["drift"]["properties"]["minRows"]["default"] == \
        sufficiency.DEFAULT_MIN_ROWS
    drift = {"drift": {"data": "s3://data/churn/recent/"}}
    assert PolicySpec.from_dict(spec(triggers=drift)).triggers.drift.min_rows == sufficiency.DEFAULT_MIN_ROWS
    configured = PolicySpec.from_dict(spec(triggers={"drift": {**drift["drift"], "minRows": 1000}}))
    config = drift_config(PolicyRef("churn", "ml", "u-1"), configured, DriftRequest("d1", "v1", "2026-11-24T10:00:00Z"))
    assert config["minRows"] == 1000
