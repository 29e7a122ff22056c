r"""Small pure functions that set classhub's JupyterHub configuration: the hub, the proxy,
the spawner, the homes and sign-in.

``jupyterhub_config.py`` (the composition root) only reads the environment and calls
:func:`apply_env`, then :func:`services.config.apply_env` for the services the hub runs;
this module imports no service. Each function here takes explicit arguments and is
unit-tested against a plain ``traitlets.config.Config()``.

This module only chooses classhub's classes and sets JupyterHub's own traits. classhub's
traits (``ClassroomSpawner``, ``TraefikDockerProxy``, ``JWTAuthenticator``) read their
``CLASSHUB_*`` variables themselves, in their ``@default``\ s (their tables:
``SPAWNER_TABLE``, ``PROXY_TABLE``, ``AUTH_TABLE``, see ``common/settings.py``); this
module never copies them into ``c.X.y``.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping

from traitlets import TraitError
from traitlets.config import Config

from common import scopes
from common.errors import ConfigError
from common.hubenv import BIND_IP, DATA_DIR, SERVERS_DOMAIN, STUDENT_NETWORK, own_address

from .settings import (
    BACKUP_API_TOKEN,
    CONCURRENT_SPAWN_LIMIT,
    HUB_DB_URL,
    HUB_IP,
    HUB_PORT,
    PUBLIC_URL,
    SPAWNER,
)


def configure_hub(
    c: Config,
    *,
    data_dir: str,
    db_url: str,
    hub_ip: str,
    hub_port: int,
    public_url: str,
    concurrent_spawn_limit: int = 0,
    bind_ip: str = "127.0.0.1",
) -> None:
    """Hub basics: where it listens, where it keeps state, named servers on.

    The hub listens on loopback only (``bind_ip``; in a Swarm stack, its address on the
    core network): Traefik (the public entrypoint) and the hub's services reach it
    there. Student containers reach it at ``hub_ip:hub_port``, the student network's
    gateway (in a Swarm stack, Traefik's name there), where Traefik's ``students``
    entrypoint passes only the hub API calls a single-user server makes
    (``common.routing.hub_api_rule``) and sets ``X-Real-Ip`` itself, so no container can
    forge the address the hub sees."""
    # JupyterHub refuses spawns beyond this many pending ones with a 429 (default 100): a
    # class of 200 starting at once would see half of them refused. ClassroomSpawner's own
    # start queue (start_concurrency) already limits the containers starting at once; the
    # others wait their turn on the spawn page, told their place in line, instead of
    # failing: so no limit here (0) unless an admin sets CLASSHUB_CONCURRENT_SPAWN_LIMIT.
    c.JupyterHub.concurrent_spawn_limit = concurrent_spawn_limit
    c.JupyterHub.hub_bind_url = f"http://{bind_ip}:{hub_port}"
    if bind_ip != "127.0.0.1":
        # in a Swarm stack: Traefik and the services reach the hub on its address on the
        # core network (common.hubenv.BIND_IP), not on loopback
        c.JupyterHub.hub_connect_url = c.JupyterHub.hub_bind_url
    # JUPYTERHUB_API_URL of student servers (services keep the hub's own loopback address)
    c.Spawner.hub_connect_url = f"http://{hub_ip}:{hub_port}"
    c.JupyterHub.bind_url = public_url
    c.JupyterHub.db_url = db_url
    c.JupyterHub.cookie_secret_file = os.path.join(data_dir, "jupyterhub_cookie_secret")
    c.JupyterHub.allow_named_servers = True
    c.JupyterHub.named_server_limit_per_user = 20
    # servers keep running across hub restarts and upgrades
    c.JupyterHub.cleanup_servers = False
    c.JupyterHub.cleanup_proxy = False
    c.JupyterHub.template_paths = [os.path.join(os.path.dirname(__file__), "templates")]


def configure_origins(c: Config, *, public_url: str, servers_domain: str) -> None:
    """Per-user origins (hub/origins.py): with a servers domain, every user's servers are
    served on ``<user>.<servers_domain>`` and the hub, its pages and the services on the
    host of ``public_url``. Without one (the default), everything shares one origin and
    only a server's owner may open it in a browser (see the admin guide)."""
    if not servers_domain:
        return
    from .origins import (
        OriginError,
        SubdomainHook,
        parse_public_url,
        servers_origin,
        validate_domain,
    )

    try:
        domain = validate_domain(servers_domain)
        public = parse_public_url(public_url)
        validate_domain(public.host, "the host of CLASSHUB_PUBLIC_URL")
    except OriginError as e:
        raise ConfigError(
            f"{e}. Per-user origins (CLASSHUB_SERVERS_DOMAIN) need CLASSHUB_PUBLIC_URL to "
            "be the hub's full address on a DNS name, e.g. "
            "CLASSHUB_PUBLIC_URL=https://classhub.example.edu and "
            "CLASSHUB_SERVERS_DOMAIN=classhub-servers.example.edu."
        ) from None
    if public.host == domain or public.host.endswith("." + domain):
        raise ConfigError(
            f"The hub's host {public.host!r} is inside CLASSHUB_SERVERS_DOMAIN={domain!r}, "
            "where students' servers live: choose a servers domain beside the hub's host, "
            f"e.g. CLASSHUB_SERVERS_DOMAIN=classhub-servers.{public.host.split('.', 1)[-1]}"
        )
    if domain.endswith("." + public.host):
        raise ConfigError(
            f"CLASSHUB_SERVERS_DOMAIN={domain!r} lies under the hub's host {public.host!r}: "
            "JupyterHub's session cookie is set for the hub's host and all names under it, "
            "so students' servers would receive it. Choose a servers domain beside the hub's "
            f"host, e.g. CLASSHUB_SERVERS_DOMAIN=classhub-servers.{public.host.split('.', 1)[-1]}"
        )
    c.JupyterHub.public_url = public.origin + public.path
    # servers on their own origins need no owner gate: ClassroomSpawner.owner_gate_url is
    # empty when CLASSHUB_SERVERS_DOMAIN is set (its table, spawner/spawner.py)
    c.JupyterHub.subdomain_host = servers_origin(public, domain)
    c.JupyterHub.subdomain_hook = SubdomainHook(servers_domain=domain, hub_host=public.host)
    if public.scheme == "https":
        # cookies a page of another host of the same site cannot overwrite; browsers keep
        # __Host- cookies only when they are Secure, i.e. over https
        c.JupyterHub.cookie_host_prefix_enabled = True


def configure_proxy(c: Config) -> None:
    """Traefik, not configurable-http-proxy, is the proxy (its settings:
    ``TraefikDockerProxy``'s traits, from ``CLASSHUB_TRAEFIK_*``)."""
    c.JupyterHub.proxy_class = "traefik-docker"


def configure_spawner(c: Config, spawner: str = "classroom") -> None:
    """One hardened container per student server, on the isolated student network
    (``ClassroomSpawner``'s traits read the image, limits, network and prefix from
    ``CLASSHUB_*``); here only JupyterHub's own spawner settings. ``spawner``:
    ``"classroom"``, or ``"classroom-swarm"`` (``SwarmClassroomSpawner``, a subclass:
    the settings below apply to it too) in a Swarm stack."""
    c.JupyterHub.spawner_class = spawner
    c.ClassroomSpawner.default_url = "/lab"
    # students cannot switch off the server's session guard (or anything else classhub
    # configures) through ~/.jupyter
    c.Spawner.disable_user_config = True
    # cmd stays unset: each allowed image's own CMD starts its server
    # generous: a class starting at once queues (ClassroomSpawner.start_concurrency), and
    # JupyterHub counts the wait in the queue against this timeout: a warm-up of 30 servers
    # on 2 loaded cores (load average 20) had starts fail after 300 s in the queue. Each
    # container's own start is bounded by ClassroomSpawner.ready_timeout
    c.Spawner.start_timeout = 900
    c.Spawner.http_timeout = 60


def configure_homes(c: Config) -> None:
    """The API that shows the use of students' homes (the homes themselves:
    ``ClassroomSpawner.homes_root`` and ``home_quota``, from ``CLASSHUB_HOMES_DIR`` and
    ``CLASSHUB_HOME_QUOTA``)."""
    from hub.homes_api import handlers

    extra = list(c.JupyterHub.get("extra_handlers", []))
    c.JupyterHub.extra_handlers = extra + [h for h in handlers() if h not in extra]
    # the services' right to find homes on a Swarm (hub/homes_api.py)
    c.JupyterHub.custom_scopes = {
        **c.JupyterHub.get("custom_scopes", {}),
        scopes.HOMES: {"description": scopes.HOMES_DESCRIPTION},
    }


#: the name of the service (a token, no server) that classhub-backup calls the hub as
BACKUP_SERVICE = "classhub-backup"


def configure_backup(c: Config, api_token: str) -> None:
    """On a Swarm, ``classhub-backup`` asks the hub to save every home into the store and
    to restore one (hub/backup_api.py): a service without a server, whose role holds only
    :data:`common.scopes.BACKUP`. Without ``api_token`` nothing is added."""
    from hub.backup_api import handlers

    extra = list(c.JupyterHub.get("extra_handlers", []))
    c.JupyterHub.extra_handlers = extra + [h for h in handlers() if h not in extra]
    c.JupyterHub.custom_scopes = {
        **c.JupyterHub.get("custom_scopes", {}),
        scopes.BACKUP: {"description": scopes.BACKUP_DESCRIPTION},
    }
    if not api_token:
        return
    if len(api_token) < 32:
        raise ConfigError(
            "CLASSHUB_BACKUP_API_TOKEN is shorter than 32 characters; make one with "
            "`openssl rand -hex 32` (scripts/swarm/deploy.sh writes one)"
        )
    c.JupyterHub.services = [
        *c.JupyterHub.get("services", []),
        {"name": BACKUP_SERVICE, "api_token": api_token, "display": False},
    ]
    c.JupyterHub.load_roles = [
        *c.JupyterHub.get("load_roles", []),
        {
            "name": BACKUP_SERVICE,
            "description": "classhub-backup on a Swarm: every home into the store, restores",
            # why: saving homes for a backup and restoring one is all it does
            "scopes": [scopes.BACKUP],
            "services": [BACKUP_SERVICE],
        },
    ]


def configure_auth(c: Config) -> None:
    """Sign-in only through the JWTAuthenticator: a signed JWT or a local account, one
    session per person in Redis (its traits read ``CLASSHUB_REDIS_URL``, the session
    policy and the rest themselves). Never an open login."""
    c.JupyterHub.authenticator_class = "classhub-jwt"
    # the classes service's narrow right over student accounts (authenticator/admin_handlers.py)
    c.JupyterHub.custom_scopes = {
        **c.JupyterHub.get("custom_scopes", {}),
        scopes.STUDENT_ACCOUNTS: {"description": scopes.STUDENT_ACCOUNTS_DESCRIPTION},
    }
    configure_logging(c)


def configure_web(c: Config) -> None:
    """The one web layer (common/web) on the hub's pages, and its settings passed to the
    services: the shared header (navigation of the person's role, brand name and logo),
    style sheet and script. Call it after the services are registered
    (``services.config.apply_env``): the navigation lists the services the hub runs, and
    each service gets ``CLASSHUB_SERVICES`` and ``CLASSHUB_BRAND_NAME`` so its pages show
    the same header. The brand is ``c.Branding`` (set before this runs) or the
    ``CLASSHUB_BRAND_NAME`` / ``CLASSHUB_BRAND_LOGO`` variables."""
    from common.hubenv import JOIN_CODE_SIGNUP
    from common.web import TEMPLATES_DIR
    from common.web.branding import Branding
    from common.web.nav import SERVICES
    from hub.web import HubNav, HubStatic, handlers

    branding = Branding(config=c)
    paths = list(c.JupyterHub.get("template_paths", []))
    if str(TEMPLATES_DIR) not in paths:
        c.JupyterHub.template_paths = [*paths, str(TEMPLATES_DIR)]
    if branding.logo_file:
        c.JupyterHub.logo_file = branding.logo_file
    services = [s["name"] for s in c.JupyterHub.get("services", []) if s.get("name") in SERVICES]
    c.JupyterHub.template_vars = {
        **c.JupyterHub.get("template_vars", {}),
        "classhub_brand": branding.name,
        "classhub_nav": HubNav(services),
        "classhub_static": HubStatic(),
        # the login page links to the classes service's sign-up with a join code
        "classhub_signup": "classes" in services and bool(JOIN_CODE_SIGNUP.read()),
    }
    for service in c.JupyterHub.get("services", []):
        if service.get("name") in SERVICES:
            environment = service.setdefault("environment", {})
            environment["CLASSHUB_SERVICES"] = ",".join(services)
            environment["CLASSHUB_BRAND_NAME"] = branding.name
    extra = list(c.JupyterHub.get("extra_handlers", []))
    c.JupyterHub.extra_handlers = extra + [h for h in handlers() if h not in extra]


def configure_service_origins(c: Config) -> None:
    """With per-user origins, the classes service links to students' servers on their own
    hosts: the hub passes it their origin with ``{user}`` for each user's label
    (``CLASSHUB_SERVERS_ORIGIN``), made from its own ``subdomain_host`` (set by
    :func:`configure_origins` with its checks), so the service never works it out again.
    Call it after the services are registered (``services.config.apply_env``)."""
    host = c.JupyterHub.get("subdomain_host", "")
    if not host:
        return
    scheme, _, rest = host.partition("://")
    for service in c.JupyterHub.get("services", []):
        if service.get("name") == "classes":
            environment = service.setdefault("environment", {})
            environment["CLASSHUB_SERVERS_ORIGIN"] = f"{scheme}://{{user}}.{rest}"


def configure_landing(c: Config) -> None:
    """Where people land after sign-in (``hub/landing.py``, decided by
    ``common.landing``): JupyterHub's ``default_url`` hook sends a signed-in person
    without a ``next`` address to ``/hub/classhub/landing``, which sends a student with
    one class into that class's JupyterLab (through the hub's spawn page) and everybody
    else to My classes; the home page offers only the servers a person may start
    (``classhub_offers``; hub/templates/home.html). A ``next`` address still wins."""
    from hub.landing import ServerOffers, default_url, handlers

    c.JupyterHub.default_url = default_url
    c.JupyterHub.template_vars = {
        **c.JupyterHub.get("template_vars", {}),
        "classhub_offers": ServerOffers(),
    }
    extra = list(c.JupyterHub.get("extra_handlers", []))
    c.JupyterHub.extra_handlers = extra + [h for h in handlers() if h not in extra]


def configure_logging(c: Config) -> None:
    """No log line of the hub ever shows a JWT, whatever carried it (see hub.logscrub)."""
    c.JupyterHub.logging_config = {
        "filters": {"jwtscrub": {"()": "hub.logscrub.JWTScrubFilter"}},
        "handlers": {"console": {"filters": ["jwtscrub"]}},
    }


def docker_network_gateway(name: str) -> str:
    """The gateway address of Docker network ``name`` (where containers reach the hub)."""
    import docker

    client = docker.from_env(timeout=10)
    try:
        net = client.networks.get(name)
    except docker.errors.NotFound:
        raise ConfigError(
            f"Docker network {name!r} does not exist. Start the stack with `make up`, "
            "or create it and set CLASSHUB_STUDENT_NETWORK."
        ) from None
    finally:
        client.close()
    configs = net.attrs.get("IPAM", {}).get("Config") or []
    for cfg in configs:
        if cfg.get("Gateway"):
            return cfg["Gateway"]
    raise ConfigError(f"Docker network {name!r} has no gateway; set CLASSHUB_HUB_IP.")


def apply_env(
    c: Config,
    env: Mapping[str, str],
    *,
    gateway_lookup: Callable[[str], str] = docker_network_gateway,
) -> None:
    """Configure the hub from ``CLASSHUB_*`` variables (see docs/admin-guide.md): the
    classes classhub plugs in, and JupyterHub's own traits. ``env`` is the hub's
    environment, which classhub's traits read too."""
    try:
        data_dir = DATA_DIR.read(environ=env)
        # the hub's address for the containers: the gateway of the spawner's network
        network = STUDENT_NETWORK.read(environ=env)
        hub_ip = HUB_IP.read(environ=env) or gateway_lookup(network)
        spawner = SPAWNER.read(environ=env)
        configure_hub(
            c,
            data_dir=data_dir,
            db_url=HUB_DB_URL.read(environ=env) or f"sqlite:///{data_dir}/jupyterhub.sqlite",
            hub_ip=hub_ip,
            hub_port=HUB_PORT.read(environ=env),
            public_url=PUBLIC_URL.read(environ=env),
            concurrent_spawn_limit=CONCURRENT_SPAWN_LIMIT.read(environ=env),
            bind_ip=own_address(BIND_IP.read(environ=env)),
        )
    except TraitError as e:
        raise ConfigError(str(e)) from None
    configure_origins(
        c,
        public_url=PUBLIC_URL.read(environ=env),
        servers_domain=SERVERS_DOMAIN.read(environ=env).lower(),
    )
    configure_proxy(c)
    configure_spawner(c, spawner)
    configure_homes(c)
    configure_backup(c, BACKUP_API_TOKEN.read(environ=env))
    configure_auth(c)
