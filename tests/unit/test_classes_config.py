"""The hub configuration of the classes service, and the service's own settings."""

import sys

import pytest
from traitlets import TraitError

from services.classes.app import ClassesApp
from services.classes.config import SCOPES, classes_service_config

pytestmark = pytest.mark.unit

ENV = {
    "CLASSHUB_SINGLEUSER_IMAGE": "classhub/singleuser:latest",
    "CLASSHUB_ALLOWED_IMAGES": "classhub/singleuser:latest,classhub/ds:1",
    "CLASSHUB_MAX_CPU_LIMIT": "2",
    "CLASSHUB_JWT_SECRET": "not-for-the-service",
    "CLASSHUB_REDIS_URL": "redis://secret@127.0.0.1/0",
}


def test_service_and_role():
    service, role = classes_service_config(
        port=10123, mongo_url="mongodb://127.0.0.1:17017/classhub", env=ENV
    )
    assert service["name"] == "classes"
    assert service["url"] == "http://127.0.0.1:10123"
    assert service["command"] == [sys.executable, "-m", "services.classes"]
    assert service["oauth_no_confirm"] is True
    assert service["environment"] == {
        "CLASSHUB_SINGLEUSER_IMAGE": "classhub/singleuser:latest",
        "CLASSHUB_ALLOWED_IMAGES": "classhub/singleuser:latest,classhub/ds:1",
        "CLASSHUB_MAX_CPU_LIMIT": "2",
        "CLASSHUB_MONGO_URL": "mongodb://127.0.0.1:17017/classhub",
    }
    assert role["services"] == ["classes"]
    assert role["scopes"] == SCOPES
    service, _ = classes_service_config(
        port=1, mongo_url="mongodb://x/y", env={"CLASSHUB_CLASSES_COOKIE_SECRET": "ab" * 32}
    )
    assert service["environment"]["CLASSHUB_SERVICE_COOKIE_SECRET"] == "ab" * 32


def test_on_a_swarm_it_gets_its_own_s3_identity_and_may_find_homes():
    """Its look into a student's home runs as a helper service on a worker there: the hub
    tells it where the home is, and the job travels through its own S3 keys."""
    swarm_env = {
        **ENV,
        "CLASSHUB_HOMES_SWARM": "1",
        "CLASSHUB_S3_CLASSES_ACCESS_KEY": "classes-key",
        "CLASSHUB_S3_CLASSES_SECRET_KEY": "classes-secret",
        "CLASSHUB_S3_FILES_ACCESS_KEY": "files-key",
        "CLASSHUB_S3_ENDPOINT": "http://s3:8333",
    }
    service, role = classes_service_config(port=1, mongo_url="mongodb://x/y", env=swarm_env)
    environment = service["environment"]
    assert environment["CLASSHUB_S3_ACCESS_KEY"] == "classes-key"
    assert environment["CLASSHUB_S3_SECRET_KEY"] == "classes-secret"
    assert environment["CLASSHUB_S3_ENDPOINT"] == "http://s3:8333"
    assert "files-key" not in environment.values()  # never another service's identity
    assert role["scopes"] == [*SCOPES, "custom:classhub:homes"]
    # without its keys on a Swarm: a clear error, not a service that fails later
    del swarm_env["CLASSHUB_S3_CLASSES_ACCESS_KEY"]
    with pytest.raises(ValueError, match="CLASSHUB_S3_CLASSES_ACCESS_KEY"):
        classes_service_config(port=1, mongo_url="mongodb://x/y", env=swarm_env)
    # on one machine: no S3 keys at all
    service, role = classes_service_config(
        port=1, mongo_url="mongodb://x/y", env={**ENV, "CLASSHUB_S3_CLASSES_ACCESS_KEY": "k"}
    )
    assert "CLASSHUB_S3_ACCESS_KEY" not in service["environment"]
    assert "custom:classhub:homes" not in role["scopes"]


def test_least_privilege_scopes():
    assert set(SCOPES) == {
        "admin:groups",
        "list:users",
        "read:servers",
        "start:servers",
        "delete:servers",
        "read:roles:users",
        # the warm-up's "nobody used it" (times only, services/classes/warmup.py)
        "read:users:activity",
        # student accounts only (authenticator/admin_handlers.py): never admin:users
        "custom:classhub:student-accounts",
    }
    assert "custom:classhub:homes" not in SCOPES  # on a Swarm only (below)
    for broad in (
        "admin:users",
        "admin:servers",
        "servers",
        "access:servers",
        "tokens",
        "read:users",
        "read:roles",
        "users:activity",
    ):
        assert broad not in SCOPES


@pytest.mark.parametrize(
    "kwargs,match",
    [
        ({"port": 0, "mongo_url": "mongodb://x/y"}, "port"),
        ({"port": 70000, "mongo_url": "mongodb://x/y"}, "port"),
        ({"port": 1, "mongo_url": "postgres://x/y"}, "mongodb://"),
    ],
)
def test_bad_arguments(kwargs, match):
    with pytest.raises(ValueError, match=match):
        classes_service_config(env={}, **kwargs)


@pytest.fixture
def env(monkeypatch):
    for name in (
        "CLASSHUB_IMAGES",
        "CLASSHUB_ALLOWED_IMAGES",
        "CLASSHUB_SINGLEUSER_IMAGE",
        "CLASSHUB_MAX_CPU_LIMIT",
        "CLASSHUB_MAX_MEM_LIMIT",
        "CLASSHUB_CPU_LIMIT",
        "CLASSHUB_MEM_LIMIT",
        "CLASSHUB_DEFAULT_IDLE_TIMEOUT",
        "CLASSHUB_CULL_INTERVAL",
        "CLASSHUB_MONGO_URL",
    ):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("JUPYTERHUB_API_TOKEN", "t")
    monkeypatch.setenv("JUPYTERHUB_CLIENT_ID", "service-classes")
    return monkeypatch


def test_admin_settings_from_the_environment(env):
    env.setenv("CLASSHUB_ALLOWED_IMAGES", "a:1, b:2")
    env.setenv("CLASSHUB_SINGLEUSER_IMAGE", "b:2")
    env.setenv("CLASSHUB_MAX_CPU_LIMIT", "4")
    env.setenv("CLASSHUB_MAX_MEM_LIMIT", "8G")
    env.setenv("CLASSHUB_DEFAULT_IDLE_TIMEOUT", "900")
    app = ClassesApp()
    app.check_settings()
    limits = app.limits()
    assert limits.allowed_images == ("a:1", "b:2")
    assert limits.default_image == "b:2"
    assert limits.max_cpu_limit == 4.0
    assert limits.max_mem_limit == 8 * 1024**3
    assert limits.default_environment()["idle_timeout"] == 900
    assert app.mongo_url == "mongodb://127.0.0.1:27017/classhub"


def test_image_catalogue_from_the_environment(env):
    env.setenv("CLASSHUB_SINGLEUSER_IMAGE", "classhub/singleuser:latest")
    env.setenv(
        "CLASSHUB_IMAGES",
        '[{"name": "classhub/singleuser:latest", "display_name": "Python",'
        ' "description": "JupyterLab and Python"},'
        ' {"name": "classhub/datascience:latest", "display_name": "Data science"}]',
    )
    app = ClassesApp()
    app.check_settings()
    limits = app.limits()
    assert limits.allowed_images == ("classhub/singleuser:latest", "classhub/datascience:latest")
    assert [c.display_name for c in limits.images] == ["Python", "Data science"]
    assert limits.images[0].description == "JupyterLab and Python"
    assert limits.images[1].description == ""
    # the older setting's names join the catalogue, shown by their name
    env.setenv("CLASSHUB_ALLOWED_IMAGES", "classhub/datascience:latest,site/r:4")
    limits = ClassesApp().limits()
    assert limits.allowed_images[-1] == "site/r:4"
    assert limits.images[-1].display_name == "site/r:4"
    assert len(limits.images) == 3


def test_image_catalogue_as_a_trait(env):
    app = ClassesApp(images=[{"name": "a:1", "display_name": "A"}, "b:2"], default_image="b:2")
    app.check_settings()
    assert app.images == [
        {"name": "a:1", "display_name": "A", "description": ""},
        {"name": "b:2", "display_name": "b:2", "description": ""},
    ]
    with pytest.raises(TraitError, match="lists 'a:1' twice"):
        ClassesApp(images=["a:1", "a:1"])


@pytest.mark.parametrize(
    "name,value,match",
    [
        ("CLASSHUB_MAX_CPU_LIMIT", "lots", "CLASSHUB_MAX_CPU_LIMIT must be a number"),
        ("CLASSHUB_DEFAULT_IDLE_TIMEOUT", "1h", "must be a number of seconds"),
        (
            "CLASSHUB_MAX_MEM_LIMIT",
            "huge",
            "max_mem_limit \\(CLASSHUB_MAX_MEM_LIMIT\\) must be a size",
        ),
        ("CLASSHUB_ALLOWED_IMAGES", "other:1", "not in the image catalogue"),
        ("CLASSHUB_IMAGES", '[{"name": "other:1"}]', "not in the image catalogue"),
        ("CLASSHUB_IMAGES", "classhub/singleuser:latest", "CLASSHUB_IMAGES is not valid JSON"),
        ("CLASSHUB_IMAGES", '[{"name": "UPPER/case"}]', "is not a Docker image reference"),
        ("CLASSHUB_IMAGES", '[{"image": "a:1"}]', "unknown field\\(s\\) image"),
        ("CLASSHUB_MAX_CPU_LIMIT", "0.5", "CLASSHUB_MAX_CPU_LIMIT \\(0.5\\)"),
        ("CLASSHUB_CULL_INTERVAL", "0.5", "0 \\(off\\) or at least 1 second"),
        ("CLASSHUB_MONGO_URL", "redis://x", "mongodb://"),
    ],
)
def test_bad_admin_settings_say_how_to_fix(env, name, value, match):
    env.setenv(name, value)
    with pytest.raises(TraitError, match=match):
        ClassesApp().check_settings()
