"""``GET <base_url>classhub/api/context``: what classhub's JupyterLab extension shows.

The Class panel, the top bar and the tab title of classhub's JupyterLab extension
(``images/labextension``, shipped in this package as ``labextension/``) name the class and
whose server it is, and find the class's folders. All of it comes from this server's own
environment, which the spawner set: the owner (``JUPYTERHUB_USER``), the server's name
(``JUPYTERHUB_SERVER_NAME``, a class server's is the class code), the class's code and
name (``CLASSHUB_CLASS_CODE``, ``CLASSHUB_CLASS_NAME``), and the hub's base URL (where
the services are). The person asking (``viewer``) is the one jupyter-server authenticated:
a teacher in a student's server sees that it is not theirs.

Nothing here holds or passes a credential: the answer is what the page's own server
already knows, to whoever may open the server. The assignments, Submit and grades come
from the grades service, which the browser calls with the student's own hub session (see
the admin guide's "JupyterLab extension" in "Security model"); material and feedback are
files in the class folder, read through the server's contents API.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping

from jupyter_server.base.handlers import APIHandler
from tornado import web

ROUTE = r"/classhub/api/context"
# a class code as the services take them (common/groups.py CODE_RE): 1 to 32
# lower-case letters, digits and dashes; anything else in the environment is not a class
_CODE = re.compile(r"[a-z0-9](?:[a-z0-9-]{0,30}[a-z0-9])?")
_NAME_MAX = 200


def server_context(environ: Mapping[str, str], viewer: str) -> dict:
    """The context of this server for ``viewer`` (plain data from ``environ``)."""
    owner = environ.get("JUPYTERHUB_USER", "")
    server_name = environ.get("JUPYTERHUB_SERVER_NAME", "")
    code = environ.get("CLASSHUB_CLASS_CODE", "") or server_name
    klass = None
    if _CODE.fullmatch(code):
        name = " ".join(environ.get("CLASSHUB_CLASS_NAME", "").split())[:_NAME_MAX] or code
        klass = {
            "code": code,
            "name": name,
            # the class folder's parts (services/grades/collect.py, services/files)
            "assignments_dir": f"{code}/assignments",
            "feedback_dir": f"{code}/feedback",
            "material_dir": f"{code}/material",
        }
    base = environ.get("JUPYTERHUB_BASE_URL", "/") or "/"
    if not base.endswith("/"):
        base += "/"
    return {
        "owner": owner,
        "server_name": server_name,
        "viewer": viewer,
        "own_server": bool(owner) and viewer == owner,
        "class": klass,
        "services_prefix": f"{base}services/",
    }


class ContextHandler(APIHandler):
    """The server's context for the signed-in person (read-only, no body)."""

    @web.authenticated
    def get(self):
        user = self.current_user
        viewer = getattr(user, "username", None) or getattr(user, "name", "") or ""
        self.set_header("Cache-Control", "no-store")
        self.finish(server_context(os.environ, viewer))


def load(serverapp) -> None:
    """Add the route under the server's base URL."""
    from jupyter_server.utils import url_path_join

    pattern = url_path_join(serverapp.base_url, ROUTE)
    serverapp.web_app.add_handlers(".*$", [(pattern, ContextHandler)])
