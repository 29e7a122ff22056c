"""The address a request comes from, as classhub records and limits it.

JupyterHub runs tornado with ``xheaders``: ``request.remote_ip`` is whatever the
``X-Real-Ip`` (or ``X-Forwarded-For``) header says, whoever sent it. classhub believes
those headers only when the TCP peer is a trusted proxy (Traefik: on one machine the hub's
loopback address, in a Swarm stack an address of the ``core`` overlay network); from any
other peer the peer's own address counts. Traefik itself never passes
a client's forwarded headers on (``forwardedHeaders.insecure: false``): it sets
``X-Real-Ip`` to the address it saw. One function, for the login limits and the
sessions' ``address``.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable

Network = ipaddress.IPv4Network | ipaddress.IPv6Network


def peer_address(request) -> str:
    """The TCP peer of ``request`` (a tornado ``HTTPServerRequest``), never a header."""
    context = getattr(request.connection, "context", None)
    address = getattr(context, "address", None)
    if isinstance(address, tuple) and address:
        return str(address[0])
    return str(getattr(context, "_orig_remote_ip", "") or request.remote_ip or "")


def normalize(address: str) -> str:
    try:
        ip = ipaddress.ip_address(address.split("%", 1)[0])
    except ValueError:
        return address
    if ip.version == 6 and ip.ipv4_mapped:
        ip = ip.ipv4_mapped
    return str(ip)


def proxy_network(value: str) -> Network:
    """A trusted proxy as a network: ``"127.0.0.1"`` is ``127.0.0.1/32``; a network must
    be written with its host bits zero (``10.217.0.0/24``, not ``10.217.0.5/24``, which
    is more likely a typo than a wish). ``ValueError`` for anything else."""
    return ipaddress.ip_network(value.strip(), strict=True)


def trusted(peer: str, proxies: Iterable[Network]) -> bool:
    """Whether the address ``peer`` is in one of ``proxies``."""
    try:
        ip = ipaddress.ip_address(peer)
    except ValueError:
        return False
    return any(ip.version == net.version and ip in net for net in proxies)


def client_address(request, trusted_proxies: Iterable[Network]) -> str:
    """``request``'s client: the forwarded address when the peer is in one of
    ``trusted_proxies``, else the peer itself."""
    peer = normalize(peer_address(request))
    if trusted(peer, trusted_proxies):
        return normalize(request.remote_ip or peer)
    return peer
