"""A kernel started ahead, so that opening a notebook in a warm server finds one running.

Warm before class (the classes service starts a class's servers minutes before it meets)
takes the server start out of a student's wait, but opening the first notebook still
started a Python kernel: about half a CPU-second each, thirty at once on a small machine
when a class signs in together. :class:`PooledKernelManager` keeps ``pool_size`` kernels
of the default kernel spec started beside an idle server (filled ``pool_delay`` seconds
after the server listens, and again after each hand-over), and gives one out instead of
starting a kernel when a notebook or console asks for the default kernel:

* the kernel moves into the notebook's folder and gets the notebook's variables
  (``JPY_SESSION_NAME``...) with one silent request before it is handed over, so
  ``open("data.csv")`` finds the notebook's neighbour as with a kernel started for it;
* a kernel in the pool is nobody's activity: it is left out of the kernels list
  (JupyterLab shows none the student did not start) and its messages do not count as the
  server's activity (an unused warm server is still stopped as unused);
* a pooled kernel that died is dropped and replaced; any other request (another kernel
  spec, a given kernel id) starts a kernel as before.

Set it with ``c.ServerApp.kernel_manager_class`` (the image's
``jupyter_server_config.d/zz-classhub.json``); the pool's size comes from
``CLASSHUB_KERNEL_POOL`` (the spawner's ``kernel_pool``; 0: no pool).
"""

from __future__ import annotations

import asyncio
import os
import uuid

from jupyter_server._tz import utcnow
from jupyter_server.services.kernels.kernelmanager import AsyncMappingKernelManager
from traitlets import Float, Int, default

#: the notebook's variables a kernel started for it would have had (jupyter-server's
#: session manager passes these in the kernel's environment)
_SESSION_VARS = ("JPY_SESSION_NAME",)


def hand_over_code(cwd: str | None, env: dict[str, str]) -> str:
    """The silent request that makes a pooled kernel look started for its notebook: its
    working folder, the notebook's variables and IPython's ``__session__`` (values as
    Python string literals, ``repr``: no path or name can break out of them, whatever
    characters it has)."""
    lines = ["import os as _classhub_os"]
    if cwd:
        lines.append(f"_classhub_os.chdir({cwd!r})")
    for name in _SESSION_VARS:
        if name in env:
            lines.append(f"_classhub_os.environ[{name!r}] = {env[name]!r}")
    session = env.get("JPY_SESSION_NAME")
    if session:
        lines += [
            "try:",
            f"    get_ipython().user_ns['__session__'] = {session!r}",
            "except NameError:",
            "    pass",
        ]
    lines.append("del _classhub_os")
    return "\n".join(lines)


class PooledKernelManager(AsyncMappingKernelManager):
    """jupyter-server's kernel manager with ``pool_size`` default kernels started ahead."""

    pool_size = Int(
        config=True,
        help="""How many kernels of the default kernel spec to keep started ahead (0: none).
        Each costs an idle kernel's memory (about 50 MB) while the server runs. Set from
        ``CLASSHUB_KERNEL_POOL``.

        Example: ``c.PooledKernelManager.pool_size = 1``
        """,
    )

    @default("pool_size")
    def _pool_size_default(self):
        try:
            return max(0, min(4, int(os.environ.get("CLASSHUB_KERNEL_POOL", "0"))))
        except ValueError:
            return 0

    pool_delay = Float(
        3.0,
        config=True,
        help="""Seconds after the server listens (and after each hand-over) before the pool
        is filled, so that a kernel's start never competes with the first page loads.

        Example: ``c.PooledKernelManager.pool_delay = 3``
        """,
    )

    hand_over_timeout = Float(
        10.0,
        config=True,
        help="""Seconds a pooled kernel may take to move into the notebook's folder; a
        kernel that takes longer is shut down and a new one started instead.

        Example: ``c.PooledKernelManager.hand_over_timeout = 10``
        """,
    )

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self._pool: list[str] = []
        self._pooling: set[str] = set()  # started for the pool, not handed over yet
        self._fill_task: asyncio.Task | None = None

    # ----- filling

    def start_pool(self) -> None:
        """Fill the pool after ``pool_delay`` (called once the server listens)."""
        self._refill_soon()

    def _refill_soon(self) -> None:
        if self.pool_size <= 0 or (self._fill_task and not self._fill_task.done()):
            return
        self._fill_task = asyncio.ensure_future(self._fill())

    async def _fill(self) -> None:
        await asyncio.sleep(self.pool_delay)
        while len(self._pool) < self.pool_size:
            # its id is known before it starts: its activity is never watched as use
            kernel_id = str(uuid.uuid4())
            self._pooling.add(kernel_id)
            try:
                await super().start_kernel(
                    kernel_id=kernel_id, kernel_name=self.default_kernel_name
                )
            except Exception as e:  # noqa: BLE001 - a pool that cannot fill just stays empty
                self._pooling.discard(kernel_id)
                self.log.warning("classhub: no kernel started ahead (%s)", type(e).__name__)
                return
            self._pool.append(kernel_id)
            self.log.info("classhub: a kernel is ready ahead (%s)", kernel_id)

    def start_watching_activity(self, kernel_id):
        # the kernel of a pool is not the student's activity until it is handed over
        if kernel_id in self._pooling:
            return
        super().start_watching_activity(kernel_id)

    # ----- handing out

    async def start_kernel(self, *, kernel_id=None, path=None, **kwargs):
        name = kwargs.get("kernel_name") or self.default_kernel_name
        if kernel_id is None and name == self.default_kernel_name:
            while self._pool:
                pooled = self._pool.pop(0)
                if await self._hand_over(pooled, path, kwargs.get("env") or {}):
                    self._refill_soon()
                    return pooled
        started = await super().start_kernel(kernel_id=kernel_id, path=path, **kwargs)
        self._refill_soon()
        return started

    async def _hand_over(self, kernel_id: str, path, env: dict) -> bool:
        """Move the pooled kernel into the notebook's folder; False (and the kernel shut
        down) when it is gone or does not answer."""
        if kernel_id not in self:
            self._pooling.discard(kernel_id)
            return False
        cwd = self.cwd_for_path(path, env=env) if path is not None else None
        client = self.get_kernel(kernel_id).client()
        client.start_channels()
        try:
            msg_id = client.execute(
                hand_over_code(cwd, env), silent=True, store_history=False, allow_stdin=False
            )
            await asyncio.wait_for(self._reply(client, msg_id), self.hand_over_timeout)
        except Exception as e:  # noqa: BLE001 - a dead or stuck kernel: start another
            self.log.warning("classhub: kernel %s not handed over (%s)", kernel_id, e)
            self._pooling.discard(kernel_id)
            try:
                await self.shutdown_kernel(kernel_id, now=True)
            except Exception:  # noqa: BLE001, S110 - already gone
                pass
            return False
        finally:
            client.stop_channels()
        self._pooling.discard(kernel_id)
        # from now on as a kernel started for this notebook: idle, just used, watched, and
        # a restart (the student's, or after a crash) starts it in the notebook's folder
        # with its variables, as jupyter-client restarts from the launch arguments
        kernel = self.get_kernel(kernel_id)
        launch = getattr(kernel, "_launch_args", None)
        if isinstance(launch, dict):
            if cwd:
                launch["cwd"] = cwd
            launch["env"] = {**os.environ, **(launch.get("env") or {}), **env}
        kernel.execution_state = "idle"
        kernel.last_activity = self.last_kernel_activity = utcnow()
        super().start_watching_activity(kernel_id)
        self.log.info("classhub: kernel %s handed over (started ahead)", kernel_id)
        return True

    @staticmethod
    async def _reply(client, msg_id: str) -> None:
        while True:
            reply = await client.get_shell_msg()
            if reply.get("parent_header", {}).get("msg_id") != msg_id:
                continue
            if reply["content"].get("status") != "ok":
                raise RuntimeError(reply["content"].get("ename", "error"))
            return

    async def _async_shutdown_all(self, now=False):
        # no kernel starts ahead while the server stops; one starting now is let finish
        # (cancelled midway, jupyter-client would keep a half-registered kernel)
        self.pool_size = 0
        if self._fill_task and not self._fill_task.done():
            try:
                await asyncio.wait_for(asyncio.shield(self._fill_task), 60)
            except Exception as e:  # noqa: BLE001 - stopping anyway (a timeout included)
                self.log.debug("classhub: the kernel starting ahead ended with %r", e)
        await super()._async_shutdown_all(now=now)

    shutdown_all = _async_shutdown_all

    def list_kernels(self):
        # a kernel nobody asked for is not shown (JupyterLab's running kernels)
        return [k for k in super().list_kernels() if k["id"] not in self._pooling]
