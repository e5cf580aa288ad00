"""The one S3 client factory (retrain_contract.artifacts.s3.make_client): who makes clients with it, which
timeouts and tries each caller gets, and that its clients work against a real S3 (the `seaweed` fixture).

No boto3 is mocked: clients are real, requests go to SeaweedFS or to a local HTTP server that only
ever answers 503 (to count tries); what a client sent is read from botocore's own event hooks."""

from __future__ import annotations

import ast
import json
import socket
import threading
import uuid
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
from botocore.exceptions import ClientError

from retrain_contract.api.spec import PolicySpec
from retrain_contract.artifacts.s3 import WORKLOAD_TIMEOUTS, S3Timeouts, make_client
from retrain_operator.adapters.s3clients import OPERATOR_TIMEOUTS, ClientCache, EndpointKey
from retrain_operator.adapters.storage import client_for
from retrain_operator.plugin.report import ReportError, fetch_report, report_client
from retrain_sandbox.seaweed import SeaweedS3
from retrain_trainer import cli as trainer_cli

from .policies import spec as policy_spec

ROOT = Path(__file__).resolve().parents[2]
FACTORY = ROOT / "contract/retrain_contract/artifacts/s3.py"
TREES = ("contract", "operator", "trainer_image", "tests/support")


# --- who makes clients ---------------------------------------------------------------------------------

def client_makers(path: Path) -> list[str]:
    """Where a file makes an S3 client or a botocore Config itself: `<anything>.client("s3", ...)`,
    `.resource("s3")`, botocore's Config imported."""
    shown = path.relative_to(ROOT) if path.is_relative_to(ROOT) else path
    return [f"{shown}:{node.lineno}" for node in ast.walk(ast.parse(path.read_text(), str(path)))
            if makes_client(node) or imports_config(node)]


def makes_client(node: ast.AST) -> bool:
    return (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)
            and node.func.attr in {"client", "resource"} and bool(node.args)
            and isinstance(node.args[0], ast.Constant) and node.args[0].value == "s3")


def imports_config(node: ast.AST) -> bool:
    return isinstance(node, ast.ImportFrom) and node.module in {"botocore.client", "botocore.config"}


def sources(tree: str) -> list[Path]:
    """The tree's Python sources, not what a build left next to them (build/, *.egg-info)."""
    return sorted(path for path in (ROOT / tree).rglob("*.py")
                  if not {"build", "dist", "__pycache__"} & set(path.relative_to(ROOT).parts)
                  and not any(part.endswith(".egg-info") for part in path.parts))


def test_every_s3_client_is_made_by_the_contract_factory():
    makers = [place for tree in TREES for path in sources(tree) if path != FACTORY for place in client_makers(path)]
    assert makers == []
    assert client_makers(FACTORY), "the factory itself is seen"


def test_the_check_sees_a_client_made_elsewhere(tmp_path: Path):
    (tmp_path / "m.py").write_text("import boto3\nfrom botocore.client import Config\n"
                                   "def f(session):\n    return session.client('s3'), boto3.client('s3')\n")
    assert [place.rsplit(":", 1)[1] for place in client_makers(tmp_path / "m.py")] == ["2", "4", "4"]


# --- what each caller gets --------------------------------------------------------------------------------

CREDENTIALS = {"aws_access_key_id": "AKIDEXAMPLE", "aws_secret_access_key": "s3cr3t"}


def limits(client: Any) -> tuple[float, float, int, str, str]:
    config = client.meta.config
    return (config.connect_timeout, config.read_timeout, config.retries["total_max_attempts"],
            config.retries["mode"], config.s3["addressing_style"])


WORKLOAD = (5, 20, 3, "standard", "path")
OPERATOR = (3, 10, 2, "standard", "path")


def test_the_values_are_the_documented_ones():
    # docs/reliability.md: the operator's botocore: 3 s connect, 10 s read, 2 tries.
    assert S3Timeouts(connect=3, read=10, attempts=2) == OPERATOR_TIMEOUTS
    assert S3Timeouts(connect=5, read=20, attempts=3) == WORKLOAD_TIMEOUTS


def test_the_workload_gets_its_own_timeouts(seaweed: SeaweedS3):
    store = trainer_cli._store({"endpoint": seaweed.endpoint, "region": "us-east-1", "bucket": "models"})
    assert limits(store.client) == WORKLOAD
    assert limits(make_client(seaweed.endpoint, None)) == WORKLOAD


def test_the_operator_gets_its_tighter_timeouts():
    client = client_for(PolicySpec.from_dict(policy_spec()), dict(CREDENTIALS))
    assert limits(client) == OPERATOR
    assert limits(ClientCache().get(EndpointKey("http://127.0.0.1:9", "eu-west-1"), CREDENTIALS)) == OPERATOR


def test_the_plugin_gets_the_operators_timeouts_with_either_credentials():
    spec = PolicySpec.from_dict(policy_spec())
    assert limits(report_client(None, spec, None, env_credentials=True)) == OPERATOR  # type: ignore[arg-type]
    secret = SecretReaderStub({"stringData": {"AWS_ACCESS_KEY_ID": "AK", "AWS_SECRET_ACCESS_KEY": "SK"}})
    assert limits(report_client(secret, spec, None, env_credentials=False)) == OPERATOR


def test_the_dev_tools_client_is_the_workloads(seaweed: SeaweedS3):
    assert limits(seaweed.client()) == WORKLOAD


def test_endpoint_and_region_defaults(monkeypatch: pytest.MonkeyPatch):
    monkeypatch.delenv("AWS_ENDPOINT_URL", raising=False)
    monkeypatch.delenv("AWS_ENDPOINT_URL_S3", raising=False)
    assert make_client("", None).meta.region_name == "us-east-1"
    assert make_client(None, "eu-west-1").meta.endpoint_url == "https://s3.eu-west-1.amazonaws.com"
    cached = ClientCache().get(EndpointKey("http://127.0.0.1:9", ""), CREDENTIALS)
    assert cached.meta.region_name == "us-east-1" and cached.meta.endpoint_url == "http://127.0.0.1:9"


# --- against a real S3 -------------------------------------------------------------------------------------

def sent_urls(client: Any) -> list[str]:
    urls: list[str] = []
    client.meta.events.register("before-send.s3", lambda request, **_: urls.append(request.url))
    return urls


@pytest.mark.parametrize("timeouts", [WORKLOAD_TIMEOUTS, OPERATOR_TIMEOUTS], ids=["workload", "operator"])
def test_a_factory_client_writes_and_reads_path_style(seaweed: SeaweedS3, bucket: str, timeouts: S3Timeouts):
    # "localhost", not an IP: a virtual-hosted request would go to <bucket>.localhost.
    endpoint = seaweed.endpoint.replace("127.0.0.1", "localhost")
    client = make_client(endpoint, seaweed.region, timeouts=timeouts,
                         aws_access_key_id=seaweed.access_key, aws_secret_access_key=seaweed.secret_key)
    urls = sent_urls(client)
    client.put_object(Bucket=bucket, Key="a/b.txt", Body=b"hello")
    assert client.get_object(Bucket=bucket, Key="a/b.txt")["Body"].read() == b"hello"
    assert urls == [f"{endpoint}/{bucket}/a/b.txt"] * 2


def test_the_operators_cached_client_reads_with_the_secrets_credentials(seaweed: SeaweedS3, s3, bucket: str):
    s3.put_object(Bucket=bucket, Key="k", Body=b"v")
    spec = PolicySpec.from_dict(policy_spec(storage={"endpoint": seaweed.endpoint, "bucket": bucket}))
    credentials = {"aws_access_key_id": seaweed.access_key, "aws_secret_access_key": seaweed.secret_key}
    client = client_for(spec, credentials)
    assert client_for(spec, dict(credentials)) is client
    assert client.get_object(Bucket=bucket, Key="k")["Body"].read() == b"v"


class SecretReaderStub:
    """The plugin's view of the Kubernetes API: one Secret to read (a stand-in for the API server)."""

    namespace = "ml"
    timeout = (7.0, 7.0)  # --request-timeout: every read passes it on

    def __init__(self, secret: dict[str, Any]):
        body = json.dumps(secret).encode()

        def read(name: str, namespace: str, **options: Any) -> SimpleNamespace:
            assert options["_request_timeout"] == self.timeout, "the Secret read must have the plugin's timeout"
            return SimpleNamespace(data=body)
        self.core = SimpleNamespace(read_namespaced_secret=read)


def report_policy(seaweed: SeaweedS3, bucket: str, endpoint: str | None = None) -> dict[str, Any]:
    return {"metadata": {"name": "churn"},
            "spec": policy_spec(storage={"endpoint": endpoint or seaweed.endpoint, "bucket": bucket}),
            "status": {"drift": {"checkId": "d1", "reportUri": f"s3://{bucket}/drift/d1/report.html"}}}


def test_the_plugin_fetches_a_report_with_the_secrets_or_the_users_credentials(
        seaweed: SeaweedS3, s3, bucket: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    s3.put_object(Bucket=bucket, Key="drift/d1/report.html", Body=b"<!doctype html>")
    policy = report_policy(seaweed, bucket)
    secret = SecretReaderStub({"stringData": {"AWS_ACCESS_KEY_ID": seaweed.access_key,
                                              "AWS_SECRET_ACCESS_KEY": seaweed.secret_key}})
    saved, drift = fetch_report(secret, policy, str(tmp_path / "a.html"))
    assert Path(saved).read_bytes() == b"<!doctype html>" and drift["checkId"] == "d1"
    for name, value in {"AWS_ACCESS_KEY_ID": seaweed.access_key, "AWS_SECRET_ACCESS_KEY": seaweed.secret_key,
                        "AWS_SHARED_CREDENTIALS_FILE": str(tmp_path / "none"),
                        "AWS_CONFIG_FILE": str(tmp_path / "none")}.items():
        monkeypatch.setenv(name, value)
    saved, _ = fetch_report(None, policy, str(tmp_path / "b.html"), env_credentials=True)  # type: ignore[arg-type]
    assert Path(saved).read_bytes() == b"<!doctype html>"
    nowhere = tmp_path / "nodir" / "c.html"  # one line for the user, not an OSError's traceback
    with pytest.raises(ReportError, match=f"^cannot save the report to {nowhere}: No such file or directory$"):
        fetch_report(secret, policy, str(nowhere))


def test_the_plugin_says_whether_s3_answered(seaweed: SeaweedS3, bucket: str, tmp_path: Path):
    secret = SecretReaderStub({"stringData": {"AWS_ACCESS_KEY_ID": seaweed.access_key,
                                              "AWS_SECRET_ACCESS_KEY": seaweed.secret_key}})
    with pytest.raises(ReportError, match=r"^cannot read s3://.*/report.html: NoSuchKey$"):
        fetch_report(secret, report_policy(seaweed, bucket), str(tmp_path / "a.html"))
    with pytest.raises(ReportError, match=r"^cannot reach S3 for s3://.*--endpoint points at a reachable"):
        fetch_report(secret, report_policy(seaweed, bucket), str(tmp_path / "a.html"), endpoint=closed_endpoint())


def closed_endpoint() -> str:
    """An address nothing listens on: connections are refused at once."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return f"http://127.0.0.1:{sock.getsockname()[1]}"


# --- tries --------------------------------------------------------------------------------------------------

class Unavailable:
    """A local HTTP endpoint that answers every request 503 (retryable) and counts them."""

    def __init__(self) -> None:
        self.requests = 0
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_HEAD(self) -> None:
                outer.requests += 1
                self.send_response(503)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.05},
                                       daemon=True)
        self.thread.start()

    @property
    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}"

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture()
def unavailable() -> Iterator[Unavailable]:
    made = Unavailable()
    yield made
    made.close()


@pytest.mark.parametrize(("caller", "tries"), [("workload", 3), ("operator", 2), ("plugin", 2)])
def test_each_caller_tries_as_often_as_it_is_told(unavailable: Unavailable, caller: str, tries: int,
                                                  monkeypatch: pytest.MonkeyPatch):
    spec = PolicySpec.from_dict(policy_spec(storage={"endpoint": unavailable.endpoint}))
    key = {"aws_access_key_id": "AK", "aws_secret_access_key": f"SK-{uuid.uuid4().hex}"}  # a client of its own
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", key["aws_access_key_id"])
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", key["aws_secret_access_key"])
    client = {"workload": lambda: make_client(unavailable.endpoint, None),
              "operator": lambda: client_for(spec, key),
              "plugin": lambda: report_client(None, spec, None, env_credentials=True),  # type: ignore[arg-type]
              }[caller]()
    with pytest.raises(ClientError) as caught:
        client.head_bucket(Bucket="models")
    assert caught.value.response["ResponseMetadata"]["HTTPStatusCode"] == 503
    assert unavailable.requests == tries
