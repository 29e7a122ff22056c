"""A client on the other end of a network link of a given rate, for benchmarks.

On one machine every byte moves over loopback, bound only by the CPU: a proxy in the way
(Traefik) then costs in proportion to its extra copy, which a real network would hide. This
puts the client into its own network namespace joined to the machine by a veth pair shaped
to ``rate`` each way (``tc`` token bucket), as a student's laptop on a LAN is: commands run
there with :func:`in_namespace`, and reach the machine's servers at the host end's address.

Needs root (``ip netns``, ``tc``). Everything is removed on exit, also after an error.
"""

from __future__ import annotations

import contextlib
import os
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass


@dataclass(frozen=True)
class Link:
    namespace: str
    host_address: str  # the machine's end: bind servers here for the client to reach them
    rate: str

    def command(self, *args: str) -> list[str]:
        """``args`` run inside the client's namespace."""
        return ["ip", "netns", "exec", self.namespace, *args]


def _run(*args: str) -> None:
    subprocess.run(args, check=True, capture_output=True, text=True)


@contextlib.contextmanager
def shaped_link(rate: str = "1gbit", subnet: int | None = None) -> Iterator[Link]:
    """A namespace ``chbench<pid>`` behind a veth pair shaped to ``rate`` both ways."""
    pid = os.getpid()
    subnet = subnet if subnet is not None else 16 + pid % 200
    ns, host_if, client_if = f"chbench{pid}", f"chbh{pid}"[:15], f"chbc{pid}"[:15]
    host_ip, client_ip = f"10.213.{subnet}.1", f"10.213.{subnet}.2"
    # a bucket deep enough for a 1 Gbit/s flow's bursts; the queue holds 20 ms
    shape = ["tbf", "rate", rate, "burst", "1mb", "latency", "20ms"]
    _run("ip", "netns", "add", ns)
    try:
        _run("ip", "link", "add", host_if, "type", "veth", "peer", "name", client_if)
        _run("ip", "link", "set", client_if, "netns", ns)
        _run("ip", "addr", "add", f"{host_ip}/30", "dev", host_if)
        _run("ip", "link", "set", host_if, "up")
        inside = ["ip", "netns", "exec", ns]
        _run(*inside, "ip", "addr", "add", f"{client_ip}/30", "dev", client_if)
        _run(*inside, "ip", "link", "set", client_if, "up")
        _run(*inside, "ip", "link", "set", "lo", "up")
        _run("tc", "qdisc", "add", "dev", host_if, "root", *shape)  # to the client
        _run(*inside, "tc", "qdisc", "add", "dev", client_if, "root", *shape)  # from it
        yield Link(namespace=ns, host_address=host_ip, rate=rate)
    finally:
        subprocess.run(["ip", "link", "del", host_if], capture_output=True)
        subprocess.run(["ip", "netns", "del", ns], capture_output=True)
