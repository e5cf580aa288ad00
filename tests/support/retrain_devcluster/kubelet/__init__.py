"""The process kubelet (see kubelet.py)."""
