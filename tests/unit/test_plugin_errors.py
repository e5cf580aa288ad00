"""`kubectl retrain` against a cluster it cannot use: one line on stderr naming what failed and the
context or server, exit status 1, no traceback (as kubectl's "error: ..."). Each case runs the plugin
as a process against what a user really meets: a closed port, a local HTTPS server whose certificate
the kubeconfig's CA did not sign, a server answering 401/403 with a Kubernetes Status, a listener
that never answers, and broken kubeconfig files."""

from __future__ import annotations

import json
import os
import socket
import ssl
import subprocess
import sys
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
import yaml

from retrain_devcluster.pki import Authority

from ..blackhole import BlackHole

PLUGIN = Path(sys.executable).parent / "kubectl-retrain"  # the console script, as kubectl runs it


class Answers(BaseHTTPRequestHandler):
    """Whatever the test set in `server.answer`: (status, content type, body)."""

    def do_GET(self) -> None:
        status, kind, body = self.server.answer  # type: ignore[attr-defined]
        self.send_response(status)
        self.send_header("Content-Type", kind)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: Any) -> None:
        pass


class ApiServer:
    """HTTPS on 127.0.0.1 with a certificate of `authority`."""

    def __init__(self, authority: Authority):
        pair = authority.issue("server", "apiserver", server_ips=("127.0.0.1",))
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(pair.cert, pair.key)
        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Answers)
        self.httpd.socket = context.wrap_socket(self.httpd.socket, server_side=True)
        self.httpd.answer = (200, "application/json", b'{"items": []}')  # type: ignore[attr-defined]
        self.url = f"https://127.0.0.1:{self.httpd.server_address[1]}"
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    def answer(self, status: int, body: bytes, kind: str = "application/json") -> None:
        self.httpd.answer = (status, kind, body)  # type: ignore[attr-defined]


@pytest.fixture(scope="module")
def authority(tmp_path_factory: pytest.TempPathFactory) -> Authority:
    return Authority(tmp_path_factory.mktemp("ca"))


@pytest.fixture()
def api_server(authority: Authority) -> Iterator[ApiServer]:
    server = ApiServer(authority)
    yield server
    server.httpd.shutdown()
    server.httpd.server_close()


def kubeconfig(path: Path, server: str, ca: Path | None = None, context: str = "dev") -> Path:
    cluster: dict[str, Any] = {"server": server}
    if ca is not None:
        cluster["certificate-authority"] = str(ca)
    path.write_text(yaml.safe_dump({
        "apiVersion": "v1", "kind": "Config", "current-context": context,
        "clusters": [{"name": "c", "cluster": cluster}],
        "users": [{"name": "u", "user": {"token": "t0ken"}}],
        "contexts": [{"name": context, "context": {"cluster": "c", "user": "u", "namespace": "ml"}}]}))
    return path


def plugin(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    assert PLUGIN.exists(), "the kubectl-retrain console script is not installed"
    return subprocess.run([str(PLUGIN), *args], capture_output=True, text=True, timeout=60,
                          env={**os.environ, **(env or {})})


def error_line(result: subprocess.CompletedProcess[str]) -> str:
    """The one line the plugin printed; fails unless it failed with exactly one `error: ` line."""
    assert result.returncode == 1, (result.returncode, result.stdout, result.stderr)
    assert "Traceback" not in result.stderr
    lines = result.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), result.stderr
    return lines[0]


def closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def test_the_fake_api_server_is_usable_with_the_right_ca(api_server: ApiServer, authority: Authority,
                                                         tmp_path: Path):
    """The control: with the CA that signed it, the same server is reached (so the failures below are theirs)."""
    result = plugin("status", "--kubeconfig", str(kubeconfig(tmp_path / "kc", api_server.url, authority.cert_path)))
    assert result.returncode == 0, result.stderr
    assert result.stderr.strip() == "No retrainpolicies found in namespace 'ml'."


def test_connection_refused_names_the_server_and_the_context(tmp_path: Path):
    server = f"https://127.0.0.1:{closed_port()}"
    line = error_line(plugin("status", "-A", "--kubeconfig", str(kubeconfig(tmp_path / "kc", server))))
    assert line == f"error: cannot reach the API server {server} (context 'dev'): connection refused"


def test_a_server_certificate_the_ca_did_not_sign_is_a_tls_error(api_server: ApiServer, tmp_path: Path):
    other = Authority(tmp_path / "other-ca")
    line = error_line(plugin("history", "churn", "--kubeconfig",
                             str(kubeconfig(tmp_path / "kc", api_server.url, other.cert_path))))
    assert line.startswith(f"error: cannot reach the API server {api_server.url} (context 'dev'): "
                           "TLS certificate verification failed: "), line


@pytest.mark.parametrize("status, reason, message", [
    (401, "Unauthorized", "Unauthorized"),
    (403, "Forbidden", 'retrainpolicies.retrain.mlops.dev is forbidden: User "jane" cannot list resource '
                       '"retrainpolicies" in API group "retrain.mlops.dev" in the namespace "ml"'),
])
def test_an_error_status_prints_the_servers_message(api_server: ApiServer, authority: Authority, tmp_path: Path,
                                                    status: int, reason: str, message: str):
    api_server.answer(status, json.dumps({"kind": "Status", "apiVersion": "v1", "status": "Failure",
                                          "message": message, "reason": reason, "code": status}).encode())
    line = error_line(plugin("status", "--kubeconfig", str(kubeconfig(tmp_path / "kc", api_server.url,
                                                                      authority.cert_path))))
    assert line == f"error: the API server {api_server.url} (context 'dev') answered {status} {reason}: {message}"


def test_a_server_that_never_answers_times_out(tmp_path: Path):
    hole = BlackHole()
    server = hole.endpoint
    try:
        line = error_line(plugin("status", "--request-timeout", "0.5",
                                 "--kubeconfig", str(kubeconfig(tmp_path / "kc", server))))
    finally:
        hole.close()
    assert line.startswith(f"error: cannot reach the API server {server} (context 'dev'): timed out"), line


def test_an_answer_the_plugin_cannot_use_is_one_line_unless_debug(api_server: ApiServer, authority: Authority,
                                                                  tmp_path: Path):
    """A proxy's HTML page with 200: not the user's mistake, so a hint at --debug, which shows the traceback."""
    api_server.answer(200, b"<html>sign in</html>", "text/html")
    config = str(kubeconfig(tmp_path / "kc", api_server.url, authority.cert_path))
    line = error_line(plugin("status", "--kubeconfig", config))
    assert line.startswith(f"error: unexpected AttributeError talking to {api_server.url} (context 'dev'): ")
    assert line.endswith("(run again with --debug for the traceback)")
    debug = plugin("--debug", "status", "--kubeconfig", config)
    assert debug.returncode == 1 and "Traceback (most recent call last)" in debug.stderr
    assert debug.stderr.splitlines()[-1] == line


def test_a_context_the_kubeconfig_does_not_have(tmp_path: Path):
    config = kubeconfig(tmp_path / "kc", f"https://127.0.0.1:{closed_port()}")
    line = error_line(plugin("status", "--kubeconfig", str(config), "--context", "prod"))
    assert line == f"error: context 'prod' not found in the kubeconfig {config} (its contexts: dev)"


@pytest.mark.parametrize("text, problem", [
    ("", "is empty"),
    ("clusters: [\n  - name: c\n", "is not valid YAML: "),
    ("- just\n- a list\n", "is not a kubeconfig (a YAML list, not a mapping)"),
])
def test_an_empty_or_unparsable_kubeconfig_is_named(tmp_path: Path, text: str, problem: str):
    config = tmp_path / "kubeconfig"
    config.write_text(text)
    line = error_line(plugin("status", "--kubeconfig", str(config)))
    assert line.startswith(f"error: the kubeconfig {config} {problem}"), line


def test_a_missing_kubeconfig_is_named(tmp_path: Path):
    missing = tmp_path / "nosuch"
    assert error_line(plugin("status", "--kubeconfig", str(missing))) == \
        f"error: no kubeconfig: {missing} does not exist"
    listed = f"{missing}{os.pathsep}{tmp_path / 'other'}"
    assert error_line(plugin("status", env={"KUBECONFIG": listed})) == \
        f"error: no kubeconfig: none of {missing}, {tmp_path / 'other'} exists"
    assert error_line(plugin("status", env={"KUBECONFIG": "", "HOME": str(tmp_path)})) == \
        "error: no kubeconfig: ~/.kube/config does not exist"


def test_a_cluster_without_a_server_is_named(tmp_path: Path):
    config = kubeconfig(tmp_path / "kc", "")
    line = error_line(plugin("status", "--kubeconfig", str(config)))
    assert line == f"error: cluster 'c' of context 'dev' has no server in the kubeconfig {config}"
