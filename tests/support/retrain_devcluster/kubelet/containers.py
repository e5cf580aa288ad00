"""What a kubelet computes before it starts a container: the command and the environment.

Pure functions of the pod, the container and a lookup for Secrets and ConfigMaps, so they
follow the kubelet's rules: `env` after `envFrom`, `$(VAR)` expanded from variables defined
earlier (`$$` escapes), a missing Secret or key is a CreateContainerConfigError unless
`optional`, and an empty `command` means the image's entrypoint.
"""

from __future__ import annotations

import base64
import re
from collections.abc import Callable
from typing import Any

Json = dict[str, Any]
Lookup = Callable[[str, str], Json | None]  # (kind "Secret"|"ConfigMap", name) -> object or None

# Images here are not pulled: an image's entrypoint, when a container gives no command.
IMAGE_ENTRYPOINTS = {"retrain-trainer": ["retrain-trainer"]}
_REFERENCE = re.compile(r"\$\$|\$\(([-._a-zA-Z][-._a-zA-Z0-9]*)\)")


class ConfigError(Exception):
    """The container cannot be configured yet (the kubelet's CreateContainerConfigError)."""


def expand(text: str, env: dict[str, str]) -> str:
    """Kubernetes' `$(VAR)` expansion: defined names are replaced, others are left as written."""
    def replace(match: re.Match[str]) -> str:
        if match.group(0) == "$$":
            return "$"
        return env.get(match.group(1), match.group(0))
    return _REFERENCE.sub(replace, text)


def data_of(obj: Json, kind: str) -> dict[str, str]:
    if kind == "Secret":
        return {k: base64.b64decode(v).decode() for k, v in (obj.get("data") or {}).items()}
    return {**(obj.get("data") or {})}


def _field(pod: Json, path: str) -> str:
    meta, spec, status = pod.get("metadata") or {}, pod.get("spec") or {}, pod.get("status") or {}
    simple = {"metadata.name": meta.get("name"), "metadata.namespace": meta.get("namespace"),
              "metadata.uid": meta.get("uid"), "spec.nodeName": spec.get("nodeName"),
              "spec.serviceAccountName": spec.get("serviceAccountName"), "status.podIP": status.get("podIP"),
              "status.hostIP": status.get("hostIP")}
    if path in simple:
        return str(simple[path] or "")
    match = re.fullmatch(r"metadata\.(labels|annotations)\['(.+)'\]", path)
    if match:
        return str((meta.get(match.group(1)) or {}).get(match.group(2), ""))
    raise ConfigError(f"unsupported fieldRef {path!r}")


def _ref_value(source: Json, lookup: Lookup) -> str | None:
    kind = "Secret" if "secretKeyRef" in source else "ConfigMap"
    ref = source["secretKeyRef" if kind == "Secret" else "configMapKeyRef"]
    obj = lookup(kind, ref["name"])
    if obj is None:
        if ref.get("optional"):
            return None
        raise ConfigError(f'{kind.lower()} "{ref["name"]}" not found')
    data = data_of(obj, kind)
    if ref["key"] not in data:
        if ref.get("optional"):
            return None
        raise ConfigError(f"couldn't find key {ref['key']} in {kind} {ref['name']}")
    return data[ref["key"]]


def environment(pod: Json, container: Json, lookup: Lookup, base: dict[str, str]) -> dict[str, str]:
    """The container's environment on top of `base` (what the image would set: PATH, HOME, ...)."""
    env = dict(base)
    env["HOSTNAME"] = str((pod.get("metadata") or {}).get("name", ""))
    for source in container.get("envFrom") or []:
        kind = "Secret" if "secretRef" in source else "ConfigMap"
        ref = source.get("secretRef") or source.get("configMapRef") or {}
        obj = lookup(kind, ref["name"])
        if obj is None:
            if ref.get("optional"):
                continue
            raise ConfigError(f'{kind.lower()} "{ref["name"]}" not found')
        prefix = source.get("prefix", "")
        env.update({prefix + k: v for k, v in data_of(obj, kind).items()})
    for item in container.get("env") or []:
        if "value" in item:
            env[item["name"]] = expand(str(item["value"]), env)
            continue
        source = item.get("valueFrom") or {}
        if "fieldRef" in source:
            env[item["name"]] = _field(pod, source["fieldRef"]["fieldPath"])
        elif "secretKeyRef" in source or "configMapKeyRef" in source:
            value = _ref_value(source, lookup)
            if value is not None:
                env[item["name"]] = value
        elif "resourceFieldRef" in source:
            resource = source["resourceFieldRef"]["resource"]
            kind, _, name = resource.partition(".")
            env[item["name"]] = str(((container.get("resources") or {}).get(kind) or {}).get(name, "0"))
        else:
            env[item["name"]] = ""
    return env


def command(container: Json, env: dict[str, str]) -> list[str]:
    """`command` + `args` expanded; the image's entrypoint when `command` is empty."""
    entry = list(container.get("command") or IMAGE_ENTRYPOINTS.get(_image_name(container.get("image", "")), []))
    args = list(container.get("args") or [])
    words = [expand(str(word), env) for word in [*entry, *args]]
    if not words:
        raise ConfigError(f"no command specified for container {container.get('name')}")
    return words


def _image_name(image: str) -> str:
    """`registry/path/name:tag@digest` -> `name`."""
    return image.split("@")[0].rsplit("/", 1)[-1].split(":")[0]
