"""Object names and label values derived from a policy's name, always within Kubernetes' limits.

A RetrainPolicy's name may be 253 characters long, but what the operator derives from it may not:
Service names are DNS-1035 labels, Deployment names DNS-1123 labels, Job names at most 63
characters (their pods carry the name in the `job-name` label), label values at most 63. `bounded`
returns a derived value unchanged when it already fits its syntax, so short names stay exactly as
they always were; otherwise it makes the head fit the syntax, cuts it and appends a short hash of
the full value, then the tail: `<head...>-<hash><tail>`. The hash is of the whole unshortened value,
so two long names that share any prefix never meet, and the same input always gives the same name.

Every place that builds or looks up such a name (the operator, the kubectl plugin, the sandbox)
goes through this module, so they cannot disagree. Where a label value had to be hashed, the
object also carries the full policy name in the `ANNOTATION_POLICY` annotation, for humans.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from retrain_contract.api import names

MAX_LENGTH = 63
HASH_LENGTH = 8


@dataclass(frozen=True)
class Syntax:
    """What a derived value must look like: a full-match pattern, a length, and how to repair a head."""

    name: str
    pattern: re.Pattern[str]
    max_length: int
    invalid: re.Pattern[str]  # characters replaced by '-' in a head that has to be shortened anyway
    lowercase: bool
    letter_first: bool = False  # DNS-1035: the first character must be a letter
    dots: bool = False  # a subdomain: dots stay, but never next to a '-' or another dot

    def valid(self, value: str) -> bool:
        return len(value) <= self.max_length and self.pattern.fullmatch(value) is not None

    def repair(self, head: str) -> str:
        text = head.lower() if self.lowercase else head
        text = self.invalid.sub("-", text)
        while self.dots:
            fixed = re.sub(r"-\.|\.-|\.\.", "--", text)
            if fixed == text:
                break
            text = fixed
        text = re.sub(r"^[^A-Za-z0-9]+", "", text)
        if self.letter_first and text and not text[0].isalpha():
            text = "x" + text
        return text


# A Service name (RFC 1035 label).
DNS1035_LABEL = Syntax("DNS-1035 label", re.compile(r"[a-z]([-a-z0-9]*[a-z0-9])?"), MAX_LENGTH,
                       re.compile(r"[^a-z0-9-]"), lowercase=True, letter_first=True)
# A Deployment name, anything that ends up as a host name (RFC 1123 label).
DNS1123_LABEL = Syntax("DNS-1123 label", re.compile(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?"), MAX_LENGTH,
                       re.compile(r"[^a-z0-9-]"), lowercase=True)
# A Job name: a DNS-1123 subdomain, but at most 63 characters, for the `job-name` label of its pods.
JOB_NAME = Syntax("Job name", re.compile(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*"),
                  MAX_LENGTH, re.compile(r"[^a-z0-9.-]"), lowercase=True, dots=True)
# An Event name: any DNS-1123 subdomain.
EVENT_NAME = Syntax("Event name", JOB_NAME.pattern, 253, JOB_NAME.invalid, lowercase=True, dots=True)
# A label value.
LABEL_VALUE = Syntax("label value", re.compile(r"(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?"), MAX_LENGTH,
                     re.compile(r"[^-A-Za-z0-9_.]"), lowercase=False)


def digest(value: str) -> str:
    return hashlib.sha256(value.encode()).hexdigest()[:HASH_LENGTH]


def bounded(head: str, tail: str = "", syntax: Syntax = DNS1123_LABEL) -> str:
    """`head + tail` if valid for `syntax`, else `<head repaired and cut>-<hash of head + tail><tail>`.

    `tail` (e.g. `-model-stable`, `-v12`) is kept whole so the role or version stays readable; it
    must itself consist of characters the syntax allows and end with one a value may end with.
    """
    full = head + tail
    if syntax.valid(full):
        return full
    hashed = digest(full)
    keep = syntax.max_length - len(tail) - len(hashed) - 1
    if keep < 0:
        raise ValueError(f"tail {tail!r} leaves no room in a {syntax.name} of {syntax.max_length}")
    cut = syntax.repair(head)[:keep].rstrip("-._")
    # With nothing usable in the head: the hash alone, starting with a letter where that is required.
    result = f"{cut}-{hashed}{tail}" if cut else f"{'x' if syntax.letter_first else ''}{hashed}{tail}"
    if not syntax.valid(result):  # a tail the syntax does not allow: a caller's mistake
        raise ValueError(f"{result!r} is not a valid {syntax.name}")
    return result


# -- what the operator derives from a policy's name ---------------------------------------------------


def policy_label(policy: str) -> str:
    """The value of the `retrain.mlops.dev/policy` label on everything the operator creates for `policy`."""
    return bounded(policy, syntax=LABEL_VALUE)


def policy_annotations(policy: str) -> dict[str, str]:
    """The full policy name as an annotation, on objects whose policy label had to be hashed."""
    return {} if policy_label(policy) == policy else {names.ANNOTATION_POLICY: policy}


def annotate(metadata: dict[str, Any], policy: str) -> dict[str, Any]:
    """`metadata` with the policy annotation added when the policy label is hashed (a new dict)."""
    extra = policy_annotations(policy)
    if not extra:
        return metadata
    return {**metadata, "annotations": {**extra, **(metadata.get("annotations") or {})}}


def job_name(policy: str, suffix: str) -> str:
    """`<policy>-<suffix>` (suffix: a version `v12` or a drift check `d3`)."""
    return bounded(policy, f"-{suffix}", JOB_NAME)


def deployment_name(policy: str, role: str) -> str:
    """The model server Deployment of a role: `<policy>-model-<role>`."""
    return bounded(policy, f"-model-{role}", DNS1123_LABEL)


def service_name(policy: str, role: str | None = None) -> str:
    """`<policy>-model` (both roles) or `<policy>-model-<role>`: a DNS-1035 label, as Services need."""
    return bounded(policy, "-model" + (f"-{role}" if role else ""), DNS1035_LABEL)


def policy_of(metadata: Mapping[str, Any] | None) -> str | None:
    """The policy an object of ours belongs to, by its controller reference, the annotation, or the label."""
    metadata = metadata or {}
    for ref in metadata.get("ownerReferences") or []:
        if ref.get("kind") == names.KIND and str(ref.get("apiVersion", "")).startswith(f"{names.GROUP}/") \
                and ref.get("name"):
            return str(ref["name"])
    annotated = (metadata.get("annotations") or {}).get(names.ANNOTATION_POLICY)
    if annotated:
        return str(annotated)
    labelled = (metadata.get("labels") or {}).get(names.LABEL_POLICY)
    return str(labelled) if labelled else None
