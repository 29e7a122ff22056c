"""Links to the hub's own static files (its style sheet) from a service's pages.

The hub serves ``/hub/static/...`` with ``Cache-Control: no-cache`` unless the URL carries
``?v=``, so a page that links the bare URL pays a render-blocking revalidation round trip
to the hub on every load. The hub's own pages add ``?v=<version>`` (tornado's
``static_url``); services run from the same installation of JupyterHub, so they ask
tornado for the same version and the browser caches the file as it does for the hub's pages.
"""

from __future__ import annotations

import functools
import os

from tornado.web import StaticFileHandler


@functools.cache
def _version(static_dir: str, name: str) -> str:
    return StaticFileHandler.get_version({"static_path": static_dir}, name) or ""


def hub_static_url(hub_prefix: str, name: str, static_dir: str | None = None) -> str:
    """``<hub_prefix>hub/static/<name>?v=<version>``, the URL the hub's ``static_url`` makes
    (unversioned, so only uncached, if the file is not where JupyterHub installs it)."""
    if static_dir is None:
        from jupyterhub._data import DATA_FILES_PATH

        static_dir = os.path.join(DATA_FILES_PATH, "static")
    version = _version(static_dir, name)
    url = f"{hub_prefix}hub/static/{name}"
    return f"{url}?v={version}" if version else url
