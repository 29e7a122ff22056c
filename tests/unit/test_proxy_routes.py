"""The hub's routes in Traefik's file provider: the student entrypoint gets only the hub
API router (hub/proxy.py), and it goes with the hub's route."""

import pytest
import yaml

from common.routing import hub_api_rule, route_name
from hub.proxy import ROUTES_FILE, TraefikDockerProxy

pytestmark = pytest.mark.unit


@pytest.fixture
def proxy(tmp_path, monkeypatch):
    p = TraefikDockerProxy(dynamic_config_dir=str(tmp_path), student_entrypoint="students")

    async def routed(routespec, target, provider):
        return None

    monkeypatch.setattr(p, "_wait_for", routed)
    return p


def routers(tmp_path):
    return yaml.safe_load((tmp_path / ROUTES_FILE).read_text())["http"]["routers"]


async def test_the_hub_route_gets_an_api_only_router_on_the_student_entrypoint(proxy, tmp_path):
    await proxy.add_route("/", "http://127.0.0.1:8081", {"hub": True})
    await proxy.add_route("/services/classes/", "http://127.0.0.1:10101", {"service": "c"})
    found = routers(tmp_path)
    hub = route_name("/")
    assert found[hub]["entryPoints"] == ["web"]
    assert found[hub + "-students"] == {
        "rule": hub_api_rule("/hub/"),
        "service": hub,
        "entryPoints": ["students"],
    }
    # nothing else is on the student entrypoint: not services, not the hub's pages
    on_students = [n for n, r in found.items() if "students" in r["entryPoints"]]
    assert on_students == [hub + "-students"]
    await proxy.delete_route("/")
    assert set(routers(tmp_path)) == {route_name("/services/classes/")}


async def test_no_student_router_without_the_entrypoint(tmp_path, monkeypatch):
    p = TraefikDockerProxy(dynamic_config_dir=str(tmp_path), student_entrypoint="")

    async def routed(routespec, target, provider):
        return None

    monkeypatch.setattr(p, "_wait_for", routed)
    await p.add_route("/", "http://127.0.0.1:8081", {"hub": True})
    assert set(routers(tmp_path)) == {route_name("/")}
