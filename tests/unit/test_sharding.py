"""Sharding: each policy has one owner, evenly and stably across processes; selectors as Kubernetes reads them."""

from __future__ import annotations

import subprocess
import sys
from collections import Counter

import pytest

from retrain_operator.core.sharding import (
    EXISTS,
    IN,
    LABEL,
    NOT_EXISTS,
    NOT_IN,
    Requirement,
    Shard,
    matches,
    parse_selector,
    shard_of,
)

NAMES = [(f"team-{i % 37}", f"policy-{i}") for i in range(10_000)]


def test_five_shards_share_ten_thousand_policies_evenly():
    counts = Counter(shard_of(namespace, name, 5) for namespace, name in NAMES)
    assert sorted(counts) == [0, 1, 2, 3, 4]
    for index, count in counts.items():
        assert 1800 <= count <= 2200, (index, count)


@pytest.mark.parametrize("count", [1, 2, 3, 5, 8])
def test_every_policy_is_owned_by_exactly_one_shard(count: int):
    shards = [Shard(index, count) for index in range(count)]
    for namespace, name in NAMES[:2000]:
        assert sum(shard.owns(namespace, name, {}) for shard in shards) == 1


def test_the_hash_is_stable_across_processes_and_releases():
    # Fixed pairs: a change of the hash would move every policy to another shard on upgrade.
    assert shard_of("default", "churn", 5) == 1
    assert shard_of("ml", "fraud-detector", 7) == 4
    assert shard_of("default", "churn", 2**64) == 0x8F73AF33FE14867C  # sha256("default/churn")[:8], big-endian
    # Python's hash() is salted per process; ours must not be.
    code = "from retrain_operator.core.sharding import shard_of; print(shard_of('default', 'churn', 1000003))"
    runs = {subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                           env={"PYTHONHASHSEED": seed, "PATH": ""} | _pythonpath()).stdout for seed in ("1", "2")}
    assert runs == {f"{shard_of('default', 'churn', 1000003)}\n"}


def _pythonpath() -> dict[str, str]:
    import os

    return {"PYTHONPATH": os.pathsep.join(sys.path)}


def test_one_shard_owns_everything_and_is_not_sharded():
    shard = Shard()
    assert not shard.sharded
    assert all(shard.owns(namespace, name, None) for namespace, name in NAMES[:100])
    assert Shard(0, 2).sharded and Shard(selector="team=a").sharded


@pytest.mark.parametrize(("index", "count"), [(-1, 2), (2, 2), (0, 0), (5, 3)])
def test_an_index_outside_the_count_is_refused(index: int, count: int):
    with pytest.raises(ValueError, match="shard"):
        Shard(index, count)


@pytest.mark.parametrize(("text", "expected"), [
    ("", ()),
    ("  ", ()),
    ("team=ml", (Requirement("team", IN, frozenset({"ml"})),)),
    ("team==ml", (Requirement("team", IN, frozenset({"ml"})),)),
    ("team!=ml", (Requirement("team", NOT_IN, frozenset({"ml"})),)),
    ("tier in (gold, silver)", (Requirement("tier", IN, frozenset({"gold", "silver"})),)),
    ("tier notin (bronze)", (Requirement("tier", NOT_IN, frozenset({"bronze"})),)),
    ("canary", (Requirement("canary", EXISTS),)),
    ("!canary", (Requirement("canary", NOT_EXISTS),)),
    ("app.kubernetes.io/part-of=shop,env=", (Requirement("app.kubernetes.io/part-of", IN, frozenset({"shop"})),
                                             Requirement("env", IN, frozenset({""})))),
    (" a = b , c in (d,e) , !f ", (Requirement("a", IN, frozenset({"b"})), Requirement("c", IN, frozenset({"d", "e"})),
                                   Requirement("f", NOT_EXISTS))),
])
def test_selectors_parse_as_kubernetes_reads_them(text: str, expected: tuple[Requirement, ...]):
    assert parse_selector(text) == expected


@pytest.mark.parametrize(("text", "complaint"), [
    ("a=b=c", "',' expected"),
    ("a in ()", "no values"),
    ("a in (x y)", "',' or '\\)' expected"),
    ("a in x", "'\\(' expected"),
    ("a in (x", "a value expected|',' or '\\)' expected"),
    (",a", "not a label key"),
    ("a,", "after the last ','"),
    ("!", "label key expected"),
    ("a > 3", "unexpected '>'"),
    ("-a=b", "not a label key"),
    ("a=b c", "',' expected"),
    ("a=" + "x" * 64, "not a label value"),
    ("a=b$", "not a label value"),
])
def test_bad_selectors_are_refused_with_what_is_wrong(text: str, complaint: str):
    with pytest.raises(ValueError, match=complaint) as raised:
        parse_selector(text)
    assert repr(text) in str(raised.value)


@pytest.mark.parametrize(("selector", "labels", "owned"), [
    ("team=ml", {"team": "ml"}, True),
    ("team=ml", {"team": "vision"}, False),
    ("team=ml", {}, False),
    ("team!=ml", {}, True),  # as in Kubernetes: a missing label is "not ml"
    ("team!=ml", {"team": "ml"}, False),
    ("tier in (gold,silver)", {"tier": "silver"}, True),
    ("tier in (gold,silver)", {}, False),
    ("tier notin (gold)", {}, True),
    ("tier notin (gold)", {"tier": "gold"}, False),
    ("canary", {"canary": ""}, True),
    ("!canary", {"canary": ""}, False),
    ("team=ml,!canary", {"team": "ml"}, True),
    ("team=ml,!canary", {"team": "ml", "canary": "yes"}, False),
])
def test_a_selector_owns_the_policies_whose_labels_match(selector: str, labels: dict[str, str], owned: bool):
    assert Shard(selector=selector).owns("ns", "p", labels) is owned


def test_selector_and_hash_combine():
    shards = [Shard(index, 3, "team=ml") for index in range(3)]
    for namespace, name in NAMES[:300]:
        assert sum(shard.owns(namespace, name, {"team": "ml"}) for shard in shards) == 1
        assert not any(shard.owns(namespace, name, {"team": "vision"}) for shard in shards)
        # Children (Jobs, Deployments) carry no policy labels: the hash alone keeps them.
        assert [shard.owns_key(namespace, name) for shard in shards].count(True) == 1


def test_a_bad_selector_is_refused_when_the_shard_is_made():
    with pytest.raises(ValueError, match="label selector"):
        Shard(selector="team in ml")


# -- the shell: flags, kopf filters, informers -----------------------------------------------------------------


@pytest.mark.parametrize(("argv", "complaint"), [
    (["--shard-index", "2", "--shard-count", "2"], "the shard index must be in 0..1 (count 2), not 2"),
    (["--shard-index", "-1", "--shard-count", "3"], "the shard index must be in 0..2"),
    (["--shard-count", "0"], "the shard count must be at least 1"),
    (["--shard-selector", "team in ml"], "label selector 'team in ml': '(' expected"),
    (["--shard-count", "two"], "argument --shard-count: invalid int value: 'two'"),
])
def test_bad_shard_flags_exit_with_one_line_and_no_traceback(argv: list[str], complaint: str,
                                                              capsys: pytest.CaptureFixture[str]):
    from retrain_operator import cli

    with pytest.raises(SystemExit) as exited:
        cli.main(["run", *argv])
    assert exited.value.code == 2
    error = capsys.readouterr().err
    assert complaint in error.splitlines()[-1]
    assert "Traceback" not in error


def test_the_loop_and_the_event_handler_are_filtered_by_shard_but_the_finalizer_step_is_not():
    """A `when=` on the delete handler would make kopf in the other shards remove the shared finalizer."""
    import kopf

    from retrain_operator import handlers

    registry = kopf.get_default_registry()
    whens = {handler.fn.__name__: handler.when for kind in (registry._spawning, registry._changing, registry._watching)
             for handler in kind._handlers}
    assert whens["policy_loop"] is handlers.owned
    assert whens["policy_changed"] is handlers.owned
    assert whens["policy_deleted"] is None
    assert whens["policy_mislabelled"] is handlers.mislabelled


def test_the_filter_asks_the_contexts_shard():
    from retrain_operator import handlers
    from retrain_operator.reconcile import Context

    namespace, name = next((ns, n) for ns, n in NAMES if shard_of(ns, n, 2) == 1)
    saved = handlers.CONTEXT
    try:
        handlers.CONTEXT = Context(kube=None, clock=None, settings=None, shard=Shard(1, 2, "team=ml"))  # type: ignore[arg-type]
        assert handlers.owned(name=name, namespace=namespace, labels={"team": "ml"}, body={})
        assert not handlers.owned(name=name, namespace=namespace, labels={"team": "vision"})
        handlers.CONTEXT = Context(kube=None, clock=None, settings=None, shard=Shard(0, 2))  # type: ignore[arg-type]
        assert not handlers.owned(name=name, namespace=namespace, labels={})
        assert Context(kube=None, clock=None, settings=None).shard == Shard()  # type: ignore[arg-type]
    finally:
        handlers.CONTEXT = saved


def test_the_informers_keep_only_the_children_of_this_shards_policies():
    import kubernetes

    from retrain_contract.api import names
    from retrain_operator.adapters.caches import Caches

    mine = next(n for ns, n in NAMES if ns == "team-0" and shard_of(ns, n, 2) == 0)
    theirs = next(n for ns, n in NAMES if ns == "team-0" and shard_of(ns, n, 2) == 1)

    def job(name: str, policy: str | None) -> dict:
        labels = {names.LABEL_MANAGED_BY: names.MANAGED_BY, **({names.LABEL_POLICY: policy} if policy else {})}
        return {"metadata": {"namespace": "team-0", "name": name, "labels": labels, "managedFields": [{}]}}

    caches = Caches(kubernetes.client.ApiClient(), ["team-0"], shard=Shard(0, 2, "team=ml"))
    for kind in (caches.jobs, caches.deployments, caches.services):
        informer = kind.informer("team-0")
        assert informer is not None
        for name, policy in (("a", mine), ("b", theirs), ("c", None)):
            informer.put(job(name, policy))
        kept = informer.get("team-0", "a")
        assert kept is not None and "managedFields" not in kept["metadata"]
        assert informer.get("team-0", "b") is None
        assert informer.get("team-0", "c") is not None  # no policy named: kept, as before sharding
    unsharded = Caches(kubernetes.client.ApiClient(), ["team-0"])
    informer = unsharded.jobs.informer("team-0")
    assert informer is not None
    informer.put(job("b", theirs))
    assert informer.get("team-0", "b") is not None


@pytest.mark.parametrize("count", [2, 3, 5])
def test_each_shard_watches_exactly_the_policies_labelled_for_it(count: int):
    """The server-side selectors, read as the API server reads them: each labelled policy is in exactly its
    owner's watch, and in no shard's unlabelled watch."""
    shards = [Shard(index, count) for index in range(count)]
    watches = [parse_selector(shard.watch_selector() or "") for shard in shards]
    unlabelled = [parse_selector(shard.unlabelled_selector() or "") for shard in shards]
    for namespace, name in NAMES[:500]:
        labels = {LABEL: shards[0].label_of(namespace, name)}
        assert [matches(watch, labels) for watch in watches] == [shard.owns(namespace, name, labels)
                                                                  for shard in shards]
        assert not any(matches(selector, labels) for selector in unlabelled)
        assert not any(shard.mislabelled(namespace, name, labels) for shard in shards)
        for stale in ({}, {LABEL: f"0-of-{count + 1}"}, {LABEL: "junk"}):  # new, or of another layout
            assert all(matches(selector, stale) for selector in unlabelled)
            assert not any(matches(watch, stale) for watch in watches)


def test_the_label_names_the_layout_so_a_resize_relabels():
    assert Shard(0, 5).label_of("default", "churn") == "1-of-5"
    assert Shard(3, 7).label_of("ml", "fraud-detector") == "4-of-7"
    assert Shard(2, 5).watch_selector() == f"{LABEL}=2-of-5"
    assert Shard(0, 2).unlabelled_selector() == f"{LABEL} notin (0-of-2,1-of-2)"


def test_one_shard_needs_no_label_and_its_selector_stays_in_the_operator():
    """A policy that leaves a server-side selector would leave kopf's finalizer behind with no one to remove it."""
    assert Shard().watch_selector() is None and Shard().unlabelled_selector() is None
    assert Shard(0, 1, "team=ml").watch_selector() is None
    assert not Shard(0, 1, "team=ml").mislabelled("default", "churn", {})
    assert Shard(0, 2, "team=ml").unlabelled_selector() == f"team=ml,{LABEL} notin (0-of-2,1-of-2)"


def test_a_wrong_label_is_mislabelled_only_for_this_installations_policies():
    shard = Shard(0, 5, "team=ml")
    right = shard.label_of("default", "churn")
    assert shard.mislabelled("default", "churn", {"team": "ml", LABEL: "0-of-5"})  # its hash says 1-of-5
    assert not shard.mislabelled("default", "churn", {"team": "ml", LABEL: right})
    assert not shard.mislabelled("default", "churn", {"team": "vision", LABEL: "0-of-5"})
