import pytest
from traitlets.config import Config

from hub.config import (
    ConfigError,
    apply_env,
    configure_auth,
    configure_proxy,
    configure_spawner,
)
from hub.traefik_config import traefik_static_config
from services.config import apply_env as apply_services_env

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
    assert c.TraefikDockerProxy.student_entrypoint == "students"
    assert c.JupyterHub.allow_named_servers is True
    assert c.JupyterHub.cleanup_servers is False
    assert c.JupyterHub.db_url == "sqlite:////srv/classhub/jupyterhub.sqlite"
    assert c.ClassroomSpawner.image == "classhub/singleuser:latest"
    assert c.ClassroomSpawner.allowed_images == ["classhub/singleuser:latest"]
    assert c.ClassroomSpawner.network_name == "classhub-students"
    assert c.TraefikDockerProxy.dynamic_config_dir == "/srv/classhub/traefik-dynamic"
    assert c.JWTAuthenticator.session_policy == "takeover"
    assert c.JWTAuthenticator.session_idle_timeout == 7200
    assert c.Spawner.disable_user_config is True


def test_a_whole_class_may_start_at_once():
    """JupyterHub's default of 100 pending spawns would refuse half of a class of 200 with a
    429; the spawner's own start queue limits what starts at once."""
    c = Config()
    apply_env(c, {"CLASSHUB_HUB_IP": "172.30.0.1"}, gateway_lookup=no_docker)
    assert c.JupyterHub.concurrent_spawn_limit == 1000
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


def test_apply_env_overrides():
    c = Config()
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
    }
    apply_env(c, env, gateway_lookup=no_docker)
    assert c.JupyterHub.hub_bind_url == "http://127.0.0.1:9000"
    assert c.Spawner.hub_connect_url == "http://10.1.1.1:9000"
    assert c.JupyterHub.db_url.startswith("postgresql+psycopg://")
    assert c.ClassroomSpawner.mem_limit == "2G"
    assert c.ClassroomSpawner.cpu_limit == 0.5
    assert c.ClassroomSpawner.pids_limit == 300
    assert c.ClassroomSpawner.allowed_images == ["img:1", "img:2"]
    assert c.JupyterHub.authenticator_class == "classhub-jwt"
    assert c.JWTAuthenticator.first_admin == "root1"
    assert c.JWTAuthenticator.redis_url == "redis://r:6379/1"
    assert c.JWTAuthenticator.session_policy == "reject"
    assert c.JWTAuthenticator.session_idle_timeout == 600
    # local accounts live in the hub's PostgreSQL database unless told otherwise
    assert c.JWTAuthenticator.accounts_db_url == env["CLASSHUB_DB_URL"]


def test_bad_numbers_give_fixit_message():
    with pytest.raises(ConfigError, match="not a number"):
        apply_env(Config(), {"CLASSHUB_HUB_IP": "1.2.3.4", "CLASSHUB_CPU_LIMIT": "lots"})


def test_default_image_must_be_allowed():
    with pytest.raises(ConfigError, match="CLASSHUB_ALLOWED_IMAGES"):
        configure_spawner(
            Config(),
            image="a",
            allowed_images=["b"],
            network="n",
            entrypoint="web",
            mem_limit="1G",
            cpu_limit=1,
            pids_limit=100,
            prefix="p",
        )


def test_configure_proxy_and_auth():
    c = Config()
    configure_proxy(c, api_url="http://127.0.0.1:1", dynamic_dir="/d", entrypoint="e")
    configure_auth(c, **AUTH)
    assert c.TraefikDockerProxy.traefik_api_url == "http://127.0.0.1:1"
    assert c.JWTAuthenticator.redis_url == "redis://x"
    # every hub log line goes through the JWT scrubber
    assert c.JupyterHub.logging_config["handlers"]["console"]["filters"] == ["jwtscrub"]
    # the classes service's narrow right over student accounts is a defined custom scope
    assert set(c.JupyterHub.custom_scopes) == {"custom:classhub:student-accounts"}
    assert c.JupyterHub.custom_scopes["custom:classhub:student-accounts"]["description"]


AUTH = dict(
    redis_url="redis://x",
    accounts_db_url="postgresql://db/x",
    first_admin="a",
    session_policy="takeover",
    session_idle_timeout=3600,
)


@pytest.mark.parametrize(
    "change, message",
    [
        ({"session_policy": "both"}, "takeover' or 'reject"),
        ({"session_idle_timeout": 5}, "at least 60"),
    ],
)
def test_configure_auth_refuses_bad_settings(change, message):
    with pytest.raises(ConfigError, match=message):
        configure_auth(Config(), **{**AUTH, **change})


def test_bad_idle_timeout_in_env_gives_fixit_message():
    env = {"CLASSHUB_HUB_IP": "1.2.3.4", "CLASSHUB_SESSION_IDLE_TIMEOUT": "2h"}
    with pytest.raises(ConfigError, match="number of seconds"):
        apply_env(Config(), env)


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
