"""Enough data for a verdict: below a minimum sample a check says "insufficient data", never drift or no drift.

On a few rows the statistics are noise: PSI over 10 bins flags a sample of the reference's own
distribution as drifted in 100 % of draws at 10 rows and 48 % at 50 (measured, docs/drift.md),
and a KS test at 50 rows cannot see less than a 0.5-standard-deviation shift. So a feature with
fewer values than the minimum, on either side, is reported as insufficient and left out of the
dataset verdict, and a dataset without a feature that could be judged has no verdict at all.
"""

from __future__ import annotations

from typing import Any

# The smallest sample at which a feature drawn from the reference itself is flagged no more often
# than the tests' 5 % level (measured at 200 rows: 3 % numeric, 2-4 % categorical; at 100 rows: 8 %).
# At 200 rows a KS test at p < 0.05 sees D >= 0.096, a 0.24-standard-deviation mean shift.
DEFAULT_MIN_ROWS = 200

DRIFT = "drift"
NO_DRIFT = "no-drift"
INSUFFICIENT_DATA = "insufficient-data"
VERDICTS = (DRIFT, NO_DRIFT, INSUFFICIENT_DATA)


def mark_insufficient(features: dict[str, dict[str, Any]], reference_counts: dict[str, int], min_rows: int,
                      null_share_increase: float) -> list[str]:
    """Flag (in place) the features with fewer than `min_rows` values now or in the reference; their
    statistics are not a verdict. One exception: a column whose null share rose, judged on all of its
    rows (values and nulls, at least `min_rows`), went missing, and that is drift whatever its values say."""
    insufficient = []
    for name, feature in features.items():
        values = int(feature.get("rows") or 0)
        too_few = values < min_rows or reference_counts.get(name, min_rows) < min_rows
        went_missing = (values + int(feature.get("nulls") or 0) >= min_rows and
                        (feature.get("nullShare") or 0.0) - (feature.get("referenceNullShare") or 0.0)
                        >= null_share_increase)
        feature["insufficient"] = bool(too_few and not went_missing)
        if feature["insufficient"]:
            feature["drifted"] = False
            insufficient.append(name)
    return insufficient


def verdict(dataset_drift: bool, judged: int, insufficient_keys: list[str]) -> str:
    """Drift found among the judged features stands; without a judged feature, or while a key feature
    (whose drift alone would mean drift) could not be judged, "no drift" would claim what was not seen."""
    if dataset_drift:
        return DRIFT
    if not judged or insufficient_keys:
        return INSUFFICIENT_DATA
    return NO_DRIFT


def overall(data_verdict: str, performance: dict[str, Any] | None) -> str:
    """The check's verdict: performance drift on enough labeled rows is drift whatever the features say."""
    if performance and performance.get("drifted"):
        return DRIFT
    return data_verdict


def summary(result: dict[str, Any]) -> str:
    """Why a result has no verdict, in one line (the CLI's output, the operator's condition message)."""
    minimum = result.get("minRows")
    rows = result.get("rows")
    features = result.get("features") or {}
    short = result.get("insufficientFeatures") or []
    if rows is not None and minimum is not None and rows < minimum:
        return f"{rows} current rows, at least {minimum} needed"
    text = (f"{len(short)} of {len(features)} features have fewer than {minimum} values (now or in the reference)"
            f"{': ' + ', '.join(short[:5]) if short else ''}{' ...' if len(short) > 5 else ''}")
    keys = [name for name in result.get("thresholds", {}).get("key_features") or () if name in short]
    return text + (f" (key feature(s) {', '.join(keys)} among them)" if keys else "")
