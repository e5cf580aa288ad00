"""A real Kubernetes control plane on 127.0.0.1: etcd, kube-apiserver, kube-controller-manager, kube-scheduler.

Set up the way kubeadm sets one up, minus the kubelet: a CA, the API server's serving
certificate, client certificates for each component (the controller manager runs each
controller under its own service account), RBAC and Node authorization, service-account
token signing, and an audit log (Metadata level: every request with its user and verb).
Every process dies with the one that started it (see processes.py).
"""

from __future__ import annotations

import json
import shutil
import socket
import ssl
import subprocess
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from . import processes
from .binaries import Binaries
from .pki import Authority, KeyPair, service_account_keys

SERVICE_CIDR = "10.96.0.0/16"
_AUDIT_POLICY = {"apiVersion": "audit.k8s.io/v1", "kind": "Policy", "omitStages": ["RequestReceived"],
                 "rules": [{"level": "Metadata"}]}


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass(frozen=True)
class AuditRecord:
    """One audited request: who asked for what."""

    user: str
    groups: tuple[str, ...]
    verb: str
    group: str
    resource: str
    subresource: str
    namespace: str
    name: str
    code: int
    decision: str  # the authorizer's: "allow" or "forbid" (a 403 can also come from admission)
    uri: str = ""  # path and query, as asked

    @classmethod
    def parse(cls, event: dict[str, Any]) -> AuditRecord:
        ref = event.get("objectRef") or {}
        user = event.get("user") or {}
        return cls(user=user.get("username", ""), groups=tuple(user.get("groups") or ()), verb=event.get("verb", ""),
                   group=ref.get("apiGroup", ""), resource=ref.get("resource", ""),
                   subresource=ref.get("subresource", ""), namespace=ref.get("namespace", ""),
                   name=ref.get("name", ""), code=int((event.get("responseStatus") or {}).get("code") or 0),
                   decision=(event.get("annotations") or {}).get("authorization.k8s.io/decision", ""),
                   uri=event.get("requestURI", ""))


class ControlPlane:
    """Start with `start()`, stop with `stop()`; `kubeconfig(user)` for each identity it knows."""

    def __init__(self, workdir: Path, binaries: Binaries):
        self.workdir = workdir
        self.binaries = binaries
        self.pki_dir = workdir / "pki"
        self.logs = workdir / "logs"
        self.audit_log = workdir / "audit.log"
        self.port = 0
        self.url = ""
        self._processes: list[tuple[str, subprocess.Popen[bytes]]] = []
        self.ca: Authority | None = None
        self.sa_keys: KeyPair | None = None

    # -- lifecycle -------------------------------------------------------------------------

    def start(self) -> ControlPlane:
        self.workdir.mkdir(parents=True, exist_ok=True)
        self._pki()
        self._etcd()
        self._apiserver()
        self._controllers()
        return self

    def stop(self) -> None:
        for _, process in reversed(self._processes):
            processes.stop(process, grace=5)
        self._processes.clear()

    def check_alive(self) -> None:
        """Fail loudly if a component died (a test should not wait out a timeout for that)."""
        for name, process in self._processes:
            if process.poll() is not None:
                raise RuntimeError(f"{name} exited with {process.returncode}\n"
                                   + processes.tail(self.logs / f"{name}.log"))

    # -- certificates and kubeconfigs --------------------------------------------------------

    def _pki(self) -> None:
        self.ca = Authority(self.pki_dir)
        self.sa_keys = service_account_keys(self.pki_dir)
        self.serving = self.ca.issue(
            "apiserver", "kube-apiserver",
            server_names=("localhost", "kubernetes", "kubernetes.default", "kubernetes.default.svc",
                          "kubernetes.default.svc.cluster.local"),
            server_ips=("127.0.0.1", "10.96.0.1"))
        self.clients = {
            "admin": self.ca.issue("admin", "kubernetes-admin", ("system:masters",)),
            "controller-manager": self.ca.issue("controller-manager", "system:kube-controller-manager"),
            "scheduler": self.ca.issue("scheduler", "system:kube-scheduler"),
            # A user without any RBAC binding: what it may do, tests decide.
            "developer": self.ca.issue("developer", "developer", ("developers",)),
        }

    def issue_client(self, stem: str, user: str, groups: tuple[str, ...] = ()) -> KeyPair:
        assert self.ca is not None
        self.clients[stem] = self.ca.issue(stem, user, groups)
        return self.clients[stem]

    def kubeconfig(self, user: str = "admin", token: str | None = None, path: Path | None = None) -> Path:
        """A kubeconfig for a certificate identity (admin, developer, ...) or, with `token`, a bearer token."""
        assert self.ca is not None
        path = path or self.workdir / f"{user}.kubeconfig"
        credentials: dict[str, str] = {"token": token} if token else {
            "client-certificate": str(self.clients[user].cert), "client-key": str(self.clients[user].key)}
        config = {
            "apiVersion": "v1", "kind": "Config", "current-context": "devcluster",
            "clusters": [{"name": "devcluster", "cluster": {"server": self.url,
                                                             "certificate-authority": str(self.ca.cert_path)}}],
            "users": [{"name": user, "user": credentials}],
            "contexts": [{"name": "devcluster", "context": {"cluster": "devcluster", "user": user}}],
        }
        path.write_text(yaml.safe_dump(config))
        path.chmod(0o600)
        return path

    # -- components ----------------------------------------------------------------------------

    def _start(self, name: str, command: list[str]) -> subprocess.Popen[bytes]:
        process = processes.spawn(command, self.logs / f"{name}.log", cwd=self.workdir)
        self._processes.append((name, process))
        return process

    def _etcd(self) -> None:
        client, peer = free_port(), free_port()
        data = self.workdir / "etcd"
        shutil.rmtree(data, ignore_errors=True)
        self.etcd_url = f"http://127.0.0.1:{client}"
        process = self._start("etcd", [
            str(self.binaries.etcd), "--name", "devcluster", "--data-dir", str(data),
            "--listen-client-urls", self.etcd_url, "--advertise-client-urls", self.etcd_url,
            "--listen-peer-urls", f"http://127.0.0.1:{peer}", "--initial-advertise-peer-urls",
            f"http://127.0.0.1:{peer}", "--initial-cluster", f"devcluster=http://127.0.0.1:{peer}",
            "--unsafe-no-fsync", "--log-level", "warn"])
        processes.wait_until(lambda: _http_ok(f"{self.etcd_url}/health"), 30, "etcd to be healthy", process,
                             self.logs / "etcd.log")

    def _apiserver(self) -> None:
        assert self.ca is not None and self.sa_keys is not None
        self.port = free_port()
        self.url = f"https://127.0.0.1:{self.port}"
        policy = self.workdir / "audit-policy.yaml"
        policy.write_text(yaml.safe_dump(_AUDIT_POLICY))
        process = self._start("kube-apiserver", [
            str(self.binaries.apiserver), "--etcd-servers", self.etcd_url,
            "--bind-address", "127.0.0.1", "--advertise-address", "127.0.0.1", "--secure-port", str(self.port),
            "--tls-cert-file", str(self.serving.cert), "--tls-private-key-file", str(self.serving.key),
            "--client-ca-file", str(self.ca.cert_path),
            "--authorization-mode", "Node,RBAC", "--enable-admission-plugins", "NodeRestriction",
            "--service-account-issuer", "https://kubernetes.default.svc.cluster.local",
            "--service-account-key-file", str(self.sa_keys.cert),
            "--service-account-signing-key-file", str(self.sa_keys.key),
            "--service-cluster-ip-range", SERVICE_CIDR, "--allow-privileged=true",
            # The `kubernetes` Service's endpoints would be 127.0.0.1, which Endpoints refuse; nothing here uses it.
            "--endpoint-reconciler-type", "none",
            "--audit-policy-file", str(policy), "--audit-log-path", str(self.audit_log),
            "--audit-log-format", "json", "--audit-log-mode", "blocking",
            "--profiling=false", "--v", "1"])
        self.kubeconfig("admin")
        processes.wait_until(self._ready, 90, "kube-apiserver /readyz", process, self.logs / "kube-apiserver.log")

    def _controllers(self) -> None:
        assert self.ca is not None and self.sa_keys is not None
        kcm = self.kubeconfig("controller-manager")
        self._start("kube-controller-manager", [
            str(self.binaries.controller_manager), "--kubeconfig", str(kcm),
            "--service-account-private-key-file", str(self.sa_keys.key), "--root-ca-file", str(self.ca.cert_path),
            "--use-service-account-credentials=true", "--leader-elect=false", "--controllers", "*",
            "--secure-port", "0", "--profiling=false", "--v", "1"])
        scheduler = self.kubeconfig("scheduler")
        self._start("kube-scheduler", [
            str(self.binaries.scheduler), "--kubeconfig", str(scheduler),
            "--authentication-kubeconfig", str(scheduler), "--authorization-kubeconfig", str(scheduler),
            "--leader-elect=false", "--bind-address", "127.0.0.1", "--secure-port", str(free_port()),
            "--profiling=false", "--v", "1"])

    # -- HTTP to the API server, for readiness and the odd raw request ---------------------------------

    def ssl_context(self, user: str = "admin") -> ssl.SSLContext:
        assert self.ca is not None
        context = ssl.create_default_context(cafile=str(self.ca.cert_path))
        pair = self.clients[user]
        context.load_cert_chain(str(pair.cert), str(pair.key))
        return context

    def _ready(self) -> bool:
        return _http_ok(f"{self.url}/readyz", self.ssl_context())

    # -- the audit log ---------------------------------------------------------------------------

    def audit(self) -> Iterator[AuditRecord]:
        if not self.audit_log.exists():
            return
        with open(self.audit_log, encoding="utf-8") as handle:
            for line in handle:
                if line.strip():
                    yield AuditRecord.parse(json.loads(line))


def _http_ok(url: str, context: ssl.SSLContext | None = None) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=2, context=context) as response:
            return bool(response.status == 200)
    except OSError:
        return False
