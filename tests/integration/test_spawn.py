"""Spawning through the real hub, Traefik and Docker engine."""

import concurrent.futures
import time

import pytest
import requests

from tests.integration.hardening import assert_hardened

pytestmark = pytest.mark.integration


def test_spawn_and_reach_status_through_traefik(stack):
    stack.create_user("alice")
    t0 = time.monotonic()
    stack.spawn("alice")
    elapsed = time.monotonic() - t0
    # ready means Traefik routes it: the very first request through Traefik answers
    r = stack.user_get("/user/alice/api/status")
    assert r.status_code == 200, (r.status_code, r.text[:200])
    assert "kernels" in r.json()
    assert elapsed < 60
    # the route is reported by the proxy API from Traefik's own state
    routes = stack.api("GET", "/proxy").json()
    assert "/user/alice/" in routes
    assert routes["/user/alice/"]["data"]["user"] == "alice"
    assert routes["/"]["data"] == {"hub": True}


def test_container_is_hardened(stack):
    stack.create_user("hank")
    stack.spawn("hank")
    (c,) = [c for c in stack.containers(all=False) if c.labels.get("classhub.user") == "hank"]
    assert_hardened(c, stack)


def test_two_parallel_spawn_requests_give_one_container(stack):
    stack.create_user("carol")
    path = stack.server_path("carol")
    with concurrent.futures.ThreadPoolExecutor(2) as pool:
        codes = list(pool.map(lambda _: stack.api("POST", path).status_code, range(2)))
    assert 201 in codes or 202 in codes, codes
    assert all(code in (201, 202, 400) for code in codes), codes
    stack.wait_ready("carol")
    mine = [c for c in stack.containers() if c.labels.get("classhub.user") == "carol"]
    assert len(mine) == 1
    assert stack.user_get("/user/carol/api/status").status_code == 200
    stack.stop("carol")


def test_named_servers_and_files_survive_stop_start(stack):
    stack.enroll("dave", "physics101")
    stack.spawn("dave", "physics101")
    put = requests.put(
        stack.url + "/user/dave/physics101/api/contents/notes.txt",
        json={"type": "file", "format": "text", "content": "keep me"},
        headers={"Authorization": f"token {stack.token}"},
        timeout=10,
    )
    assert put.status_code in (200, 201), put.text
    (before,) = [c for c in stack.containers() if c.labels.get("classhub.user") == "dave"]
    stack.stop("dave", "physics101")
    assert not [c for c in stack.containers() if c.labels.get("classhub.user") == "dave"]
    stack.spawn("dave", "physics101")
    r = stack.user_get("/user/dave/physics101/api/contents/notes.txt")
    assert r.status_code == 200 and r.json()["content"] == "keep me"
    (after,) = [c for c in stack.containers() if c.labels.get("classhub.user") == "dave"]
    assert after.id != before.id
    # the default server of the same user is a different environment with its own home
    stack.spawn("dave")
    assert stack.user_get("/user/dave/api/contents/notes.txt").status_code == 404
    stack.stop("dave")
    stack.stop("dave", "physics101")
