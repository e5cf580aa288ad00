"""Compare current data with a reference profile, one record batch at a time.

Per batch and numeric column, one sort of the batch and a search of the profile's sorted sample
in it: no per-row Python, and memory bounded by a batch and the profile, not by the data.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
from scipy import stats as scipy_stats

from . import parallel, stats, sufficiency
from .profile import is_numeric


@dataclass(frozen=True)
class Thresholds:
    """When a feature, and the dataset, count as drifted. Defaults are documented in docs/drift.md."""

    psi: float = 0.2
    ks_pvalue: float = 0.05
    # A minimum effect, so that a million rows do not flag noise: a significant KS test must also
    # move the CDF by this much (a 0.1-std mean shift of a normal moves it by ~0.04).
    ks_statistic: float = 0.025
    chi2_pvalue: float = 0.05
    jensen_shannon: float = 0.05  # judged net of the distance no change shows at this n and k
    wasserstein_normalized: float = 0.1  # reported; not a verdict on its own (see docs)
    null_share_increase: float = 0.1  # a column that suddenly goes missing has drifted too
    # Rows in categories the reference never had, beyond what its long tail predicts.
    unseen_share: float = 0.01
    dataset_share: float = 0.3
    key_features: tuple[str, ...] = ()
    # Over the features' KS and chi-squared p-values: benjaminiHochberg, bonferroni or none.
    correction: str = "benjaminiHochberg"

    def __post_init__(self) -> None:
        if self.correction not in stats.CORRECTIONS:
            raise ValueError(f"correction must be one of {', '.join(stats.CORRECTIONS)}, not {self.correction!r}")


@dataclass
class _Numeric:
    sample: np.ndarray
    edges: np.ndarray
    bin_proportions: np.ndarray
    std: float
    reference_nulls: float
    below: np.ndarray = field(init=False)
    at_or_below: np.ndarray = field(init=False)
    bins: np.ndarray = field(init=False)
    count: int = 0
    nulls: int = 0
    left_tail: float = 0.0
    right_tail: float = 0.0
    bad_values: int = 0
    gap_excess: np.ndarray = field(init=False)
    center: float = field(init=False)

    def __post_init__(self) -> None:
        self.below = np.zeros(len(self.sample), dtype=np.int64)
        self.at_or_below = np.zeros(len(self.sample), dtype=np.int64)
        self.bins = np.zeros(len(self.edges) + 1, dtype=np.int64)
        self.gap_excess = np.zeros(max(len(self.sample) - 1, 0), dtype=float)
        self.center = float(self.sample[len(self.sample) // 2]) if len(self.sample) else 0.0

    def add(self, column: pa.ChunkedArray | pa.Array) -> None:
        if is_numeric(column.type):
            values = np.asarray(pc.cast(column, pa.float64()).to_numpy(zero_copy_only=False), dtype=float)
        else:  # e.g. a CSV column with a stray word: count what does not parse, keep the rest
            raw = pd.Series(column.to_pandas(), dtype=object)
            parsed = pd.to_numeric(raw, errors="coerce").to_numpy(dtype=float)
            unparsable = raw.notna().to_numpy() & np.isnan(parsed)
            self.bad_values += int(unparsable.sum())
            values = parsed[~unparsable]  # real nulls stay NaN and are counted as nulls below
        # Sorting the batch once (NaN goes last) turns every count below into a search of the
        # m reference points in it: O(n log n) for the sort, O(m log n) for the rest.
        ordered = np.sort(values)
        n = int(np.searchsorted(ordered, np.nan, side="left"))  # NumPy sorts and searches NaN as largest
        self.nulls += len(ordered) - n
        self.count += n
        ordered = ordered[:n]
        self.bins += np.diff(np.concatenate([[0], np.searchsorted(ordered, self.edges, side="left"), [n]]))
        m = len(self.sample)
        if not m or not n:
            return
        below = np.searchsorted(ordered, self.sample, side="left")  # current values < sample[j]
        at_or_below = np.searchsorted(ordered, self.sample, side="right")  # current values <= sample[j]
        self.below += below
        self.at_or_below += at_or_below
        # Running sums, centred so that large offsets do not eat the precision of the differences.
        sums = np.concatenate([[0.0], np.cumsum(ordered - self.center)])
        # Values strictly inside gap i = (sample[i], sample[i+1]): positions at_or_below[i] .. below[i+1].
        low, high = at_or_below[:-1], np.maximum(below[1:], at_or_below[:-1])
        self.gap_excess += (high - low) * (self.sample[1:] - self.center) - (sums[high] - sums[low])
        first, last = below[0], at_or_below[-1]
        self.left_tail += first * (self.sample[0] - self.center) - sums[first]
        self.right_tail += (sums[n] - sums[last]) - (n - last) * (self.sample[-1] - self.center)

    def result(self) -> dict[str, Any]:
        m, n = len(self.sample), self.count
        statistic = stats.ks_statistic(self.sample, self.below, self.at_or_below, n)
        pvalue = stats.ks_pvalue(statistic, m, n)
        distance = stats.wasserstein(self.sample, self.below, self.at_or_below, n, self.left_tail, self.right_tail,
                                     self.gap_excess)
        psi = stats.psi(self.bin_proportions * 1e6, self.bins.astype(float))
        normalized = distance / self.std if self.std and np.isfinite(self.std) and self.std > 0 else distance
        return {
            "kind": "numeric", "rows": n, "nulls": self.nulls, "nullShare": _share(self.nulls, n + self.nulls),
            "referenceNullShare": self.reference_nulls, "nonNumeric": self.bad_values,
            "psi": psi, "ksStatistic": statistic, "ksPValue": pvalue, "pValue": pvalue, "wasserstein": distance,
            "wassersteinNormalized": normalized,
            "score": float(np.nan_to_num(max(statistic, min(psi, 1.0)), nan=0.0)),
        }

    @staticmethod
    def reasons(feature: dict[str, Any], thresholds: Thresholds) -> list[str]:
        """The rules this feature breaks, its test judged on the corrected p-value."""
        return [rule for rule, broken in (
            ("psi", feature["psi"] >= thresholds.psi),
            ("ks", feature["pValueAdjusted"] < thresholds.ks_pvalue and
             feature["ksStatistic"] >= thresholds.ks_statistic),
            ("nullShare", feature["nullShare"] - feature["referenceNullShare"] >= thresholds.null_share_increase),
        ) if broken]


@dataclass
class _Categorical:
    reference: dict[str, int]
    reference_nulls: float
    counts: dict[str, int] = field(default_factory=dict)
    nulls: int = 0

    def add(self, column: pa.ChunkedArray | pa.Array) -> None:
        self.nulls += column.null_count
        for entry in pc.value_counts(pc.cast(column.drop_null(), pa.string())).to_pylist():
            self.counts[entry["values"]] = self.counts.get(entry["values"], 0) + entry["counts"]

    def result(self, thresholds: Thresholds) -> dict[str, Any]:
        categories = sorted(set(self.reference) | set(self.counts))
        expected = np.array([self.reference.get(c, 0) for c in categories], dtype=float)
        actual = np.array([self.counts.get(c, 0) for c in categories], dtype=float)
        chi2, pvalue = stats.chi_squared(expected, actual)  # over every category, as SciPy would
        distance = stats.jensen_shannon(expected, actual)
        psi = stats.psi(expected, actual)
        n = int(actual.sum())
        # The verdict splits the change in two: how the reference's categories' shares moved (their own
        # test and effects, net of the noise many levels or few rows make) and how many rows went to
        # categories the reference never had (the unseen rule), so that neither hides in the other.
        known = expected > 0
        _, known_pvalue = stats.chi_squared(expected[known], actual[known])
        js_noise, psi_noise = stats.categorical_noise(expected, actual)
        known_distance = stats.jensen_shannon(expected[known], actual[known])
        js_net = float(np.sqrt(stats.net_of_noise(known_distance**2, js_noise))) \
            if np.isfinite(known_distance) else float("nan")
        psi_net = stats.net_of_noise(stats.psi(expected[known], actual[known]), psi_noise)
        unseen = sorted(set(self.counts) - set(self.reference))
        unseen_rows = int(actual[~known].sum())
        unseen_expected = stats.missing_mass(expected[known])
        # Significantly more than the tail predicts plus the threshold, so a handful of rows is not drift.
        bound = min(unseen_expected + thresholds.unseen_share, 1.0)
        unseen_pvalue = float(scipy_stats.binomtest(unseen_rows, n, bound, alternative="greater").pvalue) \
            if n and bound < 1.0 else 1.0
        return {
            "kind": "categorical", "rows": n, "nulls": self.nulls, "nullShare": _share(self.nulls, n + self.nulls),
            "referenceNullShare": self.reference_nulls, "categories": len(categories),
            "psi": psi, "psiNoise": psi_noise, "psiNet": psi_net,
            "chi2": chi2, "chi2PValue": pvalue, "pValue": known_pvalue,
            "jensenShannon": distance, "jensenShannonNoise": float(np.sqrt(js_noise)), "jensenShannonNet": js_net,
            "unseenCategories": unseen[:100], "unseenCategoryCount": len(unseen),
            "unseenShare": _share(unseen_rows, n), "unseenShareExpected": unseen_expected,
            "unseenPValue": unseen_pvalue,
            # How far it moved, on the 0..1 scale of the numeric score: known shares and new categories.
            "score": float(np.nan_to_num(max(js_net, min(psi_net, 1.0), _share(unseen_rows, n) - unseen_expected),
                                         nan=0.0)),
        }

    @staticmethod
    def reasons(feature: dict[str, Any], thresholds: Thresholds) -> list[str]:
        """The rules this feature breaks: effects net of noise, its test on the corrected p-value."""
        return [rule for rule, broken in (
            ("psi", feature["psiNet"] >= thresholds.psi),
            ("chi2", feature["pValueAdjusted"] < thresholds.chi2_pvalue and
             feature["jensenShannonNet"] >= thresholds.jensen_shannon),
            ("unseen", feature["unseenPValue"] < thresholds.chi2_pvalue),
            ("nullShare", feature["nullShare"] - feature["referenceNullShare"] >= thresholds.null_share_increase),
        ) if broken]


def _share(part: int, whole: int) -> float:
    return part / whole if whole else 0.0


def to_json(value: Any) -> Any:
    """JSON has no NaN: statistics that do not exist (an all-null column) become null."""
    if isinstance(value, float):
        return value if np.isfinite(value) else None
    if isinstance(value, dict):
        return {key: to_json(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [to_json(item) for item in value]
    return value


class DriftCheck:
    """Fold current batches in with `add`, then read the verdicts with `result`.

    A feature with fewer than `min_rows` values (now or in the reference) is not judged
    (drift/sufficiency.py); the commands pass sufficiency.DEFAULT_MIN_ROWS."""

    def __init__(self, profile: dict[str, Any], thresholds: Thresholds | None = None,
                 columns: list[str] | None = None, min_rows: int = 1):
        self.thresholds = thresholds or Thresholds()
        self.min_rows = max(int(min_rows), 1)
        self.reference_counts = {name: int(feature["count"]) for name, feature in profile["features"].items()}
        self.rows = 0
        self.missing: set[str] = set()
        self.columns: dict[str, _Numeric | _Categorical] = {}
        for name, feature in profile["features"].items():
            if columns and name not in columns:
                continue
            reference_nulls = _share(feature["nulls"], feature["count"] + feature["nulls"])
            if feature["kind"] == "numeric":
                self.columns[name] = _Numeric(
                    sample=np.asarray(feature["sample"], dtype=float), edges=np.asarray(feature["edges"], dtype=float),
                    bin_proportions=np.asarray(feature["binProportions"], dtype=float), std=feature["std"],
                    reference_nulls=reference_nulls)
            else:
                self.columns[name] = _Categorical(reference=dict(feature["frequencies"]),
                                                  reference_nulls=reference_nulls)

    def add(self, batch: pa.RecordBatch | pa.Table) -> None:
        self.rows += batch.num_rows
        work = []
        for name, accumulator in self.columns.items():
            if name not in batch.schema.names:
                self.missing.add(name)
                continue
            work.append((accumulator, batch.column(name)))
        parallel.each(lambda pair: pair[0].add(pair[1]), work)

    def add_all(self, batches: Iterable[pa.RecordBatch | pa.Table]) -> DriftCheck:
        for batch in batches:
            self.add(batch)
        return self

    def result(self) -> dict[str, Any]:
        features = {name: accumulator.result(self.thresholds) if isinstance(accumulator, _Categorical)
                    else accumulator.result() for name, accumulator in self.columns.items()
                    if name not in self.missing}
        # Too few values is no test: those features are neither drifted nor in the correction's family.
        insufficient = sufficiency.mark_insufficient(features, self.reference_counts, self.min_rows,
                                                     self.thresholds.null_share_increase)
        judged = [name for name in features if name not in insufficient]
        adjusted = stats.adjust_pvalues(np.array([features[name]["pValue"] for name in judged], dtype=float),
                                        self.thresholds.correction)
        for name, pvalue in zip(judged, adjusted, strict=True):
            feature = features[name]
            feature["pValueAdjusted"] = float(pvalue)
            feature["reasons"] = self.columns[name].reasons(feature, self.thresholds)
            feature["drifted"] = bool(feature["reasons"])
        for name in insufficient:
            features[name]["reasons"] = []
        drifted = [name for name in judged if features[name]["drifted"]]
        share = len(drifted) / len(judged) if judged else 0.0
        keys = [name for name in self.thresholds.key_features if name in drifted]
        top = sorted(judged, key=lambda name: -features[name]["score"])[:5]
        dataset_drift = bool(self.rows > 0 and (share >= self.thresholds.dataset_share or keys))
        return {
            "rows": self.rows,
            "features": features,
            "missingColumns": sorted(self.missing),
            "driftedFeatures": drifted,
            "driftedShare": share,
            "datasetDrift": dataset_drift,
            "minRows": self.min_rows,
            "insufficientFeatures": insufficient,
            "verdict": sufficiency.verdict(dataset_drift, len(judged),
                                           [name for name in self.thresholds.key_features if name in insufficient]),
            "correction": self.thresholds.correction,
            "topFeatures": [{"name": name, "score": features[name]["score"]} for name in top],
            "thresholds": asdict(self.thresholds),
        }
