"""The whole dev cluster: control plane, the real CRDs, one process-kubelet node, the operator's identity.

    with DevCluster(workdir, forward_ports=[s3_port]) as cluster:
        cluster.admin_kubeconfig       # kubectl --kubeconfig ... (system:masters)
        cluster.operator_kubeconfig()  # the retrain-operator ServiceAccount, bound by the shipped RBAC only
"""

from __future__ import annotations

import json
import os
import sys
import time
from pathlib import Path
from typing import Any

import kubernetes
import yaml
from kubernetes.client.rest import ApiException

from . import binaries, processes
from .controlplane import ControlPlane

Json = dict[str, Any]
ROOT = Path(__file__).resolve().parents[3]
NODE = "devcluster-node"
GPUS = "2"
OPERATOR_NAMESPACE = "retrain-system"
OPERATOR_ACCOUNT = "retrain-operator"
OPERATOR_USER = f"system:serviceaccount:{OPERATOR_NAMESPACE}:{OPERATOR_ACCOUNT}"


def third_party_crds() -> list[Json]:
    """Gateway API (standard channel) and Istio's VirtualService, from their published modules at pinned versions."""
    gateway = binaries.module_dir("sigs.k8s.io/gateway-api", binaries.GATEWAY_API) / "config/crd/standard"
    documents = [d for path in sorted(gateway.glob("gateway.networking.k8s.io_*.yaml"))
                 for d in yaml.safe_load_all(path.read_text()) if d and d.get("kind") == "CustomResourceDefinition"]
    istio = binaries.module_dir("istio.io/api", binaries.ISTIO_API) / "kubernetes/customresourcedefinitions.gen.yaml"
    documents += [d for d in yaml.safe_load_all(istio.read_text())
                  if d and d.get("kind") == "CustomResourceDefinition"
                  and d["metadata"]["name"] == "virtualservices.networking.istio.io"]
    return documents


def api_client(kubeconfig: Path) -> kubernetes.client.ApiClient:
    configuration = kubernetes.client.Configuration()
    kubernetes.config.load_kube_config(config_file=str(kubeconfig), client_configuration=configuration)
    return kubernetes.client.ApiClient(configuration)


class DevCluster:
    def __init__(self, workdir: Path, forward_ports: list[int] | None = None, say=print):
        self.workdir = workdir
        self.forward_ports = forward_ports or []
        self.say = say
        self.plane: ControlPlane | None = None
        self.kubelet: Any = None
        self.client: kubernetes.client.ApiClient | None = None

    @property
    def admin_kubeconfig(self) -> Path:
        assert self.plane is not None
        return self.plane.workdir / "admin.kubeconfig"

    @property
    def url(self) -> str:
        assert self.plane is not None
        return self.plane.url

    def start(self) -> DevCluster:
        started = time.monotonic()
        built = binaries.ensure(self.say)
        self.plane = ControlPlane(self.workdir / "controlplane", built).start()
        self.client = api_client(self.admin_kubeconfig)
        self.install_crds()
        self._operator_identity()
        self._start_kubelet()
        self._wait_node_ready()
        self.say(f"   control plane up in {time.monotonic() - started:.1f} s ({self.url})")
        return self

    def stop(self) -> None:
        processes.stop(self.kubelet, grace=15)
        self.kubelet = None
        if self.plane is not None:
            self.plane.stop()

    def __enter__(self) -> DevCluster:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # -- what a cluster admin installs -------------------------------------------------------------

    def install_crds(self) -> None:
        from retrain_operator.api.crd import crd

        extensions = kubernetes.client.ApiextensionsV1Api(self.client)
        wanted = [crd(), *third_party_crds()]
        for document in wanted:
            try:
                extensions.create_custom_resource_definition(document, _preload_content=False)
            except ApiException as error:
                if error.status != 409:
                    raise RuntimeError(f"the API server refused CRD {document['metadata']['name']}: "
                                       f"{error.body}") from error
        for document in wanted:
            name = document["metadata"]["name"]
            processes.wait_until(lambda n=name: _established(extensions, n), 30, f"CRD {name} to be established")

    def _operator_identity(self) -> None:
        """The operator's namespace, ServiceAccount and the shipped RBAC (manifests/operator), as kustomize would."""
        core = kubernetes.client.CoreV1Api(self.client)
        rbac = kubernetes.client.RbacAuthorizationV1Api(self.client)
        for document in ("namespace.yaml", "serviceaccount.yaml", "rbac.yaml"):
            for body in yaml.safe_load_all((ROOT / "manifests/operator" / document).read_text()):
                kind = body["kind"]
                try:
                    if kind == "Namespace":
                        core.create_namespace(body, _preload_content=False)
                    elif kind == "ServiceAccount":
                        core.create_namespaced_service_account(OPERATOR_NAMESPACE, body, _preload_content=False)
                    elif kind == "ClusterRole":
                        rbac.create_cluster_role(body, _preload_content=False)
                    elif kind == "ClusterRoleBinding":
                        rbac.create_cluster_role_binding(body, _preload_content=False)
                    else:
                        raise RuntimeError(f"unexpected {kind} in manifests/operator/{document}")
                except ApiException as error:
                    if error.status != 409:
                        raise

    def operator_kubeconfig(self, path: Path | None = None) -> Path:
        """A kubeconfig with a fresh token of the retrain-operator ServiceAccount (TokenRequest, 24 h)."""
        assert self.plane is not None
        core = kubernetes.client.CoreV1Api(self.client)
        response = core.create_namespaced_service_account_token(
            OPERATOR_ACCOUNT, OPERATOR_NAMESPACE, {"spec": {"expirationSeconds": 86400}}, _preload_content=False)
        token = json.loads(response.data)["status"]["token"]
        return self.plane.kubeconfig(OPERATOR_ACCOUNT, token=token, path=path)

    # -- the node ----------------------------------------------------------------------------------

    def _start_kubelet(self) -> None:
        assert self.plane is not None
        self.plane.issue_client("kubelet", f"system:node:{NODE}", ("system:nodes",))
        kubeconfig = self.plane.kubeconfig("kubelet")
        command = [sys.executable, "-m", "retrain_devcluster.kubelet", "--kubeconfig", str(kubeconfig),
                   "--node", NODE, "--workdir", str(self.workdir / "pods"), "--capacity", f"nvidia.com/gpu={GPUS}",
                   # What NVIDIA's GPU feature discovery labels a GPU node with (policies select on it).
                   "--label", "nvidia.com/gpu.present=true",
                   "--image-path", sys.prefix, "--image-path", str(ROOT)]
        for port in self.forward_ports:
            command += ["--forward", str(port)]
        env = {**os.environ, "RETRAIN_DEVCLUSTER_VERSION": binaries.KUBERNETES}
        self.kubelet = processes.spawn(command, self.plane.logs / "kubelet.log", env=env)

    def _wait_node_ready(self) -> None:
        core = kubernetes.client.CoreV1Api(self.client)

        def ready() -> bool:
            node = json.loads(core.read_node(NODE, _preload_content=False).data)
            conditions = {c["type"]: c["status"] for c in (node.get("status") or {}).get("conditions") or []}
            taints = [t for t in (node.get("spec") or {}).get("taints") or []
                      if t.get("key", "").startswith("node.kubernetes.io/")]
            return conditions.get("Ready") == "True" and not taints
        assert self.plane is not None
        processes.wait_until(ready, 60, "the node to be Ready and untainted", self.kubelet,
                             self.plane.logs / "kubelet.log")

    def check_alive(self) -> None:
        assert self.plane is not None
        self.plane.check_alive()
        if self.kubelet is not None and self.kubelet.poll() is not None:
            raise RuntimeError("the kubelet exited\n" + processes.tail(self.plane.logs / "kubelet.log"))


def _established(extensions: kubernetes.client.ApiextensionsV1Api, name: str) -> bool:
    body = json.loads(extensions.read_custom_resource_definition(name, _preload_content=False).data)
    return any(c["type"] == "Established" and c["status"] == "True"
               for c in (body.get("status") or {}).get("conditions") or [])
