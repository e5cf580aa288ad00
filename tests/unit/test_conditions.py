import datetime as dt

from retrain_operator.core.conditions import get_condition, set_condition

T0 = dt.datetime(2026, 11, 24, 10, 0, tzinfo=dt.UTC)
T1 = T0 + dt.timedelta(hours=1)


def test_a_new_condition_has_every_kubernetes_field():
    [condition] = set_condition([], "Ready", True, "ModelAvailable", "v1 is current", 3, T0)
    assert condition == {"type": "Ready", "status": "True", "reason": "ModelAvailable", "message": "v1 is current",
                         "observedGeneration": 3, "lastTransitionTime": "2026-11-24T10:00:00Z"}


def test_transition_time_moves_only_when_the_status_flips():
    first = set_condition([], "Ready", True, "ModelAvailable", "v1", 1, T0)
    same = set_condition(first, "Ready", True, "ModelAvailable", "v2", 2, T1)
    flipped = set_condition(same, "Ready", False, "SecretNotFound", "gone", 2, T1)
    assert get_condition(same, "Ready")["lastTransitionTime"] == "2026-11-24T10:00:00Z"
    assert get_condition(same, "Ready")["message"] == "v2"
    assert get_condition(flipped, "Ready")["lastTransitionTime"] == "2026-11-24T11:00:00Z"


def test_other_conditions_are_kept_and_the_input_is_not_modified():
    original = set_condition([], "Training", False, "Idle", "", 1, T0)
    snapshot = [dict(c) for c in original]
    updated = set_condition(original, "Ready", True, "ModelAvailable", "", 1, T1)
    assert original == snapshot
    assert [c["type"] for c in updated] == ["Training", "Ready"]
