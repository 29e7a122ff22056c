"""classhub_singleuser.start: the garbage collector off while the server starts, and back
on (with the start's objects frozen) when jupyter-server starts the extension."""

import asyncio
import gc
import inspect
import logging
import sys
import types

import pytest

import classhub_singleuser
from classhub_singleuser import start

pytestmark = pytest.mark.unit


@pytest.fixture
def collector():
    was = gc.isenabled()
    yield
    gc.unfreeze()
    if was:
        gc.enable()
    else:
        gc.disable()


def test_main_starts_the_hub_server_with_the_collector_off(monkeypatch, collector):
    seen = {}

    def singleuser():
        seen["enabled"] = gc.isenabled()

    monkeypatch.setitem(
        sys.modules, "jupyterhub.singleuser", types.SimpleNamespace(main=singleuser)
    )
    timers = []

    class Timer:
        def __init__(self, seconds, function):
            timers.append((seconds, function))
            self.daemon = False

        def start(self):
            timers.append(("started", self.daemon))

    monkeypatch.setattr(start.threading, "Timer", Timer)
    start.main()
    assert seen == {"enabled": False}
    # the fallback that turns it on again should the extension never start
    assert timers == [(start.FALLBACK_SECONDS, gc.enable), ("started", True)]


def test_the_extension_turns_it_on_again_and_freezes_the_start(caplog, collector):
    gc.disable()
    junk = [object() for _ in range(100)]  # noqa: F841 (objects made during the "start")
    pools = []
    app = types.SimpleNamespace(
        log=logging.getLogger("test-start"),
        kernel_manager=types.SimpleNamespace(start_pool=lambda: pools.append("started")),
    )
    # jupyter-server 2 awaits the hook: a plain function failed there ("object NoneType
    # can't be used in 'await' expression", after it had run)
    assert inspect.iscoroutinefunction(classhub_singleuser._start_jupyter_server_extension)
    with caplog.at_level(logging.INFO, "test-start"):
        asyncio.run(classhub_singleuser._start_jupyter_server_extension(app))
    assert gc.isenabled()
    assert gc.get_freeze_count() > 0
    assert "garbage collector on again" in caplog.text
    assert pools == ["started"]  # kernels started ahead once the server listens
    # later starts of the hook (none expected) change nothing
    frozen = gc.get_freeze_count()
    asyncio.run(classhub_singleuser._start_jupyter_server_extension(app))
    assert gc.get_freeze_count() == frozen
