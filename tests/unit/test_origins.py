"""Per-user origins: the pure parts (hub/origins.py) and their configuration (hub/config.py)."""

import pytest
from traitlets.config import Config

from common.routing import validate_host
from hub.config import ConfigError, apply_env, configure_origins
from hub.origins import (
    OriginError,
    SubdomainHook,
    parse_public_url,
    same_site,
    servers_origin,
    user_host,
    validate_domain,
)

pytestmark = pytest.mark.unit

BASE = {"CLASSHUB_HUB_IP": "172.30.0.1"}


@pytest.mark.parametrize(
    "bad",
    [
        "",
        "*.servers.example",
        "Servers.example",
        "servers.example.",
        "servers.example:80",
        "http://servers.example",
        "serv_ers.example",
        "10.0.0.1",
        "-a.example",
        "a" * 64 + ".x",
    ],
)
def test_bad_servers_domains_refused(bad):
    with pytest.raises(OriginError):
        validate_domain(bad)


def test_user_hosts_are_valid_distinct_dns_names():
    # user names are lower case (common/usernames.py)
    names = ["alice", "alice@a.edu", "alice@b.edu", "jörg", "a" * 200, "x.y", "-x-"]
    hosts = [user_host(n, "classhub-servers.example.edu") for n in names]
    assert len(set(hosts)) == len(names)
    for host in hosts:
        assert validate_host(host) == host
        assert host.endswith(".classhub-servers.example.edu")
        assert host.count(".") == 3


def test_services_stay_on_the_hub_host():
    hook = SubdomainHook(servers_domain="classhub-servers.localhost", hub_host="classhub.localhost")
    assert hook("grades", "classhub.localhost", "service") == "classhub.localhost"
    assert hook("grades", "classhub.localhost", "user") == "grades.classhub-servers.localhost"


def test_configure_origins_sets_jupyterhubs_traits():
    c = Config()
    configure_origins(
        c, public_url="http://classhub.localhost:8000", servers_domain="classhub-servers.localhost"
    )
    assert c.JupyterHub.public_url == "http://classhub.localhost:8000/"
    assert c.JupyterHub.subdomain_host == "http://classhub-servers.localhost:8000"
    assert c.JupyterHub.subdomain_hook("alice", "x", "user") == "alice.classhub-servers.localhost"
    # __Host- cookies need https
    assert "cookie_host_prefix_enabled" not in c.JupyterHub
    # JupyterHub's own traits only: the spawner's gate follows CLASSHUB_SERVERS_DOMAIN itself
    assert set(c) == {"JupyterHub"}


def test_https_turns_on_host_prefixed_cookies():
    c = Config()
    configure_origins(
        c, public_url="https://classhub.example.edu", servers_domain="example-classhub.net"
    )
    assert c.JupyterHub.subdomain_host == "https://example-classhub.net"
    assert c.JupyterHub.cookie_host_prefix_enabled is True


def test_no_servers_domain_leaves_one_origin():
    c = Config()
    apply_env(c, dict(BASE), gateway_lookup=None)
    assert "subdomain_host" not in c.JupyterHub


@pytest.mark.parametrize(
    "public, servers, message",
    [
        ("http://:8000", "servers.localhost", "full address"),
        ("http://10.1.2.3:8000", "servers.localhost", "IP address"),
        ("http://classhub.localhost", "localhost", "inside CLASSHUB_SERVERS_DOMAIN"),
        ("http://classhub.localhost", "u.classhub.localhost", "under the hub's host"),
        ("http://classhub.localhost", "*.servers.localhost", "without the wildcard"),
    ],
)
def test_unusable_combinations_give_fixit_messages(public, servers, message):
    env = dict(BASE, CLASSHUB_PUBLIC_URL=public, CLASSHUB_SERVERS_DOMAIN=servers)
    with pytest.raises(ConfigError, match=message):
        apply_env(Config(), env, gateway_lookup=None)


def test_public_url_parts_and_site_check():
    public = parse_public_url("https://ClassHub.example.edu/course/")
    assert (public.host, public.port, public.path) == ("classhub.example.edu", None, "/course/")
    assert servers_origin(public, "servers.example.edu") == "https://servers.example.edu"
    assert same_site("classhub.example.edu", "alice.servers.example.edu")
    assert not same_site("classhub.localhost", "alice.classhub-servers.localhost")
