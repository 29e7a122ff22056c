"""The hub's side of the one web layer (common/web): what its templates see and where it
serves the shared style sheet and script.

``hub/templates/page.html`` (which every hub page extends) renders the shared header
(``classhub/header.html``) with ``classhub_nav`` (the navigation of the signed-in
person's role, :func:`common.web.nav.nav_items`), ``classhub_brand`` (the name) and
``classhub_static`` (URLs of the shared files, which :class:`SharedStaticHandler` serves
at ``/hub/classhub/static/`` for the hub's pages and the services' pages alike).
"""

from __future__ import annotations

from collections.abc import Iterable

from tornado import web

from common import web as common_web
from common.web.nav import NavItem, nav_items, role_of


class HubNav:
    """``c.JupyterHub.template_vars["classhub_nav"]``: JupyterHub calls it with the
    signed-in user (or None) for every page and puts the answer in the template."""

    def __init__(self, services: Iterable[str]):
        self.services = tuple(services)

    def __call__(self, user) -> list[NavItem]:
        if user is None:
            return []
        roles = [getattr(r, "name", r) for r in (getattr(user, "roles", None) or ())]
        return nav_items(role_of(admin=bool(user.admin), roles=roles), self.services)


class HubStatic:
    """``c.JupyterHub.template_vars["classhub_static"]``: ``classhub_static(name, root)``,
    the versioned URL of a shared file below the deployment's base URL ``root`` (the
    templates' ``prefix``)."""

    def __call__(self, user):  # noqa: ARG002 - JupyterHub passes the user to template vars
        return lambda name, root: common_web.static_url(root, name)


class SharedStaticHandler(web.StaticFileHandler):
    """``/hub/classhub/static/<file>``: the shared style sheet and script of every page
    (a ``?v=`` URL is cached by browsers for ever; tornado's rules)."""


def handlers() -> list[tuple]:
    """For ``c.JupyterHub.extra_handlers`` (the hub adds its ``/hub`` prefix)."""
    return [
        (
            r"/" + common_web.STATIC_ROUTE + r"(.*)",
            SharedStaticHandler,
            {"path": str(common_web.STATIC_DIR)},
        )
    ]
