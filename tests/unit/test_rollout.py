"""The canary rollout state machine and its analysis: every transition, without a cluster."""

from __future__ import annotations

import datetime as dt

import pytest

from retrain_contract.api.spec import AnalysisSpec, CanarySpec
from retrain_operator.core import analysis, rollout
from retrain_operator.core.rollout import Commands, Observation

T0 = dt.datetime(2026, 11, 25, 12, 0, tzinfo=dt.UTC)
STEPS = {"steps": [{"setWeight": 10}, {"pause": {"duration": "5m"}}, {"setWeight": 50}, {"pause": {}},
                   {"setWeight": 100}], "analysis": {"interval": "1m", "minRequests": 20}}


def canary(**overrides) -> CanarySpec:
    return CanarySpec.from_dict({**STEPS, **overrides})


def metrics(ok: float, errors: float = 0, fast: float | None = None, classes: dict | None = None) -> dict:
    """Cumulative counters: `ok` 200s and `errors` 500s, all in the 10 ms bucket unless `fast` says."""
    total = ok + errors
    quick = total if fast is None else fast
    return {"requests": {"200": ok, "500": errors},
            "buckets": {"0.005": 0.0, "0.01": quick, "0.1": total, "+Inf": total},
            "classes": classes or {"yes": ok * 0.3, "no": ok * 0.7}}


class Driver:
    """Feeds the machine as the shell would: one decision per call, the state carried over."""

    def __init__(self, spec: CanarySpec | None = None, replicas: int = 4):
        self.spec = spec or canary()
        self.replicas = replicas
        self.state = rollout.start("v2", "s3://m/v2/", "v1", T0, Commands())
        self.stable_count = 0.0
        self.canary_count = 0.0
        self.canary_errors = 0.0

    def step(self, at: dt.timedelta, **observed) -> rollout.Step:
        seen = Observation(**{"canary_ready": True, **observed})
        result = rollout.advance(self.spec, self.state, self.replicas, T0 + at, seen)
        self.state = result.state
        return result

    def traffic(self, at: dt.timedelta, canary_errors: float = 0, n: float = 100, **observed) -> rollout.Step:
        """A scrape after `n` more requests to each version."""
        self.stable_count += n
        self.canary_count += n - canary_errors
        self.canary_errors += canary_errors
        stable, canary = metrics(self.stable_count), metrics(self.canary_count, self.canary_errors)
        return self.step(at, stable_metrics=stable, canary_metrics=canary, **observed)


M = dt.timedelta(minutes=1)


def test_the_first_weight_waits_for_ready_canary_pods():
    driver = Driver()
    first = driver.step(0 * M, canary_ready=False)
    assert first.weight == 0 and first.canary_replicas == 1 and first.stable_replicas == 4
    assert "waiting for canary pods to be Ready" in first.state["message"]
    ready = driver.step(0.5 * M)
    assert ready.weight == 10 and ready.state["stepIndex"] == 1
    assert ("Normal", "CanaryWeight", "v2: canary at 10%") in ready.events


def test_a_canary_never_ready_is_rolled_back_after_ready_timeout():
    driver = Driver(canary(readyTimeout="2m"))
    driver.step(0 * M, canary_ready=False)
    driver.step(1 * M, canary_ready=False)
    gone = driver.step(3 * M, canary_ready=False)
    assert gone.finished == rollout.ROLLED_BACK and gone.state["reason"] == "CanaryNotReady"
    assert gone.weight == 0 and gone.canary_replicas == 0 and gone.stable_version == "v1"


def test_a_timed_pause_ends_only_after_its_time_and_a_passing_window():
    driver = Driver()
    driver.step(0 * M)
    waiting = driver.step(6 * M)  # time is up, but nothing was measured in this step yet
    assert waiting.state["stepIndex"] == 1 and "waiting for an analysis window" in waiting.state["message"]
    driver.traffic(6 * M)  # the first scrape is only a baseline
    assert driver.state["lastAnalysis"]["result"] == analysis.INCONCLUSIVE
    passed = driver.traffic(7 * M)
    assert passed.state["lastAnalysis"]["result"] == analysis.PASSED
    assert passed.weight == 50 and passed.state["stepIndex"] == 3
    assert passed.state["phase"] == rollout.PAUSED and passed.state["reason"] == "AwaitingPromotion"


def test_an_unbounded_pause_waits_for_promote_and_then_stable_rolls_out_first():
    driver = Driver()
    driver.step(0 * M)
    driver.traffic(1 * M)
    driver.traffic(2 * M)
    paused = driver.traffic(8 * M)
    assert paused.state["phase"] == rollout.PAUSED and paused.weight == 50
    assert driver.traffic(60 * M).state["phase"] == rollout.PAUSED  # waits as long as it takes
    promoting = driver.step(61 * M, commands=Commands(promote="now"))
    assert promoting.state["phase"] == rollout.PROMOTING and promoting.stable_version == "v2"
    assert promoting.weight == 50 and promoting.canary_replicas == 2 and promoting.stable_replicas == 4
    still = driver.step(62 * M, commands=Commands(promote="now"), stable_version="v1")
    assert still.state["phase"] == rollout.PROMOTING and still.finished is None
    done = driver.step(63 * M, commands=Commands(promote="now"), stable_version="v2")
    assert done.finished == rollout.SUCCEEDED and done.weight == 0 and done.canary_replicas == 0
    assert done.stable_version == "v2"


def test_paused_at_says_since_when_a_paused_rollout_waits_and_goes_when_it_moves_on():
    driver = Driver()
    driver.step(0 * M)
    assert "pausedAt" not in driver.state  # a timed pause step is progress, not a wait
    driver.traffic(1 * M)
    driver.traffic(2 * M)
    paused = driver.traffic(8 * M)
    assert paused.state["phase"] == rollout.PAUSED and paused.state["pausedAt"] == "2026-11-25T12:08:00Z"
    by_hand = driver.traffic(30 * M, commands=Commands(pause=True))
    assert by_hand.state["reason"] == "PausedByHand" and by_hand.state["pausedAt"] == "2026-11-25T12:08:00Z"
    assert driver.traffic(60 * M).state["pausedAt"] == "2026-11-25T12:08:00Z"  # back to awaiting promotion
    promoting = driver.step(61 * M, commands=Commands(promote="now"))
    assert promoting.state["phase"] == rollout.PROMOTING and "pausedAt" not in promoting.state
    older = {**driver.state, "phase": rollout.PAUSED, "reason": "AwaitingPromotion"}
    older.pop("pausedAt", None)  # written by an operator before pausedAt existed: the wait counts from now
    driver.state = older
    assert driver.step(62 * M).state["pausedAt"] == "2026-11-25T13:02:00Z"


def test_completing_every_step_promotes_without_a_hand():
    driver = Driver(canary(steps=[{"setWeight": 20}, {"pause": {"duration": "2m"}}, {"setWeight": 100}]))
    driver.step(0 * M)
    driver.traffic(1 * M)
    driver.traffic(2 * M)
    end = driver.step(3 * M)
    assert end.state["phase"] == rollout.PROMOTING and end.state["reason"] == "StepsCompleted"
    assert end.weight == 100


def test_failed_analysis_rolls_back_with_the_reason():
    driver = Driver()
    driver.step(0 * M)
    driver.traffic(1 * M)
    failed = driver.traffic(2 * M, canary_errors=30)
    assert failed.finished == rollout.ROLLED_BACK and failed.state["reason"] == "AnalysisFailed"
    assert "canary 5xx rate 0.3000 vs stable 0.0000" in failed.state["message"]
    assert failed.weight == 0 and failed.canary_replicas == 0 and failed.stable_version == "v1"
    assert failed.events[-1][:2] == ("Warning", "AnalysisFailed")
    after = driver.traffic(3 * M)
    assert after.state["phase"] == rollout.ROLLED_BACK and after.events == []  # final


def test_failure_limit_tolerates_failed_windows():
    driver = Driver(canary(analysis={"interval": "1m", "minRequests": 20, "failureLimit": 1}))
    driver.step(0 * M)
    driver.traffic(1 * M)
    assert driver.traffic(2 * M, canary_errors=30).finished is None
    assert driver.traffic(3 * M, canary_errors=30).finished == rollout.ROLLED_BACK


def test_too_little_traffic_is_inconclusive_and_eventually_pauses_for_a_human():
    driver = Driver(canary(analysis={"interval": "1m", "minRequests": 1000, "inconclusiveLimit": 3}))
    driver.step(0 * M)
    for minute in (1, 2):
        assert driver.traffic(minute * M).state["phase"] == rollout.PROGRESSING
    paused = driver.traffic(3 * M)
    assert paused.state["phase"] == rollout.PAUSED and paused.state["reason"] == "AnalysisInconclusive"
    assert "fewer than minRequests 1000" in paused.state["message"]
    assert paused.state["stepIndex"] == 1  # never a silent pass


def test_abort_during_a_pause_returns_all_traffic_to_stable():
    driver = Driver()
    driver.step(0 * M)
    aborted = driver.step(2 * M, commands=Commands(abort="2026-11-25T12:02:00Z"))
    assert aborted.finished == rollout.ABORTED and aborted.weight == 0 and aborted.canary_replicas == 0


def test_annotations_present_at_the_start_are_not_acted_on():
    state = rollout.start("v3", "s3://m/v3/", "v2", T0, Commands(promote="old", abort="old"))
    result = rollout.advance(canary(), state, 2, T0, Observation(canary_ready=True,
                                                                 commands=Commands(promote="old", abort="old")))
    assert result.state["phase"] == rollout.PROGRESSING and result.weight == 10


def test_manual_pause_holds_and_resume_continues():
    driver = Driver()
    driver.step(0 * M)
    held = driver.step(10 * M, commands=Commands(pause=True))
    assert held.state["phase"] == rollout.PAUSED and held.weight == 10
    assert held.events[-1][:2] == ("Normal", "RolloutPaused")
    resumed = driver.traffic(11 * M)
    assert resumed.state["phase"] == rollout.PROGRESSING
    assert ("Normal", "RolloutResumed") in [event[:2] for event in resumed.events]


def test_a_restarted_operator_resumes_the_same_step_with_the_same_time_left():
    driver = Driver()
    driver.step(0 * M)
    driver.traffic(1 * M)
    midway = driver.traffic(2 * M)
    assert midway.state["stepIndex"] == 1 and midway.requeue is not None
    # A new operator process knows only the status: the state dict, round-tripped.
    import json

    restored = json.loads(json.dumps(driver.state))
    later = rollout.advance(driver.spec, restored, 4, T0 + 4 * M, Observation(canary_ready=True))
    assert later.state["stepIndex"] == 1 and "pause until 2026-11-25T12:05:00Z" in later.state["message"]
    done = rollout.advance(driver.spec, later.state, 4, T0 + 5 * M, Observation(canary_ready=True))
    assert done.state["stepIndex"] == 3


def test_a_canary_that_loses_its_pods_gets_no_traffic_until_they_are_back():
    driver = Driver()
    driver.step(0 * M)
    lost = driver.step(1 * M, canary_ready=False)
    assert lost.weight == 0 and lost.state["weight"] == 10 and lost.finished is None


def test_scale_down_stable_as_the_canary_grows():
    assert rollout.split(4, 10, scale_down_stable=False) == (1, 4)
    assert rollout.split(4, 50, scale_down_stable=True) == (2, 2)
    assert rollout.split(4, 90, scale_down_stable=True) == (4, 1)
    assert rollout.split(1, 100, scale_down_stable=True) == (1, 1)


def test_prometheus_queries_judge_by_their_condition_and_failure_limit():
    spec = canary(analysis={"interval": "1m", "minRequests": 20, "prometheus": [
        {"name": "business", "query": "sum(rate(x[1m]))", "successCondition": "result >= 0.9", "failureLimit": 1}]})
    driver = Driver(spec)
    driver.step(0 * M)
    driver.traffic(1 * M, queries={"business": 0.95})
    assert driver.traffic(2 * M, queries={"business": 0.5}).finished is None  # one failure tolerated
    assert driver.traffic(3 * M, queries={"business": 0.5}).finished == rollout.ROLLED_BACK


@pytest.mark.parametrize(("condition", "value", "expected"), [
    ("result < 0.05", 0.01, True), ("result < 0.05", 0.05, False), ("result>=1", 1.0, True),
    ("result != 0", 0.0, False), ("result < 1", None, None), ("result < 1", float("nan"), None)])
def test_success_conditions_are_parsed_not_evaluated(condition, value, expected):
    assert analysis.query_succeeds(condition, value) is expected
    with pytest.raises(ValueError):
        analysis.query_succeeds("__import__('os').system('x')", 1.0)


def test_latency_and_prediction_shift_are_judged_against_stable_in_the_same_window():
    spec = AnalysisSpec(min_requests=20)
    before = metrics(0)
    slow = {"requests": {"200": 100.0}, "buckets": {"0.01": 0.0, "0.1": 0.0, "1.0": 100.0, "+Inf": 100.0},
            "classes": {"yes": 30.0, "no": 70.0}}
    outcome = analysis.judge_window(spec, metrics(100), slow, before, {"requests": {}, "buckets": {}, "classes": {}})
    assert outcome.result == analysis.FAILED and "canary p90" in outcome.summary()  # 100 requests: p90

    skewed = metrics(100, classes={"yes": 100.0})
    shifted = analysis.judge_window(spec, metrics(100), skewed, before, before)
    assert shifted.result == analysis.FAILED and "Jensen-Shannon" in shifted.summary()
    assert analysis.judge_window(spec, metrics(100), metrics(100), before, before).result == analysis.PASSED


def test_a_counter_reset_makes_the_window_inconclusive():
    spec = AnalysisSpec(min_requests=20)
    outcome = analysis.judge_window(spec, metrics(200), metrics(10), metrics(100), metrics(100))
    assert outcome.result == analysis.INCONCLUSIVE and "restarted" in outcome.summary()


def test_snapshots_are_read_from_the_model_servers_metrics_pages():
    from prometheus_client import generate_latest

    from retrain_trainer.serving.metrics import ServingMetrics

    pages = []
    for requests in (3, 4):
        served = ServingMetrics("v2")
        for _ in range(requests):
            served.request(200, 0.004)
        served.request(500, 0.2)
        served.predictions(["yes", "no", "no"], 3)
        pages.append(generate_latest(served.registry).decode())
    snapshot = analysis.snapshot_from_metrics(pages, "v2")
    assert snapshot["requests"] == {"200": 7.0, "500": 2.0}
    assert snapshot["buckets"]["0.005"] == 7.0 and snapshot["buckets"]["+Inf"] == 9.0
    assert snapshot["classes"] == {"yes": 2.0, "no": 4.0}
    assert analysis.snapshot_from_metrics(pages, "v1") == {"requests": {}, "buckets": {}, "classes": {}}


def test_a_prediction_shift_in_a_handful_of_requests_is_not_taken_for_a_real_one():
    spec = AnalysisSpec(min_requests=10)
    before = {"requests": {}, "buckets": {}, "classes": {}}
    few = {**metrics(10), "classes": {"yes": 6.0, "no": 4.0}}
    outcome = analysis.judge_window(spec, metrics(100), few, before, before)
    shift = next(m for m in outcome.measurements if m.name == "predictions")
    assert shift.result == analysis.PASSED and "Jensen-Shannon 0.2" in shift.message
    many = {**metrics(1000), "classes": {"yes": 600.0, "no": 400.0}}
    assert next(m for m in analysis.judge_window(spec, metrics(100), many, before, before).measurements
                if m.name == "predictions").result == analysis.FAILED


def test_the_shadow_step_mirrors_until_the_first_weight_and_is_judged_like_live_traffic():
    driver = Driver(canary(mirror=True, steps=[{"pause": {"duration": "2m"}}, {"setWeight": 50},
                                              {"setWeight": 100}]))
    first = driver.step(0 * M)
    assert first.mirror and first.weight == 0
    assert rollout.due_for_analysis(driver.spec, driver.state, T0 + 1 * M)
    early = driver.step(3 * M)  # time is up, but no window was judged yet
    assert early.state["stepIndex"] == 0 and "mirrored traffic" in early.state["message"]
    driver.traffic(3 * M)
    live = driver.traffic(4 * M)
    assert live.weight == 100 or live.state["phase"] == rollout.PROMOTING
    assert not live.mirror


def test_one_slow_request_in_a_small_window_is_not_a_slow_version():
    spec = AnalysisSpec(min_requests=10)
    empty = {"requests": {}, "buckets": {}, "classes": {}}
    one_slow = {"requests": {"200": 20.0}, "buckets": {"0.01": 19.0, "0.25": 20.0, "+Inf": 20.0},
                "classes": {"yes": 6.0, "no": 14.0}}
    stable = {"requests": {"200": 80.0}, "buckets": {"0.01": 80.0, "0.25": 80.0, "+Inf": 80.0},
              "classes": {"yes": 24.0, "no": 56.0}}
    outcome = analysis.judge_window(spec, stable, one_slow, empty, empty)
    latency = next(m for m in outcome.measurements if m.name == "latency")
    assert latency.result == analysis.PASSED and latency.message.startswith("canary p50")
    many = {"requests": {"200": 2000.0}, "buckets": {"0.01": 1900.0, "0.25": 2000.0, "+Inf": 2000.0},
            "classes": {"yes": 600.0, "no": 1400.0}}
    slow_tail = analysis.judge_window(spec, stable, many, empty, empty)
    assert next(m for m in slow_tail.measurements if m.name == "latency").message.startswith("canary p99")


def test_a_restarted_operator_judges_the_same_window_from_the_baseline_in_status():
    """The scrape that starts a window is kept in the rollout record, not in the operator's memory."""
    import json

    driver = Driver()
    driver.step(0 * M)
    driver.traffic(1 * M)  # the first scrape: the window's start
    assert driver.state["lastAnalysis"]["result"] == analysis.INCONCLUSIVE
    assert driver.state["baseline"]["canary"]["requests"]["200"] == 100
    restarted = Driver()
    restarted.state = json.loads(json.dumps(driver.state))  # status as the API server stores it
    restarted.stable_count, restarted.canary_count = driver.stable_count, driver.canary_count
    judged = restarted.traffic(2 * M)
    assert judged.state["lastAnalysis"]["result"] == analysis.PASSED  # 100 requests each in the window


@pytest.mark.parametrize("table", [
    ({"yes": 30, "no": 70}, {"yes": 30, "no": 70}),
    ({"yes": 30, "no": 70}, {"yes": 45, "no": 55}),
    ({"a": 500, "b": 300, "c": 200}, {"a": 430, "b": 340, "c": 230}),
    ({"a": 5000, "b": 10}, {"a": 4000, "b": 900}),  # a p-value far below 1e-100
    ({"a": 12.5, "b": 3.25, "c": 0}, {"a": 10, "b": 7, "c": 2}),
])
def test_the_class_mix_test_agrees_with_scipy(table):
    """The operator computes Pearson's chi-squared with mpmath; SciPy (in the workload, not the operator)
    is the reference."""
    from scipy.stats import chi2_contingency

    left, right = table
    keys = sorted(set(left) | set(right))
    expected = chi2_contingency([[left.get(k, 0) for k in keys], [right.get(k, 0) for k in keys]],
                                correction=False).pvalue
    assert analysis.same_classes_pvalue(left, right) == pytest.approx(expected, rel=1e-9, abs=1e-300)
