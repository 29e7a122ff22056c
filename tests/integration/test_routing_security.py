"""Hostile user names cannot inject or widen Traefik rules: checked against real Traefik."""

import re

import pytest
import requests
from jupyterhub.utils import url_escape_path

from common.routing import hub_api_rule, traefik_rule
from harness.stack import wait_for

pytestmark = pytest.mark.integration

# Names the username rule (common/usernames.py) still lets through, chosen to be as
# hostile to a Traefik rule as it allows: brackets, pipes, unicode, dots, the longest name.
HOSTILE = [
    "bob)||pathprefix(x)",
    "ünï名前🦊..",
    "z" * 128,
    "a.b@c+d=e!$*[x]{y}",
]
# Names that could break out of a rule string never become users at all.
REFUSED = [
    "bob`) || PathPrefix(`",
    'eve") || Host("x',
    "ünï 名前 🦊",
    "z" * 200,
    "x%2Fy",
    "tab\tname",
]
SAFE_RULE = re.compile(r'PathPrefix\("(?:[A-Za-z0-9/._~@%-]|\\u[0-9a-f]{4}|\\U[0-9a-f]{8})*"\)')


@pytest.mark.parametrize("name", REFUSED, ids=["backtick", "quote", "space", "long", "pct", "tab"])
def test_rule_breaking_names_cannot_become_users(stack, name):
    from urllib.parse import quote

    r = stack.api("POST", "/users/" + quote(name, safe=""))
    assert r.status_code == 400, r.text
    assert stack.api("GET", "/users/" + quote(name, safe="")).status_code == 404


@pytest.mark.parametrize("name", HOSTILE, ids=["brackets", "unicode", "long", "symbols"])
def test_hostile_names_route_exactly_their_server(stack, name):
    stack.create_user(name)
    stack.spawn(name)
    spec = "/user/" + url_escape_path(name) + "/"
    r = stack.user_get(spec + "api/status")
    assert r.status_code == 200, (r.status_code, r.text[:300])
    routers = requests.get(stack.traefik_api + "/api/http/routers?per_page=1000", timeout=5).json()
    ours = [rt for rt in routers if rt["name"].startswith(stack.prefix + "-")]
    for rt in ours:
        if rt["name"].endswith("-students@file"):
            # the hub's API-only router on the student entrypoint: no name in it
            assert rt["rule"] == hub_api_rule("/hub/"), rt["rule"]
        else:
            assert SAFE_RULE.fullmatch(rt["rule"]), rt["rule"]
    assert traefik_rule(spec) in [rt["rule"] for rt in ours]
    # the hub and other users are still routed to the hub, not to this container
    assert requests.get(stack.url + "/hub/health", timeout=5).status_code == 200
    other = stack.user_get("/user/nobody-here/api/status")
    assert other.status_code != 200 or "kernels" not in other.text
    assert stack.user_get("/").headers.get("Location", "").startswith("/hub")
    stack.stop(name)
    # the label route goes with the container (Traefik applies it within its throttle)
    wait_for(lambda: spec not in stack.api("GET", "/proxy").json(), 5, what="route removal")


def test_hostile_server_name_is_refused_before_anything_is_created(stack):
    # JupyterHub 6 only accepts "safe slug" server names; nothing reaches Docker or Traefik
    stack.create_user("sam")
    r = stack.api("POST", stack.server_path("sam", "c`) || Path(`x"))
    assert r.status_code == 400
    assert "Invalid server_name" in r.json()["message"]
    assert not [c for c in stack.containers() if c.labels.get("classhub.user") == "sam"]
