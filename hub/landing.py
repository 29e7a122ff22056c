"""The landing page after sign-in, ``/hub/classhub/landing``, and what the hub's home page
may offer (``common.landing`` decides; this module reads the hub's database).

``c.JupyterHub.default_url`` is :func:`default_url` (JupyterHub's documented hook, called
with the request's handler): a signed-in person without a ``next`` address goes to the
landing page, which looks at their role and classes and redirects. A ``next`` address
(for instance a class page a person was sent to sign in from) wins: JupyterHub's
``get_next_url`` uses it before the default, and refuses off-site ones.
"""

from __future__ import annotations

from jupyterhub import orm
from jupyterhub.handlers import BaseHandler
from jupyterhub.utils import url_path_join
from tornado import web

from common.classenv import ClassRefused, resolve_class
from common.groups import PROPERTY, class_code, class_group
from common.landing import MY_CLASSES, ClassChoice, landing_path, may_start_default_server
from common.web.nav import role_of

ROUTE = "classhub/landing"


def default_url(handler) -> str:
    """``c.JupyterHub.default_url``: the landing page for a signed-in person; for nobody
    an empty string, which keeps JupyterHub's own behaviour (the sign-in page)."""
    if handler.current_user is None:
        return ""
    return url_path_join(handler.hub.base_url, ROUTE)


def person_role(user) -> str:
    """classhub's role of a hub user (``admin``, ``teacher``, ``student``)."""
    roles = [getattr(r, "name", r) for r in (getattr(user, "roles", None) or ())]
    return role_of(admin=bool(user.admin), roles=roles)


def student_default_server(user) -> bool:
    """The admin's setting ``ClassroomSpawner.student_default_server`` (True for a
    spawner that has no such setting: it has no class servers either)."""
    return bool(getattr(user.spawner, "student_default_server", True))


def class_choices(user) -> list[ClassChoice]:
    """The classes ``user`` is a student of, from their ``class-<code>`` groups."""
    choices = []
    for group in user.groups:
        code = class_code(group.name)
        if not code:
            continue
        data = (group.properties or {}).get(PROPERTY) or {}
        choices.append(ClassChoice(code=code, archived=bool(data.get("archived"))))
    return choices


class LandingHandler(BaseHandler):
    """Redirect the signed-in person to where they start (``common.landing``)."""

    @web.authenticated
    def get(self):
        user = self.current_user
        path = landing_path(
            user.name,
            person_role(user),
            class_choices(user),
            student_default_server=student_default_server(user),
        )
        if path == MY_CLASSES and "classes" not in self.services:
            path = "hub/home"  # a hub without the classes service (some test set-ups)
        self.log.info("Landing %s on %s", user.name, path)
        self.redirect(url_path_join(self.base_url, path))


class ServerOffers:
    """``c.JupyterHub.template_vars["classhub_offers"]``: JupyterHub calls it with the
    signed-in user for every page; the home page offers only the servers the person may
    start (``default``: their personal server; ``named``: free-form named servers, never
    when named servers are class servers, which start from My classes)."""

    def __call__(self, user) -> dict:
        if user is None:
            return {"default": False, "named": False, "refused": {}}
        class_servers = getattr(user.spawner, "class_servers_only", False)
        return {
            "default": may_start_default_server(
                person_role(user), student_default_server=student_default_server(user)
            ),
            "named": not class_servers,
            "refused": refused_class_servers(user) if class_servers else {},
        }


def refused_class_servers(user) -> dict[str, str]:
    """``{server name: why}`` for the person's class servers they may not start (a class
    they left, an archived or deleted one): the home page shows the reason instead of a
    start button that would end on a 403 page. The same rule the spawner enforces
    (:func:`common.classenv.resolve_class`)."""
    member_of = {g.name for g in user.groups}
    refused = {}
    for name in user.orm_user.orm_spawners:
        if not name:
            continue
        group = orm.Group.find(user.db, class_group(name))
        try:
            resolve_class(
                name,
                member_of=member_of,
                group_properties=group.properties if group is not None else None,
                is_admin=bool(user.admin),
            )
        except ClassRefused as e:
            refused[name] = str(e)
    return refused


def handlers() -> list[tuple]:
    """For ``c.JupyterHub.extra_handlers`` (the hub adds its ``/hub`` prefix)."""
    return [(r"/" + ROUTE, LandingHandler)]
