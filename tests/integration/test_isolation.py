"""Network boundaries, checked from inside a real student container."""

import json
import subprocess

import pytest

pytestmark = pytest.mark.integration

PROBE = r"""
import json, socket, sys, urllib.request
results = {}
for label, host, port in json.loads(sys.argv[1]):
    s = socket.socket()
    s.settimeout(2)
    try:
        s.connect((host, port))
        results[label] = "open"
    except OSError as e:
        results[label] = type(e).__name__
    finally:
        s.close()
try:
    hub = urllib.request.urlopen(sys.argv[2], timeout=5).status
except Exception as e:
    hub = repr(e)
print(json.dumps({"ports": results, "hub": hub}))
"""


def host_addresses():
    out = subprocess.run(["hostname", "-I"], capture_output=True, text=True).stdout.split()
    return [a for a in out if ":" not in a]


def test_student_cannot_reach_data_services_or_peers(stack):
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
        ]
    hub_api = f"http://{stack.gateway}:{stack.hub_port}/hub/api/"
    code, out = ivan.exec_run(["python3", "-c", PROBE, json.dumps(targets), hub_api])
    assert code == 0, out
    result = json.loads(out.decode().strip().splitlines()[-1])
    opened = [label for label, state in result["ports"].items() if state == "open"]
    assert opened == [], f"student container reached {opened}"
    # ...but it does reach the hub API, which single-user servers need
    assert result["hub"] == 200
    # the host itself reaches both (Traefik routes to them)
    assert stack.user_get("/user/judy/api/status").status_code == 200
