"""Start or stop many class servers through the hub API, a bounded number at a time
(a teacher's "start all" / "stop all" and the warm-up before a class)."""

from __future__ import annotations

import asyncio

from services.base.hubapi import HubAPI, HubAPIError, HubNotFound

from .servers import START


async def run_bulk(
    hub: HubAPI,
    action: str,
    names: list[str],
    code: str,
    *,
    concurrency: int,
    background: bool = False,
) -> dict[str, str]:
    """Start (``action`` ``start``) or stop ``names``' servers of class ``code``, at
    most ``concurrency`` hub calls at once; ``{name: why}`` of the ones the hub refused.
    ``background`` starts wait behind students' own starts in the hub's start queue."""
    gate = asyncio.Semaphore(max(1, concurrency))

    async def one(name: str) -> tuple[str, str]:
        async with gate:
            try:
                if action == START:
                    await hub.start_server(name, code, background=background)
                else:
                    await hub.stop_server(name, code)
            except HubNotFound:
                return name, "" if action != START else f"{name} is not a user any more."
            except HubAPIError as e:
                return name, e.hub_message or str(e)
        return name, ""

    results = await asyncio.gather(*(one(n) for n in names))
    return {n: why for n, why in results if why}
