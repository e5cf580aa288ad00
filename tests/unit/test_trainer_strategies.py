"""Which rows each strategy trains on: pure selection, no S3."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from retrain_contract.artifacts.errors import DataError
from retrain_trainer import config as config_module
from retrain_trainer import evaluate, strategies
from retrain_trainer.dataset import MODIFIED_COLUMN, OBJECT_COLUMN
from retrain_trainer.errors import ConfigError


def frame(old: int, new: int) -> pd.DataFrame:
    rows = old + new
    times = pd.date_range("2026-01-01", periods=rows, freq="h", tz="UTC")
    return pd.DataFrame({
        "x": np.arange(rows, dtype=float),
        "y": ["a", "b"] * (rows // 2) + ["a"] * (rows % 2),
        "ts": times,
        OBJECT_COLUMN: ["s3://d/old.parquet"] * old + ["s3://d/new.csv"] * new,
        MODIFIED_COLUMN: times,
    })


def test_full_uses_every_row_and_counts_the_new_ones():
    selection = strategies.select_full(frame(80, 20), {"s3://d/new.csv"})
    assert len(selection.frame) == 100 and selection.rows == {"history": 80, "new": 20}


def test_incremental_mixes_replay_at_the_configured_share():
    selection = strategies.select_incremental(frame(900, 100), {"s3://d/new.csv"}, 0.8, seed=1)
    assert selection.rows["new"] == 100 and selection.rows["replay"] == 400
    assert selection.notes["replayShare"] == pytest.approx(0.8)
    assert (selection.frame[OBJECT_COLUMN] == "s3://d/new.csv").sum() == 100


def test_incremental_replay_is_capped_by_the_history_there_is():
    selection = strategies.select_incremental(frame(50, 100), {"s3://d/new.csv"}, 0.8, seed=1)
    assert selection.rows["replay"] == 50


def test_incremental_without_new_data_is_a_data_error():
    with pytest.raises(DataError, match="no new data"):
        strategies.select_incremental(frame(50, 0), {"s3://d/new.csv"}, 0.8, seed=1)


def test_window_keeps_only_the_recent_span_by_timestamp_column():
    data = frame(100, 0)  # hourly rows over ~4 days
    selection = strategies.select_window(data, "ts", window_seconds=24 * 3600, half_life_seconds=None)
    assert len(selection.frame) == 25  # the newest row and the 24 hours before it
    assert selection.frame["ts"].min() == data["ts"].max() - pd.Timedelta(hours=24)


def test_window_weights_halve_every_half_life():
    selection = strategies.select_window(frame(100, 0), "ts", window_seconds=48 * 3600, half_life_seconds=24 * 3600)
    weights = selection.weights
    assert weights is not None and weights.max() == pytest.approx(1.0)
    assert weights.min() == pytest.approx(0.25)  # 48 h old: two half-lives


def test_window_without_a_timestamp_column_uses_object_times():
    selection = strategies.select_window(frame(100, 0), None, window_seconds=10 * 3600, half_life_seconds=None)
    assert len(selection.frame) == 11


CONFIG = {
    "policy": {"namespace": "ml", "name": "p"}, "version": "v1", "parentVersion": None, "trigger": {},
    "model": {"estimator": "SGDClassifier", "task": "classification", "target": "y"},
    "data": {"history": "s3://data/h/"}, "training": {"strategy": "full"},
    "storage": {"bucket": "models"},
}


def test_a_good_config_parses():
    parsed = config_module.parse(json.dumps(CONFIG))
    assert parsed.estimator == "SGDClassifier" and parsed.window_seconds == 7 * 24 * 3600


@pytest.mark.parametrize("change, message", [
    ({"model": {"estimator": "os.system", "target": "y"}}, "unknown estimator"),
    ({"model": {"estimator": "DecisionTreeClassifier", "target": "y"}, "training": {"strategy": "incremental"}},
     "cannot continue"),
    ({"data": {"history": "http://x/y"}}, "not an S3 URI"),
    ({"data": {}}, "history or data.incoming"),
    ({"model": {"estimator": "SGDClassifier"}}, "invalid run configuration"),
])
def test_bad_configs_are_config_errors(change, message):
    with pytest.raises(ConfigError, match=message):
        config_module.parse(json.dumps({**CONFIG, **change}))


def test_classification_metrics_have_the_documented_shape():
    held_out = evaluate.classification(["a", "a", "b", "b"], ["a", "b", "b", "b"])
    assert held_out["accuracy"] == 0.75
    assert set(held_out["perClass"]) == {"a", "b"} and held_out["perClass"]["a"]["recall"] == 0.5
    assert held_out["confusionMatrix"] == {"labels": ["a", "b"], "matrix": [[1, 1], [0, 2]]}
    assert set(evaluate.headline("classification", held_out)) == {"accuracy", "f1Weighted", "f1Macro"}


def test_regression_metrics():
    held_out = evaluate.regression([1.0, 2.0, 3.0], [1.0, 2.0, 4.0])
    assert held_out["mae"] == pytest.approx(1 / 3) and held_out["rmse"] == pytest.approx((1 / 3) ** 0.5)
