"""Manifest signatures: the shared sign/verify module, the trainer, the operator's decision and storage view,
the trainer Job and the model server Deployment (docs/trust-model.md, "Signatures")."""

from __future__ import annotations

import base64
import dataclasses
import datetime as dt
import io
import json
from typing import Any

import pytest
from botocore.exceptions import ClientError
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from retrain_contract.api import names
from retrain_contract.api.spec import PolicySpec
from retrain_contract.artifacts.checksums import sha256_bytes
from retrain_contract.artifacts.errors import DataError
from retrain_contract.artifacts.layout import MANIFEST_FILE, MODEL_FILE, SIGNATURE_FILE
from retrain_contract.artifacts.signature import (
    SigningKeyError,
    load_private_key,
    load_public_key,
    sign,
    signature_problem,
)
from retrain_contract.artifacts.store import ArtifactStore, encode_manifest
from retrain_operator.adapters import signing as signing_adapter
from retrain_operator.adapters.kube import _covers
from retrain_operator.adapters.storage import PolicyStorage
from retrain_operator.api.validation import problems as spec_problems
from retrain_operator.core import serving
from retrain_operator.core.conditions import get_condition
from retrain_operator.core.jobs import PolicyRef, RunRequest, run_config, trainer_job
from retrain_operator.core.observed import SUCCEEDED, ArtifactOutcome, Observed
from retrain_operator.core.runs import Trigger
from retrain_trainer import config as trainer_config
from retrain_trainer import train
from retrain_trainer.errors import EXIT_CONFIG, ConfigError, classify
from retrain_trainer.serving import loaded

from .decisions import MANIFEST, job, started, step
from .policies import spec
from .test_decision_verify import DIGEST, NOW, URI, recorded, verified

SIGNING = {"publicKeySecret": {"name": "model-signing-public"}, "privateKeySecret": {"name": "model-signing"}}
POLICY = PolicyRef(name="churn", namespace="ml", uid="uid-1")
RUN = RunRequest("v1", None, Trigger("manual", "annotation", "2026-11-24T10:00:00Z", "now"))


def keypair() -> tuple[bytes, bytes]:
    key = Ed25519PrivateKey.generate()
    private = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                serialization.NoEncryption())
    public = key.public_key().public_bytes(serialization.Encoding.PEM,
                                           serialization.PublicFormat.SubjectPublicKeyInfo)
    return private, public


PRIVATE, PUBLIC = keypair()
OTHER_PRIVATE, OTHER_PUBLIC = keypair()


# -- sign and verify -----------------------------------------------------------------------------

def test_a_signature_verifies_only_the_exact_bytes_with_the_matching_key():
    body = encode_manifest({"version": "v1", "files": {}})
    signature = sign(load_private_key(PRIVATE), body)
    assert base64.b64decode(signature.strip()) and signature.endswith(b"\n")
    public = load_public_key(PUBLIC)
    assert signature_problem(public, body, signature) is None
    assert signature_problem(public, body.replace(b"v1", b"v2"), signature) == \
        f"{SIGNATURE_FILE} does not verify with the public key"
    assert "does not verify with key X" in signature_problem(load_public_key(OTHER_PUBLIC), body, signature,
                                                             "key X")
    assert signature_problem(public, body, None) == f"no {SIGNATURE_FILE}"
    assert signature_problem(public, body, b"not base64!") == f"{SIGNATURE_FILE} is not base64"
    assert "does not verify" in signature_problem(public, body, base64.b64encode(b"short"))


def test_a_key_that_is_not_an_ed25519_pem_is_refused_without_echoing_it():
    with pytest.raises(SigningKeyError) as error:
        load_private_key(b"-----BEGIN PRIVATE KEY-----\nc2VjcmV0\n-----END PRIVATE KEY-----\n")
    assert "c2VjcmV0" not in str(error.value)
    with pytest.raises(SigningKeyError):
        load_public_key(PRIVATE)  # a private key where the public one belongs
    with pytest.raises(SigningKeyError):
        load_private_key(PUBLIC)
    ec_public = ec.generate_private_key(ec.SECP256R1()).public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
    with pytest.raises(SigningKeyError, match="not an Ed25519 key"):
        load_public_key(ec_public)


# -- the spec, the trainer Job and the model servers ---------------------------------------------

def signed_spec(**sections: Any) -> PolicySpec:
    return PolicySpec.from_dict(spec(signing=SIGNING, **sections))


def test_the_signing_section_defaults_its_keys_and_is_validated():
    parsed = signed_spec().signing
    assert (parsed.public_key.name, parsed.public_key.key) == ("model-signing-public", "public.pem")
    assert (parsed.private_key.name, parsed.private_key.key) == ("model-signing", "private.pem")
    assert PolicySpec.from_dict(spec(signing={"publicKeySecret": {"name": "p"}})).signing.private_key is None
    assert PolicySpec.from_dict(spec()).signing is None
    assert spec_problems(spec(signing=SIGNING)) == []
    assert spec_problems(spec(signing={"privateKeySecret": {"name": "k"}}))  # the public key is required
    assert spec_problems(spec(signing={"publicKeySecret": {"name": "p", "key": "a/b"}}))


def test_the_trainer_gets_the_private_key_only_by_secret_reference():
    job = trainer_job(POLICY, signed_spec(training={"env": [{"name": names.ENV_SIGNING_KEY, "value": "x"}]}),
                      RUN, "trainer:1")
    env = job["spec"]["template"]["spec"]["containers"][0]["env"]
    signing_env = [e for e in env if e["name"] == names.ENV_SIGNING_KEY]
    # A plain variable of the same name comes first: the secretKeyRef (last) is the one the pod gets.
    assert signing_env[-1] == {"name": names.ENV_SIGNING_KEY, "valueFrom": {"secretKeyRef": {
        "name": "model-signing", "key": "private.pem"}}}
    config = json.loads(next(e["value"] for e in env if e["name"] == names.ENV_RUN_CONFIG))
    assert config["signing"] == {"keyEnv": names.ENV_SIGNING_KEY}
    assert "PRIVATE" not in json.dumps(job)


def test_without_a_private_key_the_trainer_does_not_sign_and_the_config_is_unchanged():
    external = PolicySpec.from_dict(spec(signing={"publicKeySecret": {"name": "p"}}))
    assert run_config(POLICY, external, RUN) == run_config(POLICY, PolicySpec.from_dict(spec()), RUN)
    env = trainer_job(POLICY, external, RUN, "trainer:1")["spec"]["template"]["spec"]["containers"][0]["env"]
    assert all(e["name"] != names.ENV_SIGNING_KEY for e in env)


@pytest.mark.parametrize("role", [serving.STABLE, serving.CANARY])
def test_model_servers_mount_the_public_key_read_only_and_verify_with_it(role):
    deployment = serving.model_deployment(POLICY, signed_spec(serving={"replicas": 1}), role,
                                          serving.Served("v1", "s3://models/v1/", 1, "a" * 64), "trainer:1")
    pod = deployment["spec"]["template"]["spec"]
    container = pod["containers"][0]
    flag = container["args"].index("--public-key-file")
    folder = "/var/run/secrets/retrain.mlops.dev/signing"
    assert container["args"][flag + 1] == serving.PUBLIC_KEY_PATH == f"{folder}/public.pem"
    assert {"name": serving.PUBLIC_KEY_VOLUME, "mountPath": folder, "readOnly": True} in container["volumeMounts"]
    assert {"name": serving.PUBLIC_KEY_VOLUME, "secret": {"secretName": "model-signing-public", "items": [
        {"key": "public.pem", "path": "public.pem"}]}} in pod["volumes"]
    # What the API server stores (defaultMode added) still covers it: no patch on every reconcile.
    stored = json.loads(json.dumps(deployment["spec"]))
    for volume in stored["template"]["spec"]["volumes"]:
        if "secret" in volume:
            volume["secret"]["defaultMode"] = 420
    assert _covers(stored, deployment["spec"])
    unsigned = serving.model_deployment(POLICY, PolicySpec.from_dict(spec(serving={"replicas": 1})), role,
                                        serving.Served("v1", "s3://models/v1/", 1), "trainer:1")
    assert "--public-key-file" not in unsigned["spec"]["template"]["spec"]["containers"][0]["args"]
    assert len(unsigned["spec"]["template"]["spec"]["volumes"]) == 1


# -- the decision ---------------------------------------------------------------------------------

def test_a_run_whose_signature_does_not_verify_fails_and_is_never_current():
    state, _ = started(signing=SIGNING)
    observed = Observed(jobs=(job("v1", SUCCEEDED),))
    assert step(state, observed).wants.outcomes == ("v1",)
    problem = f"{SIGNATURE_FILE} does not verify with the public key in Secret 'model-signing-public' (key public.pem)"
    outcome = ArtifactOutcome(manifest=MANIFEST, uri="s3://models/v1/", manifest_sha256="a" * 64,
                              signature_problem=problem)
    plan = step(state, dataclasses.replace(observed, outcomes={"v1": outcome}))
    last = plan.status["lastRun"]
    assert (last["phase"], last["reason"]) == ("Failed", "SignatureInvalid")
    assert last["message"].startswith("v1 at s3://models/v1/: ") and "model-signing-public" in last["message"]
    assert plan.status.get("currentModel") is None and not plan.status.get("history")
    assert plan.serving is None or not plan.serving.deployments
    assert [(e.type, e.reason) for e in plan.events] == [("Warning", "RunFailed")]
    assert "SignatureInvalid" in plan.events[0].message
    assert plan.discard_partial == ()  # a finished version is evidence: it stays in S3
    assert get_condition(plan.status["conditions"], "Trained")["reason"] == "SignatureInvalid"


def test_a_missing_signature_fails_a_run_even_when_its_job_is_gone():
    state, _ = started(signing=SIGNING)
    outcome = ArtifactOutcome(manifest=MANIFEST, uri="s3://models/v1/", signature_problem=f"no {SIGNATURE_FILE}")
    plan = step(state, Observed(outcomes={"v1": outcome}))
    assert plan.status["lastRun"]["reason"] == "SignatureInvalid"
    assert plan.status["lastRun"]["message"] == f"v1 at s3://models/v1/: no {SIGNATURE_FILE}; it is not recorded"


def test_the_scheduled_re_check_reports_a_signature_that_no_longer_verifies():
    state = recorded({"serving": {"replicas": 1}, "signing": SIGNING})
    plan = verified(ArtifactOutcome(manifest=MANIFEST, uri=URI, manifest_sha256=DIGEST,
                                    signature_problem=f"{SIGNATURE_FILE} does not verify with the public key"),
                    NOW + dt.timedelta(minutes=11), state)
    assert "manifest.json.sig does not verify" in plan.status["currentModel"]["artifactProblem"]
    assert get_condition(plan.status["conditions"], "Ready")["reason"] == "ArtifactsChanged"


def test_an_unusable_public_key_blocks_and_nothing_is_recorded_meanwhile():
    state, _ = started(signing=SIGNING)
    blocked = ("SigningSecretNotFound", "Secret 'model-signing-public' (spec.signing.publicKeySecret) does not exist")
    waiting = ArtifactOutcome(manifest=None, uri="s3://models/v1/",
                              storage_error=f"signatures cannot be verified: {blocked[1]}")
    plan = step(state, Observed(dependency_problem=blocked, jobs=(job("v1", SUCCEEDED),),
                                outcomes={"v1": waiting}))
    assert plan.status["activeRun"]["version"] == "v1" and not plan.status.get("lastRun")
    ready = get_condition(plan.status["conditions"], "Ready")
    assert (ready["status"], ready["reason"]) == ("False", "SigningSecretNotFound")
    assert plan.status["phase"] == "Blocked"
    assert [(e.type, e.reason) for e in plan.events] == [("Warning", "SigningSecretNotFound")]


# -- the operator's view of the Secrets and of S3 ---------------------------------------------------

def secret(**data: bytes) -> dict[str, Any]:
    return {"data": {key: base64.b64encode(value).decode() for key, value in data.items()}}


def test_the_public_key_secret_is_read_and_each_problem_named():
    signing = signed_spec().signing
    key, problem = signing_adapter.public_key_from_secret(signing, secret(**{"public.pem": PUBLIC}), "ml")
    assert key is not None and problem is None
    assert signing_adapter.public_key_from_secret(signing, None, "ml")[1][0] == "SigningSecretNotFound"
    assert signing_adapter.public_key_from_secret(signing, secret(other=PUBLIC), "ml")[1][0] == \
        "SigningSecretKeyMissing"
    reason, message = signing_adapter.public_key_from_secret(signing, secret(**{"public.pem": b"junk"}), "ml")[1]
    assert reason == "SigningKeyInvalid" and "model-signing-public" in message and "junk" not in message
    assert signing_adapter.private_key_problem(signing, secret(**{"private.pem": PRIVATE}), "ml") is None
    assert signing_adapter.private_key_problem(signing, None, "ml")[0] == "SigningSecretNotFound"


class FakeS3:
    """get_object / put_object over a dict, as boto3 answers them."""

    def __init__(self) -> None:
        self.objects: dict[str, bytes] = {}

    def put_object(self, Bucket: str, Key: str, Body: bytes, **_: Any) -> None:
        self.objects[Key] = Body

    def get_object(self, Bucket: str, Key: str) -> dict[str, Any]:
        if Key not in self.objects:
            raise ClientError({"Error": {"Code": "NoSuchKey"}}, "GetObject")
        return {"Body": io.BytesIO(self.objects[Key])}


def published(prefix: str, private: bytes | None) -> FakeS3:
    client = FakeS3()
    model = b"pickled"
    manifest = {"version": "v1", "policy": {"uid": "uid-1"}, "model": {"file": MODEL_FILE, "features": ["a"]},
                "files": {MODEL_FILE: {"size": len(model), "sha256": sha256_bytes(model)}}}
    body = encode_manifest(manifest)
    client.objects[prefix + MODEL_FILE] = model
    if private:
        client.objects[prefix + SIGNATURE_FILE] = sign(load_private_key(private), body)
    client.objects[prefix + MANIFEST_FILE] = body
    return client


def test_the_operator_reads_and_verifies_the_signature_next_to_the_manifest():
    spec_ = signed_spec()
    prefix = "retrain/ml/churn/uid-1/v1/"

    def view(client: FakeS3, public: bytes | None) -> PolicyStorage:
        return PolicyStorage(spec_, "ml", "churn", client, uid="uid-1",
                             public_key=load_public_key(public) if public else None,
                             signing_problem=None if public else "Secret 'model-signing-public' does not exist")

    good = view(published(prefix, PRIVATE), PUBLIC).outcome("v1")
    assert good.manifest and good.signature_problem is None and not good.problems
    assert good.manifest_sha256 == sha256_bytes(published(prefix, PRIVATE).objects[prefix + MANIFEST_FILE])
    wrong = view(published(prefix, OTHER_PRIVATE), PUBLIC).outcome("v1")
    assert wrong.signature_problem == (f"{SIGNATURE_FILE} does not verify with the public key in Secret "
                                       "'model-signing-public' (key public.pem)")
    assert view(published(prefix, None), PUBLIC).outcome("v1").signature_problem == f"no {SIGNATURE_FILE}"
    assert view(published(prefix, OTHER_PRIVATE), PUBLIC).outcome_at(
        f"s3://models/{prefix}").signature_problem.startswith(f"{SIGNATURE_FILE} does not verify")
    waiting = view(published(prefix, PRIVATE), None).outcome("v1")
    assert waiting.manifest is None and "cannot be verified" in waiting.storage_error
    unsigned_policy = PolicyStorage(PolicySpec.from_dict(spec()), "ml", "churn", published(prefix, None), uid="uid-1")
    assert unsigned_policy.outcome("v1").signature_problem is None


# -- the trainer and the model server ---------------------------------------------------------------

CONFIG = {"policy": {"namespace": "ml", "name": "churn", "uid": "uid-1"}, "version": "v1",
          "model": {"estimator": "LogisticRegression", "target": "y"}, "data": {"history": "s3://d/h/"},
          "training": {}, "storage": {"bucket": "models"}}


def test_the_trainer_signs_only_when_asked_and_a_bad_key_is_a_config_error(monkeypatch):
    assert trainer_config.parse(json.dumps(CONFIG)).signing_key_env is None
    config = trainer_config.parse(json.dumps({**CONFIG, "signing": {"keyEnv": names.ENV_SIGNING_KEY}}))
    assert config.signing_key_env == names.ENV_SIGNING_KEY
    monkeypatch.delenv(names.ENV_SIGNING_KEY, raising=False)
    with pytest.raises(ConfigError, match="is empty"):
        train._signing_key(config)
    monkeypatch.setenv(names.ENV_SIGNING_KEY, "-----BEGIN PRIVATE KEY-----\nbm9wZQ==\n-----END PRIVATE KEY-----\n")
    with pytest.raises(ConfigError) as error:
        train._signing_key(config)
    assert "bm9wZQ" not in str(error.value) and classify(error.value)[0] == EXIT_CONFIG == 2
    monkeypatch.setenv(names.ENV_SIGNING_KEY, PRIVATE.decode())
    assert train._signing_key(config) is not None


def test_the_server_refuses_a_manifest_without_a_valid_signature():
    prefix = "m/v1/"
    uri = f"s3://models/{prefix}"

    def load(client: FakeS3, public: bytes) -> Any:
        return loaded.load(lambda bucket: ArtifactStore(client, bucket), uri, public_key=load_public_key(public))

    with pytest.raises(DataError, match=f"refusing to serve {uri}: {SIGNATURE_FILE} does not verify"):
        load(published(prefix, OTHER_PRIVATE), PUBLIC)
    with pytest.raises(DataError, match=f"refusing to serve {uri}: no {SIGNATURE_FILE}"):
        load(published(prefix, None), PUBLIC)
    # A valid signature passes this check and the server goes on to the files (here not a real pickle).
    with pytest.raises(Exception) as error:
        load(published(prefix, PRIVATE), PUBLIC)
    assert "refusing" not in str(error.value)
