import asyncio

import pytest

from spawner.readiness import SpawnError, describe_exit, format_bytes, wait_until_ready

pytestmark = pytest.mark.unit


class FakeClock:
    def __init__(self):
        self.t = 0.0

    def __call__(self):
        return self.t


def scripted(states, clock=None):
    """inspect() returning each state in turn; next_event() advancing a fake clock."""
    it = iter(states)
    calls = {"inspect": 0, "waits": []}

    async def inspect():
        calls["inspect"] += 1
        return next(it)

    async def next_event(timeout):
        calls["waits"].append(timeout)
        if clock:
            clock.t += timeout
        await asyncio.sleep(0)

    return inspect, next_event, calls


def running(health):
    return {"State": {"Running": True, "Health": {"Status": health}}}


async def test_ready_when_docker_says_healthy():
    inspect, next_event, calls = scripted(
        [running("starting"), running("starting"), running("healthy")]
    )
    await wait_until_ready(inspect=inspect, next_event=next_event, timeout=5)
    assert calls["inspect"] == 3
    assert len(calls["waits"]) == 2


async def test_oom_gives_clear_message():
    inspect, next_event, _ = scripted([{"State": {"Running": False, "OOMKilled": True}}])
    with pytest.raises(SpawnError, match=r"ran out of memory \(64M\)"):
        await wait_until_ready(
            inspect=inspect, next_event=next_event, timeout=5, mem_limit=64 * 1024**2
        )


async def test_unhealthy():
    inspect, next_event, _ = scripted([running("unhealthy")])
    with pytest.raises(SpawnError, match="failed its health check"):
        await wait_until_ready(inspect=inspect, next_event=next_event, timeout=5)


async def test_timeout_uses_the_clock_not_real_time():
    clock = FakeClock()
    inspect, next_event, calls = scripted([running("starting")] * 100, clock)
    with pytest.raises(SpawnError, match="did not become ready within 7 seconds"):
        await wait_until_ready(
            inspect=inspect, next_event=next_event, timeout=7, clock=clock, recheck_every=2
        )
    # waits in slices of at most recheck_every, never past the deadline
    assert calls["waits"] == [2, 2, 2, 1]


def test_messages():
    assert "exit code 3" in describe_exit({"ExitCode": 3}, None)
    assert format_bytes(25165824) == "24M"
    assert format_bytes(1024**3) == "1G"
    assert format_bytes("2G") == "2G"
