"""The one web layer of every page: the hub's pages and the classes, files and grades
services' pages share this package's layout, navigation, branding, style sheet and script.

- :mod:`common.web.nav`: the navigation list (:func:`~common.web.nav.nav_items`), the same
  items for a role on every page;
- :mod:`common.web.branding`: the name and logo in every page's header (``c.Branding``);
- ``templates/classhub/``: ``layout.html`` (the layout of the services' pages) and
  ``header.html`` (the header with the navigation, which the hub's ``page.html`` renders
  too);
- ``static/``: ``classhub.css`` and ``classhub.js`` (API calls, the file store's signed
  uploads and downloads, messages, buttons), served by the hub at ``/hub/classhub/static/``
  for every page (:data:`STATIC_ROUTE`). No page script makes a request or a busy button
  itself (ESLint, ``eslint.config.js``, fails ``make lint`` when one does).

Why two skeletons, one look: the hub's pages (``hub/templates/page.html``) extend
**JupyterHub's** ``page.html`` rather than ``layout.html``. JupyterHub's own pages (home,
token, admin, spawn, spawn pending, not running, login, errors) are JupyterHub's templates:
they extend ``page.html`` and fill its blocks, and their scripts need what it puts in every
page (``window.jhdata`` with the base URL, the user and the XSRF token; the require.js
configuration; Bootstrap's and jQuery's scripts; the error dialog). A layout of classhub's
own would have to copy all of that and follow it at every JupyterHub upgrade; extending it
keeps JupyterHub's pages working and replaces only their header (the ``nav_bar`` block) and
adds the message region, the style sheet and the script. The services' pages need none of
JupyterHub's page scripts, so ``layout.html`` is a small page of its own that renders the
same header and message region with the same style sheets (JupyterHub's and
``classhub.css``) and the same dark mode: JupyterHub's ``darkmode.js`` is loaded there too,
and the header's dark-mode button is on every page (the choice is kept in the browser for
the whole site, so the hub's and the services' pages change together).
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
