"""A Kubernetes API server for tests and the sandbox: kmock's emulator with the real server's semantics."""

from .server import AuditRecord, FaithfulKubernetes
from .thread import ApiServerThread

__all__ = ["ApiServerThread", "AuditRecord", "FaithfulKubernetes"]
