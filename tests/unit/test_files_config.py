"""The hub configuration of the files service: least-privilege role, what it is passed,
and when apply_env registers it (services/files/config.py, services/config.py)."""

import sys

import pytest
from traitlets.config import Config

from authenticator.roles import STUDENT_SCOPES
from common.errors import ConfigError
from services.base.homesapp import HOMES_ENV
from services.config import apply_env, configure_files
from services.files.config import (
    PASSED_ENV,
    ROLE_NAME,
    SCOPES,
    files_service_config,
)

pytestmark = pytest.mark.unit

MONGO = "mongodb://127.0.0.1:17017/classhub"
KEYS = {"CLASSHUB_S3_ACCESS_KEY": "access-1", "CLASSHUB_S3_SECRET_KEY": "secret-1"}


def config(env=None, **kwargs):
    args = {"port": 10102, "mongo_url": MONGO}
    return files_service_config(env=KEYS if env is None else env, **{**args, **kwargs})


# ----- the role


def test_scopes_are_exactly_the_documented_least_privilege_list():
    # pushes go into homes through helper containers: no right on any server, no listing
    assert SCOPES == ["read:groups", "custom:classhub:homes"]
    _, role = config()
    assert role["name"] == ROLE_NAME
    assert role["services"] == ["files"]
    assert role["scopes"] == SCOPES
    assert role["scopes"] is not SCOPES  # a copy: the hub cannot change the module's list


def test_scopes_hold_no_admin_token_or_start_stop_rights():
    for scope in SCOPES:
        assert not scope.startswith("admin:"), scope
        assert "tokens" not in scope, scope
        assert not scope.startswith(("servers", "start:", "stop:", "delete:")), scope
        assert not scope.startswith(("access:servers", "read:servers", "list:users")), scope
    for broad in ("admin:users", "admin:groups", "admin:servers", "users", "servers", "groups"):
        assert broad not in SCOPES


def test_every_student_may_open_the_files_service():
    assert "access:services!service=files" in STUDENT_SCOPES


# ----- the service


def test_service_definition():
    service, _ = config(port=10123)
    assert service["name"] == "files"
    assert service["url"] == "http://127.0.0.1:10123"
    assert service["command"] == [sys.executable, "-m", "services.files"]
    assert service["oauth_no_confirm"] is True


def test_environment_holds_keys_and_mongo_and_nothing_else():
    env = {
        **KEYS,
        "CLASSHUB_S3_ENDPOINT": "http://127.0.0.1:9000",
        "CLASSHUB_S3_BUCKET": "classhub",
        "CLASSHUB_FILES_USER_QUOTA": "1G",
        "CLASSHUB_FILES_MATERIAL_QUOTA": "",  # empty: not passed
        "CLASSHUB_JWT_SECRET": "not-for-the-service",
        "CLASSHUB_REDIS_URL": "redis://secret@127.0.0.1/0",
        "CLASSHUB_ADMIN_USER": "root",
    }
    service, _ = config(env=env)
    assert service["environment"] == {
        "CLASSHUB_S3_ENDPOINT": "http://127.0.0.1:9000",
        "CLASSHUB_S3_BUCKET": "classhub",
        "CLASSHUB_FILES_USER_QUOTA": "1G",
        "CLASSHUB_MONGO_URL": MONGO,
        "CLASSHUB_S3_ACCESS_KEY": "access-1",
        "CLASSHUB_S3_SECRET_KEY": "secret-1",
    }


def test_the_helper_settings_and_the_docker_engine_are_passed():
    env = {**KEYS, "CLASSHUB_CONTAINER_PREFIX": "ch2", "DOCKER_HOST": "unix:///run/d.sock"}
    service, _ = config(env=env)
    assert service["environment"]["CLASSHUB_CONTAINER_PREFIX"] == "ch2"
    assert service["environment"]["DOCKER_HOST"] == "unix:///run/d.sock"
    assert set(HOMES_ENV) <= set(PASSED_ENV)


def test_every_passed_setting_is_passed():
    env = {**KEYS, **{name: f"value-of-{name}" for name in PASSED_ENV}}
    service, _ = config(env=env)
    for name in PASSED_ENV:
        assert service["environment"][name] == f"value-of-{name}"


def test_cookie_secret_can_be_set():
    env = {**KEYS, "CLASSHUB_FILES_COOKIE_SECRET": "ab" * 32}
    service, _ = config(env=env)
    assert service["environment"]["CLASSHUB_SERVICE_COOKIE_SECRET"] == "ab" * 32
    assert "CLASSHUB_FILES_COOKIE_SECRET" not in service["environment"]


@pytest.mark.parametrize("missing", ["CLASSHUB_S3_ACCESS_KEY", "CLASSHUB_S3_SECRET_KEY"])
@pytest.mark.parametrize("value", [None, ""])
def test_missing_s3_key_names_the_variable(missing, value):
    env = dict(KEYS)
    if value is None:
        del env[missing]
    else:
        env[missing] = value
    with pytest.raises(ValueError, match=missing):
        config(env=env)
    with pytest.raises(ConfigError, match=missing):
        configure_files(Config(), port=10102, mongo_url=MONGO, env=env)


@pytest.mark.parametrize("port", [0, -1, 65536, 70000, "10102", 10102.0, None])
def test_bad_port(port):
    with pytest.raises(ValueError, match="port must be 1-65535"):
        config(port=port)
    with pytest.raises(ConfigError, match="port"):
        configure_files(Config(), port=port, mongo_url=MONGO, env=KEYS)


@pytest.mark.parametrize("port", [1, 65535])
def test_port_bounds(port):
    service, _ = config(port=port)
    assert service["url"] == f"http://127.0.0.1:{port}"


def test_configure_files_appends_to_existing_services_and_roles():
    c = Config()
    c.JupyterHub.services = [{"name": "other"}]
    c.JupyterHub.load_roles = [{"name": "other-role"}]
    configure_files(c, port=10102, mongo_url=MONGO, env=KEYS)
    assert [s["name"] for s in c.JupyterHub.services] == ["other", "files"]
    assert [r["name"] for r in c.JupyterHub.load_roles] == ["other-role", ROLE_NAME]


# ----- apply_env

FULL_ENV = {
    "CLASSHUB_HUB_IP": "1.2.3.4",
    "CLASSHUB_MONGO_URL": MONGO,
    "CLASSHUB_S3_ENDPOINT": "http://127.0.0.1:9000",
    "CLASSHUB_PUBLIC_URL": "http://10.0.0.5:8000/",
    **KEYS,
}


def test_apply_env_registers_classes_and_files_services():
    c = Config()
    apply_env(c, FULL_ENV)
    classes, files = c.JupyterHub.services
    assert classes["name"] == "classes"
    assert files["name"] == "files"
    assert files["url"] == "http://127.0.0.1:10102"
    env = files["environment"]
    assert env["CLASSHUB_S3_ACCESS_KEY"] == "access-1"
    assert env["CLASSHUB_S3_SECRET_KEY"] == "secret-1"
    assert env["CLASSHUB_MONGO_URL"] == MONGO
    assert env["CLASSHUB_S3_ENDPOINT"] == "http://127.0.0.1:9000"
    assert not any("SERVERS_URL" in name for name in env)
    roles = {r["name"]: r for r in c.JupyterHub.load_roles}
    assert roles[ROLE_NAME]["services"] == ["files"]
    assert roles[ROLE_NAME]["scopes"] == SCOPES
    assert len(roles) == 2


def test_apply_env_files_port():
    env = {**FULL_ENV, "CLASSHUB_FILES_PORT": "10777"}
    c = Config()
    apply_env(c, env)
    files = c.JupyterHub.services[-1]
    assert files["url"] == "http://127.0.0.1:10777"


def test_no_files_service_without_s3_endpoint():
    env = {k: v for k, v in FULL_ENV.items() if k != "CLASSHUB_S3_ENDPOINT"}
    c = Config()
    apply_env(c, env)
    assert [s["name"] for s in c.JupyterHub.services] == ["classes"]
    assert ROLE_NAME not in [r["name"] for r in c.JupyterHub.load_roles]


def test_no_files_service_without_mongo():
    env = {k: v for k, v in FULL_ENV.items() if k != "CLASSHUB_MONGO_URL"}
    c = Config()
    apply_env(c, env)
    assert "services" not in c.JupyterHub


def test_apply_env_missing_s3_key_is_a_config_error():
    env = {k: v for k, v in FULL_ENV.items() if k != "CLASSHUB_S3_SECRET_KEY"}
    with pytest.raises(ConfigError, match="CLASSHUB_S3_SECRET_KEY"):
        apply_env(Config(), env)


@pytest.mark.parametrize("port,match", [("files", "CLASSHUB_FILES_PORT"), ("0", "port")])
def test_apply_env_bad_files_port(port, match):
    env = {**FULL_ENV, "CLASSHUB_FILES_PORT": port}
    with pytest.raises(ConfigError, match=match):
        apply_env(Config(), env)
