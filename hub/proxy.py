"""TraefikDockerProxy: JupyterHub's proxy API on top of a Traefik it does not run.

* Student servers are routed by Traefik's Docker provider (in a Swarm: its Swarm provider,
  ``container_provider``) from the labels that :class:`spawner.ClassroomSpawner` puts on
  their containers (or services); ``add_route`` for them only
  *waits* until Traefik really routes the route spec to the expected container.
* The hub's own route, services and ``extra_routes`` are written to a file in Traefik's
  file-provider directory (atomically), then waited for the same way. With
  ``student_entrypoint`` set, the hub's route gets a second router on that entrypoint
  that passes only the hub API calls a single-user server makes
  (:func:`common.routing.hub_api_rule`): the way student containers reach the hub.
* ``get_all_routes`` reads Traefik's API, so what the hub sees is what Traefik does.
"""

from __future__ import annotations

import asyncio
import os
import tempfile
from pathlib import Path
from urllib.parse import unquote

import yaml
from jupyterhub.proxy import Proxy
from traitlets import Bool, Float, Unicode, default, validate

from common.hubenv import CONTAINER_PREFIX, TRAEFIK_DYNAMIC_DIR, TRAEFIK_ENTRYPOINT
from common.routing import (
    RouteSpecError,
    hub_api_rule,
    route_name,
    routespec_from_rule,
    split_routespec,
    traefik_rule,
    user_from_routespec,
    validate_routespec,
)
from common.settings import EnvSetting, EnvTable, one_of

from .traefik_api import TraefikAPI, TraefikAPIError, service_targets

ROUTES_FILE = "classhub-routes.yml"
#: the hub route's router on the student entrypoint: ``<hub router name>-students``
STUDENTS_SUFFIX = "-students"


#: Traefik providers that route students' servers by their labels
CONTAINER_PROVIDERS = ("docker", "swarm")


#: the proxy's settings from the hub's environment: the @defaults of its traits
PROXY_TABLE = EnvTable(
    (
        EnvSetting("traefik_api_url", "CLASSHUB_TRAEFIK_API_URL", "http://127.0.0.1:8099"),
        TRAEFIK_DYNAMIC_DIR.of("dynamic_config_dir"),
        TRAEFIK_ENTRYPOINT.of("entrypoint"),
        # empty: no student entrypoint
        EnvSetting(
            "student_entrypoint", "CLASSHUB_TRAEFIK_STUDENT_ENTRYPOINT", "students", keep_empty=True
        ),
        CONTAINER_PREFIX.of("route_name_prefix"),
        EnvSetting(
            "container_provider",
            "CLASSHUB_TRAEFIK_CONTAINER_PROVIDER",
            "docker",
            one_of(CONTAINER_PROVIDERS),
            "docker (one Docker engine) or swarm (a Docker Swarm)",
        ),
    )
)


@PROXY_TABLE.install
class TraefikDockerProxy(Proxy):
    """Select it with ``c.JupyterHub.proxy_class = "traefik-docker"``."""

    @default("should_start")
    def _default_should_start(self):
        # Traefik runs as its own service (compose, or the test fixtures)
        return False

    traefik_api_url = Unicode(
        config=True,
        help="""URL of Traefik's API entrypoint, used to read routers and services.

        Bind it to loopback only: it is unauthenticated and lists every route.

        Example: ``c.TraefikDockerProxy.traefik_api_url = "http://127.0.0.1:8099"``
        """,
    )

    @validate("traefik_api_url")
    def _check_api_url(self, proposal):
        if not proposal.value.startswith(("http://", "https://")):
            raise ValueError(
                f"TraefikDockerProxy.traefik_api_url={proposal.value!r} must be an http(s) URL "
                "such as 'http://127.0.0.1:8099'."
            )
        return proposal.value

    dynamic_config_dir = Unicode(
        config=True,
        help="""Directory watched by Traefik's file provider; the hub writes
        ``classhub-routes.yml`` there for its own route and services (and the files
        service its route for presigned URLs). Set from ``CLASSHUB_TRAEFIK_DYNAMIC_DIR``.

        Example: ``c.TraefikDockerProxy.dynamic_config_dir = "/srv/classhub/traefik-dynamic"``
        """,
    )

    entrypoint = Unicode(
        config=True,
        help="""Traefik entrypoint for file-provider routes (the hub and services): the
        one browsers come in through. Set from ``CLASSHUB_TRAEFIK_ENTRYPOINT``, as the
        spawner's ``traefik_entrypoint``.

        Example: ``c.TraefikDockerProxy.entrypoint = "web"``
        """,
    )

    student_entrypoint = Unicode(
        config=True,
        help="""Traefik entrypoint on the student network's gateway through which student
        containers reach the hub (``c.Spawner.hub_connect_url`` points there), or empty for
        none. Its router passes only the hub API calls a single-user server makes (the API
        root, ``api/user``, ``api/oauth2/token``, ``api/users/<name>/activity``), never the
        login page, other hub pages or services. Set from CLASSHUB_TRAEFIK_STUDENT_ENTRYPOINT
        (``up.sh`` and the stack use ``students``).

        Example: ``c.TraefikDockerProxy.student_entrypoint = "students"``
        """,
    )

    route_name_prefix = Unicode(
        config=True,
        help="""Prefix of router/service names; must equal
        ``c.ClassroomSpawner.route_name_prefix``. Routers without it are ignored.

        Example: ``c.TraefikDockerProxy.route_name_prefix = "classhub"``
        """,
    )

    container_provider = Unicode(
        config=True,
        help="""Traefik provider that routes students' servers from their labels: ``docker``
        (one Docker engine, ``ClassroomSpawner``) or ``swarm`` (a Docker Swarm,
        ``SwarmClassroomSpawner``; Traefik names those routers ``<name>@swarm``). The
        proxy waits for a new server's router under this provider and reads the servers'
        routes from it. Set from ``CLASSHUB_TRAEFIK_CONTAINER_PROVIDER``
        (deploy/swarm/stack.yml sets ``swarm``).

        Example: ``c.TraefikDockerProxy.container_provider = "swarm"``
        """,
    )

    @validate("container_provider")
    def _check_container_provider(self, proposal):
        if proposal.value not in CONTAINER_PROVIDERS:
            raise ValueError(
                f"TraefikDockerProxy.container_provider={proposal.value!r} must be 'docker' "
                "(one Docker engine) or 'swarm' (a Docker Swarm)."
            )
        return proposal.value

    route_timeout = Float(
        30.0,
        config=True,
        help="""Seconds ``add_route`` waits for Traefik to route a new server before
        the hub reports an error.

        Example: ``c.TraefikDockerProxy.route_timeout = 30``
        """,
    )

    poll_interval = Float(
        0.025,
        config=True,
        help="""Seconds between checks of Traefik's API while waiting for a route.

        Example: ``c.TraefikDockerProxy.poll_interval = 0.025``
        """,
    )

    api_timeout = Float(
        5.0,
        config=True,
        help="""Timeout in seconds of each request to Traefik's API.

        Example: ``c.TraefikDockerProxy.api_timeout = 5``
        """,
    )

    wait_for_delete = Bool(
        False,
        config=True,
        help="""Wait until Traefik drops a deleted file-provider route.

        Example: ``c.TraefikDockerProxy.wait_for_delete = True``
        """,
    )

    _lock: asyncio.Lock | None = None
    _api: TraefikAPI | None = None

    @property
    def api(self) -> TraefikAPI:
        if self._api is None:
            self._api = TraefikAPI(self.traefik_api_url, timeout=self.api_timeout)
        return self._api

    @property
    def _routes_lock(self) -> asyncio.Lock:
        """Serialises read-modify-write of the routes file."""
        if self._lock is None:
            self._lock = asyncio.Lock()
        return self._lock

    @property
    def _routes_path(self) -> Path:
        return Path(self.dynamic_config_dir) / ROUTES_FILE

    def _load_file_routes(self) -> dict:
        try:
            data = yaml.safe_load(self._routes_path.read_text()) or {}
        except FileNotFoundError:
            return {"http": {"routers": {}, "services": {}}}
        http = data.setdefault("http", {})
        http.setdefault("routers", {})
        http.setdefault("services", {})
        return data

    def _write_file_routes(self, data: dict) -> None:
        directory = Path(self.dynamic_config_dir)
        directory.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=directory, prefix=".classhub-", suffix=".tmp")
        try:
            with os.fdopen(fd, "w") as f:
                yaml.safe_dump(data, f, sort_keys=True)
                f.flush()
                os.fsync(f.fileno())
            os.chmod(tmp, 0o644)
            os.replace(tmp, self._routes_path)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise

    async def start(self):
        """Nothing to start: Traefik is a separate service."""

    async def stop(self):
        """Nothing to stop: Traefik is a separate service."""

    def _name(self, routespec: str) -> str:
        return route_name(routespec, self.route_name_prefix)

    async def _wait_for(self, routespec: str, target: str, provider: str) -> None:
        name = f"{self._name(routespec)}@{provider}"
        target = target.rstrip("/")
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.route_timeout
        seen = "no router"
        while loop.time() < deadline:
            try:
                router = await self.api.router(name)
                if router and router.get("status") == "enabled":
                    service_name = router.get("service") or name
                    if "@" not in service_name:
                        service_name = f"{service_name}@{provider}"
                    service = await self.api.service(service_name)
                    targets = service_targets(service or {})
                    if target in targets:
                        return
                    seen = f"router targets {targets}"
                elif router:
                    seen = f"router status {router.get('status')}: {router.get('error')}"
            except TraefikAPIError as e:
                seen = str(e)
            await asyncio.sleep(self.poll_interval)
        raise TimeoutError(
            f"Traefik did not route {routespec} to {target} within "
            f"{self.route_timeout:.0f} s ({seen})"
        )

    async def add_route(self, routespec, target, data):
        validate_routespec(routespec)
        if "user" in data:
            # routed by the container's labels; wait until Traefik serves it
            await self._wait_for(routespec, target, self.container_provider)
            return
        async with self._routes_lock:
            name = self._name(routespec)
            routes = self._load_file_routes()
            router = {
                "rule": traefik_rule(routespec),
                "service": name,
                "entryPoints": [self.entrypoint],
            }
            if routespec == "/":
                router["priority"] = 1
            routes["http"]["routers"][name] = router
            if data.get("hub") and self.student_entrypoint:
                routes["http"]["routers"][name + STUDENTS_SUFFIX] = {
                    "rule": hub_api_rule(self._hub_prefix()),
                    "service": name,
                    "entryPoints": [self.student_entrypoint],
                }
            routes["http"]["services"][name] = {
                "loadBalancer": {"servers": [{"url": target}], "passHostHeader": True}
            }
            self._write_file_routes(routes)
        await self._wait_for(routespec, target, "file")

    async def delete_route(self, routespec):
        try:
            name = self._name(routespec)
        except RouteSpecError:
            return
        async with self._routes_lock:
            routes = self._load_file_routes()
            found = routes["http"]["routers"].pop(name, None) is not None
            routes["http"]["routers"].pop(name + STUDENTS_SUFFIX, None)
            routes["http"]["services"].pop(name, None)
            if found:
                self._write_file_routes(routes)
        if not found:
            # a container route: it disappears when the container stops
            self.log.debug("Route %s is a container label route; nothing to delete", routespec)
            return
        if self.wait_for_delete:
            loop = asyncio.get_running_loop()
            deadline = loop.time() + self.route_timeout
            while loop.time() < deadline and await self.api.router(f"{name}@file"):
                await asyncio.sleep(self.poll_interval)

    def _hub_prefix(self) -> str:
        """The hub's own base URL (``/hub/`` under base URL ``/``)."""
        hub = getattr(getattr(self, "app", None), "hub", None)
        return getattr(hub, "base_url", "") or "/hub/"

    def _route_data(self, routespec: str, provider: str) -> dict:
        base_url = getattr(getattr(self, "app", None), "base_url", "/") or "/"
        if provider == self.container_provider:
            found = user_from_routespec(routespec, base_url)
            if found:
                return {"user": found[0], "server_name": found[1]}
            return {"extra": True}
        hub_spec = getattr(getattr(getattr(self, "app", None), "hub", None), "routespec", "/")
        if routespec == hub_spec:
            return {"hub": True}
        path = split_routespec(routespec)[1]
        services_head = base_url.rstrip("/") + "/services/"
        if path.startswith(services_head):
            return {"service": unquote(path[len(services_head) :].strip("/").split("/")[0])}
        return {"extra": True}

    async def get_all_routes(self):
        routers, services = await asyncio.gather(self.api.routers(), self.api.services())
        by_name = {s["name"]: s for s in services if "name" in s}
        routes = {}
        for router in routers:
            name, _, provider = router.get("name", "").partition("@")
            if provider not in (self.container_provider, "file") or not name.startswith(
                self.route_name_prefix + "-"
            ):
                continue
            if router.get("status") != "enabled":
                continue
            routespec = routespec_from_rule(router.get("rule", ""))
            if routespec is None:
                continue
            service_name = router.get("service", name)
            if "@" not in service_name:
                service_name = f"{service_name}@{provider}"
            targets = service_targets(by_name.get(service_name, {}))
            if not targets:
                continue
            routes[routespec] = {
                "routespec": routespec,
                "target": targets[0],
                "data": self._route_data(routespec, provider),
            }
        return routes
