"""The server's own token never opens the server, and what opens it
ends with the sign-in session. Real hub, Redis, Traefik and a student container.

An attacker copies ``JUPYTERHUB_API_TOKEN`` from a terminal of the student's container
(and, for good measure, the server's cookie secret from the home volume). After a
takeover, a logout and an admin's "End session", neither that token (in an
``Authorization`` header, in the URL, in the URL as a websocket would send it, or inside a
cookie signed with the stolen secret) nor the old browser's session opens the server.
How long the old browser keeps access is measured by ``bench/server_token_bench.py``.

The deployment has per-user origins, where nothing but the server itself checks what a
request carries; on one shared origin the owner gate refuses all of these before the
server even sees them (tests/integration/test_owner_gate.py).
"""

import hashlib
import hmac
import re
import secrets

import pytest
import requests
from tornado.web import create_signed_value

from harness.stack import Stack, running_stack, wait_for

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def stack(tmp_path_factory):
    yield from running_stack(
        Stack(tmp_path_factory.mktemp("server-token"), servers_domain="classhub-servers.localhost")
    )


SECRET_FILE = "/home/jovyan/.local/share/jupyter/runtime/jupyter_cookie_secret"


def container_of(stack, user):
    (found,) = [c for c in stack.containers(all=False) if c.labels["classhub.user"] == user]
    return found


def container_env(container) -> dict:
    return dict(e.split("=", 1) for e in container.attrs["Config"]["Env"])


def stolen(stack, user) -> dict:
    """What a terminal in the container shows: the server's token, its OAuth client id
    (the cookie name) and its cookie secret."""
    container = container_of(stack, user)
    env = container_env(container)
    code, secret = container.exec_run(["cat", SECRET_FILE], user="1000")
    assert code == 0, secret
    return {
        "token": env["JUPYTERHUB_API_TOKEN"],
        "cookie": env["JUPYTERHUB_CLIENT_ID"],
        # jupyter-server's cookie secret: HMAC-SHA256 keyed with the file's bytes over its
        # (empty) password (ServerApp._default_cookie_secret)
        "secret": hmac.new(secret, b"", hashlib.sha256).digest(),
    }


def carriers(loot: dict, token: str) -> dict:
    """Every way to hand ``token`` to the server: {name: request kwargs}."""
    forged = create_signed_value(loot["secret"], loot["cookie"], token).decode()
    return {
        "header": {"headers": {"Authorization": f"token {token}"}},
        "bearer": {"headers": {"Authorization": f"Bearer {token}"}},
        "url": {"params": {"token": token}},
        "url-as-websocket": {
            "params": {"token": token},
            "headers": {"Sec-Fetch-Mode": "websocket"},
        },
        "forged-cookie": {"headers": {"Cookie": f"{loot['cookie']}={forged}"}},
    }


def status(stack, user, **kwargs) -> int:
    return requests.get(
        stack.server_url(user) + "api/status", timeout=15, allow_redirects=False, **kwargs
    ).status_code


def open_lab(stack, browser, user):
    lab = browser.get(stack.server_url(user) + "lab", timeout=60)
    assert lab.status_code == 200 and lab.url.endswith(f"/user/{user}/lab"), lab.url
    return lab


@pytest.mark.parametrize("event", ["takeover", "logout", "end-session"])
def test_after_a_session_ends_nothing_it_held_or_stole_opens_the_server(stack, event):
    user = "tok" + secrets.token_hex(3)
    old = stack.browser()
    assert stack.login_token(old, stack.mint(user)).status_code == 302
    r = stack.browser_api(old, "POST", f"/users/{user}/server")
    assert r.status_code in (201, 202), r.text
    stack.wait_ready(user)
    try:
        lab = open_lab(stack, old, user)
        # JupyterLab sends the session's OAuth token (its page config) in an Authorization
        # header on every request and in the URL of websockets: Traefik cannot refuse
        # requests that carry a token; the token itself has to die with the session
        session_token = re.search(r'"token":\s*"([^"]+)"', lab.text).group(1)
        loot = stolen(stack, user)
        assert session_token != loot["token"]
        assert old.get(stack.server_url(user) + "api/status", timeout=15).status_code == 200
        for name, kwargs in carriers(loot, session_token).items():
            if name != "url":  # a page URL's token is ignored (not a websocket)
                assert status(stack, user, **kwargs) == 200, name
        # the server's own token opens nothing, before or after
        for name, kwargs in carriers(loot, loot["token"]).items():
            assert status(stack, user, **kwargs) == 403, name

        if event == "takeover":
            assert stack.login_token(stack.browser(), stack.mint(user)).status_code == 302
        elif event == "logout":
            old.get(stack.url + "/hub/logout", timeout=15)
        else:
            assert stack.api("DELETE", f"/classhub/sessions/{user}").status_code == 204

        # the server token: refused at once, as before the event
        for name, kwargs in carriers(loot, loot["token"]).items():
            assert status(stack, user, **kwargs) == 403, name
        # the session's token, however it is handed over, and the old browser itself:
        # refused once the server's 5 s cache of the hub's answers runs out
        held = {f"session token in {n}": kw for n, kw in carriers(loot, session_token).items()}

        def still_open():
            opened = [name for name, kwargs in held.items() if status(stack, user, **kwargs) == 200]
            browser = old.get(
                stack.server_url(user) + "api/status", timeout=15, allow_redirects=False
            )
            return opened + (["old browser"] if browser.status_code == 200 else [])

        wait_for(lambda: not still_open(), 20, interval=0.25, what=f"refused after {event}")
        for name, kwargs in held.items():
            assert status(stack, user, **kwargs) in (302, 403), name
    finally:
        stack.stop(user)


def test_a_forged_cookie_is_only_as_good_as_the_token_in_it(stack):
    """Control for the test above: a cookie signed with the stolen secret is accepted
    when it carries a token with access to the server (here one an admin made), so the
    server token is refused for its scopes, not for the way it was handed over."""
    user = "tokc" + secrets.token_hex(3)
    stack.create_user(user)
    stack.spawn(user)
    try:
        loot = stolen(stack, user)
        r = stack.api(
            "POST",
            f"/users/{user}/tokens",
            json={"scopes": [f"access:servers!server={user}/"], "note": "test control"},
        )
        assert r.status_code == 201, r.text
        admin_made = r.json()["token"]
        assert status(stack, user, **carriers(loot, admin_made)["forged-cookie"]) == 200
        assert status(stack, user, **carriers(loot, loot["token"])["forged-cookie"]) == 403
    finally:
        stack.stop(user)
