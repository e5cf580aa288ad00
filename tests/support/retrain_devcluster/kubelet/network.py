"""Pod addresses: a veth pair from the node into each pod's network namespace.

Each kubelet takes one /24 of 198.18.0.0/15 (the range set aside for benchmarking networks,
never routed), keeps .1 as the node's end of every veth and gives each pod the next free
address, routed point to point like Calico does. The API server can then proxy to a pod
address (it refuses loopback ones) and the node can dial pods directly. Nothing here
outlives the pods: a veth pair disappears with the namespace its end lives in.
"""

from __future__ import annotations

import hashlib
import ipaddress
import random
import subprocess

_RANGE = ipaddress.ip_network("198.18.0.0/15")


def _ip(*args: str, netns_pid: int | None = None) -> str:
    command = ["ip", *args] if netns_pid is None else ["nsenter", "-t", str(netns_pid), "-n", "ip", *args]
    result = subprocess.run(command, capture_output=True, text=True)
    if result.returncode != 0:
        raise RuntimeError(f"{' '.join(command)}: {result.stderr.strip()}")
    return result.stdout


class PodNetwork:
    """Allocates pod addresses in one /24 and wires them up."""

    def __init__(self, subnet: ipaddress.IPv4Network | None = None):
        self.subnet = subnet or self._free_subnet()
        hosts = list(self.subnet.hosts())
        self.gateway = str(hosts[0])
        self._free = [str(h) for h in hosts[1:]]
        self._used: set[str] = set()

    @staticmethod
    def _free_subnet() -> ipaddress.IPv4Network:
        """A /24 no interface on this machine uses (two test runs may share the machine)."""
        taken = _ip("-o", "-4", "addr", "show") + _ip("-4", "route", "show")
        subnets = list(_RANGE.subnets(new_prefix=24))
        random.shuffle(subnets)
        for subnet in subnets:
            prefix = ".".join(str(subnet.network_address).split(".")[:3]) + "."
            if prefix not in taken:
                return subnet
        raise RuntimeError("no free /24 in 198.18.0.0/15 for pod addresses")

    def attach(self, pod_uid: str, netns_pid: int) -> str:
        """Plug a veth into the namespace of `netns_pid`; the pod's address."""
        address = next(a for a in self._free if a not in self._used)
        self._used.add(address)
        tag = hashlib.sha256(pod_uid.encode()).hexdigest()[:8]
        node_end, pod_end = f"rtv{tag}", f"rtp{tag}"  # interface names have at most 15 characters
        try:
            _ip("link", "add", node_end, "type", "veth", "peer", "name", pod_end)
            _ip("link", "set", pod_end, "netns", str(netns_pid))
            _ip("addr", "add", f"{self.gateway}/32", "dev", node_end)
            _ip("link", "set", node_end, "up")
            _ip("route", "add", f"{address}/32", "dev", node_end, "src", self.gateway)
            _ip("link", "set", pod_end, "name", "eth0", netns_pid=netns_pid)
            _ip("addr", "add", f"{address}/32", "dev", "eth0", netns_pid=netns_pid)
            _ip("link", "set", "eth0", "up", netns_pid=netns_pid)
            _ip("route", "add", self.gateway, "dev", "eth0", netns_pid=netns_pid)
            _ip("route", "add", "default", "via", self.gateway, "dev", "eth0", netns_pid=netns_pid)
        except Exception:
            self.release(address, pod_uid)
            raise
        return address

    def release(self, address: str, pod_uid: str) -> None:
        """Give the address back (the veth goes with the namespace; this removes a leftover end)."""
        self._used.discard(address)
        tag = hashlib.sha256(pod_uid.encode()).hexdigest()[:8]
        subprocess.run(["ip", "link", "del", f"rtv{tag}"], capture_output=True)
