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
from retrain_trainer.drift.stats import adjust_pvalues


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


def test_the_correction_keeps_one_chance_p_value_among_three_from_counting():
    chance = np.array([0.03, 0.5, 0.7])  # one of three unchanged features under 0.05 by chance
    assert stats.false_discovery_control(chance) @ np.ones(3) > 0  # sanity: SciPy's BH is what we call
    assert not (adjust_pvalues(chance, "benjaminiHochberg") < 0.05).any()
    assert not (adjust_pvalues(chance, "bonferroni") < 0.05).any()
    assert (adjust_pvalues(chance, "none") < 0.05).sum() == 1
    real = np.array([1e-6, 0.5, 0.7])
    assert (adjust_pvalues(real, "benjaminiHochberg") < 0.05).tolist() == [True, False, False]
    assert (adjust_pvalues(real, "bonferroni") < 0.05).tolist() == [True, False, False]
    # Three features each at 0.03 agree with each other: BH (false discovery rate) keeps all three,
    # Bonferroni (any false alarm) none. NaN (an all-null column) is no test and does not count.
    assert (adjust_pvalues(np.full(3, 0.03), "benjaminiHochberg") < 0.05).all()
    assert not (adjust_pvalues(np.full(3, 0.03), "bonferroni") < 0.05).any()
    assert adjust_pvalues(np.array([0.02, np.nan]), "bonferroni")[0] == pytest.approx(0.02)
    with pytest.raises(ValueError):
        Thresholds(correction="holm")


def test_the_dataset_false_alarm_rate_of_three_unchanged_features_is_held_by_the_correction():
    rng = np.random.default_rng(4)
    profile = build_profile([pa.table({name: rng.normal(size=5000) for name in "abc"})])
    tables = [pa.table({name: rng.normal(size=1000) for name in "abc"}) for _ in range(300)]
    rate = {method: np.mean([DriftCheck(profile, Thresholds(correction=method)).add_all([table]).result()
                             ["datasetDrift"] for table in tables]) for method in ("none", "benjaminiHochberg")}
    assert rate["none"] > 0.09  # ~1 - 0.95^3: one chance column of three is dataset drift
    assert rate["benjaminiHochberg"] <= 0.07
    result = DriftCheck(profile).add_all([tables[0]]).result()
    assert result["correction"] == "benjaminiHochberg"
    assert all(f["pValueAdjusted"] >= f["pValue"] for f in result["features"].values())


def test_a_real_shift_still_drifts_after_the_correction():
    rng = np.random.default_rng(8)
    reference = {name: rng.normal(size=20000) for name in "abc"}
    current = {name: rng.normal(size=3000) for name in "abc"} | {"a": rng.normal(0.3, 1, size=3000)}
    for method in ("benjaminiHochberg", "bonferroni"):
        result = DriftCheck(build_profile([pa.table(reference)]), Thresholds(correction=method)).add_all(
            [pa.table(current)]).result()
        assert result["driftedFeatures"] == ["a"] and result["datasetDrift"]
        assert "ks" in result["features"]["a"]["reasons"] and result["features"]["a"]["pValueAdjusted"] < 1e-6


def zipf_levels(rng: np.random.Generator, size: int, levels: int = 10000, exponent: float = 1.0) -> np.ndarray:
    weights = 1 / np.arange(1, levels + 1) ** exponent
    return rng.choice(np.array([f"v{i}" for i in range(levels)]), size=size, p=weights / weights.sum())


@pytest.mark.parametrize("exponent", [0.0, 1.0], ids=["uniform", "zipf"])
def test_an_unchanged_column_of_ten_thousand_levels_does_not_drift(exponent: float):
    rng = np.random.default_rng(9)
    feature = check({"c": zipf_levels(rng, 200000, exponent=exponent)},
                    {"c": zipf_levels(rng, 50000, exponent=exponent)})["features"]["c"]
    # Sampling noise alone puts the raw distance far above 0.05; net of it, nothing is left.
    assert feature["jensenShannon"] > 0.1 and feature["jensenShannonNoise"] == pytest.approx(
        feature["jensenShannon"], rel=0.05)
    assert feature["jensenShannonNet"] < 0.05 and feature["psiNet"] < 0.05
    assert feature["unseenShare"] < 0.01
    assert not feature["drifted"], feature["reasons"]


def test_new_categories_spread_over_many_levels_drift():
    rng = np.random.default_rng(10)
    current = zipf_levels(rng, 50000).astype(object)
    fresh = rng.random(50000) < 0.1  # a tenth of the rows in 5,000 categories the model never saw
    current[fresh] = np.array([f"new{i}" for i in rng.integers(0, 5000, fresh.sum())])
    feature = check({"c": zipf_levels(rng, 200000)}, {"c": current})["features"]["c"]
    assert feature["psi"] < 0.2  # PSI's smoothing hides it: each new level is tiny
    assert feature["psiNet"] < 0.2 and feature["jensenShannonNet"] < 0.05  # the known levels kept their shape
    assert feature["unseenShare"] == pytest.approx(0.1, abs=0.01) and feature["unseenCategoryCount"] > 3000
    assert len(feature["unseenCategories"]) == 100  # listed, bounded
    assert feature["drifted"] and "unseen" in feature["reasons"] and feature["score"] > 0.05


def test_a_few_rows_in_new_categories_are_not_drift_but_a_new_common_one_is():
    rng = np.random.default_rng(12)
    reference = rng.choice(list("abcd"), size=20000, p=[0.4, 0.3, 0.2, 0.1])
    current = rng.choice(list("abcd"), size=2000, p=[0.4, 0.3, 0.2, 0.1])
    current[:10] = "e"  # 0.5%
    few = check({"c": reference}, {"c": current})["features"]["c"]
    assert not few["drifted"] and few["unseenShare"] == pytest.approx(0.005) and few["chi2PValue"] < 1e-10
    current[:100] = "e"  # 5%
    feature = check({"c": reference}, {"c": current})["features"]["c"]
    assert feature["drifted"] and "unseen" in feature["reasons"] and feature["unseenShareExpected"] == 0


def test_small_cardinality_thresholds_are_as_before():
    rng = np.random.default_rng(13)
    reference = rng.choice(list("abcd"), size=20000, p=[0.4, 0.3, 0.2, 0.1])
    shifted = check({"c": reference}, {"c": rng.choice(list("abcd"), size=20000, p=[0.3, 0.3, 0.2, 0.2])})
    feature = shifted["features"]["c"]
    # At four levels and 20,000 rows the noise is negligible: net and raw effects agree.
    assert feature["jensenShannonNet"] == pytest.approx(feature["jensenShannon"], rel=0.01)
    assert feature["drifted"] and "chi2" in feature["reasons"]


def test_a_sparse_reference_expects_new_categories_without_change():
    rng = np.random.default_rng(14)
    # 20,000 rows over 10,000 levels: about 13% of fresh rows land in levels the reference missed.
    feature = check({"c": zipf_levels(rng, 20000, exponent=0.0)},
                    {"c": zipf_levels(rng, 5000, exponent=0.0)})["features"]["c"]
    assert feature["unseenShare"] > 0.1 and feature["unseenShareExpected"] == pytest.approx(
        feature["unseenShare"], abs=0.02)
    assert not feature["drifted"], feature["reasons"]
