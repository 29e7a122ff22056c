"""A revoked token loses the student's server within seconds.

The single-user image's ``classhub_singleuser`` extension shortens HubOAuth's cache of the
hub's token answers (5 s instead of 300 s) and re-checks the credential of every open
websocket with the hub every 5 s, closing it (1008) once the hub refuses the token (so
within about 5 s; the target is 10). Here the token is a user API token made through
the hub API; deleting it is what the hub does to a revoked sign-in session's OAuth tokens.
Real image, real hub, real Docker, Traefik.
"""

import asyncio
import json
import os
import re
import signal
import time
import uuid

import pytest
import requests
from tornado.httpclient import HTTPClientError, HTTPRequest
from tornado.websocket import websocket_connect

pytestmark = pytest.mark.integration

USER = "wsguard"
CHECK_INTERVAL = 5  # the image's default (CLASSHUB_WS_RECHECK_INTERVAL)
STARTUP_LINE = "classhub session guard: HubOAuth.cache_max_age=5s (classhub config)"


@pytest.fixture(scope="module")
def server(stack):
    stack.create_user(USER)
    stack.spawn(USER)
    yield f"/user/{USER}/"
    stack.stop(USER)


def new_token(stack, note="ws test"):
    r = stack.api("POST", f"/users/{USER}/tokens", json={"expires_in": 600, "note": note})
    assert r.status_code == 201, r.text
    return r.json()["token"], r.json()["id"]


def delete_token(stack, token_id):
    r = stack.api("DELETE", f"/users/{USER}/tokens/{token_id}")
    assert r.status_code == 204, r.text


def http(stack, method, path, token, **kwargs):
    return requests.request(
        method,
        stack.url + path,
        headers={"Authorization": f"token {token}"},
        timeout=10,
        allow_redirects=False,
        **kwargs,
    )


def ws_request(stack, path, token):
    return HTTPRequest(
        stack.url.replace("http://", "ws://") + path,
        headers={"Authorization": f"token {token}"},
        connect_timeout=10,
        request_timeout=30,
    )


async def open_kernel(stack, base, token):
    r = await asyncio.to_thread(http, stack, "POST", base + "api/kernels", token, json={})
    assert r.status_code == 201, r.text
    path = f"{base}api/kernels/{r.json()['id']}/channels?session_id={uuid.uuid4().hex}"
    return await websocket_connect(ws_request(stack, path, token))


async def execute(conn, code):
    msg_id = uuid.uuid4().hex
    header = {
        "msg_id": msg_id,
        "username": "test",
        "session": uuid.uuid4().hex,
        "msg_type": "execute_request",
        "version": "5.3",
    }
    content = {"code": code, "silent": False}
    msg = {"header": header, "parent_header": {}, "metadata": {}, "content": content}
    await conn.write_message(json.dumps({**msg, "channel": "shell"}))
    async with asyncio.timeout(60):
        while True:
            raw = await conn.read_message()
            assert raw is not None, f"kernel websocket closed ({conn.close_code})"
            reply = json.loads(raw)
            if reply.get("parent_header", {}).get("msg_id") != msg_id:
                continue
            if reply["msg_type"] == "execute_result":
                return reply["content"]["data"]["text/plain"]
            if reply["msg_type"] == "error":
                raise AssertionError(reply["content"])


async def open_terminal(stack, base, token):
    r = await asyncio.to_thread(http, stack, "POST", base + "api/terminals", token)
    assert r.status_code == 200, r.text
    path = f"{base}terminals/websocket/{r.json()['name']}"
    conn = await websocket_connect(ws_request(stack, path, token))
    conn.path = path
    return conn


async def echo(conn):
    marker = uuid.uuid4().hex[:8]
    await conn.write_message(json.dumps(["stdin", f"echo {marker}-$((6*7))\r"]))
    seen = ""
    async with asyncio.timeout(30):
        while f"{marker}-42" not in seen:
            raw = await conn.read_message()
            assert raw is not None, f"terminal websocket closed ({conn.close_code})"
            kind, *rest = json.loads(raw)
            if kind == "stdout":
                seen += rest[0]


async def closed_after(conn, t0, timeout):
    """Seconds from t0 until the server closed ``conn`` (reading and dropping messages)."""
    async with asyncio.timeout(timeout):
        while await conn.read_message() is not None:
            pass
    return time.monotonic() - t0


async def assert_stays_open(*conns, seconds):
    results = await asyncio.gather(
        *(closed_after(c, time.monotonic(), seconds) for c in conns), return_exceptions=True
    )
    for conn, result in zip(conns, results, strict=True):
        assert isinstance(result, TimeoutError), f"closed ({conn.close_code} {conn.close_reason})"


def refused_after(stack, path, token, t0, timeout):
    """Seconds from t0 until an HTTP request with ``token`` is refused with 403."""
    deadline = t0 + timeout
    while time.monotonic() < deadline:
        r = http(stack, "GET", path, token)
        if r.status_code == 403:
            return time.monotonic() - t0
        assert r.status_code == 200, (r.status_code, r.text[:200])
        time.sleep(0.1)
    raise AssertionError(f"token still accepted {timeout} s after it was deleted")


def container_logs(stack):
    (c,) = [c for c in stack.containers(all=False) if c.labels["classhub.user"] == USER]
    return c.logs().decode(errors="replace")


def test_the_extension_sets_a_short_hub_auth_cache(stack, server):
    """HubOAuth took cache_max_age=5 from config (no fallback) and a deleted token stops
    working within it, for a token no websocket uses (so no re-check is involved)."""
    logs = container_logs(stack)
    assert STARTUP_LINE in logs, logs[-3000:]
    assert "did not take cache_max_age" not in logs
    token, token_id = new_token(stack, "http only")
    assert http(stack, "GET", server + "api/status", token).status_code == 200  # now cached
    t0 = time.monotonic()
    delete_token(stack, token_id)
    elapsed = refused_after(stack, server + "api/status", token, t0, 7)
    print(f"\nHTTP with the deleted token refused after {elapsed:.2f} s")
    assert token not in container_logs(stack)


async def test_deleting_the_token_closes_its_websockets(stack, server):
    token, token_id = new_token(stack)
    kernel = await open_kernel(stack, server, token)
    terminal = await open_terminal(stack, server, token)
    # JupyterLab also keeps the events websocket open (not a WebSocketMixin handler)
    events = await websocket_connect(ws_request(stack, server + "api/events/subscribe", token))
    assert await execute(kernel, "1+1") == "2"
    await echo(terminal)
    ok = await asyncio.to_thread(http, stack, "GET", server + "api/status", token)
    assert ok.status_code == 200  # the hub's "valid" answer is now fresh in the cache

    t0 = time.monotonic()
    await asyncio.to_thread(delete_token, stack, token_id)
    kernel_s, terminal_s, events_s, http_s = await asyncio.gather(
        closed_after(kernel, t0, 12),
        closed_after(terminal, t0, 12),
        closed_after(events, t0, 12),
        asyncio.to_thread(refused_after, stack, server + "api/status", token, t0, 7),
    )
    print(
        f"\nafter deleting the token: kernel websocket closed in {kernel_s:.2f} s,"
        f" terminal websocket in {terminal_s:.2f} s, events websocket in {events_s:.2f} s,"
        f" HTTP refused in {http_s:.2f} s"
    )
    assert max(kernel_s, terminal_s, events_s) <= 10  # the target: within 10 s
    for conn in (kernel, terminal, events):
        assert conn.close_code == 1008, conn.close_code
        assert conn.close_reason == "session ended; sign in again", conn.close_reason
    # a reconnect with the old token is refused at the handshake
    with pytest.raises(HTTPClientError) as err:
        await websocket_connect(ws_request(stack, terminal.path, token))
    assert err.value.code == 403
    logs = container_logs(stack)
    assert "classhub session guard: closing websocket" in logs
    assert token not in logs


async def test_websockets_with_a_valid_token_stay_open(stack, server):
    token, token_id = new_token(stack, "control")
    kernel = await open_kernel(stack, server, token)
    terminal = await open_terminal(stack, server, token)
    assert await execute(kernel, "1+1") == "2"
    await echo(terminal)
    await assert_stays_open(kernel, terminal, seconds=2.5 * CHECK_INTERVAL)
    assert await execute(kernel, "6*7") == "42"
    await echo(terminal)
    kernel.close()
    terminal.close()
    delete_token(stack, token_id)


async def test_websockets_stay_open_while_the_hub_does_not_answer(stack, server):
    """Fail open: a hub that does not answer (paused here, so each re-check times out)
    must not cut every student off. Once it answers again, a revoked token is caught."""
    token, token_id = new_token(stack, "hub outage")
    kernel = await open_kernel(stack, server, token)
    assert await execute(kernel, "1+1") == "2"
    os.kill(stack.hub.proc.pid, signal.SIGSTOP)
    try:
        await assert_stays_open(kernel, seconds=2.5 * CHECK_INTERVAL)
        assert await execute(kernel, "2+2") == "4"  # kernels do not need the hub
    finally:
        os.kill(stack.hub.proc.pid, signal.SIGCONT)
    logs = container_logs(stack)
    assert re.search(r"could not re-check \d+ websocket\(s\) with the hub .*no answer", logs)
    t0 = time.monotonic()
    await asyncio.to_thread(delete_token, stack, token_id)
    elapsed = await closed_after(kernel, t0, 12)
    print(f"\nafter the hub answered again, the revoked kernel websocket closed in {elapsed:.2f} s")
    assert kernel.close_code == 1008
    logs = container_logs(stack)
    assert "the hub answers re-checks again" in logs
    assert token not in logs
