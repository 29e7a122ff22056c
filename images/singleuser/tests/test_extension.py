"""The extension (classhub_singleuser) in a real jupyter-server (pytest-jupyter's
``jp_serverapp``): found, linked and loaded from the server's ``jpserver_extensions``; the
server made non-dumpable from the first hook on; HubOAuth's cache age put into the server's
config at link time; nothing served to the services.

In-process servers only record the calls of ``nodump.make_non_dumpable`` (this process is
the test runner's, and would stay non-dumpable after the test); what the call does to a
process is checked in subprocesses below.
"""

import subprocess
import sys

import pytest
from tornado.httpclient import HTTPClientError

from classhub_singleuser import nodump, session_guard

pytestmark = pytest.mark.unit

EXTENSION = "classhub_singleuser"
ENV = ("CLASSHUB_AUTH_CACHE_MAX_AGE", "CLASSHUB_WS_RECHECK_INTERVAL", "CLASSHUB_WS_RECHECK_TIMEOUT")


@pytest.fixture
def dumpable_calls(monkeypatch):
    """The ``log`` argument of each call of nodump.make_non_dumpable (recorded, not made)."""
    calls = []

    def record(log=None):
        calls.append(log)
        return True

    monkeypatch.setattr(nodump, "make_non_dumpable", record)
    return calls


@pytest.fixture
def env():
    """Environment of the server (parametrized by tests)."""
    return {}


@pytest.fixture
def extra_config():
    """Server config on top of enabling the extension (parametrized by tests)."""
    return {}


@pytest.fixture
def jp_server_config(dumpable_calls, env, extra_config, monkeypatch):
    for name in ENV:
        monkeypatch.delenv(name, raising=False)
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    return {
        "ServerApp": {
            "jpserver_extensions": {EXTENSION: True},
            # a failing extension fails the test, not just a warning in the log
            "reraise_server_extension_failures": True,
        },
        **extra_config,
    }


def test_the_server_finds_links_and_loads_the_extension(jp_serverapp, dumpable_calls):
    manager = jp_serverapp.extension_manager
    assert manager.extensions[EXTENSION].enabled
    assert manager.linked_extensions.get(EXTENSION) is True
    # Non-dumpable from the first hook (discovery, before any extension is linked), and
    # said once in the server's log when linked.
    assert dumpable_calls[0] is None
    assert dumpable_calls.count(jp_serverapp.log) == 1
    # Loaded: the guard is installed on this server; no JupyterHub auth here, so inactive.
    guard = session_guard._guards[jp_serverapp]
    assert guard.hub_auth is None and guard._callback is None


@pytest.mark.parametrize(
    ("env", "extra_config", "expected", "explicit"),
    [
        ({}, {}, 5, False),
        ({"CLASSHUB_AUTH_CACHE_MAX_AGE": "7"}, {}, 7, False),
        # a typo in the environment must not keep the server from starting
        ({"CLASSHUB_AUTH_CACHE_MAX_AGE": "soon"}, {}, 5, False),
        ({}, {"SessionGuard": {"auth_cache_max_age": 9}}, 9, False),
        # HubOAuth's own setting, when given, wins
        ({"CLASSHUB_AUTH_CACHE_MAX_AGE": "7"}, {"HubOAuth": {"cache_max_age": 60}}, 60, True),
    ],
)
def test_linking_puts_the_hub_auth_cache_age_into_the_servers_config(
    jp_serverapp, expected, explicit
):
    # Linking comes before the server creates its identity provider (and with it the
    # HubOAuth that authenticates requests under JupyterHub), so HubOAuth reads this.
    assert jp_serverapp.config.HubOAuth.cache_max_age == expected
    assert session_guard._guards[jp_serverapp].cache_age_explicit is explicit


@pytest.mark.parametrize(
    ("env", "interval", "timeout"),
    [
        ({}, 5.0, 3.0),
        ({"CLASSHUB_WS_RECHECK_INTERVAL": "0.5", "CLASSHUB_WS_RECHECK_TIMEOUT": "1"}, 0.5, 1.0),
        ({"CLASSHUB_WS_RECHECK_INTERVAL": "-1"}, 5.0, 3.0),
    ],
)
def test_the_guard_takes_its_settings_from_the_environment(jp_serverapp, interval, timeout):
    guard = session_guard._guards[jp_serverapp]
    assert (guard.check_interval, guard.hub_timeout) == (interval, timeout)


def test_the_server_serves_nothing_for_the_services(jp_serverapp, jp_fetch, run):
    """No snapshot or material route (the services use the homes helper): nothing the
    services do ever reaches a student's server. The one route of classhub's own is the
    read-only context of the JupyterLab extension."""
    assert run(jp_fetch("api", "status")).code == 200
    patterns = []

    def collect(router):  # add_handlers() nests a router per host pattern
        for rule in router.rules:
            if hasattr(rule.matcher, "regex"):
                patterns.append(rule.matcher.regex.pattern)
            if hasattr(rule.target, "rules"):
                collect(rule.target)

    collect(jp_serverapp.web_app.default_router)
    collect(jp_serverapp.web_app.wildcard_router)
    assert any("api/status" in p for p in patterns)
    # the one classhub route: the JupyterLab extension's read-only context (test_context.py)
    context = f"{jp_serverapp.base_url}classhub/api/context$"
    assert [p for p in patterns if "classhub" in p] == [context]
    for method, path, body in (
        ("GET", ("classhub", "snapshot"), None),
        ("POST", ("classhub", "material"), b"PK\x05\x06" + bytes(18)),
    ):
        with pytest.raises(HTTPClientError) as refused:
            run(jp_fetch(*path, method=method, body=body, params={"folder": "x", "dest": "x"}))
        assert refused.value.code == 404


def test_a_failing_guard_fails_the_server_start(
    dumpable_calls, monkeypatch, jp_configurable_serverapp, jp_server_config
):
    """The extension's hooks are really called by the server (a broken guard shows)."""

    def broken(serverapp):
        raise RuntimeError("guard broken")

    monkeypatch.setattr(session_guard, "load", broken)
    with pytest.raises(RuntimeError, match="guard broken"):
        jp_configurable_serverapp(config=jp_server_config)


# ----- the non-dumpable flag itself, in processes of their own -----


def run_python(script: str) -> list[str]:
    done = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, check=True
    )
    return done.stdout.split()


def test_the_server_process_becomes_non_dumpable():
    script = (
        "from classhub_singleuser import nodump\n"
        "before = nodump.dumpable()\n"
        "ok = nodump.make_non_dumpable()\n"
        "print(before, ok, nodump.dumpable())\n"
    )
    assert run_python(script) == ["1", "True", "0"]


def test_the_extensions_first_hook_makes_the_server_non_dumpable():
    script = (
        "import classhub_singleuser as ext\n"
        "from classhub_singleuser import nodump\n"
        "points = ext._jupyter_server_extension_points()\n"
        "print(points[0]['module'], nodump.dumpable())\n"
    )
    assert run_python(script) == [EXTENSION, "0"]
