"""Waiting for a freshly started container to serve, with clear failure reasons."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

from tornado.httpclient import AsyncHTTPClient, HTTPClientError, HTTPRequest


class SpawnError(Exception):
    """A spawn failure whose message is meant for the student on the spawn page.

    JupyterHub shows ``jupyterhub_message`` on the spawn-pending page instead of a
    generic "Spawn failed".
    """

    def __init__(self, message: str):
        super().__init__(message)
        self.jupyterhub_message = message


def describe_exit(state: dict, mem_limit: str | None) -> str:
    """A student-readable reason for a container that stopped while starting."""
    if state.get("OOMKilled"):
        limit = f" ({mem_limit})" if mem_limit else ""
        return (
            f"Your server ran out of memory{limit} while starting and was stopped. "
            "Ask your teacher or an admin to raise the memory limit of this environment."
        )
    code = state.get("ExitCode")
    return (
        f"Your server stopped while starting (exit code {code}). "
        "Try again; if it keeps failing, tell your teacher or an admin."
    )


async def http_ok(url: str, timeout: float = 2.0) -> bool:
    """True when ``url`` answers with a status below 500."""
    req = HTTPRequest(url, request_timeout=timeout, connect_timeout=timeout, follow_redirects=False)
    try:
        resp = await AsyncHTTPClient().fetch(req, raise_error=False)
    except (TimeoutError, OSError, HTTPClientError):
        return False
    return 0 < resp.code < 500


async def wait_until_ready(
    *,
    server_url: str,
    inspect: Callable[[], Awaitable[dict]],
    timeout: float,
    mem_limit: str | None = None,
    clock: Callable[[], float] | None = None,
    poll_interval: float = 0.05,
    inspect_every: float = 1.0,
) -> None:
    """Return once the server answers and Docker calls the container healthy.

    Polls the server over HTTP (cheap for the Docker daemon), checks every
    ``inspect_every`` seconds that the container is still running, and once the server
    answers, waits for Docker's health status to turn ``healthy`` (which is what makes
    Traefik route to it). Raises :class:`SpawnError` with a clear reason otherwise.
    """
    loop = asyncio.get_running_loop()
    now = clock or loop.time
    deadline = now() + timeout
    next_inspect = now()
    answered = False
    while now() < deadline:
        if not answered:
            answered = await http_ok(server_url)
        if answered or now() >= next_inspect:
            info = await inspect()
            state = info.get("State", {})
            if not state.get("Running"):
                raise SpawnError(describe_exit(state, mem_limit))
            health = (state.get("Health") or {}).get("Status")
            if answered and health in (None, "healthy"):
                return
            if health == "unhealthy":
                raise SpawnError(
                    "Your server started but failed its health check. "
                    "Tell your teacher or an admin."
                )
            next_inspect = now() + inspect_every
        await asyncio.sleep(poll_interval)
    raise SpawnError(
        f"Your server did not become ready within {timeout:.0f} seconds and was stopped. "
        "The machine may be busy: try again in a minute."
    )
