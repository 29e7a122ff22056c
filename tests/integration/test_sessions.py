"""Kernels and terminals over websockets through Traefik; hub restarts keep servers."""

import asyncio
import json

import pytest
from tornado.httpclient import HTTPRequest
from tornado.websocket import websocket_connect

from harness.stack import wait_for
from tests.integration.ws_helpers import execute_request

pytestmark = pytest.mark.integration


def ws_request(stack, path):
    return HTTPRequest(
        stack.url.replace("http://", "ws://") + path,
        headers={"Authorization": f"token {stack.token}"},
        connect_timeout=10,
        request_timeout=30,
    )


async def run_code(stack, base, code):
    r = await asyncio.to_thread(
        lambda: __import__("requests").post(
            stack.url + base + "api/kernels",
            headers={"Authorization": f"token {stack.token}"},
            json={"name": "python3"},
            timeout=30,
        )
    )
    assert r.status_code == 201, r.text
    kernel = r.json()["id"]
    conn = await websocket_connect(ws_request(stack, f"{base}api/kernels/{kernel}/channels"))
    msg_id, message = execute_request(code)
    conn.write_message(message)
    try:
        async with asyncio.timeout(60):
            while True:
                raw = await conn.read_message()
                assert raw is not None, "kernel websocket closed"
                msg = json.loads(raw)
                if msg.get("parent_header", {}).get("msg_id") != msg_id:
                    continue
                if msg["msg_type"] == "execute_result":
                    return msg["content"]["data"]["text/plain"]
                if msg["msg_type"] == "error":
                    raise AssertionError(msg["content"])
    finally:
        conn.close()


async def test_kernel_runs_code_over_websocket(stack):
    stack.create_user("kim")
    await asyncio.to_thread(stack.spawn, "kim")
    assert await run_code(stack, "/user/kim/", "1+1") == "2"


async def test_terminal_over_websocket(stack):
    import requests

    stack.create_user("tess")
    await asyncio.to_thread(stack.spawn, "tess")
    r = requests.post(
        stack.url + "/user/tess/api/terminals",
        headers={"Authorization": f"token {stack.token}"},
        timeout=30,
    )
    assert r.status_code == 200, r.text
    name = r.json()["name"]
    conn = await websocket_connect(ws_request(stack, f"/user/tess/terminals/websocket/{name}"))
    conn.write_message(json.dumps(["stdin", "echo classhub-$((6*7)) $(id -u)\r"]))
    seen = ""
    async with asyncio.timeout(30):
        while "classhub-42 1000" not in seen:
            raw = await conn.read_message()
            assert raw is not None, "terminal websocket closed"
            kind, *rest = json.loads(raw)
            if kind == "stdout":
                seen += rest[0]
    conn.close()


def test_hub_restart_keeps_servers_and_routes(stack):
    stack.create_user("rita")
    stack.spawn("rita")
    before = {c.name: c.id for c in stack.containers(all=False)}
    stack.restart_hub()
    model = stack.server_model("rita")
    assert model and model["ready"], model
    assert stack.user_get("/user/rita/api/status").status_code == 200
    after = {c.name: c.id for c in stack.containers(all=False)}
    assert after == before
    routes = stack.api("GET", "/proxy").json()
    assert "/user/rita/" in routes
    # the hub can still stop it after the restart
    stack.stop("rita")
    # the label route goes with the container, within Traefik's throttle
    wait_for(lambda: "/user/rita/" not in stack.api("GET", "/proxy").json(), 5, what="route gone")
    r = stack.user_get("/user/rita/api/status")
    assert r.status_code in (302, 303, 404, 424, 503), r.status_code
    assert "kernels" not in r.text
