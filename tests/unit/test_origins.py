"""Per-user origins: the pure parts (hub/origins.py) and their configuration (hub/config.py)."""

import os

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


def test_the_classes_service_links_to_servers_on_the_origin_the_hub_computed(monkeypatch):
    """The hub passes the classes service its servers' origin (CLASSHUB_SERVERS_ORIGIN,
    from its own subdomain_host); the service no longer works it out from
    CLASSHUB_SERVERS_DOMAIN and CLASSHUB_PUBLIC_URL itself."""
    from hub.config import configure_service_origins
    from services.classes.app import ClassesApp
    from services.config import apply_env as apply_services_env

    env = dict(
        BASE,
        CLASSHUB_PUBLIC_URL="http://classhub.localhost:8000",
        CLASSHUB_SERVERS_DOMAIN="classhub-servers.localhost",
        CLASSHUB_MONGO_URL="mongodb://m/x",
    )
    c = Config()
    apply_env(c, env, gateway_lookup=lambda network: "172.30.0.1")
    apply_services_env(c, env)
    configure_service_origins(c)
    classes = next(s for s in c.JupyterHub.services if s["name"] == "classes")
    origin = classes["environment"]["CLASSHUB_SERVERS_ORIGIN"]
    assert origin == "http://{user}.classhub-servers.localhost:8000"
    for name in list(os.environ):
        if name.startswith("CLASSHUB_") or name.startswith("JUPYTERHUB_"):
            monkeypatch.delenv(name)
    monkeypatch.setenv("CLASSHUB_SERVERS_ORIGIN", origin)
    monkeypatch.setenv("JUPYTERHUB_BASE_URL", "/")
    assert ClassesApp().hub_base_url == "http://{user}.classhub-servers.localhost:8000/"
    # one shared origin: nothing passed, links on the hub's own origin
    c = Config()
    apply_env(c, BASE | {"CLASSHUB_MONGO_URL": "mongodb://m/x"}, gateway_lookup=str)
    apply_services_env(c, BASE | {"CLASSHUB_MONGO_URL": "mongodb://m/x"})
    configure_service_origins(c)
    classes = next(s for s in c.JupyterHub.services if s["name"] == "classes")
    assert "CLASSHUB_SERVERS_ORIGIN" not in classes["environment"]
