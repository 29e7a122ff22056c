"""Network boundaries, checked from inside a real student container."""

import subprocess

import pytest

from tests.probes import open_host_port, run_reach_probe

pytestmark = pytest.mark.integration


def host_addresses():
    out = subprocess.run(["hostname", "-I"], capture_output=True, text=True).stdout.split()
    return [a for a in out if ":" not in a]


@pytest.fixture
def open_port():
    with open_host_port() as port:
        yield port


def test_student_cannot_reach_data_services_or_peers(stack, open_port):
    stack.create_user("ivan")
    stack.create_user("judy")
    stack.spawn("ivan")
    stack.spawn("judy")
    by_user = {c.labels["classhub.user"]: c for c in stack.containers(all=False)}
    ivan, judy = by_user["ivan"], by_user["judy"]
    judy.reload()
    judy_ip = judy.attrs["NetworkSettings"]["Networks"][stack.network.name]["IPAddress"]
    targets = [("peer-jupyter", judy_ip, 8888)]
    for addr in [stack.gateway, *host_addresses()]:
        targets += [
            (f"redis@{addr}", addr, stack.redis_port),
            (f"postgres@{addr}", addr, stack.pg_port),
            (f"traefik-api@{addr}", addr, stack.api_port),
            (f"host-service-on-all-interfaces@{addr}", addr, open_port),
            (f"traefik-web@{addr}", addr, stack.web_port),
        ]
    # the link-local range (cloud metadata services) is refused too
    targets.append(("metadata", "169.254.169.254", 80))
    hub_api = f"http://{stack.gateway}:{stack.hub_port}/hub/api/"
    result = run_reach_probe(ivan, targets, hub_api)
    opened = [label for label, state in result["ports"].items() if state == "open"]
    assert opened == [], f"student container reached {opened}"
    # ...but it does reach the hub API, which single-user servers need
    assert result["hub"] == 200
    # the host itself reaches both (Traefik routes to them)
    assert stack.user_get("/user/judy/api/status").status_code == 200
