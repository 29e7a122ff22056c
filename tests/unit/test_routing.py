import re

import pytest
from jupyterhub.utils import url_escape_path, url_path_join

from common.routing import (
    RouteSpecError,
    hub_api_rule,
    route_name,
    routespec_from_rule,
    split_routespec,
    traefik_match_path,
    traefik_rule,
    user_from_routespec,
    validate_routespec,
)

pytestmark = pytest.mark.unit

HOSTILE = [
    "alice",
    "bob`) || PathPrefix(`/",
    'eve") || PathPrefix("/',
    "mallory' or '1'='1",
    "two words",
    "..",
    "../../hub",
    "ünïcødé-名前",
    "emoji-🦊",
    "a" * 200,
    "é" * 200,
    "back\\slash",
    "new\nline",
    "tab\there",
    "brace{username}",
    "percent%2Fencoded",
    "slash/inside",
    "alice@a.edu",
]


def user_spec(name, server=""):
    spec = url_path_join("/user/", url_escape_path(name), "/")
    if server:
        spec = url_path_join(spec, url_escape_path(server), "/")
    return spec


@pytest.mark.parametrize("name", HOSTILE)
def test_rule_text_is_always_safe(name):
    spec = user_spec(name, "class-1")
    if name in ("..",):
        with pytest.raises(RouteSpecError):
            traefik_rule(spec)
        return
    rule = traefik_rule(spec)
    # a single PathPrefix with a double-quoted literal of safe characters or \u escapes
    assert re.fullmatch(
        r'PathPrefix\("(?:[A-Za-z0-9/._~@%-]|\\u[0-9a-f]{4}|\\U[0-9a-f]{8})*"\)', rule
    )
    assert "`" not in rule and "||" not in rule and "&&" not in rule
    assert rule.endswith('/")')


@pytest.mark.parametrize("name", [n for n in HOSTILE if n != ".."])
def test_rule_round_trips(name):
    spec = user_spec(name, "srv")
    assert routespec_from_rule(traefik_rule(spec)) == spec
    assert user_from_routespec(spec) == (name, "srv")


def test_match_path_decodes_like_traefik():
    assert traefik_match_path("/user/%C3%A9t@x/") == "/user/ét@x/"
    assert traefik_match_path("/user/a%2fb/") == "/user/a%2Fb/"
    assert traefik_match_path("/user/a%60b/") == "/user/a`b/"
    assert traefik_match_path("/user/a%20b/") == "/user/a b/"
    assert traefik_match_path("/user/a%40b/") == "/user/a%40b/"


def test_prefixes_cannot_widen():
    # /user/al/ must never be a prefix of /user/alice/
    assert not traefik_match_path(user_spec("alice")).startswith(
        traefik_match_path(user_spec("al"))
    )
    assert traefik_rule("/").startswith('PathPrefix("/")')


@pytest.mark.parametrize(
    "bad",
    [
        "",
        "user/alice/",
        "Host.example/user/alice/",
        "host.example:8000/user/alice/",
        "host..example/user/alice/",
        "-host.example/user/alice/",
        "host_x.example/user/alice/",
        "*.example/user/alice/",
        'a")||Host("b/user/alice/',
        "host.example",
        "host.example/user/alice",
        "/user/alice",
        "/user/a`b/",
        '/user/a"b/',
        "/user/a b/",
        "/user/%zz/",
        "/user/../",
        "/user//x/",
        "/user/./",
        "/" + "a" * 5000 + "/",
        "/user/%FF/",
    ],
)
def test_bad_routespecs_refused(bad):
    with pytest.raises(RouteSpecError):
        traefik_rule(bad)


def test_route_names_are_bounded_unique_and_valid():
    names = {route_name(user_spec(n, "s")) for n in HOSTILE if n != ".."}
    assert len(names) == len(HOSTILE) - 1
    for n in names:
        assert re.fullmatch(r"[a-z0-9-]+", n)
        assert len(n) <= 80
    # case differences are different users
    assert route_name(user_spec("Alice")) != route_name(user_spec("alice"))


def test_validate_accepts_hub_specs():
    assert validate_routespec("/") == "/"
    assert validate_routespec("/services/classes/") == "/services/classes/"


def test_foreign_rules_are_ignored():
    assert routespec_from_rule("PathPrefix(`/x/`)") is None
    assert routespec_from_rule('PathPrefix("/x/") || Host("a")') is None


def test_host_specs_route_by_host_and_path():
    spec = "alice.classhub-servers.example.edu/user/alice/lab1/"
    assert split_routespec(spec) == ("alice.classhub-servers.example.edu", "/user/alice/lab1/")
    rule = traefik_rule(spec)
    assert rule == ('Host("alice.classhub-servers.example.edu") && PathPrefix("/user/alice/lab1/")')
    assert routespec_from_rule(rule) == spec
    assert user_from_routespec(spec) == ("alice", "lab1")
    # a hostile name in the path is escaped as before, the host is plain DNS
    hostile = "xn--jrg-xla.servers.example/user/%C3%A9%60x/"
    assert routespec_from_rule(traefik_rule(hostile)) == hostile
    assert "`" not in traefik_rule(hostile)
    # different hosts are different routes
    assert route_name(spec) != route_name("bob.classhub-servers.example.edu/user/alice/lab1/")


def test_host_rules_written_by_others_are_ignored():
    assert routespec_from_rule('Host("a.b") || PathPrefix("/user/x/")') is None
    assert routespec_from_rule('Host("A.b") && PathPrefix("/user/x/")') is None
    assert routespec_from_rule('Host("a..b") && PathPrefix("/user/x/")') is None


def test_the_student_entrypoint_passes_only_the_hub_api_a_server_needs():
    rule = hub_api_rule("/hub/")
    assert rule == (
        '(Method("GET") && (Path("/hub/api") || Path("/hub/api/") || Path("/hub/api/user")))'
        ' || (Method("POST") && (Path("/hub/api/oauth2/token") || PathRegexp('
        '"\\u005e/hub/api/users/\\u005b\\u005e/\\u005d\\u002b/activity\\u0024")))'
    )
    for absent in ("login", "logout", "services", "/user/", "PathPrefix", "admin"):
        assert absent not in rule
    assert hub_api_rule("/jh/hub/").count('"/jh/hub/api') == 4


@pytest.mark.parametrize("bad", ["/hub", "hub/", "/hub/\u0022) || PathPrefix(\u0022/", "/a`b/hub/"])
def test_the_hub_prefix_cannot_widen_the_student_rule(bad):
    with pytest.raises(RouteSpecError):
        hub_api_rule(bad)
