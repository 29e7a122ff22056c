"""A small async client for Traefik's read-only HTTP API."""

from __future__ import annotations

import json
from urllib.parse import quote

from tornado.httpclient import AsyncHTTPClient, HTTPClientError, HTTPRequest


class TraefikAPIError(RuntimeError):
    """Traefik's API did not answer as expected."""


class TraefikAPI:
    """Reads routers and services from Traefik's API (``api.insecure`` on loopback)."""

    def __init__(self, url: str, timeout: float = 5.0, page_size: int = 500):
        self.url = url.rstrip("/")
        self.timeout = timeout
        self.page_size = page_size

    async def _get(self, path: str):
        req = HTTPRequest(
            self.url + path, request_timeout=self.timeout, connect_timeout=self.timeout
        )
        try:
            resp = await AsyncHTTPClient().fetch(req, raise_error=False)
        except (OSError, HTTPClientError) as e:
            raise TraefikAPIError(f"Traefik API at {self.url} is unreachable: {e}") from e
        if resp.code == 404:
            return None, resp
        if resp.code != 200:
            raise TraefikAPIError(f"Traefik API {path} answered {resp.code}")
        return json.loads(resp.body), resp

    async def _list(self, kind: str) -> list[dict]:
        items: list[dict] = []
        page = 1
        while True:
            data, resp = await self._get(f"/api/http/{kind}?per_page={self.page_size}&page={page}")
            items.extend(data or [])
            nxt = resp.headers.get("X-Next-Page", "1")
            if not data or int(nxt) <= page:
                return items
            page = int(nxt)

    async def routers(self) -> list[dict]:
        return await self._list("routers")

    async def services(self) -> list[dict]:
        return await self._list("services")

    async def router(self, name: str) -> dict | None:
        data, _ = await self._get("/api/http/routers/" + quote(name, safe="@"))
        return data

    async def service(self, name: str) -> dict | None:
        data, _ = await self._get("/api/http/services/" + quote(name, safe="@"))
        return data


def service_targets(service: dict) -> list[str]:
    """Server URLs of a Traefik load-balancer service."""
    servers = (service.get("loadBalancer") or {}).get("servers") or []
    return [s["url"].rstrip("/") for s in servers if "url" in s]
