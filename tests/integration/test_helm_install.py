"""The chart installed for real, with Helm's SDK, into the dev cluster's API server: two releases of one name in
two namespaces and a second release beside the first; a CRD already there (as the kustomize base leaves it)
handed to the release as its README says; `helm upgrade` changing the CRD; uninstalls keeping it.

The operator's pods are kept Pending (a nodeSelector no node has): what is checked here is what Helm and the
API server make of the chart, and the disruption controller's reading of each release's PodDisruptionBudget.
"""

from __future__ import annotations

import json
import shutil
import uuid
from pathlib import Path
from typing import Any

import helm_python
import kubernetes
import pytest
import yaml
from kubernetes.client.rest import ApiException

from retrain_devcluster import processes
from retrain_operator.api import crd as crd_module

pytestmark = pytest.mark.integration
ROOT = Path(__file__).resolve().parents[2]
CHART = ROOT / "helm/retrain-operator"
CRD = crd_module.crd()["metadata"]["name"]
PEERING_CRDS = ("clusterkopfpeerings.kopf.dev", "kopfpeerings.kopf.dev")
VALUES: dict[str, Any] = {"sharding": {"shards": 2, "peering": True},
                          "nodeSelector": {"retrain.mlops.dev/test-no-such-node": "true"}}


def _read(call, *args) -> dict | None:
    try:
        return json.loads(call(*args, _preload_content=False).data)
    except ApiException as error:
        if error.status == 404:
            return None
        raise


def _printer_columns(extensions) -> list[str]:
    crd = _read(extensions.read_custom_resource_definition, CRD)
    assert crd is not None
    return [column["name"] for column in crd["spec"]["versions"][0]["additionalPrinterColumns"]]


def _upgrade_forcing_conflicts(config: helm_python.Config, chart: Path, name: str, values: dict,
                               namespace: str) -> dict:
    """`helm upgrade --force-conflicts`: Helm 4 applies server-side, and takes over the fields another manager
    (kubectl, which applied the CRD) holds only when forced. Config.upgrade does not pass that option (SDK
    0.2.2); the SDK's native upgrade takes it."""
    from helm_python import _native
    from helm_python.config import _NONE, _opts

    payload = _native.call_string("helm_upgrade", config._raw(), _native.HANDLE(_NONE), _native.HANDLE(_NONE),
                                  str(chart), name, json.dumps(values),
                                  _opts(namespace=namespace, force_conflicts=True))
    return json.loads(payload)


def _chart_with_an_extra_printer_column(tmp_path: Path) -> Path:
    """The chart as a later version would ship it: the same CRD with one more printer column."""
    copy = tmp_path / "retrain-operator"
    shutil.copytree(CHART, copy)
    path = copy / crd_module.HELM_CRD_PATH.relative_to("helm/retrain-operator")
    crd = yaml.safe_load(path.read_text())
    crd["spec"]["versions"][0]["additionalPrinterColumns"].append(
        {"name": "Upgraded", "type": "string", "jsonPath": ".status.phase"})
    path.write_text(yaml.safe_dump(crd, sort_keys=False))
    return copy


@pytest.mark.timeout(300)
def test_two_releases_side_by_side_a_crd_upgrade_and_uninstalls_that_keep_it(devcluster: Any, tmp_path: Path):
    client = devcluster.client
    core = kubernetes.client.CoreV1Api(client)
    rbac = kubernetes.client.RbacAuthorizationV1Api(client)
    policy = kubernetes.client.PolicyV1Api(client)
    custom = kubernetes.client.CustomObjectsApi(client)
    extensions = kubernetes.client.ApiextensionsV1Api(client)
    suffix = uuid.uuid4().hex[:6]
    team_a, team_b = f"helm-a-{suffix}", f"helm-b-{suffix}"
    releases = [("retrain-operator", team_a, True), ("retrain-operator", team_b, False), ("second", team_a, False)]
    configs = {namespace: helm_python.Config(kubeconfig_path=devcluster.admin_kubeconfig, namespace=namespace)
               for namespace in (team_a, team_b)}
    peering_crds_before = {name for name in PEERING_CRDS if _read(extensions.read_custom_resource_definition, name)}
    original_crd = _read(extensions.read_custom_resource_definition, CRD)
    assert original_crd is not None, "the dev cluster installs the CRD, as `kubectl apply -k manifests/` would"
    installed: list[tuple[str, str]] = []
    try:
        # The CRD is there and not Helm's: the first install refuses to take it over...
        with pytest.raises(helm_python.HelmError, match="invalid ownership metadata"):
            configs[team_a].install(str(CHART), "retrain-operator", VALUES, namespace=team_a, create_namespace=True)
        # ...until it is handed to the release, with the README's `kubectl label` and `kubectl annotate`.
        extensions.patch_custom_resource_definition(CRD, {"metadata": {
            "labels": {"app.kubernetes.io/managed-by": "Helm"},
            "annotations": {"meta.helm.sh/release-name": "retrain-operator",
                            "meta.helm.sh/release-namespace": team_a}}})
        for name, namespace, install_crd in releases:
            release = configs[namespace].install(str(CHART), name, {**VALUES, "crds": {"install": install_crd}},
                                                 namespace=namespace, create_namespace=True)
            installed.append((name, namespace))
            assert release["status"] == "deployed", release
            assert "kubectl -n " + namespace + " rollout status deployment/" in release["notes"]
        # A second release that also installs the CRD is refused, and changes nothing.
        with pytest.raises(helm_python.HelmError, match="invalid ownership metadata"):
            configs[team_b].install(str(CHART), "third", {**VALUES, "crds": {"install": True}}, namespace=team_b)

        # Each release has its own cluster-scoped objects and peering objects, and its own Deployments.
        fullnames = {("retrain-operator", team_a): "retrain-operator", ("retrain-operator", team_b): "retrain-operator",
                     ("second", team_a): "second-retrain-operator"}
        for (name, namespace), fullname in fullnames.items():
            role = _read(rbac.read_cluster_role, f"{fullname}-{namespace}")
            assert role is not None and role["metadata"]["labels"]["app.kubernetes.io/instance"] == name
            binding = _read(rbac.read_cluster_role_binding, f"{fullname}-{namespace}")
            assert binding["subjects"] == [{"kind": "ServiceAccount", "name": fullname, "namespace": namespace}]
            for index in range(2):
                assert _read(custom.get_cluster_custom_object, "kopf.dev", "v1", "clusterkopfpeerings",
                             f"{fullname}-{namespace}-shard-{index}") is not None
                deployment = f"{fullname}-shard-{index}"
                assert _read(kubernetes.client.AppsV1Api(client).read_namespaced_deployment, deployment,
                             namespace) is not None
        for crd_name in PEERING_CRDS:  # from the chart's crds/, before the peering objects
            assert _read(extensions.read_custom_resource_definition, crd_name) is not None

        # team-a has four operator pods, two per release: each budget counts its own two only.
        def budgets_settled() -> bool:
            for (_, namespace), fullname in fullnames.items():
                status = (_read(policy.read_namespaced_pod_disruption_budget, fullname, namespace) or {}).get(
                    "status") or {}
                if status.get("expectedPods") != 2:
                    return False
            return True
        processes.wait_until(budgets_settled, 60, "each PodDisruptionBudget to count its release's two pods")
        pods = json.loads(core.list_namespaced_pod(team_a, _preload_content=False).data)["items"]
        assert sorted(p["metadata"]["labels"]["app.kubernetes.io/instance"] for p in pods) == [
            "retrain-operator", "retrain-operator", "second", "second"]

        # `helm upgrade` upgrades the CRD (a template, not crds/), and a second upgrade takes the change back.
        # The first change to the handed-over CRD needs --force-conflicts (the README says so): kubectl still
        # owns the fields it applied.
        newer = _chart_with_an_extra_printer_column(tmp_path)
        values_a = {**VALUES, "crds": {"install": True}}
        with pytest.raises(helm_python.HelmError, match="conflict"):
            configs[team_a].upgrade(str(newer), "retrain-operator", values_a, namespace=team_a)
        assert "Upgraded" not in _printer_columns(extensions)
        assert _upgrade_forcing_conflicts(configs[team_a], newer, "retrain-operator", values_a,
                                          team_a)["status"] == "deployed"
        assert _printer_columns(extensions)[-1] == "Upgraded"
        configs[team_a].upgrade(str(CHART), "retrain-operator", values_a, namespace=team_a)
        assert "Upgraded" not in _printer_columns(extensions)
        assert _printer_columns(extensions) == [c["name"] for c in original_crd["spec"]["versions"][0][
            "additionalPrinterColumns"]]

        # Uninstalled, every release takes its objects along, but the CRD (and so every policy) stays.
        for name, namespace in list(installed):
            configs[namespace].uninstall(name)
            installed.remove((name, namespace))
        crd = _read(extensions.read_custom_resource_definition, CRD)
        assert crd is not None and crd["metadata"].get("deletionTimestamp") is None
        assert crd["metadata"]["annotations"]["helm.sh/resource-policy"] == "keep"
        for (_, namespace), fullname in fullnames.items():
            assert _read(rbac.read_cluster_role, f"{fullname}-{namespace}") is None
            assert _read(custom.get_cluster_custom_object, "kopf.dev", "v1", "clusterkopfpeerings",
                         f"{fullname}-{namespace}-shard-0") is None
    finally:
        for name, namespace in installed:
            configs[namespace].uninstall(name, ignore_not_found=True)
        for config in configs.values():
            config.close()
        # The dev cluster's CRD as it was for the next tests: the generated one, none of Helm's metadata.
        current = _read(extensions.read_custom_resource_definition, CRD)
        if current is not None:
            restored = crd_module.crd()
            restored["metadata"]["resourceVersion"] = current["metadata"]["resourceVersion"]
            extensions.replace_custom_resource_definition(CRD, restored)
        for name in set(PEERING_CRDS) - peering_crds_before:
            if _read(extensions.read_custom_resource_definition, name):
                extensions.delete_custom_resource_definition(name)
        for namespace in (team_a, team_b):
            if _read(core.read_namespace, namespace):
                core.delete_namespace(namespace)
