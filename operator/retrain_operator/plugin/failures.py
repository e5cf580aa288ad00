"""A failed request to the API server as the one line kubectl would print ("error: ..."), naming the
server and the context, so that a wrong kubeconfig entry is found without reading a traceback."""

from __future__ import annotations

import json
import re
import ssl

from kubernetes.client.exceptions import ApiException
from urllib3.exceptions import (
    ConnectTimeoutError,
    HTTPError,
    MaxRetryError,
    NameResolutionError,
    NewConnectionError,
    ProtocolError,
    ReadTimeoutError,
    SSLError,
)

from .session import Target

MESSAGE_CHARS = 300  # of a body that is not a Kubernetes Status (a proxy's HTML page, say)


def one_line(text: object) -> str:
    return " ".join(str(text).split())


def _server(target: Target | None) -> str:
    return f"the API server {target}" if target is not None else "the API server"


def request_failure(error: HTTPError, target: Target | None) -> str:
    """No answer: refused, unresolvable, timed out, a TLS handshake that failed, a connection cut."""
    reason = error.reason if isinstance(error, MaxRetryError) and error.reason is not None else error
    return f"cannot reach {_server(target)}: {_why(reason)}"


def _why(error: BaseException) -> str:
    if isinstance(error, SSLError):
        cause = error.args[0] if error.args else error
        if isinstance(cause, ssl.SSLCertVerificationError):
            return f"TLS certificate verification failed: {cause.verify_message}"
        return f"TLS handshake failed: {one_line(cause)}"
    if isinstance(error, NameResolutionError):
        return f"cannot resolve the host ({one_line(error.__cause__ or error)})"
    if isinstance(error, NewConnectionError):  # before ConnectTimeoutError, its base class
        cause = error.__cause__
        return (cause.strerror or str(cause)).lower() if isinstance(cause, OSError) else one_line(error)
    if isinstance(error, ConnectTimeoutError | ReadTimeoutError):
        found = re.search(r"(read|connect) timeout=([^)\s]+)", str(error))
        after = f" after {found[2]} s waiting to {found[1]}" if found else ""
        return f"timed out{after} (--request-timeout sets the limit)"
    if isinstance(error, ProtocolError):
        return f"the connection broke: {one_line(error)}"
    return one_line(error)


def api_failure(error: ApiException, target: Target | None) -> str:
    """An answer that is an error status: the server's own message (a Status body), on one line."""
    return f"{_server(target)} answered {error.status} {error.reason}" + (
        f": {message}" if (message := _message(error)) else "")


def _message(error: ApiException) -> str:
    body = error.body.decode(errors="replace") if isinstance(error.body, bytes) else str(error.body or "")
    try:
        document = json.loads(body)
    except ValueError:
        return one_line(body)[:MESSAGE_CHARS]
    if isinstance(document, dict) and document.get("message"):
        return one_line(document["message"])
    return one_line(body)[:MESSAGE_CHARS]
