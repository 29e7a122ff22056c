"""One Docker event stream shared by all spawners.

Waiting for many containers to turn healthy by polling costs CPU in proportion to the
number of containers times the wait, which is exactly what grows when a whole class
starts at once. Instead one thread follows Docker's event stream (health status and
exits of this deployment's containers) and wakes the spawner that waits for that
container.
"""

from __future__ import annotations

import asyncio
import threading
from collections import OrderedDict
from collections.abc import Callable

import docker


class ContainerEvents:
    """Follows ``docker events`` for containers labelled with ``label`` in a thread."""

    def __init__(self, client_factory: Callable[[], docker.APIClient], label: str, log):
        self._client_factory = client_factory
        self._label = label
        self.log = log
        self._lock = threading.Lock()
        self._waiters: dict[str, list[tuple[asyncio.AbstractEventLoop, asyncio.Event]]] = {}
        self._seen: OrderedDict[str, int] = OrderedDict()
        self._thread: threading.Thread | None = None
        self._stop = threading.Event()

    def start(self) -> None:
        """Start following events (idempotent); call before starting a container."""
        self._ensure_thread()

    def _ensure_thread(self) -> None:
        with self._lock:
            if self._thread is None or not self._thread.is_alive():
                self._thread = threading.Thread(
                    target=self._run, name="classhub-docker-events", daemon=True
                )
                self._thread.start()

    def _run(self) -> None:
        while not self._stop.is_set():
            client = None
            try:
                client = self._client_factory()
                stream = client.events(
                    decode=True, filters={"type": "container", "label": [self._label]}
                )
                for event in stream:
                    action = event.get("Action") or event.get("status") or ""
                    if action.startswith("health_status") or action in ("die", "destroy"):
                        self._notify(event.get("id") or event.get("Actor", {}).get("ID", ""))
            except Exception as e:  # noqa: BLE001 - the stream must outlive Docker restarts
                self.log.warning("Docker event stream interrupted (%s); reconnecting", e)
                self._stop.wait(1.0)
            finally:
                if client is not None:
                    client.close()

    def _notify(self, container_id: str) -> None:
        with self._lock:
            self._seen[container_id] = self._seen.get(container_id, 0) + 1
            self._seen.move_to_end(container_id)
            while len(self._seen) > 4096:
                self._seen.popitem(last=False)
            waiters = list(self._waiters.get(container_id, ()))
        for loop, flag in waiters:
            loop.call_soon_threadsafe(flag.set)

    def seen(self, container_id: str) -> int:
        """How many events have arrived for ``container_id`` so far."""
        with self._lock:
            return self._seen.get(container_id, 0)

    async def wait(self, container_id: str, since: int, timeout: float) -> None:
        """Return when an event newer than ``since`` arrives, or after ``timeout``."""
        self._ensure_thread()
        flag = asyncio.Event()
        entry = (asyncio.get_running_loop(), flag)
        with self._lock:
            self._waiters.setdefault(container_id, []).append(entry)
            already = self._seen.get(container_id, 0) > since
        try:
            if not already:
                try:
                    await asyncio.wait_for(flag.wait(), timeout)
                except TimeoutError:
                    pass
        finally:
            with self._lock:
                waiters = self._waiters.get(container_id, [])
                if entry in waiters:
                    waiters.remove(entry)
                if not waiters:
                    self._waiters.pop(container_id, None)
