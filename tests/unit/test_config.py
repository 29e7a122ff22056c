import pytest
from traitlets.config import Config

from authenticator import JWTAuthenticator
from authenticator.settings import AUTH_TABLE
from common.settings import check_environment
from hub.config import ConfigError, apply_env, configure_auth
from hub.proxy import PROXY_TABLE, TraefikDockerProxy
from hub.traefik_config import traefik_static_config
from services.config import apply_env as apply_services_env
from spawner import ClassroomSpawner
from spawner.spawner import SPAWNER_TABLE

pytestmark = pytest.mark.unit


def no_docker(name):
    raise AssertionError("gateway lookup must not run when CLASSHUB_HUB_IP is set")


def test_apply_env_defaults():
    c = Config()
    apply_env(c, {"CLASSHUB_HUB_IP": "172.30.0.1"}, gateway_lookup=no_docker)
    assert c.JupyterHub.proxy_class == "traefik-docker"
    assert c.JupyterHub.spawner_class == "classroom"
    assert c.JupyterHub.authenticator_class == "classhub-jwt"
    # the hub on loopback; containers through Traefik's students entrypoint on the gateway
    assert c.JupyterHub.hub_bind_url == "http://127.0.0.1:8081"
    assert "hub_connect_ip" not in c.JupyterHub
    assert c.Spawner.hub_connect_url == "http://172.30.0.1:8081"
    assert c.JupyterHub.allow_named_servers is True
    assert c.JupyterHub.cleanup_servers is False
    assert c.JupyterHub.db_url == "sqlite:////srv/classhub/jupyterhub.sqlite"
    assert c.Spawner.disable_user_config is True
    # classhub's traits are not copied into the config: each reads its own variable
    assert "TraefikDockerProxy" not in c
    assert "JWTAuthenticator" not in c
    assert set(c.ClassroomSpawner) == {"default_url"}


def clean_env(monkeypatch, **env):
    for table in (PROXY_TABLE, SPAWNER_TABLE, AUTH_TABLE):
        for name in table.variables:
            monkeypatch.delenv(name, raising=False)
    monkeypatch.delenv("CLASSHUB_DATA_DIR", raising=False)
    monkeypatch.delenv("CLASSHUB_GATE_PORT", raising=False)
    monkeypatch.delenv("CLASSHUB_SERVERS_DOMAIN", raising=False)
    for name, value in env.items():
        monkeypatch.setenv(name, value)


def test_the_traits_defaults_without_variables(monkeypatch):
    clean_env(monkeypatch)
    proxy, spawner, auth = TraefikDockerProxy(), ClassroomSpawner(), JWTAuthenticator()
    assert proxy.student_entrypoint == "students"
    assert proxy.dynamic_config_dir == "/srv/classhub/traefik-dynamic"
    assert proxy.traefik_api_url == "http://127.0.0.1:8099"
    assert spawner.image == "classhub/singleuser:latest"
    # DockerSpawner keeps the allowed images as a dict of names
    assert list(spawner.allowed_images) == ["classhub/singleuser:latest"]
    assert spawner.network_name == "classhub-students"
    assert spawner.owner_gate_url == "http://127.0.0.1:8082/check"
    assert (spawner.cpu_limit, spawner.pids_limit, spawner.home_quota) == (1.0, 512, "2G")
    assert auth.session_policy == "takeover"
    assert auth.session_idle_timeout == 7200
    assert auth.redis_url == "redis://127.0.0.1:6379/0"


def test_per_user_origins_turn_the_owner_gate_off(monkeypatch):
    """With CLASSHUB_SERVERS_DOMAIN every user's servers have their own origin: no owner gate
    (teachers and admins open servers as their scopes allow), whatever CLASSHUB_GATE_URL
    says; the spawner's table decides it, not hub/config.py."""
    clean_env(monkeypatch, CLASSHUB_GATE_URL="http://127.0.0.1:9000/check")
    assert ClassroomSpawner().owner_gate_url == "http://127.0.0.1:9000/check"
    monkeypatch.setenv("CLASSHUB_SERVERS_DOMAIN", "classhub-servers.example.edu")
    assert ClassroomSpawner().owner_gate_url == ""
    # configuration still wins over the environment
    url = "http://127.0.0.1:8082/check"
    assert ClassroomSpawner(owner_gate_url=url).owner_gate_url == url


def test_a_whole_class_may_start_at_once():
    """JupyterHub's default of 100 pending spawns would refuse half of a class of 200 with a
    429; the spawner's own start queue limits what starts at once and the others wait in
    line with their place shown: no limit (0) unless an admin sets one."""
    c = Config()
    apply_env(c, {"CLASSHUB_HUB_IP": "172.30.0.1"}, gateway_lookup=no_docker)
    assert c.JupyterHub.concurrent_spawn_limit == 0
    apply_env(
        c,
        {"CLASSHUB_HUB_IP": "172.30.0.1", "CLASSHUB_CONCURRENT_SPAWN_LIMIT": "300"},
        gateway_lookup=no_docker,
    )
    assert c.JupyterHub.concurrent_spawn_limit == 300


def test_apply_env_uses_gateway_lookup():
    c = Config()
    apply_env(c, {"CLASSHUB_STUDENT_NETWORK": "n1"}, gateway_lookup=lambda n: f"10.0.0.1-{n}")
    assert c.Spawner.hub_connect_url == "http://10.0.0.1-n1:8081"


def test_the_variables_feed_the_traits(monkeypatch):
    env = {
        "CLASSHUB_HUB_IP": "10.1.1.1",
        "CLASSHUB_HUB_PORT": "9000",
        "CLASSHUB_DB_URL": "postgresql+psycopg://u:p@127.0.0.1:5432/hub",
        "CLASSHUB_MEM_LIMIT": "2G",
        "CLASSHUB_CPU_LIMIT": "0.5",
        "CLASSHUB_PIDS_LIMIT": "300",
        "CLASSHUB_SINGLEUSER_IMAGE": "img:1",
        "CLASSHUB_ALLOWED_IMAGES": "img:1, img:2",
        "CLASSHUB_ADMIN_USER": "root1",
        "CLASSHUB_REDIS_URL": "redis://r:6379/1",
        "CLASSHUB_SESSION_POLICY": "reject",
        "CLASSHUB_SESSION_IDLE_TIMEOUT": "600",
        "CLASSHUB_TRAEFIK_DYNAMIC_DIR": "/d",
        "CLASSHUB_TRAEFIK_STUDENT_ENTRYPOINT": "",
    }
    clean_env(monkeypatch, **env)
    c = Config()
    check_environment(env, PROXY_TABLE, SPAWNER_TABLE, AUTH_TABLE)
    apply_env(c, env, gateway_lookup=no_docker)
    assert c.JupyterHub.hub_bind_url == "http://127.0.0.1:9000"
    assert c.Spawner.hub_connect_url == "http://10.1.1.1:9000"
    assert c.JupyterHub.db_url.startswith("postgresql+psycopg://")
    spawner, auth, proxy = ClassroomSpawner(), JWTAuthenticator(), TraefikDockerProxy()
    assert spawner.mem_limit == 2 * 1024**3
    assert spawner.cpu_limit == 0.5
    assert spawner.pids_limit == 300
    assert list(spawner.allowed_images) == ["img:1", "img:2"]
    assert auth.first_admin == "root1"
    assert auth.redis_url == "redis://r:6379/1"
    assert auth.session_policy == "reject"
    assert auth.session_idle_timeout == 600
    # local accounts live in the hub's PostgreSQL database unless told otherwise
    assert auth.accounts_db_url == env["CLASSHUB_DB_URL"]
    assert proxy.dynamic_config_dir == "/d"
    assert proxy.student_entrypoint == ""  # set and empty: no student entrypoint


@pytest.mark.parametrize(
    "name, value, message",
    [
        ("CLASSHUB_CPU_LIMIT", "lots", "CLASSHUB_CPU_LIMIT must be a positive number"),
        ("CLASSHUB_CPU_LIMIT", "0", "CLASSHUB_CPU_LIMIT must be a positive number"),
        ("CLASSHUB_PIDS_LIMIT", "many", "CLASSHUB_PIDS_LIMIT must be a whole number"),
        ("CLASSHUB_SESSION_POLICY", "both", "takeover' or 'reject"),
        ("CLASSHUB_SESSION_IDLE_TIMEOUT", "5", "at least 60"),
        ("CLASSHUB_SESSION_IDLE_TIMEOUT", "2h", "number of seconds"),
        ("CLASSHUB_HOMES_DIR", "homes", "an absolute path"),
        ("CLASSHUB_HOME_QUOTA", "lots", "CLASSHUB_HOME_QUOTA must be a size"),
        ("CLASSHUB_ALLOWED_IMAGES", "b", "The default image 'classhub/singleuser:latest'"),
    ],
)
def test_a_bad_variable_stops_the_hub_with_a_fix(name, value, message):
    with pytest.raises(ConfigError, match=message):
        check_environment({name: value}, PROXY_TABLE, SPAWNER_TABLE, AUTH_TABLE)


def test_the_default_image_check_reads_the_given_environment(monkeypatch):
    monkeypatch.delenv("CLASSHUB_SINGLEUSER_IMAGE", raising=False)
    monkeypatch.delenv("CLASSHUB_ALLOWED_IMAGES", raising=False)
    check_environment({"CLASSHUB_SINGLEUSER_IMAGE": "img:2"}, SPAWNER_TABLE)
    check_environment(
        {"CLASSHUB_SINGLEUSER_IMAGE": "a", "CLASSHUB_ALLOWED_IMAGES": "b, a"}, SPAWNER_TABLE
    )


def test_the_image_catalogue_from_the_environment(monkeypatch):
    """CLASSHUB_IMAGES (JSON) is the catalogue the spawner checks; the older
    CLASSHUB_ALLOWED_IMAGES adds names it does not list; allowed_images follows it."""
    env = {
        "CLASSHUB_SINGLEUSER_IMAGE": "classhub/singleuser:latest",
        "CLASSHUB_IMAGES": '[{"name": "classhub/singleuser:latest", "display_name": "Python"},'
        ' {"name": "classhub/datascience:latest", "display_name": "Data science",'
        ' "description": "numpy, pandas"}]',
        "CLASSHUB_ALLOWED_IMAGES": "classhub/datascience:latest, site/r:4",
    }
    clean_env(monkeypatch, **env)
    check_environment(env, SPAWNER_TABLE)
    spawner = ClassroomSpawner()
    assert spawner.images == [
        {"name": "classhub/singleuser:latest", "display_name": "Python", "description": ""},
        {
            "name": "classhub/datascience:latest",
            "display_name": "Data science",
            "description": "numpy, pandas",
        },
        {"name": "site/r:4", "display_name": "site/r:4", "description": ""},
    ]
    assert list(spawner.allowed_images) == [
        "classhub/singleuser:latest",
        "classhub/datascience:latest",
        "site/r:4",
    ]


@pytest.mark.parametrize(
    "raw, message",
    [
        ("[{name: 1}]", "CLASSHUB_IMAGES is not valid JSON"),
        ('{"name": "a:1"}', "must be a JSON list"),
        ('[{"name": "Bad Image"}]', "is not a Docker image reference"),
        ('[{"name": "a:1", "size": 3}]', "unknown field(s) size"),
        ('[{"name": "b:1"}]', "The default image 'a:1'"),
        ("[]", "is empty"),
    ],
)
def test_image_catalogue_errors_stop_the_hub_with_a_fix(raw, message):
    env = {"CLASSHUB_SINGLEUSER_IMAGE": "a:1", "CLASSHUB_IMAGES": raw}
    with pytest.raises(ConfigError) as e:
        check_environment(env, PROXY_TABLE, SPAWNER_TABLE, AUTH_TABLE)
    assert message in str(e.value)


def test_a_value_from_the_environment_gets_the_traits_checks(monkeypatch):
    """traitlets checks set values only; a table's default is checked as well."""
    clean_env(monkeypatch, CLASSHUB_PIDS_LIMIT="10")
    with pytest.raises(ValueError, match="use at least 64"):
        ClassroomSpawner().pids_limit  # noqa: B018
    clean_env(monkeypatch, CLASSHUB_SESSION_IDLE_TIMEOUT="600", CLASSHUB_HOMES_DIR="/h/")
    assert ClassroomSpawner().homes_root == "/h"


def test_bad_numbers_give_fixit_message():
    with pytest.raises(ConfigError, match="CLASSHUB_HUB_PORT must be a port number"):
        apply_env(Config(), {"CLASSHUB_HUB_IP": "1.2.3.4", "CLASSHUB_HUB_PORT": "lots"})


def test_every_hub_log_line_goes_through_the_jwt_scrubber():
    c = Config()
    apply_env(c, {"CLASSHUB_HUB_IP": "1.2.3.4"}, gateway_lookup=no_docker)
    assert c.JupyterHub.logging_config["handlers"]["console"]["filters"] == ["jwtscrub"]


def test_traefik_static_config():
    cfg = traefik_static_config(
        web_address=":8000", api_address="127.0.0.1:8099", network="n", dynamic_dir="/d"
    )
    assert cfg["providers"]["docker"]["exposedByDefault"] is False
    assert cfg["providers"]["docker"]["network"] == "n"
    assert cfg["global"] == {"checkNewVersion": False, "sendAnonymousUsage": False}
    assert cfg["entryPoints"]["traefik"]["address"] == "127.0.0.1:8099"
    assert "accessLog" not in cfg
    assert cfg["serversTransport"]["forwardingTimeouts"]["dialTimeout"] == "3s"
    web = cfg["entryPoints"]["web"]
    assert web["forwardedHeaders"] == {"insecure": False}
    assert web["http"]["aliasHeadersStrategy"] == "delete"


def test_traefik_access_log_drops_request_paths_and_can_keep_only_some_statuses():
    kw = dict(web_address=":8000", api_address="127.0.0.1:8099", network="n", dynamic_dir="/d")
    cfg = traefik_static_config(**kw, access_log=True)
    # RequestPath carries the query string, where tokens can be
    assert cfg["accessLog"]["fields"]["names"] == {"RequestPath": "drop"}
    assert "filters" not in cfg["accessLog"]
    cfg = traefik_static_config(**kw, access_log=True, access_log_statuses="300-599")
    assert cfg["accessLog"]["filters"] == {"statusCodes": ["300-599"]}


def test_the_students_entrypoint_trusts_no_forwarded_header():
    cfg = traefik_static_config(
        web_address=":8000",
        api_address="127.0.0.1:8099",
        students_address="172.30.0.1:8081",
        network="n",
        dynamic_dir="/d",
    )
    students = cfg["entryPoints"]["students"]
    assert students["address"] == "172.30.0.1:8081"
    assert students["forwardedHeaders"] == {"insecure": False}
    assert students["http"]["aliasHeadersStrategy"] == "delete"
    plain = traefik_static_config(
        web_address=":8000", api_address="127.0.0.1:8099", network="n", dynamic_dir="/d"
    )
    assert "students" not in plain["entryPoints"]


def test_traefik_api_must_be_loopback():
    with pytest.raises(ValueError, match="loopback"):
        traefik_static_config(
            web_address=":80", api_address="0.0.0.0:8099", network="n", dynamic_dir="/d"
        )


def test_entry_points_registered():
    from importlib.metadata import entry_points

    assert {e.name for e in entry_points(group="jupyterhub.spawners")} >= {"classroom"}
    assert {e.name for e in entry_points(group="jupyterhub.proxies")} >= {"traefik-docker"}
    assert {e.name for e in entry_points(group="jupyterhub.authenticators")} >= {"classhub-jwt"}


def test_classes_service_is_registered_when_mongo_is_configured():
    env = {
        "CLASSHUB_HUB_IP": "1.2.3.4",
        "CLASSHUB_MONGO_URL": "mongodb://127.0.0.1:17017/classhub",
        "CLASSHUB_CLASSES_PORT": "10555",
        "CLASSHUB_MAX_MEM_LIMIT": "4G",
    }
    c = Config()
    apply_env(c, env)
    assert "services" not in c.JupyterHub  # the hub's own configuration names no service
    apply_services_env(c, env)
    (service,) = c.JupyterHub.services
    assert service["name"] == "classes" and service["url"] == "http://127.0.0.1:10555"
    assert service["environment"]["CLASSHUB_MAX_MEM_LIMIT"] == "4G"
    (role,) = c.JupyterHub.load_roles
    assert role["services"] == ["classes"]
    assert not {"admin:users", "tokens", "access:servers"} & set(role["scopes"])


def test_no_classes_service_without_mongo():
    c = Config()
    apply_services_env(c, {"CLASSHUB_HUB_IP": "1.2.3.4"})
    assert "services" not in c.JupyterHub


def test_bad_mongo_url_gives_fixit_message():
    with pytest.raises(ConfigError, match="mongodb://"):
        apply_services_env(Config(), {"CLASSHUB_MONGO_URL": "http://x"})


def test_configure_auth_defines_the_classes_services_custom_scope():
    c = Config()
    configure_auth(c)
    assert c.JupyterHub.authenticator_class == "classhub-jwt"
    # the classes service's narrow right over student accounts is a defined custom scope
    assert set(c.JupyterHub.custom_scopes) == {"custom:classhub:student-accounts"}
    assert c.JupyterHub.custom_scopes["custom:classhub:student-accounts"]["description"]


def test_a_bind_subnet_puts_the_hub_its_services_and_the_gate_on_their_own_address(
    monkeypatch,
):
    """Swarm stack: CLASSHUB_BIND_IP gives the core network's subnet; the hub, its services
    and the gate listen on the container's address there (never on every address: the
    hub's container is also on the students' network), and Traefik and the services
    reach the hub there (hub_connect_url)."""
    from authenticator.gate import GateApp
    from common import hubenv
    from services.grades.app import GradesApp

    monkeypatch.setattr(hubenv, "_source_address", lambda target: "10.217.0.7")
    env = {
        "CLASSHUB_HUB_IP": "traefik",
        "CLASSHUB_BIND_IP": "10.217.0.0/24",
        "CLASSHUB_MONGO_URL": "mongodb://m/x",
        "CLASSHUB_S3_ENDPOINT": "http://s3:8333",
        "CLASSHUB_S3_ACCESS_KEY": "k",
        "CLASSHUB_S3_SECRET_KEY": "s",
        "CLASSHUB_DB_URL": "postgresql://u:p@postgres/jupyterhub",
    }
    clean_env(monkeypatch, **env)
    c = Config()
    apply_env(c, env, gateway_lookup=no_docker)
    apply_services_env(c, env)
    assert c.JupyterHub.hub_bind_url == "http://10.217.0.7:8081"
    assert c.JupyterHub.hub_connect_url == "http://10.217.0.7:8081"
    assert c.Spawner.hub_connect_url == "http://traefik:8081"
    urls = {s["name"]: s["url"] for s in c.JupyterHub.services}
    assert urls == {
        "classes": "http://10.217.0.7:10101",
        "files": "http://10.217.0.7:10102",
        "grades": "http://10.217.0.7:10103",
    }
    grades = next(s for s in c.JupyterHub.services if s["name"] == "grades")
    assert grades["environment"]["CLASSHUB_BIND_IP"] == "10.217.0.0/24"
    clean_env(monkeypatch, **grades["environment"])
    assert GradesApp().files_url.startswith("http://10.217.0.7:10102/")
    assert GateApp().ip == "10.217.0.0/24"
    assert hubenv.own_address(GateApp().ip) == "10.217.0.7"


def test_a_bind_subnet_the_container_is_not_on_is_refused_with_the_fix(monkeypatch):
    from common import hubenv

    monkeypatch.setattr(hubenv, "_source_address", lambda target: "172.18.0.2")
    with pytest.raises(ConfigError, match="no address in that network"):
        apply_env(
            Config(),
            {"CLASSHUB_HUB_IP": "traefik", "CLASSHUB_BIND_IP": "10.217.0.0/24"},
            gateway_lookup=no_docker,
        )
    with pytest.raises(ConfigError, match="CLASSHUB_BIND_IP must be an IPv4 address"):
        apply_env(
            Config(), {"CLASSHUB_HUB_IP": "t", "CLASSHUB_BIND_IP": "hub"}, gateway_lookup=no_docker
        )
    # the default: loopback, and the hub's connect URL left to JupyterHub
    c = Config()
    apply_env(c, {"CLASSHUB_HUB_IP": "172.30.0.1"}, gateway_lookup=no_docker)
    assert c.JupyterHub.hub_bind_url == "http://127.0.0.1:8081"
    assert "hub_connect_url" not in c.JupyterHub


def test_the_hub_reads_its_own_variables_only_through_their_declarations():
    """hub/config.py and the composition root read no CLASSHUB_* variable by name: each
    is declared once (hub/settings.py, common/hubenv.py), so its default and meaning in
    the admin guide are generated from the same place (make docs)."""
    import re
    from pathlib import Path

    from hub.settings import HUB_TABLE

    root = Path(__file__).resolve().parents[2]
    for path in ("hub/config.py", "jupyterhub_config.py"):
        text = (root / path).read_text()
        assert not re.search(r"environ\.get\(\"CLASSHUB_|read_env\(\"CLASSHUB_", text), path
    declared = {s.env for s in HUB_TABLE}
    assert {"CLASSHUB_HUB_PORT", "CLASSHUB_PUBLIC_URL", "CLASSHUB_BIND_IP"} <= declared
    assert all(s.doc for s in HUB_TABLE)


def test_the_spawner_class_is_chosen_by_a_declared_setting():
    """A Swarm stack (deploy/swarm/stack.yml) chooses SwarmClassroomSpawner with
    CLASSHUB_SPAWNER; JupyterHub's own spawner settings apply to it as a subclass."""
    c = Config()
    env = {"CLASSHUB_HUB_IP": "traefik", "CLASSHUB_SPAWNER": "classroom-swarm"}
    apply_env(c, env, gateway_lookup=no_docker)
    assert c.JupyterHub.spawner_class == "classroom-swarm"
    assert c.ClassroomSpawner.default_url == "/lab"
    assert c.Spawner.hub_connect_url == "http://traefik:8081"
    with pytest.raises(
        ConfigError, match="CLASSHUB_SPAWNER must be classroom .* or classroom-swarm"
    ):
        apply_env(Config(), {**env, "CLASSHUB_SPAWNER": "swarm"}, gateway_lookup=no_docker)


def test_the_proxy_waits_for_servers_under_the_configured_provider(monkeypatch):
    """Under Traefik's Swarm provider the servers' routers are named ``...@swarm``: the
    proxy waits for them and lists them under that provider
    (CLASSHUB_TRAEFIK_CONTAINER_PROVIDER)."""
    import asyncio

    clean_env(monkeypatch)
    assert TraefikDockerProxy().container_provider == "docker"
    monkeypatch.setenv("CLASSHUB_TRAEFIK_CONTAINER_PROVIDER", "swarm")
    proxy = TraefikDockerProxy()
    assert proxy.container_provider == "swarm"
    waited = []

    async def routed(routespec, target, provider):
        waited.append(provider)

    monkeypatch.setattr(proxy, "_wait_for", routed)
    asyncio.run(proxy.add_route("/user/ann/", "http://10.0.0.5:8888", {"user": "ann"}))
    assert waited == ["swarm"]

    class API:
        async def routers(self):
            return [
                {
                    "name": f"classhub-user-{u}@{p}",
                    "status": "enabled",
                    "rule": f'PathPrefix("/user/{u}/")',
                }
                for u, p in (("ann", "swarm"), ("bob", "docker"))
            ]

        async def services(self):
            return [
                {"name": f"classhub-user-{u}@{p}", "loadBalancer": {"servers": [{"url": t}]}}
                for u, p, t in (
                    ("ann", "swarm", "http://10.0.0.5:8888"),
                    ("bob", "docker", "http://10.0.0.6:8888"),
                )
            ]

    proxy._api = API()
    routes = asyncio.run(proxy.get_all_routes())
    assert list(routes) == ["/user/ann/"]
    assert routes["/user/ann/"]["data"] == {"user": "ann", "server_name": ""}
    monkeypatch.setenv("CLASSHUB_TRAEFIK_CONTAINER_PROVIDER", "kubernetes")
    with pytest.raises(Exception, match="CLASSHUB_TRAEFIK_CONTAINER_PROVIDER must be docker"):
        _ = TraefikDockerProxy().container_provider


def test_the_backup_service_holds_only_the_backup_scope_and_needs_a_long_token():
    from common import scopes
    from hub.config import BACKUP_SERVICE, configure_backup

    with pytest.raises(ConfigError, match="openssl rand -hex 32"):
        configure_backup(Config(), "short")
    c = Config()
    configure_backup(c, "")
    assert "services" not in c.JupyterHub  # no token: no service, the scope's name only
    assert scopes.BACKUP in c.JupyterHub.custom_scopes
    c = Config()
    configure_backup(c, "t" * 64)
    assert c.JupyterHub.services == [
        {"name": BACKUP_SERVICE, "api_token": "t" * 64, "display": False}
    ]
    (role,) = c.JupyterHub.load_roles
    assert role["scopes"] == [scopes.BACKUP] and role["services"] == [BACKUP_SERVICE]
