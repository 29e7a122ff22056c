"""The one web layer of every page: the hub's pages and the classes, files and grades
services' pages share this package's layout, navigation, branding, style sheet and script.

- :mod:`common.web.nav`: the navigation list (:func:`~common.web.nav.nav_items`), the same
  items for a role on every page;
- :mod:`common.web.branding`: the name and logo in every page's header (``c.Branding``);
- ``templates/classhub/``: ``layout.html`` (the layout of the services' pages) and
  ``header.html`` (the header with the navigation, which the hub's ``page.html`` renders
  too);
- ``static/``: ``classhub.css`` and ``classhub.js`` (API calls, messages, buttons), served
  by the hub at ``/hub/classhub/static/`` for every page (:data:`STATIC_ROUTE`).
"""

from __future__ import annotations

import functools
import hashlib
from pathlib import Path

#: the folder of the shared templates (put it on every Jinja loader: the hub's
#: ``template_paths`` and each service's)
TEMPLATES_DIR = Path(__file__).parent / "templates"
#: the folder of the shared style sheet and script
STATIC_DIR = Path(__file__).parent / "static"
#: where the hub serves STATIC_DIR, below its own prefix (``/hub/``)
STATIC_ROUTE = "classhub/static/"


@functools.cache
def static_version(name: str, static_dir: Path = STATIC_DIR) -> str:
    """A short hash of a shared static file, so its URL changes when the file does."""
    return hashlib.sha256((static_dir / name).read_bytes()).hexdigest()[:12]


def static_url(root: str, name: str) -> str:
    """The URL of shared static file ``name``, served by the hub, with its version
    (``root``: the deployment's base URL, ``/`` by default)."""
    return f"{root}hub/{STATIC_ROUTE}{name}?v={static_version(name)}"
