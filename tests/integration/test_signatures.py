"""Manifest signatures on the real control plane: the trainer Job signs with the private key it gets by
secretKeyRef, the operator verifies with the public key before recording, the model servers before
serving; a manifest that does not verify with the policy's public key is never recorded."""

from __future__ import annotations

import base64
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from retrain_contract.api import names
from retrain_contract.artifacts.signature import load_public_key, signature_problem
from retrain_contract.artifacts.uris import parse_s3_uri
from retrain_operator.core import serving
from retrain_operator.core.conditions import get_condition

from .conftest import Scenario
from .test_model_server import Server

pytestmark = pytest.mark.integration


def keypair() -> tuple[bytes, bytes]:
    key = Ed25519PrivateKey.generate()
    return (key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                              serialization.NoEncryption()),
            key.public_key().public_bytes(serialization.Encoding.PEM,
                                          serialization.PublicFormat.SubjectPublicKeyInfo))


def create_secret(scenario: Scenario, name: str, key: str, value: bytes) -> None:
    scenario.cluster.core.create_namespaced_secret(scenario.namespace, {
        "apiVersion": "v1", "kind": "Secret", "metadata": {"name": name},
        "data": {key: base64.b64encode(value).decode()}})


def signed_policy(scenario: Scenario, name: str, private: bytes, public: bytes, **overrides: Any) -> None:
    create_secret(scenario, f"{name}-signing", "private.pem", private)
    create_secret(scenario, f"{name}-signing-public", "public.pem", public)
    spec = scenario.policy_spec(signing={"publicKeySecret": {"name": f"{name}-signing-public"},
                                         "privateKeySecret": {"name": f"{name}-signing"}}, **overrides)
    scenario.cluster.apply_policy(scenario.namespace, name, spec, annotations={names.ANNOTATION_TRIGGER: "1"})


def test_a_signed_version_is_recorded_and_served_and_a_wrong_key_is_refused(scenario: Scenario, seaweed,
                                                                             tmp_path: Path):
    name = "signed"
    private, public = keypair()
    scenario.load_history()
    signed_policy(scenario, name, private, public, serving={"replicas": 1})
    status = scenario.wait_recorded(name, "v1")
    assert status["lastRun"]["phase"] == "Succeeded", status["lastRun"]
    uri = status["currentModel"]["uri"]
    bucket, key = parse_s3_uri(uri)
    manifest = scenario.s3.get_object(Bucket=bucket, Key=key + "manifest.json")["Body"].read()
    signature = scenario.s3.get_object(Bucket=bucket, Key=key + "manifest.json.sig")["Body"].read()
    assert signature_problem(load_public_key(public), manifest, signature) is None
    # The key travels by reference only: not in the spec, the status or the Job's environment values.
    job = next(j for j in scenario.cluster.jobs(scenario.namespace) if j["metadata"]["name"] == f"{name}-v1")
    env = job["spec"]["template"]["spec"]["containers"][0]["env"]
    assert {"name": names.ENV_SIGNING_KEY, "valueFrom": {"secretKeyRef": {
        "name": f"{name}-signing", "key": "private.pem"}}} in env
    assert private.decode().splitlines()[1] not in str(job) + str(scenario.cluster.policy(scenario.namespace, name))

    stable = serving.deployment_name(name, serving.STABLE)
    try:
        scenario.cluster.wait(lambda: (scenario.cluster.deployment(scenario.namespace, stable) or {})
                              .get("status", {}).get("readyReplicas") == 1, 90, "the stable model server")
    except TimeoutError as error:  # say why: the pods' container states
        pods = scenario.cluster.pods(scenario.namespace, serving.selector(name, serving.STABLE))
        raise AssertionError(f"{error}\n{[p.get('status') for p in pods]}") from None
    args = scenario.cluster.deployment(scenario.namespace, stable)["spec"]["template"]["spec"]["containers"][0]["args"]
    assert args[args.index("--public-key-file") + 1] == serving.PUBLIC_KEY_PATH
    scenario.wait_status(name, lambda s: (get_condition(s.get("conditions"), "Ready") or {}).get("status") == "True",
                         "Ready")

    # A server given another public key refuses the same version: exit 3, before unpickling anything.
    other = tmp_path / "other.pem"
    other.write_bytes(keypair()[1])
    server = Server(seaweed, uri, "--public-key-file", str(other))
    try:
        assert server.process.wait(timeout=60) == 3
    finally:
        stderr = server.stop()
    assert "refusing to serve" in stderr and "manifest.json.sig does not verify" in stderr, stderr


def test_a_manifest_that_does_not_verify_with_the_policys_public_key_is_never_recorded(scenario: Scenario):
    name = "wrongkey"
    private, _ = keypair()
    _, unrelated_public = keypair()
    scenario.load_history()
    signed_policy(scenario, name, private, unrelated_public)
    status = scenario.wait_recorded(name, "v1")
    last = status["lastRun"]
    assert (last["phase"], last["reason"]) == ("Failed", "SignatureInvalid"), last
    assert "v1" in last["message"] and f"Secret '{name}-signing-public'" in last["message"]
    assert "does not verify" in last["message"]
    assert not status.get("currentModel") and not status.get("history")
    events = [(e.get("type"), e.get("reason")) for e in scenario.cluster.events(scenario.namespace, name)]
    assert ("Warning", "RunFailed") in events
