import asyncio

import pytest
from tornado.httpserver import HTTPServer
from tornado.netutil import bind_sockets
from tornado.web import Application, RequestHandler

from spawner.readiness import SpawnError, describe_exit, wait_until_ready

pytestmark = pytest.mark.unit


class Ok(RequestHandler):
    def get(self):
        self.write({"version": "x"})


@pytest.fixture
async def server():
    sockets = bind_sockets(0, "127.0.0.1")
    srv = HTTPServer(Application([(r"/api", Ok)]))
    srv.add_sockets(sockets)
    yield f"http://127.0.0.1:{sockets[0].getsockname()[1]}/api"
    srv.stop()


async def test_ready_when_answering_and_healthy(server):
    states = iter(["starting", "starting", "healthy"])

    async def inspect():
        return {"State": {"Running": True, "Health": {"Status": next(states, "healthy")}}}

    await wait_until_ready(server_url=server, inspect=inspect, timeout=5, poll_interval=0.01)


async def test_oom_gives_clear_message():
    async def inspect():
        return {"State": {"Running": False, "OOMKilled": True, "ExitCode": 137}}

    with pytest.raises(SpawnError, match="ran out of memory \\(64M\\)"):
        await wait_until_ready(
            server_url="http://127.0.0.1:9/api", inspect=inspect, timeout=5, mem_limit="64M"
        )


async def test_timeout_message():
    async def inspect():
        return {"State": {"Running": True, "Health": {"Status": "starting"}}}

    with pytest.raises(SpawnError, match="did not become ready within 1 seconds"):
        await wait_until_ready(
            server_url="http://127.0.0.1:9/api", inspect=inspect, timeout=1, poll_interval=0.05
        )


def test_exit_message():
    assert "exit code 3" in describe_exit({"ExitCode": 3}, None)
    assert asyncio  # keep import for loop fixtures


def test_format_bytes():
    from spawner.readiness import format_bytes

    assert format_bytes(25165824) == "24M"
    assert format_bytes(1024**3) == "1G"
    assert format_bytes("2G") == "2G"
