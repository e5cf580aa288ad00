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
        # Handed out in turn, so an address comes back only after all the others: a namespace is
        # torn down asynchronously by the kernel, and its veth (with its route) can outlive its pod.
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
        tag = hashlib.sha256(pod_uid.encode()).hexdigest()[:8]
        node_end, pod_end = f"rtv{tag}", f"rtp{tag}"  # interface names have at most 15 characters
        _ip("link", "add", node_end, "type", "veth", "peer", "name", pod_end)
        try:
            _ip("link", "set", pod_end, "netns", str(netns_pid))
            _ip("addr", "add", f"{self.gateway}/32", "dev", node_end)
            _ip("link", "set", node_end, "up")
            address = self._route(node_end)
            _ip("link", "set", pod_end, "name", "eth0", netns_pid=netns_pid)
            _ip("addr", "add", f"{address}/32", "dev", "eth0", netns_pid=netns_pid)
            _ip("link", "set", "eth0", "up", netns_pid=netns_pid)
            _ip("route", "add", self.gateway, "dev", "eth0", netns_pid=netns_pid)
            _ip("route", "add", "default", "via", self.gateway, "dev", "eth0", netns_pid=netns_pid)
        except Exception:
            subprocess.run(["ip", "link", "del", node_end], capture_output=True)
            raise
        return address

    def _route(self, node_end: str) -> str:
        """The next address no pod uses and no leftover route holds, routed to `node_end`."""
        for _ in range(len(self._free)):
            address = self._free.pop(0)
            self._free.append(address)
            if address in self._used:
                continue
            result = subprocess.run(["ip", "route", "add", f"{address}/32", "dev", node_end, "src", self.gateway],
                                    capture_output=True, text=True)
            if result.returncode == 0:
                self._used.add(address)
                return address
            if "File exists" not in result.stderr:
                raise RuntimeError(f"ip route add {address}/32: {result.stderr.strip()}")
        raise RuntimeError(f"no free pod address left in {self.subnet}")

    def release(self, address: str, pod_uid: str) -> None:
        """Give the address back (the veth goes with the namespace; this removes a leftover end)."""
        self._used.discard(address)
        tag = hashlib.sha256(pod_uid.encode()).hexdigest()[:8]
        subprocess.run(["ip", "link", "del", f"rtv{tag}"], capture_output=True)
