"""The caches' pure parts: what a policy names, the policy cache's echo rule, bucket answers, written objects,
and the jittered periodic look."""

from __future__ import annotations

from retrain_operator.adapters.bucket_checks import BucketChecks
from retrain_operator.adapters.policy_cache import PolicyCache
from retrain_operator.adapters.written import Written
from retrain_operator.core.in_flight import storage_in_use
from retrain_operator.core.references import SECRET, Ref, ReferenceIndex, references
from retrain_operator.core.requeue import JITTER, next_look


def _policy(rv: str, status: dict | None = None, annotations: dict | None = None) -> dict:
    return {"metadata": {"namespace": "ns", "name": "p", "resourceVersion": rv, "annotations": annotations or {}},
            "spec": {}, "status": status or {}}


def test_a_policy_names_its_credentials_signing_keys_and_route():
    spec = {"storage": {"credentialsSecret": {"name": "s3"}},
            "signing": {"publicKeySecret": {"name": "pub"}, "privateKeySecret": {"name": "priv"}},
            "serving": {"router": {"type": "gatewayAPI", "httpRoute": "web"}}}
    assert references("ns", spec) == {Ref(SECRET, "ns", "s3"), Ref(SECRET, "ns", "pub"), Ref(SECRET, "ns", "priv"),
                                      Ref("gatewayAPI", "ns", "web")}
    assert references("ns", {"serving": {"router": {"type": "istio", "virtualService": "vs"}}}) == {
        Ref("istio", "ns", "vs")}
    # A replica-ratio router names no route; an invalid spec names what it can.
    assert references("ns", {"serving": {"router": {"type": "replicas", "httpRoute": "x"}}}) == frozenset()
    assert references("ns", {"storage": "nonsense", "signing": {"publicKeySecret": 3}}) == frozenset()
    assert references("ns", None) == frozenset()


def test_the_reference_index_answers_both_ways_and_forgets():
    index = ReferenceIndex()
    shared, own = Ref(SECRET, "ns", "s3"), Ref(SECRET, "ns", "mine")
    assert index.set(("ns", "a"), frozenset({shared})) == {shared}
    assert index.set(("ns", "b"), frozenset({shared, own})) == {own}  # shared was named already
    assert index.policies(shared) == {("ns", "a"), ("ns", "b")}
    index.set(("ns", "b"), frozenset({shared}))  # b stops naming `own`
    assert own not in index and index.policies(own) == frozenset()
    index.forget(("ns", "a"))
    assert index.policies(shared) == {("ns", "b")}
    index.forget(("ns", "b"))
    assert shared not in index


def test_the_echo_of_our_own_status_write_does_not_wake_the_loop():
    cache = PolicyCache()
    assert cache.observe(None, _policy("1"))  # listed at start: news
    cache.wrote("ns", "p", _policy("3", status={"phase": "Idle"}, annotations={"a": "1"}))
    # An event older than our write (a user's annotation, rv 2) arrives late: it wakes, but the cache keeps the
    # write's answer, which already has that annotation.
    assert cache.observe("MODIFIED", _policy("2", annotations={"a": "1"}))
    assert cache.get("ns", "p")["metadata"]["resourceVersion"] == "3"
    # The echo of our write: not news.
    assert not cache.observe("MODIFIED", _policy("3", status={"phase": "Idle"}, annotations={"a": "1"}))
    # Anything after it is.
    assert cache.observe("MODIFIED", _policy("4", status={"phase": "Idle"}, annotations={"a": "2"}))
    assert cache.get("ns", "p")["metadata"]["annotations"] == {"a": "2"}


def test_a_relist_ends_waiting_for_an_echo_that_may_never_come():
    cache = PolicyCache()
    cache.wrote("ns", "p", _policy("3"))
    assert cache.observe(None, _policy("7"))  # the watch restarted from a fresh list: rv 3's event is skipped
    assert cache.get("ns", "p")["metadata"]["resourceVersion"] == "7"
    assert cache.observe("MODIFIED", _policy("8"))


def test_a_write_whose_event_came_first_or_never_comes_hides_no_later_edit():
    cache = PolicyCache()
    cache.observe(None, _policy("1"))
    # A write that changed nothing keeps rv 1, whose event came long ago: a user's trigger after it is taken.
    cache.wrote("ns", "p", _policy("1"))
    assert cache.observe("MODIFIED", _policy("2", annotations={"trigger": "3"}))
    assert cache.get("ns", "p")["metadata"]["annotations"] == {"trigger": "3"}
    # The write's event was quicker than the thread that made it.
    cache.observe("MODIFIED", _policy("3", status={"phase": "Ready"}))
    cache.wrote("ns", "p", _policy("3", status={"phase": "Ready"}))
    assert cache.observe("MODIFIED", _policy("4", annotations={"trigger": "4"}))
    assert cache.get("ns", "p")["metadata"]["annotations"] == {"trigger": "4"}


def test_a_write_is_not_waited_for_past_the_patience():
    clock = _Clock()
    cache = PolicyCache(patience=60.0, clock=lambda: clock.now)
    cache.observe(None, _policy("1"))
    cache.wrote("ns", "p", _policy("5"))
    clock.now = 61.0
    assert cache.observe("MODIFIED", _policy("6", annotations={"trigger": "2"}))
    assert cache.get("ns", "p")["metadata"]["resourceVersion"] == "6"


def test_the_cache_hands_out_copies_and_forgets_deleted_policies():
    cache = PolicyCache()
    cache.observe(None, _policy("1"))
    cache.get("ns", "p")["status"]["phase"] = "changed by a caller"
    assert cache.get("ns", "p")["status"] == {}
    assert cache.observe("DELETED", _policy("2"))
    assert cache.get("ns", "p") is None


class _Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def test_a_bucket_answer_is_trusted_for_a_jittered_period_and_a_failure_only_briefly():
    clock = _Clock()
    checks = BucketChecks(resync=600, failure_resync=10, clock=clock, rand=lambda: 0.5)
    assert checks.lookup("q") == (False, None)
    checks.put("q", None)
    clock.now = 600 * (1 - JITTER * 0.5) - 1
    assert checks.lookup("q") == (True, None)
    clock.now += 1
    assert checks.lookup("q") == (False, None)  # due again: checked anew
    checks.put("q", ("BucketNotFound", "bucket 'x' does not exist"))
    clock.now += 9.9
    assert checks.lookup("q") == (True, ("BucketNotFound", "bucket 'x' does not exist"))
    clock.now += 0.1
    assert checks.lookup("q") == (False, None)
    assert checks.lookup("another question") == (False, None)


def test_a_written_object_stands_in_until_its_informer_sees_it_or_a_minute_passes():
    clock = _Clock()
    written = Written(ttl=60, clock=clock)
    job = {"metadata": {"namespace": "ns", "name": "j"}}
    written.put(job)
    assert written.get("ns", "j") is job and written.in_namespace("ns") == [job]
    assert written.in_namespace("other") == []
    written.seen("ns", "j")
    assert written.get("ns", "j") is None
    written.put(job)
    clock.now = 60
    assert written.get("ns", "j") is None and written.in_namespace("ns") == []


def test_only_the_periodic_look_is_jittered_and_only_earlier():
    assert next_look(30, 300, 0.99) == 30  # a look asked for a reason is kept
    assert next_look(300, 300, 0.0) == 300
    assert next_look(1e9, 300, 0.5) == 300 * (1 - JITTER * 0.5)
    looks = [next_look(300, 300, i / 100) for i in range(100)]
    assert min(looks) > 300 * (1 - JITTER) - 1e-9 and max(looks) <= 300


def test_a_bucket_in_use_is_checked_at_every_look():
    assert storage_in_use({"activeRun": {"job": "p-v2"}})
    assert storage_in_use({"activeDriftCheck": {"job": "p-drift-1"}})
    assert storage_in_use({"rollout": {"phase": "Paused"}})
    assert not storage_in_use({"rollout": {"phase": "Succeeded"}, "currentModel": {"version": "v1"}})
    assert not storage_in_use({})
