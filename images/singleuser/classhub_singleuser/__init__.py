"""classhub's jupyter-server extension for student servers.

Enabled in the image's jupyter_server_config.d (``jpserver_extensions``). It

* ends a revoked sign-in session's access to the server (issue 3): see
  :mod:`.session_guard`;
* receives class material pushed by the files service
  (``POST {base_url}classhub/material?dest=<folder>&label=<label>``, body a zip) and merges
  it into ``~/<dest>`` without destroying the student's work: see :mod:`.material`;
* hands a snapshot of one folder to the grades service when the student submits or a
  teacher collects (``GET {base_url}classhub/snapshot?folder=<folder>``, answer a
  deterministic zip with its content hash in ``X-Classhub-Sha256``): see :mod:`.snapshot`;
* makes the server process non-dumpable, so the student's kernels and terminals (same
  uid) cannot read its memory or environment: see :mod:`.nodump`.

This module only names the hooks; the guard is imported when jupyter-server links the
extension and the material and snapshot handlers when it loads it, so importing the
package costs nothing at start-up (both modules defer zipfile to their first request).
"""


def _jupyter_server_extension_points():
    # The earliest hook jupyter-server calls (while it discovers extensions): the server's
    # memory stops being readable by the student's other processes from here on.
    from .nodump import make_non_dumpable

    make_non_dumpable()
    return [{"module": "classhub_singleuser"}]


def _link_jupyter_server_extension(serverapp):
    from .nodump import make_non_dumpable

    make_non_dumpable(serverapp.log)  # again, in case discovery ran in another way
    # Linking runs before the server creates its identity provider (and with it the
    # HubOAuth instance that authenticates requests), the moment to set HubOAuth config.
    from .session_guard import link

    link(serverapp)


def _load_jupyter_server_extension(serverapp):
    from . import material, snapshot
    from .session_guard import load

    load(serverapp)
    material.load(serverapp)
    snapshot.load(serverapp)
