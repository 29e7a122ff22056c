"""Network boundaries, checked from inside a real student container."""

import pytest

from tests.probes import assert_reaches_only_hub, host_ipv4_addresses

pytestmark = pytest.mark.integration


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
    for addr in [stack.gateway, *host_ipv4_addresses()]:
        targets += [
            (f"redis@{addr}", addr, stack.redis_port),
            (f"postgres@{addr}", addr, stack.pg_port),
            (f"traefik-api@{addr}", addr, stack.api_port),
            (f"host-service-on-all-interfaces@{addr}", addr, open_port),
            (f"traefik-web@{addr}", addr, stack.web_port),
        ]
    # nor the link-local range (cloud metadata); but it does reach the hub API
    assert_reaches_only_hub(ivan, targets, f"http://{stack.gateway}:{stack.hub_port}/hub/api/")
    # the host itself reaches both (Traefik routes to them)
    assert stack.user_get("/user/judy/api/status").status_code == 200
