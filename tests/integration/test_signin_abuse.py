"""Sign-in abuse, against a real hub, Traefik, Redis, PostgreSQL
and a real student container.

- 100 wrong passwords for ``admin`` from one address never lock the owner out: the right
  password from another address signs in.
- Forwarded headers count only from Traefik: a forged ``X-Real-Ip`` changes neither the
  address the login limits count nor the one the Sessions page shows, from a client of the
  public entrypoint or from inside a student container.
- A student container reaches only the hub API calls its server needs (through Traefik's
  ``students`` entrypoint), never ``/hub/login``, other hub pages or services; a spawned
  server still becomes ready, opens in a browser (OAuth through that entrypoint) and
  reports its activity.

The test's clients connect from other loopback addresses (127.0.0.2, ...) to be other
clients of the same Traefik (on 127.0.0.1).
"""

import hashlib
import json
import re
from collections import Counter
from datetime import UTC, datetime

import pytest

from harness.stack import Stack, running_stack
from tests.probes import run_http_probe

pytestmark = pytest.mark.integration

ATTACKER, OWNER, OTHER = "127.0.0.3", "127.0.0.2", "127.0.0.4"
FORGED = "203.0.113.66"  # TEST-NET-3: never a real client here


@pytest.fixture(scope="module")
def stack(tmp_path_factory):
    yield from running_stack(Stack(tmp_path_factory.mktemp("signin-abuse"), log_level="DEBUG"))


def fail_keys(stack, kind, value):
    digest = hashlib.sha256(value.encode()).hexdigest()[:32]
    return stack.redis_cli("EXISTS", f"classhub:fail:{kind}:{digest}")


def session_address(stack, admin_browser, user):
    r = stack.browser_api(admin_browser, "GET", "/classhub/sessions")
    assert r.status_code == 200, r.text
    return {s["user"]: s["address"] for s in r.json()["sessions"]}.get(user)


def test_a_hundred_wrong_passwords_never_lock_the_owner_out(stack):
    attacker = stack.browser(source=ATTACKER)
    statuses = Counter(
        stack.login_password(attacker, "admin", f"wrong-password-{i}").status_code
        for i in range(100)
    )
    # five guesses are checked; then this account is locked from this address only
    assert statuses == {403: 5, 429: 95}, statuses
    r = stack.login_password(attacker, "admin", stack.admin_password)
    assert r.status_code == 429 and "for this account from this address" in r.text
    owner = stack.browser(source=OWNER)
    r = stack.login_password(owner, "admin", stack.admin_password)
    assert r.status_code == 302, r.text
    assert stack.whoami(owner) == "admin"
    assert session_address(stack, owner, "admin") == OWNER
    # the attacker's address is counted (5 checked guesses), the owner's is not
    assert fail_keys(stack, "addr", ATTACKER) == 1
    assert fail_keys(stack, "addr", OWNER) == 0


def test_a_forged_x_real_ip_through_traefik_changes_nothing(stack):
    admin = stack.browser(source=OWNER)
    assert stack.login_password(admin, "admin", stack.admin_password).status_code == 302
    headers = {"X-Real-Ip": FORGED, "X-Forwarded-For": FORGED, "X_Real_Ip": FORGED}
    client = stack.browser(source=OTHER)
    client.headers.update(headers)
    r = stack.login_token(client, stack.mint("forger"))
    assert r.status_code == 302, r.text
    assert session_address(stack, admin, "forger") == OTHER
    # a wrong password with a forged address is counted against the real one
    assert stack.login_password(client, "forger", "not-the-password").status_code == 403
    assert fail_keys(stack, "addr", OTHER) == 1
    assert fail_keys(stack, "addr", FORGED) == 0


@pytest.fixture(scope="module")
def student(stack):
    """A running student server and its container."""
    stack.create_user("stu")
    stack.spawn("stu")
    (container,) = [c for c in stack.containers(all=False) if c.labels["classhub.user"] == "stu"]
    yield container
    stack.stop("stu")


def test_a_student_container_reaches_only_the_hub_api_its_server_needs(stack, student):
    base = f"http://{stack.gateway}:{stack.hub_port}"
    forged = {"X-Real-Ip": OWNER, "X-Forwarded-For": OWNER}
    token = {"Authorization": "token $TOKEN", **forged}
    now = datetime.now(UTC).isoformat().replace("+00:00", "Z")
    activity = json.dumps({"servers": {"": {"last_activity": now}}})
    login = "username=admin&password=wrong-password&_xsrf=x"
    form = {"Content-Type": "application/x-www-form-urlencoded", **forged}
    found = run_http_probe(
        student,
        base,
        [
            ["api-root", "GET", "/hub/api", {}, None],
            ["api-root/", "GET", "/hub/api/", forged, None],
            ["whoami", "GET", "/hub/api/user", token, None],
            ["activity", "POST", "/hub/api/users/stu/activity", token, activity],
            *(
                [f"login-{i}", "POST", "/hub/login", form, login]
                for i in range(6)  # more than login_failures_per_user
            ),
            ["login-page", "GET", "/hub/login", forged, None],
            ["home", "GET", "/hub/home", forged, None],
            ["admin", "GET", "/hub/admin", forged, None],
            ["token-page", "GET", "/hub/token", token, None],
            ["spawn", "GET", "/hub/spawn", token, None],
            ["health", "GET", "/hub/health", {}, None],
            ["users", "GET", "/hub/api/users", token, None],
            ["own-model", "GET", "/hub/api/users/stu", token, None],
            ["tokens", "POST", "/hub/api/users/stu/tokens", token, "{}"],
            ["start", "POST", "/hub/api/users/stu/servers/x", token, "{}"],
            ["sessions", "GET", "/hub/api/classhub/sessions", token, None],
            ["services", "GET", "/services/", {}, None],
            ["server", "GET", "/user/stu/api/status", token, None],
            ["user-get", "POST", "/hub/api/user", token, "{}"],
            ["authorize", "GET", "/hub/api/oauth2/authorize", {}, None],
            ["traversal", "GET", "/hub/api/user/../../login", {}, None],
            ["encoded", "GET", "/hub/api/users/stu%2F..%2F..%2Flogin/activity", token, None],
        ],
    )
    for label in ("api-root", "api-root/", "whoami"):
        assert found[label][0] == 200, (label, found[label])
    assert re.search(r'"name":\s*"stu"', found["whoami"][1]), found["whoami"]
    assert found["activity"][0] == 200, found["activity"]
    refused = {k: v[0] for k, v in found.items() if k not in ("api-root", "api-root/", "whoami")}
    refused.pop("activity")
    assert set(refused.values()) == {404}, refused
    # the activity the container posted reached the hub
    assert stack.server_model("stu")["last_activity"].startswith(now[:19])
    # nothing the container sent counted against the address it forged
    assert fail_keys(stack, "addr", OWNER) == 0
    assert fail_keys(stack, "pair", "admin\0" + OWNER) == 0
    # the hub saw the container's own address, never the forged one
    log = stack.hub.log_path.read_text(errors="replace")
    student.reload()
    ip = student.attrs["NetworkSettings"]["Networks"][stack.network.name]["IPAddress"]
    whoami = [line for line in log.splitlines() if "GET /hub/api/user " in line and "(stu@" in line]
    assert whoami and all(f"(stu@{ip})" in line for line in whoami), whoami[-3:]
    assert FORGED not in log


def test_the_server_still_opens_in_a_browser(stack, student):
    """The browser's OAuth code is exchanged by the server through the students entrypoint."""
    b = stack.browser()
    assert stack.login_token(b, stack.mint("stu")).status_code == 302
    lab = b.get(stack.url + "/user/stu/lab", timeout=60)
    assert lab.status_code == 200 and lab.url.endswith("/user/stu/lab"), (lab.status_code, lab.url)
    status = b.get(stack.url + "/user/stu/api/status", timeout=30)
    assert status.status_code == 200 and "kernels" in status.json()
