"""The kopf layer's own decisions: how long to wait after a reconcile that raised."""

from __future__ import annotations

from retrain_operator import handlers


def test_a_failing_reconcile_backs_off_exponentially_up_to_a_cap():
    assert [handlers.error_backoff(n) for n in range(1, 8)] == [10, 20, 40, 80, 160, 300, 300]
