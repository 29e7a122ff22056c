"""Kernel and terminal websockets opened the way a browser does: with its cookies."""

import json

import requests
from tornado.httpclient import HTTPRequest
from tornado.websocket import websocket_connect

from harness.kernel import execute_request


def cookie_header(browser: requests.Session, path: str) -> str:
    """The Cookie header the browser would send to ``path``."""
    return "; ".join(
        f"{c.name}={c.value}" for c in browser.cookies if path.startswith(c.path or "/")
    )


async def _ws(stack, path: str, cookies: str):
    return await websocket_connect(
        HTTPRequest(
            stack.url.replace("http://", "ws://") + path,
            headers={"Cookie": cookies},
            connect_timeout=10,
            request_timeout=30,
        )
    )


async def open_kernel_ws(stack, base: str, cookies: str):
    """Start a kernel with the service token, then attach to it with the browser's cookies;
    runs 1+1 to prove the websocket works."""
    r = requests.post(
        stack.url + base + "api/kernels",
        headers={"Authorization": f"token {stack.token}"},
        json={"name": "python3"},
        timeout=30,
    )
    assert r.status_code == 201, r.text
    conn = await _ws(stack, f"{base}api/kernels/{r.json()['id']}/channels", cookies)
    msg_id, message = execute_request("1+1")
    conn.write_message(message)
    while True:
        raw = await conn.read_message()
        assert raw is not None, "kernel websocket closed before answering"
        msg = json.loads(raw)
        if (
            msg.get("parent_header", {}).get("msg_id") == msg_id
            and msg["msg_type"] == "execute_result"
        ):
            assert msg["content"]["data"]["text/plain"] == "2"
            return conn


async def open_terminal_ws(stack, base: str, cookies: str):
    r = requests.post(
        stack.url + base + "api/terminals",
        headers={"Authorization": f"token {stack.token}"},
        timeout=30,
    )
    assert r.status_code == 200, r.text
    conn = await _ws(stack, f"{base}terminals/websocket/{r.json()['name']}", cookies)
    conn.write_message(json.dumps(["stdin", "echo ws-$((6*7))\r"]))
    seen = ""
    while "ws-42" not in seen:
        raw = await conn.read_message()
        assert raw is not None, "terminal websocket closed before answering"
        kind, *rest = json.loads(raw)
        if kind == "stdout":
            seen += rest[0]
    return conn
