"""What every service's pages share: HTML answers (errors included) in the hub's look.

A service's page handler is ``class PageHandler(PageMixin, <its handler base>)`` with
``static_dir`` set to its ``static/`` folder. The mixin gives templates ``hub`` (the hub's
base URL), ``hub_static`` (the hub's own files with their ``?v=`` version), ``static``
(the service's files with a content hash, cached for ever by browsers),
``common_static`` (the shared style sheet and script of every page, served by the hub),
``nav`` (the navigation of the person's role, common/web/nav.py), ``brand`` (the name in
the header), ``is_admin``, ``json_script`` (:func:`json_for_script`: data for a page's
script inside a ``<script type="application/json">`` element), and answers every page
with the same security headers; an error on a page is the shared ``classhub/error.html``
with the API's message (a 503 page reloads itself). Every page extends the shared
``classhub/layout.html`` (common/web).
"""

from __future__ import annotations

import functools
import hashlib
import json
import os
from pathlib import Path
from typing import Any

from markupsafe import Markup
from tornado import web

from common import web as common_web
from common.errors import ServiceError
from common.web.nav import nav_items, role_of

from .handlers import error_message
from .hubstatic import hub_static_url

#: pages load only their own scripts and style sheets and the hub's (same origin)
CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'"
)
#: seconds before a 503 page reloads itself
RETRY_SECONDS = 10


#: what JSON must not hold as it is inside an HTML ``<script>`` element: ``<`` (``</script>``
#: would end the element, ``<!--`` change how it is parsed), ``>`` and ``&`` (for good
#: measure), and the two line separators older JavaScript parsers refuse
_SCRIPT_ESCAPES = {
    ord("<"): "\\u003c",
    ord(">"): "\\u003e",
    ord("&"): "\\u0026",
    0x2028: "\\u2028",
    0x2029: "\\u2029",
}


def json_for_script(value: Any) -> Markup:
    """``value`` as JSON for the inside of a page's ``<script type="application/json">``
    element (read with ``JSON.parse(element.textContent)``): those characters written as
    ``\\u`` escapes, which JSON reads back as they were, so nothing a student or a teacher
    wrote can end the element or become markup. Marked safe for Jinja: HTML escaping
    would be wrong inside ``<script>``, whose text the browser does not unescape.

    Jinja's ``tojson`` filter (used for attributes) does the same escaping but writes every
    non-ASCII character as ``\\u`` escapes too: a class of names in Greek or Chinese would send
    six bytes for each letter in the review page's first view. Hence this one, for the
    script element's text only."""
    text = json.dumps(value, separators=(",", ":"), ensure_ascii=False)
    return Markup(text.translate(_SCRIPT_ESCAPES))  # noqa: S704 - escaped just above


def normal_base_url(base_url: str) -> str:
    """The hub's base URL path with one leading and one trailing slash (``/`` for none)."""
    inner = base_url.strip("/")
    return f"/{inner}/" if inner else "/"


@functools.cache
def static_version(static_dir: Path, name: str) -> str:
    """A short hash of a static file, so its URL changes when the file does."""
    return hashlib.sha256((static_dir / name).read_bytes()).hexdigest()[:12]


class PageMixin:
    """HTML pages on top of a service's :class:`~services.base.handlers.BaseHandler`."""

    #: the service's ``static/`` folder (its pages' scripts and style sheets)
    static_dir: Path

    def wants_html(self) -> bool:
        return True

    def hub_prefix(self) -> str:
        """The hub's base URL: the service's prefix is ``<base_url>services/<name>/``."""
        base = os.environ.get("JUPYTERHUB_BASE_URL")
        if not base:
            prefix = self.settings["service_prefix"]
            head, sep, _ = prefix.rstrip("/").rpartition("/services/")
            base = head + "/" if sep else "/"
        return base.rstrip("/") + "/"

    def template_namespace(self) -> dict:
        namespace = super().template_namespace()
        prefix = self.settings["service_prefix"]
        user = self.current_user or {}
        hub = self.hub_prefix()
        role = role_of(admin=bool(user.get("admin")), groups=user.get("groups") or ())
        namespace.update(
            hub=hub,
            hub_static=lambda name: hub_static_url(hub, name),
            common_static=lambda name: common_web.static_url(hub, name),
            nav=nav_items(role, self.settings.get("classhub_nav_services", ())),
            brand=self.settings.get("classhub_brand") or "classhub",
            status_problem="",
            is_admin=bool(user.get("admin")),
            json_script=json_for_script,
            static=lambda name: f"{prefix}static/{name}?v={static_version(self.static_dir, name)}",
        )
        return namespace

    def render_page(self, template: str, status: int = 200, **context: Any) -> None:
        html = self.render_template(template, **context)
        self.set_status(status)
        self.set_header("Content-Type", "text/html; charset=UTF-8")
        self.set_header("Cache-Control", "no-store")
        self.set_header("Content-Security-Policy", CSP)
        self.set_header("X-Content-Type-Options", "nosniff")
        self.set_header("Referrer-Policy", "same-origin")
        self.finish(html)

    def page_error(self, exc: BaseException | None) -> BaseException | None:
        """The error a page shows for ``exc`` (services turn their own kinds into a
        :class:`~common.errors.ServiceError` here)."""
        return exc

    def write_error(self, status_code: int, **kwargs: Any) -> None:
        if not self.wants_html():
            super().write_error(status_code, **kwargs)
            return
        exc = self.page_error((kwargs.get("exc_info") or (None, None, None))[1])
        if isinstance(exc, ServiceError):
            status_code = exc.status_code
        if status_code == 503:
            self.set_header("Retry-After", str(RETRY_SECONDS))
        try:
            self.render_page(
                "classhub/error.html",
                service_name=self.settings.get("classhub_service_name", ""),
                status=status_code,
                status_code=status_code,
                message=error_message(exc, status_code),
                retry_seconds=RETRY_SECONDS if status_code == 503 else 0,
            )
        except Exception:  # noqa: BLE001 - the JSON error is the fallback
            self.log.exception("Could not render the error page for %s", self.request.path)
            self.clear()
            self.set_status(status_code)
            super().write_error(status_code, **kwargs)


class StaticHandler(web.StaticFileHandler):
    """A service's pages' scripts and style sheets (every route gets ``hub_auth``, unused
    here); a ``?v=`` URL is cached by browsers for ever."""

    def initialize(self, hub_auth, path: str) -> None:  # noqa: ARG002
        super().initialize(path)
