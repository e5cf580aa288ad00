"""A notifier's webhook as its Secrets give it: the URL and the headers, or what keeps it from working.

The URL and header values are credentials: they never leave this object except in the request itself.
Its repr, and every problem message, name the notifier, the Secret and the key, never a value.
"""

from __future__ import annotations

import base64
import binascii
import re
import urllib.parse
from dataclasses import dataclass, field
from typing import Any

from retrain_contract.api.spec import NotifierSpec

Problem = tuple[str, str]  # (reason, message)
SECRET_NOT_FOUND = "NotifierSecretNotFound"
SECRET_KEY_MISSING = "NotifierSecretKeyMissing"
URL_INVALID = "NotifierURLInvalid"
HEADERS_INVALID = "NotifierHeadersInvalid"
HEADER_NAME = re.compile(r"^[!#$%&'*+.^_`|~0-9A-Za-z-]+$")  # an HTTP token (RFC 9110)
RESERVED_HEADERS = frozenset({"host", "content-length", "transfer-encoding", "connection"})


@dataclass(frozen=True)
class Target:
    name: str
    type: str
    url: str = field(repr=False)
    headers: dict[str, str] = field(default_factory=dict, repr=False)

    @property
    def host(self) -> str:
        """All a log line may say of the URL: its host."""
        return urllib.parse.urlsplit(self.url).hostname or "?"


def secret_value(secret: dict[str, Any], key: str) -> str | None:
    data, string_data = secret.get("data") or {}, secret.get("stringData") or {}
    if key in data:
        try:
            return base64.b64decode(data[key]).decode()
        except (binascii.Error, ValueError):  # UnicodeDecodeError is a ValueError
            return None
    if key in string_data:
        return str(string_data[key])
    return None


def _url_problem(url: str) -> str | None:
    try:
        parts = urllib.parse.urlsplit(url)
    except ValueError:
        return "is not a URL"
    if parts.scheme not in ("http", "https"):
        return "is not an http or https URL"
    if not parts.hostname or any(c.isspace() for c in url):
        return "is not a URL with a host"
    return None


def _headers(notifier: NotifierSpec, secret: dict[str, Any] | None, namespace: str) \
        -> tuple[dict[str, str], Problem | None]:
    where = f"notifier {notifier.name}: Secret {notifier.headers_secret!r} (headersSecret)"
    if secret is None:
        return {}, (SECRET_NOT_FOUND, f"{where} does not exist in namespace {namespace!r}")
    headers: dict[str, str] = {}
    for key in sorted({*(secret.get("data") or {}), *(secret.get("stringData") or {})}):
        value = secret_value(secret, key)
        if not HEADER_NAME.match(key) or key.lower() in RESERVED_HEADERS:
            return {}, (HEADERS_INVALID, f"{where}: key {key} is not a header the operator may send")
        if value is None or any(c in value.strip() for c in "\r\n\0"):
            return {}, (HEADERS_INVALID, f"{where}: the value of {key} is not a header value (one line of text)")
        headers[key] = value.strip()
    return headers, None


def resolve(notifier: NotifierSpec, url_secret: dict[str, Any] | None, headers_secret: dict[str, Any] | None,
            namespace: str) -> tuple[Target | None, Problem | None]:
    """The notifier's webhook from its Secrets (None when headersSecret is not set), or why there is none."""
    ref = notifier.url
    where = f"notifier {notifier.name}: Secret {ref.name!r} (urlSecret)"
    if url_secret is None:
        return None, (SECRET_NOT_FOUND, f"{where} does not exist in namespace {namespace!r}")
    url = secret_value(url_secret, ref.key)
    if url is None:
        return None, (SECRET_KEY_MISSING, f"{where} has no key {ref.key}")
    url = url.strip()  # `echo URL | kubectl create secret --from-file` leaves a newline
    if problem := _url_problem(url):
        return None, (URL_INVALID, f"{where}: the value of key {ref.key} {problem}")
    headers: dict[str, str] = {}
    if notifier.headers_secret:
        headers, problem = _headers(notifier, headers_secret, namespace)
        if problem:
            return None, problem
    return Target(notifier.name, notifier.type, url, headers), None
