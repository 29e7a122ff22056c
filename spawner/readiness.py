"""Waiting for a freshly started container to serve, with clear failure reasons."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

from tornado import web


class SpawnError(web.HTTPError):
    """A spawn failure whose message is meant for the student.

    JupyterHub shows ``jupyterhub_message`` on the spawn-pending page, and the REST API
    answers with the HTTP status and message instead of a bare 500.
    """

    def __init__(self, message: str, status_code: int = 503):
        super().__init__(status_code, "%s", message)
        self.jupyterhub_message = message
        self.message = message


def format_bytes(value) -> str:
    """``25165824`` -> ``"24M"``; strings such as ``"1G"`` pass through."""
    try:
        n = int(value)
    except (TypeError, ValueError):
        return str(value)
    for unit, size in (("G", 1024**3), ("M", 1024**2), ("K", 1024)):
        if n >= size:
            return f"{n / size:.3g}{unit}"
    return f"{n}B"


def describe_exit(state: dict, mem_limit: str | int | None) -> str:
    """A student-readable reason for a container that stopped while starting."""
    if state.get("OOMKilled"):
        limit = f" ({format_bytes(mem_limit)})" if mem_limit else ""
        return (
            f"Your server ran out of memory{limit} while starting and was stopped. "
            "Ask your teacher or an admin to raise the memory limit of this environment."
        )
    code = state.get("ExitCode")
    return (
        f"Your server stopped while starting (exit code {code}). "
        "Try again; if it keeps failing, tell your teacher or an admin."
    )


async def wait_until_ready(
    *,
    inspect: Callable[[], Awaitable[dict]],
    next_event: Callable[[float], Awaitable[None]],
    timeout: float,
    mem_limit: str | int | None = None,
    clock: Callable[[], float] | None = None,
    recheck_every: float = 2.0,
) -> None:
    """Return once Docker calls the container healthy (which is what makes Traefik route).

    Checks the container's state, then sleeps until Docker reports an event for it
    (``next_event``: health status or exit) or ``recheck_every`` passes, so a waiting
    spawn costs no CPU however long the machine takes. Raises :class:`SpawnError` with a
    clear reason when the container dies, fails its health check or times out.
    """
    loop = asyncio.get_running_loop()
    now = clock or loop.time
    deadline = now() + timeout
    while True:
        info = await inspect()
        state = info.get("State", {})
        if not state.get("Running"):
            raise SpawnError(describe_exit(state, mem_limit))
        health = (state.get("Health") or {}).get("Status")
        if health in (None, "healthy"):
            return
        if health == "unhealthy":
            raise SpawnError(
                "Your server started but failed its health check. Tell your teacher or an admin."
            )
        remaining = deadline - now()
        if remaining <= 0:
            raise SpawnError(
                f"Your server did not become ready within {timeout:.0f} seconds and was "
                "stopped. The machine may be busy: try again in a minute."
            )
        await next_event(min(recheck_every, remaining))
