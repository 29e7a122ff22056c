"""The kernel started ahead (classhub_singleuser.kernelpool): real kernels (ipykernel)
under a real jupyter-server kernel manager, no server."""

from __future__ import annotations

import asyncio
import os

import pytest

from classhub_singleuser.kernelpool import PooledKernelManager, hand_over_code

pytestmark = pytest.mark.unit


def test_the_hand_over_code_quotes_the_folder_and_the_variables(tmp_path, monkeypatch):
    folder = tmp_path / 'a "b"\n c \U0001f600'  # quotes, a newline, an emoji
    folder.mkdir()
    session = str(folder / "x'y.ipynb")
    code = hand_over_code(str(folder), {"JPY_SESSION_NAME": session, "PATH": "/x"})
    assert "PATH" not in code  # only the notebook's own variables
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("JPY_SESSION_NAME", raising=False)
    namespace = {}
    exec(compile(code, "<hand-over>", "exec"), namespace)  # as the kernel runs it
    assert os.getcwd() == str(folder)
    assert os.environ["JPY_SESSION_NAME"] == session
    assert "chdir" not in hand_over_code(None, {})


async def _run(kc, code: str) -> str:
    """``code``'s printed output in the kernel behind ``kc``."""
    msg_id = kc.execute(code)
    out = []
    while True:
        msg = await asyncio.wait_for(kc.get_iopub_msg(), 30)
        if msg["parent_header"].get("msg_id") != msg_id:
            continue
        if msg["msg_type"] == "stream":
            out.append(msg["content"]["text"])
        if msg["msg_type"] == "status" and msg["content"]["execution_state"] == "idle":
            return "".join(out)


@pytest.fixture
async def manager(tmp_path):
    (tmp_path / "course" / "week1").mkdir(parents=True)
    (tmp_path / "course" / "week1" / "data.csv").write_text("a,b\n")
    km = PooledKernelManager(
        root_dir=str(tmp_path), connection_dir=str(tmp_path), pool_size=1, pool_delay=0.0
    )
    try:
        yield km, tmp_path
    finally:
        await km.shutdown_all(now=True)


async def _pool_filled(km, timeout: float = 60.0) -> str:
    async def wait():
        while not km._pool:
            await asyncio.sleep(0.1)

    await asyncio.wait_for(wait(), timeout)
    return km._pool[0]


async def test_a_notebook_gets_the_kernel_started_ahead_in_its_own_folder(manager):
    km, root = manager
    before = km.last_kernel_activity
    km.start_pool()
    ahead = await _pool_filled(km)
    await asyncio.sleep(1.0)  # the kernel's first messages (status: starting, idle)
    # hidden from the kernels list, and its start and messages are nobody's activity
    assert km.list_kernels() == []
    assert km.last_kernel_activity == before

    got = await km.start_kernel(
        path="course/week1/lab.ipynb",
        kernel_name=km.default_kernel_name,
        env={"JPY_SESSION_NAME": str(root / "course/week1/lab.ipynb")},
    )
    assert got == ahead
    assert [(k["id"], k["execution_state"]) for k in km.list_kernels()] == [(ahead, "idle")]
    kc = km.get_kernel(got).client()
    kc.start_channels()
    try:
        await kc.wait_for_ready(timeout=30)
        where = await _run(
            kc,
            "import os; print(os.getcwd()); print(open('data.csv').read().strip());"
            "print(os.environ['JPY_SESSION_NAME'])",
        )
    finally:
        kc.stop_channels()
    cwd, data, session = where.strip().splitlines()
    assert os.path.realpath(cwd) == os.path.realpath(root / "course" / "week1")
    assert data == "a,b" and session.endswith("course/week1/lab.ipynb")
    # handed over: its messages are the student's activity from now on
    assert km.last_kernel_activity > before
    # a restart (the student's, or after a crash) comes back in the notebook's folder
    await km.restart_kernel(got)
    kc = km.get_kernel(got).client()
    kc.start_channels()
    try:
        await kc.wait_for_ready(timeout=30)
        where = await _run(
            kc, "import os; print(os.getcwd()); print(os.environ.get('JPY_SESSION_NAME'))"
        )
    finally:
        kc.stop_channels()
    cwd, session = where.strip().splitlines()
    assert os.path.realpath(cwd) == os.path.realpath(root / "course" / "week1")
    assert session.endswith("course/week1/lab.ipynb")
    # and the pool fills again with another kernel
    again = await _pool_filled(km)
    assert again != ahead and again not in [k["id"] for k in km.list_kernels()]


async def test_a_dead_pooled_kernel_is_replaced_by_a_fresh_start(manager):
    km, root = manager
    km.start_pool()
    ahead = await _pool_filled(km)
    await km.shutdown_kernel(ahead, now=True)  # it died
    got = await km.start_kernel(path="course", kernel_name=km.default_kernel_name)
    assert got != ahead and got in km
    assert [k["id"] for k in km.list_kernels()] == [got]


async def test_without_a_pool_nothing_is_started_ahead(tmp_path, monkeypatch):
    monkeypatch.delenv("CLASSHUB_KERNEL_POOL", raising=False)
    km = PooledKernelManager(root_dir=str(tmp_path), connection_dir=str(tmp_path), pool_delay=0.0)
    assert km.pool_size == 0
    km.start_pool()
    await asyncio.sleep(0.2)
    assert km._pool == [] and km.list_kernel_ids() == []
    monkeypatch.setenv("CLASSHUB_KERNEL_POOL", "2")
    assert PooledKernelManager(root_dir=str(tmp_path)).pool_size == 2
    monkeypatch.setenv("CLASSHUB_KERNEL_POOL", "lots")
    assert PooledKernelManager(root_dir=str(tmp_path)).pool_size == 0
