"""The drift engine against SciPy's reference implementations, its edge cases, and its error rates."""

from __future__ import annotations

import json

import numpy as np
import pyarrow as pa
import pytest
from scipy import stats
from scipy.spatial.distance import jensenshannon

from retrain_trainer.drift.engine import DriftCheck, Thresholds, to_json
from retrain_trainer.drift.profile import build_profile


def check(reference: dict, current: dict, batch: int | None = None, **profile_args) -> dict:
    profile = build_profile([pa.table(reference)], **profile_args)
    table = pa.table(current)
    batches = table.to_batches(max_chunksize=batch) if batch else [table]
    return DriftCheck(profile).add_all(batches).result()


@pytest.mark.parametrize("seed", range(5))
@pytest.mark.parametrize("sizes", [(50, 80), (3000, 2000), (10000, 40000)])
def test_numeric_statistics_match_scipy(seed: int, sizes: tuple[int, int]):
    rng = np.random.default_rng(seed)
    reference = rng.normal(size=sizes[0])
    current = rng.normal(rng.uniform(-0.3, 0.3), rng.uniform(0.8, 1.2), size=sizes[1])
    feature = check({"x": reference}, {"x": current}, batch=997)["features"]["x"]
    expected = stats.ks_2samp(reference, current, method="asymp")
    assert feature["ksStatistic"] == pytest.approx(expected.statistic, abs=1e-12)
    assert feature["ksPValue"] == pytest.approx(expected.pvalue, rel=1e-3, abs=1e-12)
    # Exact where the CDFs do not cross between two reference points; tiny samples cross often.
    tolerance = 0.1 if sizes[0] < 1000 else 0.02
    assert feature["wasserstein"] == pytest.approx(stats.wasserstein_distance(reference, current), rel=tolerance)


def test_ks_pvalue_at_large_n_uses_the_asymptotic_distribution():
    rng = np.random.default_rng(7)
    reference, current = rng.normal(size=20000), rng.normal(0.02, 1, size=400000)
    feature = check({"x": reference}, {"x": current})["features"]["x"]
    expected = stats.ks_2samp(reference, current, method="asymp")
    assert feature["ksStatistic"] == pytest.approx(expected.statistic, abs=1e-12)
    assert feature["ksPValue"] == pytest.approx(expected.pvalue, rel=0.05, abs=1e-6)


@pytest.mark.parametrize("seed", range(5))
def test_categorical_statistics_match_scipy(seed: int):
    rng = np.random.default_rng(seed)
    reference = rng.choice(list("abcd"), size=4000, p=[0.4, 0.3, 0.2, 0.1])
    current = rng.choice(list("abcde"), size=3000, p=[0.35, 0.3, 0.2, 0.1, 0.05])
    feature = check({"c": reference}, {"c": current})["features"]["c"]
    categories = sorted(set(reference) | set(current))
    table = np.array([[np.sum(reference == c) for c in categories], [np.sum(current == c) for c in categories]])
    expected = stats.chi2_contingency(table, correction=False)
    assert feature["chi2"] == pytest.approx(expected.statistic)
    assert feature["chi2PValue"] == pytest.approx(expected.pvalue, rel=1e-9, abs=1e-300)
    assert feature["jensenShannon"] == pytest.approx(
        jensenshannon(table[0] / table[0].sum(), table[1] / table[1].sum(), base=2))
    assert feature["unseenCategories"] == ["e"]


def test_batches_do_not_change_the_answer():
    rng = np.random.default_rng(3)
    reference, current = rng.normal(size=5000), rng.normal(0.2, 1, size=7000)
    whole = check({"x": reference}, {"x": current})["features"]["x"]
    streamed = check({"x": reference}, {"x": current}, batch=101)["features"]["x"]
    numbers = {key for key, value in whole.items() if isinstance(value, float)}
    # Counts are equal; sums only up to the order of rounding.
    assert {key: streamed[key] for key in numbers} == pytest.approx({key: whole[key] for key in numbers}, rel=1e-12)
    assert {key: value for key, value in streamed.items() if key not in numbers} == \
        {key: value for key, value in whole.items() if key not in numbers}
    assert streamed["ksStatistic"] == whole["ksStatistic"] and streamed["psi"] == whole["psi"]


def test_threads_do_not_change_the_answer(monkeypatch: pytest.MonkeyPatch):
    rng = np.random.default_rng(5)
    reference = {f"n{i}": rng.normal(size=3000) for i in range(6)} | {"c": rng.choice(list("abc"), 3000)}
    current = {f"n{i}": rng.normal(0.05 * i, 1, size=2000) for i in range(6)} | {"c": rng.choice(list("abd"), 2000)}
    monkeypatch.setenv("RETRAIN_DRIFT_THREADS", "1")
    alone = check(reference, current, batch=500)
    monkeypatch.setenv("RETRAIN_DRIFT_THREADS", "4")
    assert check(reference, current, batch=500) == alone


def test_a_constant_column_does_not_crash_and_does_not_drift_against_itself():
    feature = check({"k": np.full(100, 3.0)}, {"k": np.full(50, 3.0)})["features"]["k"]
    assert feature["ksStatistic"] == 0 and feature["psi"] == pytest.approx(0) and not feature["drifted"]
    moved = check({"k": np.full(100, 3.0)}, {"k": np.full(50, 4.0)})["features"]["k"]
    assert moved["ksStatistic"] == 1 and moved["drifted"]


def test_nan_is_counted_and_an_all_null_column_is_reported_not_crashed_on():
    reference = np.where(np.arange(1000) % 10 == 0, np.nan, np.arange(1000, dtype=float))
    result = check({"x": reference, "empty": np.full(1000, np.nan)},
                   {"x": np.full(200, np.nan), "empty": np.full(200, np.nan)})
    x = result["features"]["x"]
    assert x["nulls"] == 200 and x["nullShare"] == 1.0 and x["referenceNullShare"] == pytest.approx(0.1)
    assert x["drifted"]  # the column went missing
    assert result["features"]["empty"]["ksStatistic"] != result["features"]["empty"]["ksStatistic"]  # NaN
    json.dumps(to_json(result), allow_nan=False)  # serialisable without NaN


def test_single_category_and_tiny_samples():
    same = check({"c": ["a"] * 10}, {"c": ["a"] * 3})["features"]["c"]
    assert same["chi2PValue"] == 1.0 and not same["drifted"]
    tiny = check({"x": [1.0, 2.0]}, {"x": [1.5]})["features"]["x"]
    assert tiny["ksStatistic"] == pytest.approx(stats.ks_2samp([1.0, 2.0], [1.5]).statistic)


def test_a_missing_column_is_reported():
    result = check({"x": np.arange(10.0), "y": np.arange(10.0)}, {"x": np.arange(10.0)})
    assert result["missingColumns"] == ["y"] and "y" not in result["features"]


def test_non_numeric_values_in_a_numeric_column_are_counted_not_crashed_on():
    feature = check({"x": np.arange(100.0)}, {"x": ["1.5", "oops", "2", None]})["features"]["x"]
    assert feature["nonNumeric"] == 1 and feature["rows"] == 2 and feature["nulls"] == 1


def test_the_profile_keeps_a_bounded_sorted_sample():
    profile = build_profile(pa.table({"x": np.arange(100000.0)}).to_batches(max_chunksize=7000), sample_size=1000)
    sample = profile["features"]["x"]["sample"]
    assert len(sample) == 1000 and sample == sorted(sample)
    assert profile["rows"] == 100000 and profile["features"]["x"]["mean"] == pytest.approx(49999.5)
    assert 40000 < np.median(sample) < 60000  # uniform, not the first batch


def test_no_false_alarms_on_the_same_distribution():
    alarms = 0
    for seed in range(40):
        rng = np.random.default_rng(1000 + seed)
        result = check({"x": rng.normal(size=20000), "c": rng.choice(list("abc"), 20000)},
                       {"x": rng.normal(size=20000), "c": rng.choice(list("abc"), 20000)})
        alarms += sum(feature["drifted"] for feature in result["features"].values())
    assert alarms / 80 <= 0.05


def test_a_tenth_of_a_std_mean_shift_is_detected_at_100k_rows():
    rng = np.random.default_rng(11)
    result = check({"x": rng.normal(size=100000)}, {"x": rng.normal(0.1, 1, size=100000)})
    assert result["features"]["x"]["drifted"]


def test_an_integer_shift_that_psi_misses_is_caught_by_ks():
    rng = np.random.default_rng(5)
    reference = rng.poisson(20, size=100000)
    shifted = rng.poisson(20, size=100000) + (rng.random(100000) < 0.5)  # +0.11 std on average
    feature = check({"n": reference}, {"n": shifted})["features"]["n"]
    assert feature["psi"] < 0.2 and feature["drifted"]


def test_dataset_verdict_by_share_or_key_feature():
    rng = np.random.default_rng(2)
    reference = {name: rng.normal(size=20000) for name in "abcd"}
    current = {name: rng.normal(size=20000) for name in "abcd"}
    current["a"] = current["a"] + 1.0
    profile = build_profile([pa.table(reference)])
    by_share = DriftCheck(profile).add_all([pa.table(current)]).result()
    assert by_share["driftedFeatures"] == ["a"] and not by_share["datasetDrift"]  # 1/4 < 0.3
    keyed = DriftCheck(profile, Thresholds(key_features=("a",))).add_all([pa.table(current)]).result()
    assert keyed["datasetDrift"] and keyed["topFeatures"][0]["name"] == "a"
