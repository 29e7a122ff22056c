"""A small async client for JupyterHub's REST API, used with a service's own token.

Every call has a connect and a total timeout; the token travels only in the
``Authorization`` header (never in a URL, never in a log line). The hub's answers map to
clear exceptions: :class:`HubUnavailable` (connection refused, timeout, 5xx) becomes a 503
for the service's caller, a refused call (:class:`HubForbidden`: the service's token lacks
a scope) a 502, and the expected refusals (:class:`HubNotFound`, :class:`HubConflict`,
:class:`HubBadRequest`) are for the calling code to handle.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections.abc import Iterable
from typing import Any
from urllib.parse import quote, urlencode

from tornado.httpclient import AsyncHTTPClient, HTTPClientError, HTTPRequest

from common import startpriority
from common.errors import BadGateway, Unavailable

from .readcache import ReadCache

PAGINATION = "application/jupyterhub-pagination+json"
#: a paginated listing stops after this many pages (200 items each by default)
MAX_PAGES = 500


class HubUnavailable(Unavailable):
    """The hub did not answer, or answered with a 5xx (``status``, ``hub_message``)."""

    def __init__(self, detail: str = "", *, status: int = 0, hub_message: str = ""):
        super().__init__("JupyterHub's API is unreachable; try again shortly", detail)
        self.status = status
        self.hub_message = hub_message


class HubAPIError(BadGateway):
    """The hub refused a call. ``status`` is the hub's HTTP status, ``hub_message`` its
    message; ``str()`` says which call failed and why."""

    def __init__(self, status: int, method: str, path: str, hub_message: str):
        super().__init__(f"JupyterHub refused {method} {path}: {hub_message or status}")
        self.status = status
        self.hub_message = hub_message


class HubBadRequest(HubAPIError):
    pass


class HubForbidden(HubAPIError):
    """The service's token lacks a scope for the call: a deployment problem."""


class HubNotFound(HubAPIError):
    pass


class HubConflict(HubAPIError):
    pass


_BY_STATUS = {
    400: HubBadRequest,
    401: HubForbidden,
    403: HubForbidden,
    404: HubNotFound,
    409: HubConflict,
}


#: seconds a server start request may take: JupyterHub's slow_spawn_timeout (10 s by
#: default, after which it answers 202 while the start goes on) and a margin
START_TIMEOUT = 30.0


def q(name: str) -> str:
    """``name`` quoted for one path segment of a hub API URL."""
    return quote(name, safe="")


class HubAPI:
    """``await hub.request("GET", "/users/alice")`` and the helpers below.

    Create it inside the running event loop (it owns a tornado HTTP client); call
    :meth:`close` when the service stops.
    """

    def __init__(
        self,
        api_url: str,
        token: str,
        *,
        timeout: float = 10.0,
        connect_timeout: float = 3.0,
        max_clients: int = 20,
        read_cache_seconds: float = 0.0,
        read_stale_seconds: float = 0.0,
        log: logging.Logger | None = None,
    ):
        if not api_url:
            raise ValueError("the hub API URL is empty (JUPYTERHUB_API_URL)")
        if not token:
            raise ValueError("the hub API token is empty (JUPYTERHUB_API_TOKEN)")
        self.api_url = api_url.rstrip("/")
        self._token = token
        self.timeout = timeout
        self.connect_timeout = connect_timeout
        self.log = log or logging.getLogger(__name__)
        self._client = AsyncHTTPClient(force_instance=True, max_clients=max_clients)
        # user and active-server reads; emptied by every write through this client
        self.reads = ReadCache(read_cache_seconds, read_stale_seconds)

    def close(self) -> None:
        self._client.close()

    def __repr__(self) -> str:  # never show the token
        return f"HubAPI({self.api_url!r})"

    # ----- the one request function

    async def request(
        self,
        method: str,
        path: str,
        *,
        body: Any = None,
        params: dict | None = None,
        accept: str = "application/json",
        timeout: float | None = None,
        headers: dict[str, str] | None = None,
    ) -> Any:
        """The decoded JSON answer (None when the hub sends no body); ``timeout``: this
        call's own request timeout instead of the client's; ``headers``: more headers."""
        if method != "GET" and path.startswith("/users"):
            self.reads.clear()  # a server started or stopped: the next read sees it
        url = self.api_url + path
        if params:
            url += "?" + urlencode(params)
        payload = None
        if body is not None:
            payload = json.dumps(body)
        elif method in ("POST", "PUT", "PATCH"):
            payload = ""
        request = HTTPRequest(
            url,
            method=method,
            headers={
                "Authorization": f"token {self._token}",
                "Accept": accept,
                "Content-Type": "application/json",
                **(headers or {}),
            },
            body=payload,
            allow_nonstandard_methods=True,
            connect_timeout=self.connect_timeout,
            request_timeout=timeout or self.timeout,
            follow_redirects=False,
        )
        started = time.monotonic()
        try:
            response = await self._client.fetch(request, raise_error=False)
        except HTTPClientError as e:  # timeouts (599) and the like
            raise self._unavailable(method, path, f"{e.code} {e.message}") from None
        except (OSError, TimeoutError) as e:
            raise self._unavailable(method, path, f"{type(e).__name__}: {e}") from None
        ms = (time.monotonic() - started) * 1000
        self.log.debug("hub API %s %s -> %s (%.0f ms)", method, path, response.code, ms)
        text = response.body.decode("utf-8", "replace") if response.body else ""
        if response.code >= 500:
            error = self._unavailable(method, path, f"HTTP {response.code}")
            error.status, error.hub_message = response.code, _message(text)
            raise error
        if response.code >= 400:
            message = _message(text)
            cls = _BY_STATUS.get(response.code, HubAPIError)
            if cls is HubForbidden:
                self.log.error(
                    "The hub refused %s %s (%s): the service's token lacks a scope (%s)",
                    method,
                    path,
                    response.code,
                    message,
                )
            raise cls(response.code, method, path, message)
        if not text:
            return None
        try:
            return json.loads(text)
        except ValueError:
            raise HubAPIError(response.code, method, path, "an answer that is not JSON") from None

    def _unavailable(self, method: str, path: str, detail: str) -> HubUnavailable:
        self.log.warning("hub API %s %s failed: %s", method, path, detail)
        return HubUnavailable(detail)

    async def list_all(self, path: str, params: dict | None = None, limit: int = 200) -> list:
        """Every item of a paginated listing (``/users``, ``/groups``)."""
        items: list = []
        offset = 0
        for _ in range(MAX_PAGES):
            page = await self.request(
                "GET",
                path,
                params={**(params or {}), "offset": offset, "limit": limit},
                accept=PAGINATION,
            )
            if isinstance(page, list):  # a hub that does not paginate
                return items + page
            items.extend(page.get("items", []))
            following = (page.get("_pagination") or {}).get("next")
            if not following:
                return items
            offset, limit = following["offset"], following["limit"]
        raise HubAPIError(200, "GET", path, f"more than {MAX_PAGES} pages")

    async def ping(self) -> None:
        """Raise :class:`HubUnavailable` unless the hub's API answers."""
        await self.request("GET", "/")

    # ----- users and servers

    async def get_user(
        self, name: str, *, include_stopped_servers: bool = False, stale_ok: bool = False
    ) -> dict | None:
        """The user's model, None if there is no such user. ``stale_ok``: for display
        only, a cached answer a few seconds old will do (see :mod:`.readcache`)."""
        params = {"include_stopped_servers": "1"} if include_stopped_servers else None

        async def fetch():
            try:
                return await self.request("GET", f"/users/{q(name)}", params=params)
            except HubNotFound:
                return None

        return await self.reads.get(
            ("user", name, include_stopped_servers), fetch, stale_ok=stale_ok
        )

    async def existing_users(self, names: Iterable[str], *, concurrency: int = 8) -> set[str]:
        """Those of ``names`` that are hub users (one bounded-concurrency lookup each)."""
        return set(await self.user_models(names, concurrency=concurrency))

    async def user_models(self, names: Iterable[str], *, concurrency: int = 8) -> dict[str, dict]:
        """The models of those of ``names`` that are hub users, by name."""
        gate = asyncio.Semaphore(concurrency)

        async def lookup(name: str) -> tuple[str, dict | None]:
            async with gate:
                return name, await self.get_user(name)

        found = await asyncio.gather(*(lookup(n) for n in dict.fromkeys(names)))
        return {n: model for n, model in found if model is not None}

    async def active_users(self, *, stale_ok: bool = False, fresh: bool = False) -> list[dict]:
        """User models (with their active servers) of everyone with a running or pending
        server: the same listing jupyterhub-idle-culler works from. ``stale_ok``: for
        display only (see :mod:`.readcache`); ``fresh``: not from the cache at all (a
        server started a moment ago must be in it)."""
        if fresh:
            return await self.list_all("/users", {"state": "active"})
        return await self.reads.get(
            ("active",), lambda: self.list_all("/users", {"state": "active"}), stale_ok=stale_ok
        )

    async def start_server(self, user: str, server: str, *, background: bool = False) -> None:
        """Ask the hub to start a named server. The hub answers when the server is up or,
        for a start that takes longer (a queued one), after its ``slow_spawn_timeout``
        (10 s by default) with 202: so this call waits longer than other calls.
        ``background``: a start nobody waits for (a warm-up, "start all"), which the
        hub's start queue lets students' own starts overtake (``common.startpriority``)."""
        await self.request(
            "POST",
            f"/users/{q(user)}/servers/{q(server)}",
            body={},
            timeout=max(self.timeout, START_TIMEOUT),
            headers={startpriority.HEADER: startpriority.BACKGROUND} if background else None,
        )

    async def stop_server(self, user: str, server: str) -> None:
        """Stop (never delete: the server's volume stays) a named server."""
        await self.request("DELETE", f"/users/{q(user)}/servers/{q(server)}", body={})

    async def home_usage(self, name: str) -> list[dict] | None:
        """The use and limit of the person's home folders (``GET
        /hub/api/classhub/homes/<name>``, :mod:`hub.homes_api`): one dict per server with
        a home, ``{"server", "volume", "used", "quota", "limited"}``; None when the hub
        does not offer it (or has no such user)."""
        try:
            answer = await self.request("GET", f"/classhub/homes/{q(name)}")
        except HubNotFound:
            return None
        return list((answer or {}).get("homes") or [])

    # ----- groups

    async def get_group(self, name: str) -> dict | None:
        try:
            return await self.request("GET", f"/groups/{q(name)}")
        except HubNotFound:
            return None

    async def list_groups(self) -> list[dict]:
        return await self.list_all("/groups")

    async def create_group(self, name: str) -> dict:
        """Create an empty group; an existing one is returned as it is."""
        try:
            return await self.request("POST", f"/groups/{q(name)}", body={})
        except HubConflict:
            group = await self.get_group(name)
            if group is None:  # deleted meanwhile
                raise
            return group

    async def add_group_users(self, name: str, users: Iterable[str]) -> None:
        await self.request("POST", f"/groups/{q(name)}/users", body={"users": sorted(users)})

    async def remove_group_users(self, name: str, users: Iterable[str]) -> None:
        await self.request("DELETE", f"/groups/{q(name)}/users", body={"users": sorted(users)})

    async def set_group_properties(self, name: str, properties: dict) -> None:
        await self.request("PUT", f"/groups/{q(name)}/properties", body=properties)

    async def delete_group(self, name: str) -> None:
        """Delete a group (a deleted class's); one already gone is fine."""
        try:
            await self.request("DELETE", f"/groups/{q(name)}", body={})
        except HubNotFound:
            return


def _message(text: str) -> str:
    try:
        data = json.loads(text)
    except ValueError:
        return text.strip()[:200]
    if isinstance(data, dict):
        return str(data.get("message") or data.get("error") or "")[:500]
    return ""
