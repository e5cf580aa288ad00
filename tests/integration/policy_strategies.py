"""Hypothesis strategies for RetrainPolicy specs: mostly near-valid, plus mutations that break them.

A spec starts from a valid base (the shape of conftest.py Scenario.policy_spec), every section is
varied (valid values, edge values, values the schema or the operator's semantic checks refuse),
and then up to a few random mutations break it in ways no section strategy thinks of: a wrong
type, a missing field, an unknown field, a huge or unicode string, a negative number. The API
server is the judge of what is valid; these strategies only have to cover the space well.
"""

from __future__ import annotations

import copy
from typing import Any

from hypothesis import strategies as st

from retrain_contract.api.estimators import ESTIMATORS

Json = dict[str, Any]

CLASSIFIERS = sorted(n for n, i in ESTIMATORS.items() if i.task == "classification")
REGRESSORS = sorted(n for n, i in ESTIMATORS.items() if i.task == "regression")

# Crons: plain, macros and odd-but-valid ones; then never firing (no such date) and malformed ones.
CRONS = ["0 3 * * *", "*/5 * * * *", "@daily", "@hourly", "@yearly", "0 0 1 1 *", "0 0 29 2 *", "59 23 31 12 *",
         "0 0 * * 7", "0 0 * * MON-FRI", "0 0 1-7 * 1", "0 12 * JAN *", "0 0 31 2 1", "0 0 29 2 MON", "0\t3\t*\t*\t*"]
ODD_CRONS = ["0 0 31 2 *", "0 0 30 2 *", "0 0 31 4 *", "*/0 * * * *", "61 * * * *", "* 25 * * *", "0 0 0 * *",
             "0 0 * 13 *", "not a cron at all", "* * * * * *", "@every 5m", "@reboot", "0 0 L * *", "0 0 ? * *",
             "5-1 * * * *", "1,2,,3 * * * *", "  0 3 * * *", "H H * * *"]
TIME_ZONES = ["UTC", "Europe/Berlin", "America/New_York", "Asia/Kolkata", "Pacific/Chatham", "Etc/GMT+12",
              "America/Argentina/ComodRivadavia", "Factory"]
ODD_TIME_ZONES = ["Etc/GMT+14", "Mars/Olympus", "", " ", "utc", "UTC ", "/etc/localtime", "../UTC", "Europe/Berlin/",
                  "a" * 64, "a" * 65]
DURATIONS = ["90s", "30m", "6h", "7d", "1h30m", "1.5h", "500ms", "2h45m30s", "0s", "1ns"]
ODD_DURATIONS = ["0", "0.000001s", "999999999d", "99999999999999h", "100000000d", "-5m", "5", "", "PT5M", "1y",
                 "µs", "1µs", "2w", "1h 30m", "1H", "10000000000000000000000s", "1e3s", ".5h", "5.h", 0, 60, -1, 1.5]
QUANTITIES = ["1", "2", "0", "500m", "1.5", "0.5", "100m", "1Gi", "512Mi", "1024Mi", "1Ki", "1e3", "1E2", "+1", 1, 2,
              8, 0]
ODD_QUANTITIES = ["-1", "1.", ".5", "1Gb", "1 Gi", "", "9999999999999999999", "1e400", "0.000000001", "1n", "1u",
                  "1P", "1Ei", "abc", -1, 2**31, 2**53 + 1]
RESOURCE_NAMES = ["cpu", "memory", "nvidia.com/gpu", "ephemeral-storage", "example.com/fpga", "hugepages-2Mi"]
ODD_RESOURCE_NAMES = ["gpu count", "example.com/", "ü", "a/b/c"]
S3_URIS = ["s3://ml-data/churn/history/", "s3://ml-data/churn/incoming/", "s3://ml-data/churn/live/",
           "s3://ml-data/one.parquet", "s3://a.b/x", "s3://ml-data/ü/日本/"]
ODD_S3_URIS = ["s3://ml-data", "s3://ML-DATA/x/", "s3://a/x", "http://ml-data/x", "s3://ml-data/" + "k" * 1100,
               "s3://-bad-/x", "s3://ml..data/x/", ""]
METRICS = ["accuracy", "f1Weighted", "f1Macro", "r2", "rmse", "mae"]
ODD_METRICS = ["auc", "F1Macro", ""]
LABEL_KEYS = ["nvidia.com/gpu.present", "kubernetes.io/os", "dedicated", "example.com/" + "y" * 63]
ODD_LABEL_KEYS = ["gpu type", "a/b/c", "x" * 64, "", "ü", "-a"]
LABEL_VALUES = ["true", "linux", "a100", "", "a.b_c-d"]
ODD_LABEL_VALUES = ["-bad", "x" * 64, "ü", "a b"]
NAMES = ["s3-credentials", "churn", "churn.routes", "a"]
ODD_NAMES = ["Bad_Name", "-x", "x" * 254, "ü", ""]


MISSING = object()


def _weighted(common: list[Any], rare: list[Any], p_rare: float) -> list[Any]:
    """`common` repeated so that an item of `rare` comes up about `p_rare` of the time, in one draw."""
    repeat = max(1, round(len(rare) * (1 - p_rare) / (p_rare * len(common))))
    return [*common * repeat, *rare]


def sometimes(strategy: st.SearchStrategy[Any], p_missing: float = 0.5) -> st.SearchStrategy[Any]:
    """A value, or (about `p_missing` of the time) the marker MISSING: the key is left out."""
    return st.tuples(pick([False], [True], p_missing), strategy).map(lambda pair: MISSING if pair[0] else pair[1])


def pick(valid: list[Any], odd: list[Any], p_odd: float = 0.05) -> st.SearchStrategy[Any]:
    """One of `valid`, or (about `p_odd` of the time) one of `odd`: near-valid specs stay the majority."""
    choices = _weighted(valid, odd, p_odd)
    return st.sampled_from(range(len(choices))).map(choices.__getitem__)  # (a short repr in reports)


def numbers(valid: list[Any] | None = None) -> st.SearchStrategy[Any]:
    """Numbers: mostly `valid` ones (or small ones), sometimes negatives, huge ones and floats where ints belong."""
    usual = st.sampled_from(valid) if valid else st.integers(min_value=0, max_value=200)
    odd = st.one_of(st.sampled_from([-1, 0, 0.5, 1.5, 2**31, 2**63, -(2**63), 1e308, 1e-9]),
                    st.floats(min_value=-2, max_value=2, allow_nan=False, allow_infinity=False))
    return st.tuples(st.sampled_from(range(100)), usual, odd).map(lambda t: t[2] if t[0] >= 95 else t[1])


def fraction() -> st.SearchStrategy[Any]:
    return st.one_of(st.floats(min_value=0, max_value=1, allow_nan=False), pick([0, 1, 0.05, 0.5], [-0.1, 1.1]))


def obj(**fields: st.SearchStrategy[Any]) -> st.SearchStrategy[Json]:
    """A dict whose keys drawn as MISSING are left out."""
    return st.fixed_dictionaries(fields).map(lambda d: {k: v for k, v in d.items() if v is not MISSING})


def opt(strategy: st.SearchStrategy[Any], p_missing: float = 0.5) -> st.SearchStrategy[Any]:
    """An optional field: left out about half the time (then nothing else is drawn for it: fast)."""
    if p_missing == 0.5:
        return st.one_of(st.just(MISSING), strategy)
    return sometimes(strategy, p_missing)


def json_values() -> st.SearchStrategy[Any]:
    leaves = st.one_of(st.none(), st.booleans(), st.integers(-(2**40), 2**40),
                       st.floats(allow_nan=False, allow_infinity=False), st.text(max_size=12))
    return st.recursive(leaves, lambda inner: st.one_of(st.lists(inner, max_size=3),
                                                        st.dictionaries(st.text(max_size=8), inner, max_size=3)),
                        max_leaves=6)


def durations() -> st.SearchStrategy[Any]:
    return pick(DURATIONS, ODD_DURATIONS, 0.08)


# -- sections -------------------------------------------------------------------------------------------


@st.composite
def models(draw: st.DrawFn) -> Json:
    task = draw(pick(["classification", "regression", MISSING], ["ranking", "", 1]))
    matching = REGRESSORS if task == "regression" else CLASSIFIERS
    estimator = draw(pick(matching, [*sorted(ESTIMATORS), "sklearn.svm.SVC", "os.system", "", "svc"]))
    target = draw(pick(["churned", "y", "label", "ü", "x" * 253], ["x" * 254, ""], 0.04))
    model: Json = {"estimator": estimator, "target": target}
    if task is not MISSING:
        model["task"] = task
    features = draw(opt(st.lists(pick(["tenure", "plan", "monthly_charges", "ü"], ["churned", "y", ""], 0.04),
                                 max_size=5)))
    if features is not MISSING:
        model["features"] = features
    params = draw(opt(st.one_of(
        st.sampled_from([{"loss": "log_loss", "random_state": 0}, {"n_estimators": 50}, {"max_iter": -1},
                         {"alpha": 1e308}, {}, {"hidden_layer_sizes": [10, 10]}]),
        st.dictionaries(st.sampled_from(["loss", "alpha", "max_iter", "n_estimators", "weird", "ü"]), json_values(),
                        max_size=3))))
    if params is not MISSING:
        model["params"] = params
    return model


def validations() -> st.SearchStrategy[Json]:
    return obj(minRows=opt(numbers([1, 10, 50, 1000])), maxNullFraction=opt(fraction()),
               labels=opt(st.lists(st.one_of(st.integers(-3, 3), pick(["0", "1", "yes", "ü", ""], [0.5, True])),
                                   max_size=4)))


def datas() -> st.SearchStrategy[Json]:
    uris = pick(S3_URIS, ODD_S3_URIS, 0.05)
    return obj(history=sometimes(uris, 0.2), incoming=opt(uris),
               format=opt(pick(["auto", "parquet", "csv"], ["json", ""])),
               timestampColumn=opt(pick(["event_time", "ts", "ü"], ["churned", ""])),
               validation=opt(validations()))


def storages() -> st.SearchStrategy[Json]:
    return obj(bucket=sometimes(pick(["ml-models", "models", "a.b", "x" * 63], ["ML", "a", "x" * 64, "-b"], 0.05),
                                0.03),
               prefix=opt(pick(["models", "", "/", "a/b/", "ü/日本", "../.."], ["x" * 600])),
               endpoint=opt(pick(["http://127.0.0.1:8333", "https://s3.example.com"],
                                 ["", "ftp://x", "http://", "http://a b"])),
               region=opt(pick(["us-east-1", "", "ü"], ["x" * 65])),
               credentialsSecret=sometimes(obj(
                   name=sometimes(pick(NAMES, ODD_NAMES, 0.05), 0.03),
                   accessKeyIdKey=opt(pick(["AWS_ACCESS_KEY_ID", "key", "", "ü"], ["x" * 254])),
                   secretAccessKeyKey=opt(st.sampled_from(["AWS_SECRET_ACCESS_KEY", "secret", ""])),
                   sessionTokenKey=opt(st.sampled_from(["AWS_SESSION_TOKEN", ""]))), 0.03))


# The pod sections (training.pod, triggers.drift.pod, serving.pod): what real clusters need, and what the
# operator's own names, the Pod Security Standard restricted and the API server refuse.
POD_LABEL_KEYS = ["kueue.x-k8s.io/queue-name", "sidecar.istio.io/inject", "cost-center", "app.kubernetes.io/name"]
ODD_POD_LABEL_KEYS = ["retrain.mlops.dev/run", "app.kubernetes.io/managed-by", "job-name", "pod-template-hash",
                      "batch.kubernetes.io/job-name", "queue name", "a/b/c"]
ENV_NAMES = ["HTTPS_PROXY", "HF_TOKEN", "my.var"]
ODD_ENV_NAMES = ["AWS_ENDPOINT_URL", "RETRAIN_RUN_CONFIG", "1=A", ""]


SOURCES = [{"persistentVolumeClaim": {"claimName": "model-cache"}}, {"configMap": {"name": "corp-ca"}},
           {"secret": {"secretName": "tls"}}, {"emptyDir": {}}, {"emptyDir": {"sizeLimit": "1Gi", "medium": "Memory"}},
           {"projected": {"sources": [{"configMap": {"name": "a"}}]}}]
ODD_SOURCES = [{}, {"hostPath": {"path": "/"}}, {"emptyDir": {}, "configMap": {"name": "c"}},
               {"emptyDir": {"sizeLimit": "-1"}}, {"projected": {"sources": [{"serviceAccountToken": {"path": "t"}}]}}]


@st.composite
def volumes_and_mounts(draw: st.DrawFn) -> Json:
    """Volumes, and mounts mostly of those volumes (sometimes of none, or at the operator's own paths)."""
    names_ = draw(st.lists(pick(["cache", "ca", "scratch"], ["tmp", "signing-public-key", "Bad_Name"], 0.05),
                           max_size=2))
    result: Json = {}
    if names_ or draw(st.booleans()):
        result["volumes"] = [{"name": name, **draw(pick(SOURCES, ODD_SOURCES, 0.06))} for name in names_]
    mounts = []
    for index, name in enumerate(names_):
        if draw(st.booleans()):
            mount = {"name": draw(pick([name], ["other"], 0.04)),
                     "mountPath": draw(pick([f"/tmp/data-{index}", f"/tmp/{index}"], ["/tmp", "relative"], 0.05))}
            sub_path = draw(opt(pick(["a", "a/b"], ["../x", "/abs"], 0.2), 0.8))
            if sub_path is not MISSING:
                mount["subPath"] = sub_path
            mounts.append(mount)
    if mounts:
        result["volumeMounts"] = mounts
    return result


def _env_from(drawn: tuple[int, Json, Any]) -> Json:
    roll, ref, prefix = drawn
    entry: Json = {} if prefix is MISSING else {"prefix": prefix}
    if roll < 97:
        entry["configMapRef" if roll < 60 else "secretRef"] = ref
    return entry


def pod_sections() -> st.SearchStrategy[Json]:
    ref = obj(name=sometimes(pick(NAMES, ODD_NAMES, 0.04), 0.03), optional=opt(st.booleans()))
    value_from = pick([{"secretKeyRef": {"name": "hf-token", "key": "token"}},
                       {"configMapKeyRef": {"name": "site", "key": "region", "optional": True}},
                       {"fieldRef": {"fieldPath": "metadata.name"}}],
                      [{}, {"secretKeyRef": {"name": "a", "key": "k"}, "configMapKeyRef": {"name": "b", "key": "k"}},
                       {"secretKeyRef": {"name": "a"}}, {"secretKeyRef": {"name": "Bad_Name", "key": "k"}}], 0.1)
    # Mostly a value or a reference; now and then both (refused).
    env = st.tuples(st.sampled_from(range(100)), pick(ENV_NAMES, ODD_ENV_NAMES, 0.04),
                    st.sampled_from(["1", "", "http://proxy:3128"]), value_from).map(
        lambda t: {"name": t[1], "value": t[2]} if t[0] < 50 else
        {"name": t[1], "valueFrom": t[3]} if t[0] < 97 else {"name": t[1], "value": t[2], "valueFrom": t[3]})
    # Mostly a ConfigMap or a Secret; now and then neither (refused).
    env_from = st.tuples(st.sampled_from(range(100)), ref, opt(pick(["FS_"], ["1X"], 0.1), 0.7)).map(_env_from)
    security = obj(runAsUser=opt(pick([1000, 65534], [0, -1], 0.1)), fsGroup=opt(st.just(1000)),
                   runAsNonRoot=opt(pick([True], [False], 0.2), 0.8),
                   seccompProfile=opt(pick([{"type": "RuntimeDefault"}], [{"type": "Unconfined"}], 0.2), 0.8))
    container = obj(readOnlyRootFilesystem=opt(st.booleans()),
                    allowPrivilegeEscalation=opt(pick([False], [True], 0.2), 0.8),
                    privileged=opt(pick([False], [True], 0.1), 0.9),
                    capabilities=opt(pick([{"drop": ["ALL"]}, {"add": ["NET_BIND_SERVICE"]}],
                                          [{"add": ["SYS_ADMIN"]}], 0.1), 0.8))
    metadata = obj(labels=opt(st.dictionaries(pick(POD_LABEL_KEYS, ODD_POD_LABEL_KEYS, 0.05),
                                              pick(["ml-gpu", "false", ""], ["has space"], 0.05), max_size=3)),
                   annotations=opt(st.dictionaries(pick(["proxy.istio.io/config"],
                                                        ["retrain.mlops.dev/trigger", "a/b/c"], 0.1),
                                                   st.sampled_from(["x", ""]), max_size=2)))
    fields = obj(metadata=opt(metadata),
                 imagePullSecrets=opt(st.lists(obj(name=pick(NAMES, ODD_NAMES, 0.04)), max_size=2), 0.7),
                 securityContext=opt(security, 0.6), containerSecurityContext=opt(container, 0.7),
                 env=opt(st.lists(env, max_size=3)), envFrom=opt(st.lists(env_from, max_size=2), 0.7))
    return st.tuples(fields, volumes_and_mounts()).map(lambda t: {**t[0], **t[1]})


def triggers() -> st.SearchStrategy[Json]:
    uris = pick(S3_URIS, ODD_S3_URIS, 0.05)
    schedule = obj(cron=sometimes(pick(CRONS, ODD_CRONS, 0.08), 0.03),
                   timeZone=opt(pick(TIME_ZONES, ODD_TIME_ZONES, 0.08)), startingDeadline=opt(durations()))
    drift = obj(data=sometimes(uris, 0.03), window=opt(durations()), interval=opt(durations()),
                features=opt(st.lists(st.sampled_from(["tenure", "plan", "", "ü"]), max_size=3)),
                keyFeatures=opt(st.lists(st.sampled_from(["tenure", "plan"]), max_size=2)),
                thresholds=opt(obj(psi=opt(fraction()), ksPValue=opt(fraction()), ksStatistic=opt(fraction()),
                                   chi2PValue=opt(fraction()), jensenShannon=opt(fraction()),
                                   nullShareIncrease=opt(fraction()), datasetShare=opt(fraction()))),
                performance=opt(obj(metric=opt(pick(METRICS, ODD_METRICS)), floor=opt(fraction()),
                                    maxDrop=opt(fraction()))),
                minRows=opt(numbers([1, 50, 200])), pod=opt(pod_sections(), 0.8))
    return obj(schedule=opt(schedule, 0.4), drift=opt(drift), cooldown=opt(durations()),
               minNewSamples=opt(numbers([0, 1, 100])),
               manualBypassesCooldown=opt(pick([True, False], ["yes"])))


def quantity_maps() -> st.SearchStrategy[Json]:
    return st.dictionaries(pick(RESOURCE_NAMES, ODD_RESOURCE_NAMES, 0.04), pick(QUANTITIES, ODD_QUANTITIES, 0.05),
                           max_size=3)


@st.composite
def resources(draw: st.DrawFn) -> Json:
    """Requests and limits; often GPU requests equal to limits, sometimes not, sometimes above them."""
    shape = draw(st.sampled_from(["gpu", "gpu", "random", "requests-only", "limits-only"]))
    if shape == "gpu":
        count = draw(pick([1, 2, "1", "2", 8], ["0", "1.5", 0]))
        limits = {"nvidia.com/gpu": count, **draw(quantity_maps())}
        requests = draw(pick([{"nvidia.com/gpu": count}, {}, {"cpu": "500m", "nvidia.com/gpu": count}],
                             [{"nvidia.com/gpu": "1"}, {"nvidia.com/gpu": 2, "cpu": "500m"}]))
        return {"requests": requests, "limits": limits}
    if shape == "requests-only":
        return {"requests": draw(quantity_maps())}
    if shape == "limits-only":
        return {"limits": draw(quantity_maps())}
    return {"requests": draw(quantity_maps()), "limits": draw(quantity_maps())}


def tolerations() -> st.SearchStrategy[list[Json]]:
    """Tolerations as pods carry them (Equal with a value, Exists without), and now and then a broken one."""
    equal = obj(key=pick(LABEL_KEYS, ODD_LABEL_KEYS), operator=opt(st.just("Equal"), 0.3),
                value=opt(pick(LABEL_VALUES, ODD_LABEL_VALUES), 0.2),
                effect=opt(st.sampled_from(["NoSchedule", "PreferNoSchedule"])))
    exists = obj(key=opt(pick(LABEL_KEYS, ODD_LABEL_KEYS), 0.3), operator=st.just("Exists"),
                 effect=opt(st.sampled_from(["NoSchedule", "PreferNoSchedule", "NoExecute"])))
    evict = obj(key=pick(LABEL_KEYS, ODD_LABEL_KEYS), operator=st.just("Exists"), effect=st.just("NoExecute"),
                tolerationSeconds=st.sampled_from([0, 60, 300, 2**62]))
    broken = st.sampled_from([{"operator": "Equal"}, {"key": "k", "operator": "Exists", "value": "v"},
                              {"key": "k", "effect": "NoSchedule", "tolerationSeconds": 60},
                              {"key": "k", "operator": "In"}, {"key": "k", "effect": "Sometimes"},
                              {"key": "k", "operator": "Exists", "effect": "NoExecute", "tolerationSeconds": -1}])
    toleration = st.tuples(st.sampled_from(range(100)), st.one_of(equal, exists, evict), broken).map(
        lambda t: t[2] if t[0] >= 96 else t[1])
    return st.lists(toleration, max_size=3)


def node_selectors() -> st.SearchStrategy[Json]:
    return st.dictionaries(pick(LABEL_KEYS, ODD_LABEL_KEYS, 0.04), pick(LABEL_VALUES, ODD_LABEL_VALUES, 0.04),
                           max_size=2)


def trainings() -> st.SearchStrategy[Json]:
    return st.tuples(st.sampled_from(range(100)), _trainings()).map(lambda t: _fit_options(t[1]) if t[0] < 90 else t[1])


def _fit_options(training: Json) -> Json:
    """Most users set only the options of the strategy they chose."""
    strategy = training.get("strategy", "full")
    return {k: v for k, v in training.items() if k not in ("incremental", "window") or k == strategy}


def _trainings() -> st.SearchStrategy[Json]:
    return obj(
        strategy=opt(pick(["full", "incremental", "window"], ["online"], 0.05), 0.08),
        incremental=opt(obj(replayFraction=opt(pick([0, 0.5, 0.8, 0.99], [1, -0.1], 0.04))), 0.8),
        window=opt(obj(duration=opt(durations()), halfLife=opt(durations())), 0.8),
        testFraction=opt(pick([0.05, 0.2, 0.5], [0.01, 0.6, 0])),
        randomSeed=opt(st.sampled_from([0, 42, -1, 2**31, 2**63 - 1])),
        image=opt(pick(["ghcr.io/x/trainer:1", "UPPER/Case:tag"], ["", "x" * 600])),
        imagePullPolicy=opt(pick(["Always", "IfNotPresent", "Never"], ["Sometimes"], 0.04)),
        command=opt(st.lists(st.sampled_from(["python", "-m", "", "ü"]), max_size=3)),
        args=opt(st.lists(st.sampled_from(["--x", "", "ü"]), max_size=3)),
        env=opt(st.lists(obj(name=sometimes(pick(["OMP_NUM_THREADS", "A_1", "_x"], ["1BAD", "", "a-b"], 0.05), 0.05),
                             value=opt(st.sampled_from(["1", "", "ü", "x" * 100]))), max_size=3)),
        resources=opt(resources()),
        nodeSelector=opt(node_selectors()),
        tolerations=opt(tolerations()),
        affinity=opt(st.sampled_from([{}, {"nodeAffinity": {}}, {"weird": [1, 2]}])),
        runtimeClassName=opt(pick(["nvidia", "a.b"], ["", "Bad_Name"])),
        serviceAccountName=opt(pick(["default", "trainer"], ["Bad_Name"])),
        priorityClassName=opt(pick(["high", "system-node-critical"], ["Bad_Name"])),
        backoffLimit=opt(pick([0, 1, 2, 20], [21, -1])),
        activeDeadlineSeconds=opt(pick([1, 60, 3600, 2**53], [0, -1])),
        ttlSecondsAfterFinished=opt(pick([0, 60, 86400, 2**40], [-1])),
        pod=opt(pod_sections(), 0.6),
    )


@st.composite
def canary_steps(draw: st.DrawFn) -> list[Json]:
    """Steps as users write them: increasing weights to 100, and also decreasing ones, ones that never
    reach 100, pauses with and without durations, and steps that are both or neither."""
    weights = draw(st.lists(st.integers(min_value=0, max_value=100) | st.sampled_from([-10, 110]), max_size=4))
    shape = draw(pick(["sorted-to-100"], ["sorted", "as-drawn", "decreasing"], 0.2))
    if shape == "sorted-to-100":
        weights = [*sorted(w for w in weights if 0 <= w <= 100), 100]
    elif shape == "sorted":
        weights = sorted(weights)
    elif shape == "decreasing":
        weights = sorted(weights, reverse=True)
    steps: list[Json] = []
    for weight in weights:
        if draw(st.booleans()):
            steps.append({"pause": draw(pick([{}, {"duration": "1m"}, {"duration": "0s"}, {"duration": "2h"}],
                                             [{"duration": "99999999999999h"}, {"duration": "x"}]))})
        steps.append({"setWeight": weight})
    if draw(st.sampled_from(range(100))) >= 95:
        steps.append(draw(st.sampled_from([{}, {"setWeight": 50, "pause": {}}, {"setWeight": "50"}])))
    return steps


def promotions() -> st.SearchStrategy[Json]:
    metrics = pick(METRICS, ODD_METRICS, 0.05)
    comparison = obj(metric=sometimes(metrics, 0.03), maxRegression=opt(fraction()), minImprovement=opt(fraction()),
                     relative=opt(st.booleans()))
    bound = obj(metric=sometimes(metrics, 0.03), min=opt(fraction(), 0.08), max=opt(fraction(), 0.5))
    query = obj(name=pick(["errors", "p99"], ["Bad_Name", ""]),
                query=st.sampled_from(["sum(rate(x[1m]))", "", "up{ns=\"{{namespace}}\"}"]),
                successCondition=pick(["result < 0.05", "result>=1e-3"], ["result ~ 1", "true"]),
                failureLimit=opt(pick([0, 3], [-1])))
    analysis = obj(interval=opt(durations()), minRequests=opt(numbers([1, 5, 50])),
                   maxErrorRateIncrease=opt(fraction()), maxLatencyRatio=opt(numbers([1, 1.5, 20])),
                   maxPredictionShift=opt(fraction()), failureLimit=opt(pick([0, 1], [-1])),
                   inconclusiveLimit=opt(pick([1, 10], [0])), prometheus=opt(st.lists(query, max_size=2), 0.7),
                   prometheusUrl=opt(pick(["http://prometheus:9090"], ["prometheus:9090", ""])))
    canary = obj(steps=sometimes(canary_steps(), 0.03), analysis=opt(analysis), readyTimeout=opt(durations()),
                 scaleDownStable=opt(st.booleans()), mirror=opt(st.booleans()))
    gates = obj(compare=opt(st.lists(comparison, max_size=2)), bounds=opt(st.lists(bound, max_size=2)),
                olderData=opt(obj(metric=opt(metrics), maxRegression=opt(fraction()), enabled=opt(st.booleans()))),
                minClassRecall=opt(st.dictionaries(st.sampled_from(["0", "1", "yes", "ü", ""]), fraction(),
                                                   max_size=2)),
                minComparisonRows=opt(pick([1, 30], [0, -5])))
    return obj(canary=opt(canary, 0.4), gates=opt(gates))


def servings() -> st.SearchStrategy[Json]:
    router = obj(type=opt(pick(["replicas", "gatewayAPI", "istio"], ["linkerd"], 0.05)),
                 httpRoute=opt(pick(["churn", "churn.routes"], ["Bad_Name"], 0.04), 0.4),
                 virtualService=opt(pick(["mesh", "a.b"], ["Bad_Name"], 0.04), 0.4))
    return obj(replicas=opt(pick([1, 2, 1000], [0, 1001, -1])),
               port=opt(pick([8080, 1, 65535, 80], [0, 65536])),
               image=opt(pick(["ghcr.io/x/server:1"], [""])),
               resources=opt(resources()), nodeSelector=opt(node_selectors()), tolerations=opt(tolerations()),
               affinity=opt(st.sampled_from([{}, {"podAntiAffinity": {}}, {"weird": [1, 2]}]), 0.8),
               priorityClassName=opt(pick(["model-serving"], ["Bad_Name"]), 0.8), pod=opt(pod_sections(), 0.6),
               capture=opt(obj(uri=sometimes(pick(S3_URIS, ODD_S3_URIS, 0.04), 0.03), fraction=opt(fraction()))),
               router=opt(router))


# -- the spec and its mutations ---------------------------------------------------------------------------


def base_spec() -> Json:
    """A valid spec (the shape of conftest.py Scenario.policy_spec); test_crd_validation.py breaks it rule by rule."""
    return {
        "model": {"estimator": "SGDClassifier", "task": "classification", "target": "churned",
                  "features": ["tenure", "plan", "monthly_charges"], "params": {"loss": "log_loss", "random_state": 0}},
        "data": {"history": "s3://ml-data/churn/history/", "incoming": "s3://ml-data/churn/incoming/",
                 "validation": {"minRows": 50}},
        "storage": {"bucket": "ml-models", "prefix": "models", "endpoint": "http://127.0.0.1:8333",
                    "credentialsSecret": {"name": "s3-credentials"}},
        "training": {"strategy": "full", "backoffLimit": 0},
    }


SECTIONS: dict[str, st.SearchStrategy[Any]] = {
    "model": models(), "data": datas(), "storage": storages(), "triggers": triggers(), "training": trainings(),
    "promotion": promotions(), "serving": servings(),
    "historyLimit": pick([1, 10, 100], [0, 101, -1, 2**40]),
    "suspend": pick([True, False], ["true"], 0.04),
}


def _paths(node: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    """Every path to a value in a JSON document (not the root)."""
    found: list[tuple[Any, ...]] = []
    items = node.items() if isinstance(node, dict) else enumerate(node) if isinstance(node, list) else ()
    for key, child in items:
        found.append((*prefix, key))
        found += _paths(child, (*prefix, key))
    return found


def _parent(doc: Json, path: tuple[Any, ...]) -> Any:
    for key in path[:-1]:
        doc = doc[key]
    return doc


WRONG_VALUES = st.one_of(
    st.sampled_from([None, True, 0, -1, -(2**31), 2**63, 1.5, -0.001, "", "ü", "🚀" * 3, [], {}, [1, "a"],
                     {"nested": {"deep": [None]}}, "A" * 20_000, "x\u0000y", "\u202eevil"]),
    st.text(max_size=20))


@st.composite
def mutated(draw: st.DrawFn, spec: Json) -> Json:
    """Break `spec` at a random place: delete, retype, add an unknown field, or replace a value."""
    spec = copy.deepcopy(spec)
    paths = _paths(spec)
    path = draw(st.sampled_from(paths))
    parent = _parent(spec, path)
    key = path[-1]
    action = draw(st.sampled_from(["delete", "replace", "unknown", "negate", "huge"]))
    if action == "delete":
        del parent[key]
    elif action == "unknown" and isinstance(parent, dict):
        parent[draw(st.sampled_from(["unknownField", "ü", "x" * 300, "$ref", "apiVersion"]))] = draw(WRONG_VALUES)
    elif action == "negate" and isinstance(parent[key], int | float) and not isinstance(parent[key], bool):
        parent[key] = -parent[key] - 1
    elif action == "huge" and isinstance(parent[key], str):
        parent[key] = parent[key] + draw(st.sampled_from(["x", "ü", "/"])) * 5000
    else:
        parent[key] = draw(WRONG_VALUES)
    return spec


@st.composite
def policy_specs(draw: st.DrawFn, max_mutations: int = 3) -> Json:
    """A RetrainPolicy spec: the base with about half its sections replaced by generated ones, then
    (in about 30% of the specs) 1 to `max_mutations` mutations; the rest stay near-valid."""
    spec = base_spec()
    for section in sorted(SECTIONS):
        if draw(st.sampled_from(range(100))) >= 55:  # each section varied in about half the specs
            spec[section] = draw(SECTIONS[section])
    count = draw(pick([0], [1, 1, 2, max_mutations], 0.3)) if max_mutations else 0
    for _ in range(count):
        if not spec:
            break
        spec = draw(mutated(spec))
    return copy.deepcopy(spec)  # drawn values may be shared constants


def _with(**sections: Any) -> Json:
    spec = base_spec()
    spec.update(copy.deepcopy(sections))
    return spec


# Specs the API server accepts that once crashed the operator's first reconcile (or that it lets
# through by a quirk): every run checks these first (Hypothesis' explicit examples).
REGRESSIONS: list[Json] = [
    _with(triggers={"schedule": {"cron": "0 0 31 2 *"}}),  # never fires
    _with(triggers={"schedule": {"cron": "0 3 * * *", "timeZone": ""}}),  # ZoneInfo("") raised in decide
    _with(triggers={"drift": {"data": "s3://ml-data/live/", "interval": "99999999999999h"}}),  # beyond timedelta
    _with(serving={"replicas": 1}, promotion={"canary": {"steps": [{"pause": {"duration": "99999999999999h"}},
                                                                   {"setWeight": 100}]}}),
    _with(triggers={"cooldown": "999999999d"}),  # parses, but overflows finishedAt + cooldown
    # kube-openapi checks an integer against int(minimum): 0 passes `minimum: 0.05`.
    _with(training={"strategy": "full", "testFraction": 0}),
    _with(suspend=True, triggers={"schedule": {"cron": "* * * * *", "timeZone": "Pacific/Chatham"}}),
]
