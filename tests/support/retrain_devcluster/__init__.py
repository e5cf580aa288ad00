"""A real Kubernetes control plane and a process kubelet for the tests and the sandbox (dev tooling, never shipped).

binaries.py builds kube-apiserver, kube-controller-manager, kube-scheduler and etcd from the
published Go modules into a cache; controlplane.py runs them on 127.0.0.1; kubelet/ registers a
Node and runs the pods bound to it as local processes, each in its own network namespace.
"""
