"""A typed, defaulted view of a RetrainPolicy's spec.

The core decides on this view, never on raw dicts, so a missing optional field has exactly one
default (the one here, mirrored by the CRD schema's `default:` values). Parsing never mutates
the user's spec.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from typing import Any

import durationpy

from . import names

Json = dict[str, Any]


def parse_duration(text: str | int | float | None) -> dt.timedelta | None:
    """Go-style durations (`90s`, `1h30m`, `7d`) as Kubernetes users write them; numbers are seconds."""
    if text is None or text == "":
        return None
    if isinstance(text, int | float):
        return dt.timedelta(seconds=float(text))
    return durationpy.from_str(str(text))


@dataclass(frozen=True)
class ModelSpec:
    estimator: str | None  # None only with a trainer image of your own (training.command)
    task: str
    target: str
    params: Json = field(default_factory=dict)
    features: tuple[str, ...] | None = None
    format: str | None = None  # the model format such a trainer declares (manifest model.format)


@dataclass(frozen=True)
class DataValidationSpec:
    min_rows: int = 50
    max_null_fraction: float = 0.2
    labels: tuple[Any, ...] | None = None


@dataclass(frozen=True)
class DataSpec:
    history: str | None
    incoming: str | None
    format: str = "auto"
    timestamp_column: str | None = None
    validation: DataValidationSpec = field(default_factory=DataValidationSpec)


@dataclass(frozen=True)
class CredentialsRef:
    name: str
    access_key_id_key: str = "AWS_ACCESS_KEY_ID"
    secret_access_key_key: str = "AWS_SECRET_ACCESS_KEY"
    session_token_key: str | None = None


@dataclass(frozen=True)
class StorageSpec:
    bucket: str
    credentials: CredentialsRef
    prefix: str = ""
    endpoint: str | None = None
    region: str = "us-east-1"


@dataclass(frozen=True)
class SecretKeyRef:
    """One key of a Secret in the policy's namespace."""

    name: str
    key: str


@dataclass(frozen=True)
class SigningSpec:
    """Manifest signatures (docs/trust-model.md): verified with the public key before a version is
    recorded or served; the trainer signs only when it is given the private key."""

    public_key: SecretKeyRef
    private_key: SecretKeyRef | None = None

    @classmethod
    def from_dict(cls, signing: Json) -> SigningSpec:
        public, private = signing["publicKeySecret"], signing.get("privateKeySecret")
        return cls(
            public_key=SecretKeyRef(name=str(public["name"]), key=str(public.get("key", "public.pem"))),
            private_key=SecretKeyRef(name=str(private["name"]), key=str(private.get("key", "private.pem")))
            if private else None,
        )


@dataclass(frozen=True)
class NotifierSpec:
    """A webhook that receives the policy's outcomes (docs/notifications.md). Its URL is read from a
    Secret only: a webhook URL is a credential (Slack's are), so neither the spec nor status holds it."""

    name: str
    url: SecretKeyRef
    type: str = "json"  # json | slack
    headers_secret: str | None = None  # a Secret whose keys are sent as HTTP headers
    categories: tuple[str, ...] = names.NOTIFY_CATEGORIES  # what it is sent; absent in the spec: everything
    min_severity: str = "Normal"  # Normal: everything; Warning: only what went wrong or needs a person

    @classmethod
    def from_dict(cls, notifier: Json) -> NotifierSpec:
        url = notifier["urlSecret"]
        headers = notifier.get("headersSecret")
        return cls(
            name=str(notifier["name"]),
            url=SecretKeyRef(name=str(url["name"]), key=str(url.get("key", "url"))),
            type=str(notifier.get("type", "json")),
            headers_secret=str(headers["name"]) if headers else None,
            categories=tuple(str(c) for c in notifier.get("categories") or names.NOTIFY_CATEGORIES),
            min_severity=str(notifier.get("minSeverity", "Normal")),
        )


@dataclass(frozen=True)
class PodTemplate:
    """What fits a pod the operator makes into the cluster (spec.training.pod, spec.serving.pod,
    spec.triggers.drift.pod), as Kubernetes spells it; the operator's own fields are merged in by the core."""

    labels: Json = field(default_factory=dict)
    annotations: Json = field(default_factory=dict)
    image_pull_secrets: tuple[str, ...] = ()
    security_context: Json = field(default_factory=dict)
    container_security_context: Json = field(default_factory=dict)
    env: tuple[Json, ...] = ()
    env_from: tuple[Json, ...] = ()
    volumes: tuple[Json, ...] = ()
    volume_mounts: tuple[Json, ...] = ()

    @classmethod
    def from_dict(cls, pod: Json | None) -> PodTemplate:
        pod = pod or {}
        metadata = pod.get("metadata") or {}
        return cls(
            labels={str(k): str(v) for k, v in (metadata.get("labels") or {}).items()},
            annotations={str(k): str(v) for k, v in (metadata.get("annotations") or {}).items()},
            image_pull_secrets=tuple(str(ref["name"]) for ref in pod.get("imagePullSecrets") or ()),
            security_context=dict(pod.get("securityContext") or {}),
            container_security_context=dict(pod.get("containerSecurityContext") or {}),
            env=tuple(pod.get("env") or ()),
            env_from=tuple(pod.get("envFrom") or ()),
            volumes=tuple(pod.get("volumes") or ()),
            volume_mounts=tuple(pod.get("volumeMounts") or ()),
        )


@dataclass(frozen=True)
class ScheduleSpec:
    cron: str
    time_zone: str = "UTC"
    # A run later than this after its tick is skipped (like a CronJob's startingDeadlineSeconds).
    starting_deadline: dt.timedelta | None = None


@dataclass(frozen=True)
class PerformanceSpec:
    metric: str = "accuracy"
    floor: float | None = None  # drift when the metric on recent labeled data falls below this
    max_drop: float | None = None  # or drops more than this below the model's own held-out value
    # The statistical test (docs/drift.md); None: the trainer's defaults (0.01, 0, 100).
    p_value: float | None = None  # one-sided level of the bound on the drop from held-out
    min_drop: float | None = None  # the drop must be significantly larger than this
    min_rows: int | None = None  # fewer labelled rows: performance is not judged


@dataclass(frozen=True)
class DriftSpec:
    data: str
    window: dt.timedelta = dt.timedelta(hours=24)
    interval: dt.timedelta = dt.timedelta(hours=1)
    features: tuple[str, ...] | None = None
    key_features: tuple[str, ...] = ()
    thresholds: Json = field(default_factory=dict)
    performance: PerformanceSpec | None = None
    min_rows: int = 200  # fewer rows (or a feature's values) are insufficient for a verdict
    pod: PodTemplate | None = None  # None: the checks take training.pod
    # Where the checks run: their own, never training's (GPU nodes and their taints are not for a CPU check).
    node_selector: Json = field(default_factory=dict)
    tolerations: tuple[Json, ...] = ()
    affinity: Json | None = None


@dataclass(frozen=True)
class TriggersSpec:
    schedule: ScheduleSpec | None = None
    drift: DriftSpec | None = None
    cooldown: dt.timedelta | None = None
    min_new_samples: int = 0
    # Manual triggers (the annotation) skip the cooldown unless this is false.
    manual_bypasses_cooldown: bool = True


@dataclass(frozen=True)
class WindowSpec:
    duration: str = "7d"
    half_life: str | None = None


@dataclass(frozen=True)
class TrainingSpec:
    strategy: str = "full"
    replay_fraction: float = 0.8
    window: WindowSpec = field(default_factory=WindowSpec)
    test_fraction: float = 0.2
    random_seed: int = 42
    image: str | None = None
    image_pull_policy: str | None = None
    command: tuple[str, ...] | None = None
    args: tuple[str, ...] | None = None
    env: tuple[Json, ...] = ()
    resources: Json = field(default_factory=dict)
    node_selector: Json = field(default_factory=dict)
    tolerations: tuple[Json, ...] = ()
    affinity: Json | None = None
    runtime_class_name: str | None = None
    service_account_name: str | None = None
    priority_class_name: str | None = None
    backoff_limit: int = 2
    active_deadline_seconds: int | None = 3600
    ttl_seconds_after_finished: int | None = 86400
    pod: PodTemplate = field(default_factory=PodTemplate)


@dataclass(frozen=True)
class Comparison:
    metric: str
    max_regression: float | None = None
    min_improvement: float | None = None
    relative: bool = False


@dataclass(frozen=True)
class Bound:
    metric: str
    min: float | None = None
    max: float | None = None


DEFAULT_GATE_METRIC = {"classification": "f1Macro", "regression": "r2"}


@dataclass(frozen=True)
class GatesSpec:
    compare: tuple[Comparison, ...]
    bounds: tuple[Bound, ...] = ()
    older_data_metric: str | None = None  # None: no older-data check
    older_data_max_regression: float = 0.05
    min_class_recall: dict[str, float] = field(default_factory=dict)
    min_comparison_rows: int = 30

    @classmethod
    def from_dict(cls, gates: Json, task: str) -> GatesSpec:
        default_metric = DEFAULT_GATE_METRIC.get(task, "f1Macro")
        raw_compare = gates.get("compare")
        compare = tuple(Comparison(metric=str(c["metric"]), max_regression=c.get("maxRegression"),
                                   min_improvement=c.get("minImprovement"), relative=bool(c.get("relative", False)))
                        for c in raw_compare) if raw_compare is not None else (
            Comparison(metric=default_metric, max_regression=0.01),)
        older = gates.get("olderData") or {}
        older_metric = older.get("metric") or (compare[0].metric if compare else default_metric)
        return cls(
            compare=compare,
            bounds=tuple(Bound(metric=str(b["metric"]), min=b.get("min"), max=b.get("max"))
                         for b in gates.get("bounds") or ()),
            older_data_metric=older_metric if older.get("enabled", True) else None,
            older_data_max_regression=float(older.get("maxRegression", 0.05)),
            min_class_recall={str(k): float(v) for k, v in (gates.get("minClassRecall") or {}).items()},
            min_comparison_rows=int(gates.get("minComparisonRows", 30)),
        )


@dataclass(frozen=True)
class RouterSpec:
    type: str = "replicas"
    http_route: str | None = None
    virtual_service: str | None = None


@dataclass(frozen=True)
class ServingSpec:
    replicas: int = 2
    port: int = 8080
    image: str | None = None
    resources: Json = field(default_factory=dict)
    node_selector: Json = field(default_factory=dict)
    tolerations: tuple[Json, ...] = ()
    affinity: Json | None = None
    priority_class_name: str | None = None
    pod: PodTemplate = field(default_factory=PodTemplate)
    capture_uri: str | None = None
    capture_fraction: float = 0.1
    router: RouterSpec = field(default_factory=RouterSpec)

    @classmethod
    def from_dict(cls, serving: Json) -> ServingSpec:
        capture = serving.get("capture") or {}
        router = serving.get("router") or {}
        return cls(
            replicas=int(serving.get("replicas", 2)),
            port=int(serving.get("port", 8080)),
            image=serving.get("image"),
            resources=dict(serving.get("resources") or {}),
            node_selector=dict(serving.get("nodeSelector") or {}),
            tolerations=tuple(serving.get("tolerations") or ()),
            affinity=serving.get("affinity"),
            priority_class_name=serving.get("priorityClassName"),
            pod=PodTemplate.from_dict(serving.get("pod")),
            capture_uri=capture.get("uri"),
            capture_fraction=float(capture.get("fraction", 0.1)),
            router=RouterSpec(type=str(router.get("type", "replicas")), http_route=router.get("httpRoute"),
                              virtual_service=router.get("virtualService")),
        )


@dataclass(frozen=True)
class CanaryStep:
    set_weight: int | None = None
    pause: dt.timedelta | None = None  # with set_weight None: a pause; None duration = until promoted
    is_pause: bool = False


@dataclass(frozen=True)
class PromQuery:
    name: str
    query: str
    success_condition: str
    failure_limit: int = 0


@dataclass(frozen=True)
class AnalysisSpec:
    interval: dt.timedelta = dt.timedelta(minutes=1)
    min_requests: int = 50
    max_error_rate_increase: float = 0.01
    max_latency_ratio: float = 1.5
    max_prediction_shift: float = 0.2
    failure_limit: int = 0
    inconclusive_limit: int = 10
    prometheus: tuple[PromQuery, ...] = ()
    prometheus_url: str | None = None


@dataclass(frozen=True)
class CanarySpec:
    steps: tuple[CanaryStep, ...]
    analysis: AnalysisSpec = field(default_factory=AnalysisSpec)
    ready_timeout: dt.timedelta = dt.timedelta(minutes=10)
    scale_down_stable: bool = False
    mirror: bool = False

    @classmethod
    def from_dict(cls, canary: Json) -> CanarySpec:
        analysis = canary.get("analysis") or {}
        steps = []
        for step in canary["steps"]:
            if "setWeight" in step:
                steps.append(CanaryStep(set_weight=int(step["setWeight"])))
            else:
                steps.append(CanaryStep(pause=parse_duration((step.get("pause") or {}).get("duration")),
                                        is_pause=True))
        return cls(
            steps=tuple(steps),
            analysis=AnalysisSpec(
                interval=parse_duration(analysis.get("interval", "1m")) or dt.timedelta(minutes=1),
                min_requests=int(analysis.get("minRequests", 50)),
                max_error_rate_increase=float(analysis.get("maxErrorRateIncrease", 0.01)),
                max_latency_ratio=float(analysis.get("maxLatencyRatio", 1.5)),
                max_prediction_shift=float(analysis.get("maxPredictionShift", 0.2)),
                failure_limit=int(analysis.get("failureLimit", 0)),
                inconclusive_limit=int(analysis.get("inconclusiveLimit", 10)),
                prometheus=tuple(PromQuery(name=str(q["name"]), query=str(q["query"]),
                                           success_condition=str(q["successCondition"]),
                                           failure_limit=int(q.get("failureLimit", 0)))
                                 for q in analysis.get("prometheus") or ()),
                prometheus_url=analysis.get("prometheusUrl"),
            ),
            ready_timeout=parse_duration(canary.get("readyTimeout", "10m")) or dt.timedelta(minutes=10),
            scale_down_stable=bool(canary.get("scaleDownStable", False)),
            mirror=bool(canary.get("mirror", False)),
        )


@dataclass(frozen=True)
class PolicySpec:
    model: ModelSpec
    data: DataSpec
    storage: StorageSpec
    triggers: TriggersSpec = field(default_factory=TriggersSpec)
    training: TrainingSpec = field(default_factory=TrainingSpec)
    gates: GatesSpec = field(default_factory=lambda: GatesSpec.from_dict({}, "classification"))
    canary: CanarySpec | None = None
    serving: ServingSpec | None = None
    signing: SigningSpec | None = None
    notify: tuple[NotifierSpec, ...] = ()
    history_limit: int = 10
    suspend: bool = False

    @classmethod
    def from_dict(cls, spec: Json) -> PolicySpec:
        """Build the view; raises KeyError/TypeError/ValueError on a spec the schema would reject."""
        model = spec["model"]
        data = spec.get("data") or {}
        validation = data.get("validation") or {}
        storage = spec["storage"]
        creds = storage["credentialsSecret"]
        triggers = spec.get("triggers") or {}
        schedule = triggers.get("schedule")
        drift = triggers.get("drift")
        performance = (drift or {}).get("performance")
        training = spec.get("training") or {}
        incremental = training.get("incremental") or {}
        window = training.get("window") or {}
        labels = validation.get("labels")
        features = model.get("features")
        return cls(
            model=ModelSpec(
                estimator=str(model["estimator"]) if model.get("estimator") else None,
                task=str(model.get("task", "classification")),
                target=str(model["target"]),
                params=dict(model.get("params") or {}),
                features=tuple(features) if features else None,
                format=str(model["format"]) if model.get("format") else None,
            ),
            data=DataSpec(
                history=data.get("history"),
                incoming=data.get("incoming"),
                format=data.get("format", "auto"),
                timestamp_column=data.get("timestampColumn"),
                validation=DataValidationSpec(
                    min_rows=int(validation.get("minRows", 50)),
                    max_null_fraction=float(validation.get("maxNullFraction", 0.2)),
                    labels=tuple(labels) if labels else None,
                ),
            ),
            storage=StorageSpec(
                bucket=str(storage["bucket"]),
                prefix=str(storage.get("prefix", "")).strip("/"),
                endpoint=storage.get("endpoint") or None,
                region=str(storage.get("region", "us-east-1")),
                credentials=CredentialsRef(
                    name=str(creds["name"]),
                    access_key_id_key=creds.get("accessKeyIdKey", "AWS_ACCESS_KEY_ID"),
                    secret_access_key_key=creds.get("secretAccessKeyKey", "AWS_SECRET_ACCESS_KEY"),
                    session_token_key=creds.get("sessionTokenKey"),
                ),
            ),
            triggers=TriggersSpec(
                schedule=ScheduleSpec(
                    cron=str(schedule["cron"]),
                    time_zone=str(schedule.get("timeZone", "UTC")),
                    starting_deadline=parse_duration(schedule.get("startingDeadline")),
                ) if schedule else None,
                drift=DriftSpec(
                    data=str(drift["data"]),
                    window=parse_duration(drift.get("window", "24h")) or dt.timedelta(hours=24),
                    interval=parse_duration(drift.get("interval", "1h")) or dt.timedelta(hours=1),
                    features=tuple(drift["features"]) if drift.get("features") else None,
                    key_features=tuple(drift.get("keyFeatures") or ()),
                    thresholds=dict(drift.get("thresholds") or {}),
                    min_rows=int(drift.get("minRows", 200)),
                    pod=PodTemplate.from_dict(drift["pod"]) if drift.get("pod") is not None else None,
                    node_selector=dict(drift.get("nodeSelector") or {}),
                    tolerations=tuple(drift.get("tolerations") or ()),
                    affinity=drift.get("affinity"),
                    performance=PerformanceSpec(
                        metric=str(performance.get("metric", "accuracy")),
                        floor=performance.get("floor"),
                        max_drop=performance.get("maxDrop"),
                        p_value=performance.get("pValue"),
                        min_drop=performance.get("minDrop"),
                        min_rows=performance.get("minRows"),
                    ) if performance else None,
                ) if drift else None,
                cooldown=parse_duration(triggers.get("cooldown")),
                min_new_samples=int(triggers.get("minNewSamples", 0)),
                manual_bypasses_cooldown=bool(triggers.get("manualBypassesCooldown", True)),
            ),
            training=TrainingSpec(
                strategy=training.get("strategy", "full"),
                replay_fraction=float(incremental.get("replayFraction", 0.8)),
                window=WindowSpec(
                    duration=str(window.get("duration", "7d")),
                    half_life=window.get("halfLife"),
                ),
                test_fraction=float(training.get("testFraction", 0.2)),
                random_seed=int(training.get("randomSeed", 42)),
                image=training.get("image"),
                image_pull_policy=training.get("imagePullPolicy"),
                command=tuple(training["command"]) if training.get("command") else None,
                args=tuple(training["args"]) if training.get("args") else None,
                env=tuple(training.get("env") or ()),
                resources=dict(training.get("resources") or {}),
                node_selector=dict(training.get("nodeSelector") or {}),
                tolerations=tuple(training.get("tolerations") or ()),
                affinity=training.get("affinity"),
                runtime_class_name=training.get("runtimeClassName"),
                service_account_name=training.get("serviceAccountName"),
                priority_class_name=training.get("priorityClassName"),
                backoff_limit=int(training.get("backoffLimit", 2)),
                active_deadline_seconds=training.get("activeDeadlineSeconds", 3600),
                ttl_seconds_after_finished=training.get("ttlSecondsAfterFinished", 86400),
                pod=PodTemplate.from_dict(training.get("pod")),
            ),
            gates=GatesSpec.from_dict((spec.get("promotion") or {}).get("gates") or {},
                                      str(model.get("task", "classification"))),
            canary=CanarySpec.from_dict(spec["promotion"]["canary"])
            if (spec.get("promotion") or {}).get("canary") else None,
            serving=ServingSpec.from_dict(spec["serving"]) if spec.get("serving") is not None else None,
            signing=SigningSpec.from_dict(spec["signing"]) if spec.get("signing") else None,
            notify=tuple(NotifierSpec.from_dict(n) for n in spec.get("notify") or ()),
            history_limit=int(spec.get("historyLimit", 10)),
            suspend=bool(spec.get("suspend", False)),
        )
