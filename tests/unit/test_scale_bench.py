"""The pure helpers of benchmarks/scale_bench.py: percentiles, the audit log count, /proc parsing."""

from __future__ import annotations

import importlib.util
import json
import math
from pathlib import Path

import pytest

_PATH = Path(__file__).resolve().parents[2] / "benchmarks" / "scale_bench.py"
_spec = importlib.util.spec_from_file_location("scale_bench", _PATH)
assert _spec is not None and _spec.loader is not None
bench = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(bench)

USER = bench.OPERATOR_USER


def event(audit_id: str, verb: str, resource: str = "", *, user: str = USER, group: str = "", subresource: str = "",
          stage: str = "ResponseComplete", uri: str = "/apis/x") -> str:
    ref = {"resource": resource, "apiGroup": group, "subresource": subresource} if resource else None
    body = {"auditID": audit_id, "stage": stage, "verb": verb, "requestURI": uri, "user": {"username": user}}
    if ref:
        body["objectRef"] = {k: v for k, v in ref.items() if v}
    return json.dumps(body)


def test_percentile_interpolates_between_ranks_like_numpy():
    samples = [0.5, 0.1, 0.3, 0.2, 0.4]
    assert bench.percentile(samples, 50) == pytest.approx(0.3)
    assert bench.percentile(samples, 0) == pytest.approx(0.1)
    assert bench.percentile(samples, 100) == pytest.approx(0.5)
    assert bench.percentile(samples, 25) == pytest.approx(0.2)
    # numpy.percentile(range(1, 51), 99) == 49.51
    assert bench.percentile([float(i) for i in range(1, 51)], 99) == pytest.approx(49.51)
    assert bench.percentile([7.0], 99) == 7.0


def test_percentile_refuses_no_samples_and_bad_ranks():
    with pytest.raises(ValueError):
        bench.percentile([], 50)
    with pytest.raises(ValueError):
        bench.percentile([1.0], 101)


def test_count_requests_counts_each_audit_id_once_and_only_the_operators():
    lines = [
        event("a", "get", "retrainpolicies", group="retrain.mlops.dev"),
        event("b", "list", "jobs", group="batch"),
        event("c", "watch", "jobs", group="batch", stage="ResponseStarted"),
        event("c", "watch", "jobs", group="batch", stage="ResponseComplete"),  # the same watch, ending
        event("d", "patch", "retrainpolicies", group="retrain.mlops.dev", subresource="status"),
        event("e", "get", "secrets"),
        event("f", "get", "secrets", user="system:kube-controller-manager"),  # someone else
        event("g", "get", uri="/apis?timeout=32s"),  # a non-resource URL
        "",
        '{"auditID": "h", "verb": "get", "us',  # the half-written last line
    ]
    counted = bench.count_requests(lines, USER)
    assert counted == {
        "get retrain.mlops.dev/retrainpolicies": 1,
        "list batch/jobs": 1,
        "watch batch/jobs": 1,
        "patch retrain.mlops.dev/retrainpolicies/status": 1,
        "get core/secrets": 1,
        "get /apis": 1,
    }
    assert bench.count_requests([line.encode() for line in lines], USER) == counted


def test_audit_log_reads_from_an_offset(tmp_path: Path):
    path = tmp_path / "audit.log"
    path.write_text(event("a", "list", "jobs", group="batch") + "\n")
    log = bench.AuditLog(path)
    offset = log.offset()
    with open(path, "a") as handle:
        handle.write(event("b", "get", "secrets") + "\n")
    assert log.operator_requests(offset) == {"get core/secrets": 1}
    assert sum(log.operator_requests(0).values()) == 2
    assert bench.AuditLog(tmp_path / "missing.log").offset() == 0


def test_per_policy_per_minute():
    assert bench.per_policy_per_minute(60, 100, 300) == pytest.approx(0.12)
    assert math.isnan(bench.per_policy_per_minute(1, 0, 60))


def test_proc_parsing():
    # A command name with spaces and parentheses; utime 150, stime 50 ticks at 100 Hz.
    stat = "1234 (python -m (x)) S 1 1234 1234 0 -1 4194560 100 0 0 0 150 50 0 0 20 0 3 0 1000 2000 300"
    assert bench.proc_stat_cpu_seconds(stat, 100) == pytest.approx(2.0)
    status = "Name:\tpython\nVmHWM:\t  204800 kB\nVmRSS:\t  153600 kB\n"
    assert bench.proc_status_kib(status, "VmRSS") == 153600
    assert bench.proc_status_kib(status, "VmHWM") == 204800
    with pytest.raises(KeyError):
        bench.proc_status_kib(status, "VmSwap")


def test_ratio_table_against_the_issues_targets():
    rows = {row[0]: row for row in bench.ratio_table({"rss_mib": 150.0, "trigger_to_job_p99_s": 2.0})}
    assert rows["rss_mib"] == ("rss_mib", "150.000", "300", "0.50x")
    assert rows["trigger_to_job_p99_s"][3] == "2.00x"
    assert rows["restart_all_status_s"][1:] == ("-", "60", "-")


def test_the_comparison_divides_current_by_baseline_where_both_measured():
    current = {"rss_mib": 150.0, "idle_requests_per_policy_per_min": 0.01, "trigger_to_job_p99_s": 0.2}
    baseline = {"rss_mib": 300.0, "idle_requests_per_policy_per_min": 0.6, "trigger_to_job_p99_s": 0.0,
                "cpu_percent": 3.0}
    assert bench.versus(current, baseline) == {"rss_mib": 0.5, "idle_requests_per_policy_per_min": 0.0167,
                                                     "trigger_to_job_p99_s": None}


def test_the_report_names_the_shards_and_each_ones_memory():
    text = bench.report({"policies": 5000, "shards": 5, "rss_mib": 240.0, "rss_mib_by_shard": [230.0, 240.0],
                         "machine": {"load_before": (0.1, 0.2, 0.3)}})
    assert text.startswith("5000 policies, 5 shards (one operator process each)")
    assert "rss_mib_by_shard" in text and "[230.0, 240.0]" in text
    assert bench.report({"policies": 10, "machine": {}}).startswith("10 policies, one operator replica")
