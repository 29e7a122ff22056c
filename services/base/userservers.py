"""Calling classhub's server extension in a student's server through the proxy: what the
files service (material pushes) and the grades service (snapshots, feedback) share."""

from __future__ import annotations

import json
from urllib.parse import quote, urlencode


def normal_base_url(base_url: str) -> str:
    """The hub's base URL path with one leading and one trailing slash (``/`` for none)."""
    inner = base_url.strip("/")
    return f"/{inner}/" if inner else "/"


def server_url(
    servers_url: str, base_url: str, user: str, server: str, endpoint: str, query: dict
) -> str:
    """``<servers_url><base_url>user/<user>/<server>/<endpoint>?<query>``, names quoted."""
    path = f"{normal_base_url(base_url)}user/{quote(user, safe='')}/{quote(server, safe='')}/"
    return f"{servers_url.rstrip('/')}{path}{endpoint}?{urlencode(query)}"


def answer_message(body: bytes) -> str:
    """The ``message`` of the extension's JSON error answer, or "" for anything else (a
    proxy's page, a hostile container's reply): at most 300 characters."""
    try:
        return str(json.loads(body[:4096]).get("message", ""))[:300]
    except (ValueError, AttributeError, RecursionError):
        return ""
