"""Fixtures of the single-user package's tests.

The extension's tests run a real jupyter-server in this process with pytest-jupyter's
fixtures (``jp_serverapp``, ``jp_fetch``, ``jp_ws_fetch``, ...). They are imported into
this conftest rather than registered as a plugin (``pytest_plugins``), so that they, and
pytest-jupyter's autouse fixtures and hooks, apply to this folder only: the rest of the
suite runs its coroutines on pytest-asyncio's loop.

The server runs on a loop of its own (:func:`jp_asyncio_loop`). Tests that talk to it are
plain functions that drive that loop with ``run`` (pytest-asyncio would run a coroutine
test on its own loop, where the server is not).
"""

import asyncio

import pytest
from pytest_jupyter.jupyter_server import *  # noqa: F403


@pytest.fixture
def jp_asyncio_loop():
    """A fresh event loop for the server of one test, made current while the test runs
    (tornado's IOLoop.current() is the server's loop), closed after it; whatever loop was
    current before is current again."""
    policy = asyncio.get_event_loop_policy()
    try:
        previous = policy.get_event_loop()
    except RuntimeError:
        previous = None
    loop = asyncio.new_event_loop()
    asyncio.set_event_loop(loop)
    yield loop
    loop.close()
    asyncio.set_event_loop(previous)


@pytest.fixture
def run(jp_asyncio_loop):
    """``run(coroutine)``: its result, on the server's loop."""
    return jp_asyncio_loop.run_until_complete
