"""What `kubectl retrain status/history` print, from policy objects alone."""

from __future__ import annotations

import datetime as dt

import pytest

from retrain_operator.plugin import tables
from retrain_operator.plugin.report import ReportError, default_path, split_uri

NOW = dt.datetime(2026, 11, 25, 12, 0, tzinfo=dt.UTC)


def policy(status: dict, name: str = "churn", namespace: str = "ml") -> dict:
    return {"metadata": {"name": name, "namespace": namespace}, "status": status}


def test_ages_read_like_kubectl():
    assert [tables.age(t, NOW) for t in ("2026-11-25T11:59:15Z", "2026-11-25T11:55:00Z", "2026-11-25T07:00:00Z",
                                         "2026-11-20T12:00:00Z", None)] == ["45s", "5m", "5h", "5d", "-"]


def test_a_status_row_shows_model_drift_and_canary():
    status = {"phase": "RollingOut", "message": "canary v3 Progressing",
              "currentModel": {"version": "v2", "trainedAt": "2026-11-25T10:00:00Z"},
              "drift": {"checkId": "d4", "drift": True, "score": 0.4},
              "rollout": {"version": "v3", "phase": "Progressing", "weight": 30}}
    assert tables.status_row(policy(status), NOW, with_namespace=True) == [
        "ml", "churn", "RollingOut", "v2", "2h", "0.40!", "v3 30% Progressing", "-", "canary v3 Progressing"]


def test_a_new_policy_and_a_failed_drift_check_have_plain_cells():
    assert tables.status_row(policy({}), NOW) == ["churn", "-", "-", "-", "-", "-", "-", ""]
    assert tables.drift_cell({"drift": {"checkId": "d1", "drift": None, "error": {"reason": "DataError"}}}) == "error"
    assert tables.canary_cell({"rollout": {"version": "v3", "phase": "RolledBack", "weight": 0}}) == "v3 RolledBack"


def test_a_check_with_too_few_rows_shows_neither_a_score_nor_an_error():
    drift = {"checkId": "d2", "verdict": "insufficient-data", "message": "12 current rows, at least 200 needed"}
    assert tables.drift_cell({"drift": drift}) == "too few rows"
    assert tables.drift_verdict(drift) == "insufficient data: 12 current rows, at least 200 needed"
    assert tables.drift_verdict({"drift": False, "verdict": "no-drift"}) == "no drift"
    assert tables.drift_verdict({"error": {"reason": "DataError"}}) == "failed"


def test_history_marks_current_rejected_canary_and_superseded_versions():
    status = {"currentModel": {"version": "v2"},
              "rollout": {"version": "v4", "phase": "Paused", "weight": 50},
              "history": [
                  {"version": "v4", "trainedAt": "t4", "trigger": "drift", "parentVersion": "v2",
                   "metrics": {"accuracy": 0.91, "f1Macro": 0.9, "rows": 10}},
                  {"version": "v3", "trigger": "schedule", "rejected": "GateFailed", "metrics": {"zeta": 1.0}},
                  {"version": "v2", "trigger": "manual", "metrics": {}},
                  {"version": "v1", "trigger": "manual", "metrics": {"accuracy": True}}]}
    rows = tables.history_rows(policy(status))
    assert [r[4] for r in rows] == ["canary 50%", "rejected: GateFailed", "current", "superseded"]
    assert rows[0][5] == "accuracy=0.910 f1Macro=0.900" and rows[1][5] == "zeta=1.000"
    assert rows[2][5] == "-" and rows[3][5] == "-"  # booleans are not metrics


def test_render_pads_columns_like_kubectl():
    assert tables.render(["NAME", "PHASE"], [["a", "Ready"], ["longer", "-"]]) == (
        "NAME     PHASE\na        Ready\nlonger   -")


def test_report_uris_and_file_names():
    assert split_uri("s3://models/p/ml/churn/drift/d3/report.html") == ("models", "p/ml/churn/drift/d3/report.html")
    assert default_path("churn", {"checkId": "d3"}) == "churn-d3-drift-report.html"
    for bad in ("http://x/y", "s3://bucket-only"):
        with pytest.raises(ReportError):
            split_uri(bad)
