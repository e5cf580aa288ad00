"""Names shared by the operator, the trainer and the tests: one place, so they cannot disagree."""

GROUP = "retrain.mlops.dev"
VERSION = "v1alpha1"
API_VERSION = f"{GROUP}/{VERSION}"
KIND = "RetrainPolicy"
PLURAL = "retrainpolicies"
SINGULAR = "retrainpolicy"
SHORT_NAMES = ["rtp"]
CATEGORIES = ["ml"]

# Labels the operator puts on everything it creates, so it can find its children again.
LABEL_POLICY = f"{GROUP}/policy"
LABEL_RUN = f"{GROUP}/run"
LABEL_PURPOSE = f"{GROUP}/purpose"
LABEL_MANAGED_BY = "app.kubernetes.io/managed-by"
MANAGED_BY = "retrain-operator"

# On an object whose policy label value had to be shortened (kubenames.policy_label): the full name.
ANNOTATION_POLICY = f"{GROUP}/policy"

# Annotations a user (or a GitOps tool) sets on a policy to ask for something.
ANNOTATION_TRIGGER = f"{GROUP}/trigger"

# The run configuration reaches the trainer as JSON in this environment variable.
ENV_RUN_CONFIG = "RETRAIN_RUN_CONFIG"
# The private key a trainer signs manifests with (spec.signing.privateKeySecret), by secretKeyRef only.
ENV_SIGNING_KEY = "RETRAIN_SIGNING_KEY"

# Model serving: the role of a Deployment's pods and the version they serve.
LABEL_ROLE = f"{GROUP}/role"
LABEL_MODEL_VERSION = f"{GROUP}/model-version"
# Rollout commands: promote and abort act once per new value; pause holds while "true".
ANNOTATION_PROMOTE = f"{GROUP}/promote"
ANNOTATION_ABORT = f"{GROUP}/abort"
# Roll out an earlier version from status.history again (core/undo.py): "<version>|previous[;immediate][;at=..]".
ANNOTATION_UNDO = f"{GROUP}/undo"
ANNOTATION_PAUSE = f"{GROUP}/pause"

# What the operator itself puts into the pods it makes (trainer and drift-check Jobs, model servers): a
# policy's pod fields (spec.training.pod, spec.serving.pod, spec.triggers.drift.pod) may not take these.
VOLUME_TMP, TMP_DIR = "tmp", "/tmp"
VOLUME_SIGNING_PUBLIC_KEY = "signing-public-key"
SIGNING_PUBLIC_KEY_DIR = f"/var/run/secrets/{GROUP}/signing"
OPERATOR_VOLUMES = (VOLUME_TMP, VOLUME_SIGNING_PUBLIC_KEY)
OPERATOR_MOUNT_PATHS = (TMP_DIR, SIGNING_PUBLIC_KEY_DIR)
OPERATOR_ENV = (ENV_RUN_CONFIG, ENV_SIGNING_KEY, "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN",
                "AWS_DEFAULT_REGION", "AWS_ENDPOINT_URL")
# Label keys no policy may set on a pod: the operator's own, and those the Job or Deployment controller
# sets or selects by (a user value would break the selector, or the API server would refuse the object).
OPERATOR_LABEL_PREFIXES = (f"{GROUP}/",)
OPERATOR_LABELS = (LABEL_MANAGED_BY,)
JOB_CONTROLLER_LABEL_PREFIXES = ("batch.kubernetes.io/",)
JOB_CONTROLLER_LABELS = ("job-name", "controller-uid")
MODEL_SERVER_LABELS = ("app.kubernetes.io/name", "pod-template-hash")

# spec.notify (docs/notifications.md): what a notifier may be sent (`categories`), and the formats it speaks.
NOTIFY_CATEGORIES = ("run", "gate", "drift", "rollout", "undo", "serving", "problem")
NOTIFY_TYPES = ("json", "slack")
SEVERITIES = ("Normal", "Warning")  # Kubernetes Event types, least first
