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
