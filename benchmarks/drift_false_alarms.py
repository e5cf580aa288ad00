"""How often the drift check cries wolf, and how often it finds a real change (docs/drift.md has the numbers).

Four simulations, each from known distributions so the right answer is known:

1. data drift, no change: --batches windows drawn from the reference distribution itself, for
   several feature counts (a third of the features categorical); the dataset-level false-alarm
   rate (share of windows with datasetDrift) per multiple-testing correction;
2. data drift, a real change: the same with a share of the features shifted (numeric: mean +
   --shift std; categorical: --shift of the mass moved between two levels), as dataset drift by
   `datasetShare`, and one shifted key feature (`keyFeatures`);
3. performance drift: accuracy on --rows labelled rows against a held-out estimate from 2,000 rows,
   no change and real drops, the statistical bound against fixed `maxDrop` values;
4. a categorical column of 10,000 levels, unchanged and with a tenth of its rows moved to new
   levels: the old fixed thresholds (raw JS >= 0.05 with chi-squared p < 0.05, raw PSI >= 0.2)
   against the ones net of noise and the unseen-category rule.

Run: .venv/bin/python benchmarks/drift_false_alarms.py [--batches 1000] [--rows 1000] [--json out.json]
"""

from __future__ import annotations

import argparse
import json
import math
import time
from typing import Any

import numpy as np
import pyarrow as pa

from retrain_trainer.drift.engine import DriftCheck, Thresholds
from retrain_trainer.drift.performance import PerformanceRule, newcombe
from retrain_trainer.drift.profile import build_profile

CORRECTIONS = ("none", "benjaminiHochberg", "bonferroni")
REFERENCE_ROWS = 20_000
LEVELS = ["a", "b", "c", "d", "e"]
SHARES = np.array([0.35, 0.25, 0.2, 0.12, 0.08])


def _columns(features: int) -> list[tuple[str, str]]:
    """Every third feature categorical, the rest numeric."""
    return [(f"f{i}", "categorical" if i % 3 == 2 else "numeric") for i in range(features)]


def _table(rng: np.random.Generator, columns: list[tuple[str, str]], rows: int, shifted: set[str],
           shift: float) -> pa.Table:
    data: dict[str, Any] = {}
    for name, kind in columns:
        moved = shift if name in shifted else 0.0
        if kind == "numeric":
            data[name] = rng.normal(moved, 1.0, rows)
        else:
            shares = SHARES.copy()
            shares[0] -= moved * shares[0]
            shares[-1] += moved * SHARES[0]
            data[name] = rng.choice(LEVELS, rows, p=shares / shares.sum())
    return pa.table(data)


def _rates(profile: dict[str, Any], tables: list[pa.Table], key: str | None = None) -> dict[str, float]:
    """Share of windows with dataset drift, per correction (one pass over the data, verdicts per correction)."""
    hits = dict.fromkeys(CORRECTIONS, 0)
    for table in tables:
        check = DriftCheck(profile).add_all([table])
        for correction in CORRECTIONS:
            check.thresholds = Thresholds(correction=correction, key_features=(key,) if key else ())
            hits[correction] += check.result()["datasetDrift"]
    return {correction: hits[correction] / len(tables) for correction in CORRECTIONS}


def data_drift(batches: int, rows: int, shift: float, feature_counts: list[int], seed: int) -> list[dict[str, Any]]:
    out = []
    for features in feature_counts:
        rng = np.random.default_rng([seed, features])
        columns = _columns(features)
        profile = build_profile([_table(rng, columns, REFERENCE_ROWS, set(), 0.0)])
        null = _rates(profile, [_table(rng, columns, rows, set(), 0.0) for _ in range(batches)])
        # Enough shifted features to reach datasetShare 0.3 on their own.
        share = {name for name, _ in columns[:max(1, math.ceil(0.3 * features))]}
        power_share = _rates(profile, [_table(rng, columns, rows, share, shift) for _ in range(batches // 4)])
        key = columns[0][0]
        power_key = _rates(profile, [_table(rng, columns, rows, {key}, shift) for _ in range(batches // 4)], key)
        out.append({"features": features, "falseAlarm": null, "shifted": len(share), "powerShare": power_share,
                    "powerKeyFeature": power_key})
        print(f"{features:>3} features  false alarm " + "  ".join(f"{c} {null[c]:.3f}" for c in CORRECTIONS) +
              f"\n     power, {len(share)} shifted  " + "  ".join(f"{c} {power_share[c]:.3f}" for c in CORRECTIONS) +
              "\n     power, 1 key feature  " + "  ".join(f"{c} {power_key[c]:.3f}" for c in CORRECTIONS),
              flush=True)
    return out


def performance(batches: int, seed: int) -> list[dict[str, Any]]:
    """Accuracy: share of checks that flag, against a held-out estimate from 2,000 rows."""
    rng = np.random.default_rng(seed)
    held_rows = 2000
    level = 1 - 2 * PerformanceRule().p_value
    out = []
    for held_accuracy, rows, true_accuracy in [(0.9, 300, 0.9), (0.9, 300, 0.85), (0.9, 300, 0.8),
                                               (0.9, 1000, 0.9), (0.9, 1000, 0.85), (0.6, 5000, 0.6),
                                               (0.6, 5000, 0.57), (0.6, 5000, 0.55)]:
        test = fixed05 = fixed15 = 0
        for _ in range(batches):
            held = rng.binomial(held_rows, held_accuracy)
            correct = rng.binomial(rows, true_accuracy)
            drop = held / held_rows - correct / rows
            test += newcombe(held, held_rows, correct, rows, level)[0] > 0
            fixed05 += drop > 0.05
            fixed15 += drop > 0.15
        row = {"heldOut": held_accuracy, "rows": rows, "accuracy": true_accuracy, "test": test / batches,
               "maxDrop0.05": fixed05 / batches, "maxDrop0.15": fixed15 / batches}
        out.append(row)
        print(f"accuracy {held_accuracy} -> {true_accuracy} on {rows:>5} rows: test {row['test']:.3f}  "
              f"maxDrop 0.05 {row['maxDrop0.05']:.3f}  maxDrop 0.15 {row['maxDrop0.15']:.3f}", flush=True)
    return out


def high_cardinality(batches: int, seed: int) -> dict[str, Any]:
    rng = np.random.default_rng(seed)
    levels = np.array([f"v{i}" for i in range(10_000)], dtype=object)
    weights = 1 / np.arange(1, 10_001)
    weights /= weights.sum()
    profile = build_profile([pa.table({"c": rng.choice(levels, 200_000, p=weights)})])
    out: dict[str, Any] = {}
    for case in ("unchanged", "new levels"):
        old = new = 0
        for _ in range(batches):
            current = rng.choice(levels, 50_000, p=weights)
            if case == "new levels":
                fresh = rng.random(50_000) < 0.1
                current[fresh] = np.array([f"new{i}" for i in rng.integers(0, 5000, fresh.sum())], dtype=object)
            feature = DriftCheck(profile).add_all([pa.table({"c": current})]).result()["features"]["c"]
            old += bool(feature["psi"] >= 0.2 or (feature["chi2PValue"] < 0.05 and feature["jensenShannon"] >= 0.05))
            new += feature["drifted"]
        out[case] = {"fixedThresholds": old / batches, "netOfNoise": new / batches}
        print(f"10,000 levels, {case}: fixed thresholds flag {old / batches:.2f}, net of noise {new / batches:.2f}",
              flush=True)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--batches", type=int, default=1000, help="windows per configuration")
    parser.add_argument("--rows", type=int, default=1000, help="rows per window (data drift)")
    parser.add_argument("--shift", type=float, default=0.1,
                        help="numeric mean shift in std; categorical share of the top level moved to the last")
    parser.add_argument("--features", default="1,3,10,30")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--json", help="also write the numbers here")
    args = parser.parse_args()
    started = time.monotonic()
    results = {
        "settings": {"batches": args.batches, "rows": args.rows, "referenceRows": REFERENCE_ROWS,
                     "shift": args.shift},
        "dataDrift": data_drift(args.batches, args.rows, args.shift, [int(f) for f in args.features.split(",")],
                                args.seed),
        "performance": performance(args.batches * 4, args.seed),
        "highCardinality": high_cardinality(max(args.batches // 50, 5), args.seed),
    }
    print(f"{time.monotonic() - started:.0f} s")
    if args.json:
        with open(args.json, "w") as out:
            json.dump(results, out, indent=2)


if __name__ == "__main__":
    main()
