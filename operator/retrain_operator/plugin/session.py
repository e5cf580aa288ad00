"""The kubeconfig's cluster, context and namespace, as kubectl would pick them.

The files are read and checked here before the Kubernetes client sees them, so that a missing,
empty or unparsable kubeconfig, or a context it does not have, is one line naming the file or the
context (the client raises a TypeError on a kubeconfig that is a YAML list, and says only "No
configuration found" for a file that does not exist).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import kubernetes
import yaml
from kubernetes.client.exceptions import ApiException

from retrain_contract.api import names

DEFAULT_KUBECONFIG = "~/.kube/config"
# Seconds per connect and per read (kubectl's flag --request-timeout; its default there is none): a server
# that accepts and never answers is an error after this, not a hang.
REQUEST_TIMEOUT = 30.0


class UserError(Exception):
    """Something the user can fix: printed as one line, exit status 1."""


@dataclass(frozen=True)
class Target:
    """Which cluster the plugin talks to, named in every error about it."""

    context: str
    server: str

    def __str__(self) -> str:
        return f"{self.server} (context {self.context!r})"


def kubeconfig_paths(kubeconfig: str | None) -> list[str]:
    """--kubeconfig, else $KUBECONFIG (a list, as kubectl reads it; empty counts as unset), else ~/.kube/config."""
    if kubeconfig:
        return [kubeconfig]
    listed = os.environ.get("KUBECONFIG") or DEFAULT_KUBECONFIG
    return [path for path in listed.split(os.pathsep) if path]


def _read(path: str) -> dict[str, Any]:
    """One kubeconfig file as a mapping; UserError naming the file when it is not one."""
    try:
        text = Path(path).expanduser().read_text()
    except OSError as error:
        raise UserError(f"cannot read the kubeconfig {path}: {error.strerror or error}") from error
    try:
        document = yaml.safe_load(text)
    except yaml.YAMLError as error:
        raise UserError(f"the kubeconfig {path} is not valid YAML: {_yaml_problem(error)}") from error
    if document is None:
        raise UserError(f"the kubeconfig {path} is empty")
    if not isinstance(document, dict):
        raise UserError(f"the kubeconfig {path} is not a kubeconfig (a YAML {type(document).__name__}, "
                        "not a mapping)")
    return document


@dataclass(frozen=True)
class Kubeconfig:
    """The files merged as kubectl merges them: the first file to name an entry, or the current-context, wins."""

    where: str  # the files, as KUBECONFIG lists them
    contexts: dict[str, dict[str, Any]]
    clusters: dict[str, dict[str, Any]]
    current: str | None

    def listing(self) -> str:
        return f"its contexts: {', '.join(sorted(self.contexts))}" if self.contexts else "it has no contexts"


def _yaml_problem(error: yaml.YAMLError) -> str:
    """The parser's problem and where, without the multi-line excerpt of the file."""
    mark = getattr(error, "problem_mark", None)
    problem = getattr(error, "problem", None) or str(error)
    where = f" (line {mark.line + 1}, column {mark.column + 1})" if mark is not None else ""
    return " ".join(f"{problem}{where}".split())


def read_kubeconfig(paths: list[str]) -> Kubeconfig:
    """The kubeconfig files that exist, read and checked; UserError naming the file that is not usable."""
    existing = [path for path in paths if Path(path).expanduser().exists()]
    if not existing:
        raise UserError(f"no kubeconfig: {paths[0]} does not exist" if len(paths) == 1 else
                        f"no kubeconfig: none of {', '.join(paths)} exists")
    contexts: dict[str, dict[str, Any]] = {}
    clusters: dict[str, dict[str, Any]] = {}
    current: str | None = None
    for path in existing:
        document = _read(path)
        for key, entries in (("contexts", contexts), ("clusters", clusters)):
            listed = document.get(key)
            for entry in listed if isinstance(listed, list) else []:
                body = entry.get(key[:-1]) if isinstance(entry, dict) else None
                if isinstance(entry, dict) and entry.get("name"):
                    entries.setdefault(str(entry["name"]), body if isinstance(body, dict) else {})
        current = current or (str(document["current-context"]) if document.get("current-context") else None)
    return Kubeconfig(os.pathsep.join(paths), contexts, clusters, current)


class Session:
    """The cluster the plugin talks to, loaded from the kubeconfig as kubectl would."""

    def __init__(self, kubeconfig: str | None, context: str | None, namespace: str | None,
                 request_timeout: float = REQUEST_TIMEOUT):
        config = read_kubeconfig(kubeconfig_paths(kubeconfig))
        chosen = context or config.current
        if not chosen:
            raise UserError(f"the kubeconfig {config.where} sets no current-context: pass --context "
                            f"({config.listing()})")
        if chosen not in config.contexts:
            raise UserError(f"context {chosen!r} not found in the kubeconfig {config.where} ({config.listing()})")
        cluster = config.contexts[chosen].get("cluster")
        if cluster in config.clusters and not config.clusters[cluster].get("server"):
            raise UserError(f"cluster {cluster!r} of context {chosen!r} has no server in the kubeconfig "
                            f"{config.where}")
        configuration = kubernetes.client.Configuration()
        try:
            kubernetes.config.load_kube_config(config_file=config.where, context=chosen,
                                               client_configuration=configuration)
        except kubernetes.config.ConfigException as error:
            raise UserError(f"cannot load context {chosen!r} of the kubeconfig {config.where}: "
                            f"{' '.join(str(error).split())}") from error
        self.target = Target(chosen, configuration.host)
        self.namespace = namespace or config.contexts[chosen].get("namespace") or "default"
        # urllib3's (connect, read) timeouts, given to every request.
        self.timeout = (request_timeout, request_timeout) if request_timeout > 0 else None
        self.api_client = kubernetes.client.ApiClient(configuration)
        self.custom = kubernetes.client.CustomObjectsApi(self.api_client)
        self.core = kubernetes.client.CoreV1Api(self.api_client)

    def policies(self, all_namespaces: bool) -> list[dict[str, Any]]:
        if all_namespaces:
            found = self.custom.list_cluster_custom_object(names.GROUP, names.VERSION, names.PLURAL,
                                                           _request_timeout=self.timeout)
        else:
            found = self.custom.list_namespaced_custom_object(names.GROUP, names.VERSION, self.namespace,
                                                              names.PLURAL, _request_timeout=self.timeout)
        return sorted(found.get("items") or [], key=lambda p: (p["metadata"].get("namespace", ""),
                                                               p["metadata"]["name"]))

    def policy(self, name: str) -> dict[str, Any]:
        try:
            return self.custom.get_namespaced_custom_object(names.GROUP, names.VERSION, self.namespace,
                                                            names.PLURAL, name, _request_timeout=self.timeout)
        except ApiException as error:
            if error.status == 404:
                raise UserError(f"retrainpolicy {name!r} not found in namespace {self.namespace!r}") from error
            raise

    def annotate(self, name: str, key: str, value: str | None) -> None:
        """What `kubectl annotate --overwrite` does (None: `key-`), as a merge patch of metadata only."""
        self.custom.patch_namespaced_custom_object(names.GROUP, names.VERSION, self.namespace, names.PLURAL,
                                                   name, {"metadata": {"annotations": {key: value}}},
                                                   _request_timeout=self.timeout)

    def patch_spec(self, name: str, fields: dict[str, Any]) -> None:
        """Only for what a person asks with a command (`pause --runs`): the operator itself never writes spec."""
        self.custom.patch_namespaced_custom_object(names.GROUP, names.VERSION, self.namespace, names.PLURAL,
                                                   name, {"spec": fields}, _request_timeout=self.timeout)

