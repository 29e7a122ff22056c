"""classhub's jupyter-server extension for student servers, and the code its services run
on students' homes.

Enabled in the image's jupyter_server_config.d (``jpserver_extensions``). In the server it

* makes the server process non-dumpable, so the student's kernels and terminals (same
  uid) cannot read its memory or environment: see :mod:`.nodump`;
* ends a revoked sign-in session's access to the server within seconds: see
  :mod:`.session_guard`;
* answers classhub's JupyterLab extension (``labextension/``, installed beside it into
  ``share/jupyter/labextensions``) with the class and whose server it is: see
  :mod:`.context`.

The services never call the student's server (none of their credentials enters a
container): snapshots (:mod:`.snapshot`) and
material, releases and feedback (:mod:`.material`) are done by :mod:`.homectl` in the
services' helper container (image ``classhub/homes-helper``), which mounts the home. The
three share the careful file-system primitives of :mod:`.fsutil` (every folder opened with
``O_NOFOLLOW`` relative to its parent, no link ever followed).

This module only names the hooks; the guard is imported when jupyter-server links the
extension, so importing the package costs nothing at start-up. The image starts the server
with ``classhub-singleuser`` (:mod:`.start`): the garbage collector is off until the server
listens.
"""

import gc


def _jupyter_server_extension_points():
    # The earliest hook jupyter-server calls (while it discovers extensions): the server's
    # memory stops being readable by the student's other processes from here on.
    from .nodump import make_non_dumpable

    make_non_dumpable()
    return [{"module": "classhub_singleuser"}]


def _link_jupyter_server_extension(serverapp):
    from .nodump import make_non_dumpable

    make_non_dumpable(serverapp.log)  # again (idempotent), and said in the server's log
    # Linking runs before the server creates its identity provider (and with it the
    # HubOAuth instance that authenticates requests), the moment to set HubOAuth config.
    from .session_guard import link

    link(serverapp)


def _load_jupyter_server_extension(serverapp):
    from . import context
    from .session_guard import load

    load(serverapp)
    context.load(serverapp)


async def _start_jupyter_server_extension(serverapp):
    # Called (and awaited: jupyter-server 2 wants a coroutine) once the server listens:
    # what the start made is kept out of the collector's sight for good, and the
    # collector runs again (classhub_singleuser.start).
    if not gc.isenabled():
        gc.freeze()
        gc.enable()
        serverapp.log.info(
            "classhub: garbage collector on again (%d start-up objects frozen)",
            gc.get_freeze_count(),
        )
    # kernels started ahead (classhub_singleuser.kernelpool), now that the server listens
    start_pool = getattr(serverapp.kernel_manager, "start_pool", None)
    if start_pool is not None:
        start_pool()
