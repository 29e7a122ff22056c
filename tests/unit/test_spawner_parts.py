import re

import pytest
from jupyterhub.utils import url_escape_path

from common.naming import object_name
from common.routing import traefik_rule
from spawner.hardening import check_no_host_paths, hardened_host_config, healthcheck
from spawner.labels import identity_labels, traefik_labels

pytestmark = pytest.mark.unit


def test_object_names_valid_and_distinct():
    names = set()
    for user in ["alice", "Alice", "ali ce", "é" * 200, "x`y", "a" * 200]:
        for server in ["", "cls", "CLS"]:
            n = object_name("classhub", "srv", user, server)
            assert re.fullmatch(r"[a-zA-Z0-9][a-zA-Z0-9_.-]+", n)
            assert len(n) < 100
            names.add(n)
    assert len(names) == 18
    assert object_name("p", "home", "a", "b") != object_name("p", "srv", "a", "b")
    assert object_name("p", "home", "a", "b") == object_name("p", "home", "a", "b")


def test_traefik_labels():
    spec = "/user/" + url_escape_path("bob`) || PathPrefix(`/") + "/"
    labels = traefik_labels(routespec=spec, port=8888, network="net", entrypoint="web")
    rules = [v for k, v in labels.items() if k.endswith(".rule")]
    assert rules == [traefik_rule(spec)]
    assert labels["traefik.enable"] == "true"
    assert labels["traefik.docker.network"] == "net"
    assert any(k.endswith("loadbalancer.server.port") and v == "8888" for k, v in labels.items())
    for key in labels:
        assert re.fullmatch(r"[a-z0-9.-]+", key), key


def test_identity_labels_carry_no_raw_user_text():
    labels = identity_labels(user="a{b}\n", server="{servername}", routespec="/user/x/")
    assert labels["classhub.managed"] == "true"
    for v in labels.values():
        assert "{" not in v and "\n" not in v


def test_hardening():
    cfg = hardened_host_config(pids_limit=256, mem_limit="512M")
    assert cfg["cap_drop"] == ["ALL"]
    assert "no-new-privileges:true" in cfg["security_opt"]
    assert cfg["pids_limit"] == 256
    assert cfg["memswap_limit"] == "512M"
    assert cfg["read_only"] is True and cfg["privileged"] is False
    assert "/tmp" in cfg["tmpfs"]


def test_healthcheck_times():
    hc = healthcheck(["/x"], interval=0.2, start_timeout=60)
    assert hc["test"] == ["CMD", "/x"]
    assert hc["interval"] == 200_000_000
    assert hc["timeout"] > 60 * 10**9


@pytest.mark.parametrize("src", ["/var/run/docker.sock", "/home", "./data", "~/x"])
def test_host_paths_refused(src):
    with pytest.raises(ValueError, match="named Docker volumes"):
        check_no_host_paths({src: "/mnt"})


def test_named_volumes_allowed():
    check_no_host_paths({"classhub-shared": "/shared"})


def test_a_servers_own_token_may_only_post_activity():
    """JUPYTERHUB_API_TOKEN is readable in any terminal of the container: it must not open
    the server (JupyterHub's default adds access:servers!server), so only a browser
    session's OAuth token, which ends with the session, does."""
    from spawner import ClassroomSpawner

    scopes = ClassroomSpawner().server_token_scopes
    assert scopes == ["users:activity!user"]
    assert not [s for s in scopes if s.startswith(("access:", "servers", "read:", "tokens"))]


async def test_servers_cannot_be_renamed():
    """A rename would move a class server out of its class (and out of its teacher's
    reach, which names the server by its class code)."""
    from tornado import web

    from spawner import ClassroomSpawner

    with pytest.raises(web.HTTPError) as e:
        await ClassroomSpawner().rename("bio", "other")
    assert e.value.status_code == 400 and "cannot be renamed" in e.value.log_message


def test_the_docker_client_is_made_once_when_threads_ask_at_once(monkeypatch):
    """The spawner's Docker calls run in a pool of threads; their first calls at once (a
    fresh hub starting several servers) must share one client. DockerSpawner makes it on
    first use without a lock: two clients were made, and replacing the class attribute
    released the first while CPython's type cache still handed it out (CPython issue
    118492; urllib3's finalizers let go of the GIL in that window): the hub segfaulted."""
    import threading
    import time

    import dockerspawner.dockerspawner as ds

    from spawner.spawner import ClassroomSpawner

    made = []

    class SlowClient:
        def __init__(self, **kwargs):
            time.sleep(0.05)  # the real one asks the engine for its API version
            made.append(self)

    monkeypatch.setattr(ds.docker, "APIClient", SlowClient)
    monkeypatch.setattr(ClassroomSpawner, "_client", None)
    spawner = ClassroomSpawner()
    seen = []
    start = threading.Barrier(8)

    def first_call():
        start.wait()
        seen.append(spawner.client)

    threads = [threading.Thread(target=first_call) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(10)
    assert len(made) == 1 and len(seen) == 8
    assert all(client is made[0] for client in seen)
