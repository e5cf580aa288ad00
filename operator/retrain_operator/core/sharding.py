"""Which policies one operator replica owns: a stable hash of namespace/name, and a label selector.

N replicas each run with `--shard-index i --shard-count N` (and the same `--shard-selector`, if any);
a policy belongs to the replica whose index its hash falls on, so every policy has exactly one owner
without the replicas talking to each other. The hash is sha256, not Python's `hash()` (salted per
process: two replicas would disagree). The selector is the Kubernetes label-selector syntax, parsed
once (no library on PyPI that parses it is maintained; the grammar is small).

With several shards, each policy also carries the label `LABEL: "<i>-of-<N>"` (its hash's shard in an
N-shard layout), put there by the operator: the API server then sends each shard only its own policies
(a label selector on the watch), so a shard's memory follows the policies it owns, not all of them.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Mapping
from dataclasses import dataclass, field

from retrain_contract.api import names

# A label key: an optional DNS-subdomain prefix and "/", then a name (as in apimachinery's validation).
_NAME = r"[A-Za-z0-9]([-A-Za-z0-9_.]{0,61}[A-Za-z0-9])?"
_KEY = re.compile(rf"^([a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*/)?{_NAME}$")
_VALUE = re.compile(rf"^({_NAME})?$")
_TOKEN = re.compile(r"\s*(?:(?P<op>==|!=|=|!|\(|\)|,)|(?P<word>[^\s=!(),]+))")

EXISTS, NOT_EXISTS, IN, NOT_IN = "exists", "!exists", "in", "notin"
LABEL = f"{names.GROUP}/shard"  # on a policy, with several shards: "<i>-of-<N>"


@dataclass(frozen=True)
class Requirement:
    """One term of a selector: `key`, `!key`, `key in (values)` or `key notin (values)`.

    `a=b` and `a==b` are `a in (b)`; `a!=b` is `a notin (b)`, which, as in Kubernetes, an object
    without the label `a` also matches."""

    key: str
    op: str
    values: frozenset[str] = frozenset()

    def matches(self, labels: Mapping[str, str]) -> bool:
        if self.op == EXISTS:
            return self.key in labels
        if self.op == NOT_EXISTS:
            return self.key not in labels
        if self.op == IN:
            return self.key in labels and labels[self.key] in self.values
        return self.key not in labels or labels[self.key] not in self.values


def _tokens(text: str) -> list[str]:
    found, position = [], 0
    while position < len(text):
        match = _TOKEN.match(text, position)
        if match is None or match.end() == position:
            break
        found.append(match.group("op") or match.group("word"))
        position = match.end()
        if not text[position:].strip():
            break
    return found


def _key(token: str | None, selector: str) -> str:
    if token is None:
        raise ValueError(f"label selector {selector!r}: a label key expected at the end")
    if not _KEY.match(token) or len(token.split("/")[0]) > 253:
        raise ValueError(f"label selector {selector!r}: {token!r} is not a label key")
    return token


def _value(token: str, selector: str) -> str:
    if not _VALUE.match(token):
        raise ValueError(f"label selector {selector!r}: {token!r} is not a label value")
    return token


def parse_selector(selector: str) -> tuple[Requirement, ...]:
    """The requirements of a Kubernetes label selector (all must hold); an empty one selects everything.

    Raises ValueError naming the selector and what is wrong with it."""
    tokens = _tokens(selector)
    if "".join(tokens) != "".join(selector.split()):
        raise ValueError(f"label selector {selector!r}: cannot read it")
    requirements: list[Requirement] = []
    i = 0

    def take() -> str | None:
        nonlocal i
        token = tokens[i] if i < len(tokens) else None
        i += 1
        return token

    while i < len(tokens):
        token = take()
        if token == "!":
            requirements.append(Requirement(_key(take(), selector), NOT_EXISTS))
        else:
            key = _key(token, selector)
            following = tokens[i] if i < len(tokens) else ","
            if following == ",":
                requirements.append(Requirement(key, EXISTS))
            elif following in ("=", "==", "!="):
                take()
                value = tokens[i] if i < len(tokens) and tokens[i] != "," else ""
                if value:
                    take()
                requirements.append(Requirement(key, IN if following != "!=" else NOT_IN,
                                                frozenset({_value(value, selector)})))
            elif following in ("in", "notin"):
                take()
                if take() != "(":
                    raise ValueError(f"label selector {selector!r}: '(' expected after {key} {following}")
                values: set[str] = set()
                item = take()
                while item != ")":
                    if item is None or item in ("(", ",", "=", "==", "!=", "!"):
                        raise ValueError(f"label selector {selector!r}: a value expected in {key} {following} (...)")
                    values.add(_value(item, selector))
                    item = take()
                    if item == ",":
                        item = take()
                    elif item != ")":
                        raise ValueError(f"label selector {selector!r}: ',' or ')' expected in {key} {following} "
                                         "(...)")
                if not values:
                    raise ValueError(f"label selector {selector!r}: {key} {following} () has no values")
                requirements.append(Requirement(key, IN if following == "in" else NOT_IN, frozenset(values)))
            else:
                raise ValueError(f"label selector {selector!r}: unexpected {following!r} after {key} "
                                 "(expected =, ==, !=, in, notin or ,)")
        if i < len(tokens):
            if tokens[i] != ",":
                raise ValueError(f"label selector {selector!r}: ',' expected before {tokens[i]!r}")
            i += 1
            if i == len(tokens):
                raise ValueError(f"label selector {selector!r}: a requirement expected after the last ','")
    return tuple(requirements)


def matches(requirements: tuple[Requirement, ...], labels: Mapping[str, str] | None) -> bool:
    labels = labels or {}
    return all(requirement.matches(labels) for requirement in requirements)


def shard_of(namespace: str, name: str, count: int) -> int:
    """The index of the shard `namespace/name` falls on: the first 8 bytes of its sha256, mod count."""
    digest = hashlib.sha256(f"{namespace}/{name}".encode()).digest()
    return int.from_bytes(digest[:8], "big") % count


def layout_label(index: int, count: int) -> str:
    """The value of LABEL for shard `index` of `count`: the count is in it, so a resize relabels every policy."""
    return f"{index}-of-{count}"


@dataclass(frozen=True)
class Shard:
    """This replica's part of the policies: those whose hash is `index` (of `count`) and whose labels match."""

    index: int = 0
    count: int = 1
    selector: str | None = None
    requirements: tuple[Requirement, ...] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        if self.count < 1:
            raise ValueError(f"the shard count must be at least 1, not {self.count}")
        if not 0 <= self.index < self.count:
            raise ValueError(f"the shard index must be in 0..{self.count - 1} (count {self.count}), not {self.index}")
        object.__setattr__(self, "requirements", parse_selector(self.selector or ""))

    @property
    def sharded(self) -> bool:
        """False for the default: one replica owning every policy."""
        return self.count > 1 or bool(self.requirements)

    def owns_key(self, namespace: str, name: str) -> bool:
        """By the hash alone: what the policy's children (which do not carry its labels) are kept by."""
        return self.count == 1 or shard_of(namespace, name, self.count) == self.index

    def owns(self, namespace: str, name: str, labels: Mapping[str, str] | None = None) -> bool:
        return self.owns_key(namespace, name) and matches(self.requirements, labels)

    def label_of(self, namespace: str, name: str) -> str:
        """The LABEL value `namespace/name` must carry in this layout (whichever shard its hash falls on)."""
        return layout_label(shard_of(namespace, name, self.count), self.count)

    def watch_selector(self) -> str | None:
        """The policies' server-side filter for this shard: its layout label, with several shards.

        Not the selector: a policy that left it (a label edited) would leave every shard's watch with
        kopf's finalizer still on it, and its deletion would hang. The selector is applied in the operator."""
        return f"{LABEL}={layout_label(self.index, self.count)}" if self.count > 1 else None

    def unlabelled_selector(self) -> str | None:
        """The policies (of the selector) that carry no label of this layout: new ones, and all after a
        resize. None with one shard: nothing to label."""
        if self.count == 1:
            return None
        layout = ",".join(layout_label(index, self.count) for index in range(self.count))
        terms = [self.selector.strip()] if self.selector and self.selector.strip() else []
        return ",".join([*terms, f"{LABEL} notin ({layout})"])

    def mislabelled(self, namespace: str, name: str, labels: Mapping[str, str] | None) -> bool:
        """A policy whose label names a shard its hash does not fall on (set by hand, or copied from another
        policy's manifest): no shard would reconcile it until it is corrected. Only of this selector's policies."""
        return (self.count > 1 and matches(self.requirements, labels)
                and (labels or {}).get(LABEL) != self.label_of(namespace, name))
