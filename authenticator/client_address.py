"""The address a request comes from, as classhub records and limits it.

JupyterHub runs tornado with ``xheaders``: ``request.remote_ip`` is whatever the
``X-Real-Ip`` (or ``X-Forwarded-For``) header says, whoever sent it. classhub believes
those headers only when the TCP peer is a trusted proxy (Traefik, on the hub's loopback
address); from any other peer the peer's own address counts. Traefik itself never passes
a client's forwarded headers on (``forwardedHeaders.insecure: false``): it sets
``X-Real-Ip`` to the address it saw. One function, for the login limits and the
sessions' ``address``.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Collection


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


def client_address(request, trusted_proxies: Collection[str]) -> str:
    """``request``'s client: the forwarded address when the peer is one of
    ``trusted_proxies``, else the peer itself."""
    peer = normalize(peer_address(request))
    if peer in trusted_proxies:
        return normalize(request.remote_ip or peer)
    return peer
