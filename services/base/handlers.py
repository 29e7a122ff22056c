"""The one handler base of classhub's services, and the handlers every service has.

:class:`BaseHandler` identifies the caller through JupyterHub (``HubOAuthenticated``: the
service's OAuth cookie in a browser, an ``Authorization: token ...`` header for API
clients), takes its dependencies (stores, hub client, ...) through ``initialize()``,
answers every error as JSON ``{"status": N, "message": "..."}`` (never a traceback), reads
JSON bodies strictly (:meth:`BaseHandler.json_body`) and renders Jinja templates for the
pages (:meth:`BaseHandler.render_template`).
"""

from __future__ import annotations

import asyncio
import json
import logging
import math
from collections.abc import Awaitable, Callable, Collection, Mapping
from http import HTTPStatus
from typing import Any

from jupyterhub.services.auth import HubOAuthCallbackHandler, HubOAuthenticated, UserNotAllowed
from tornado import web

from common.errors import ServiceError, Unavailable

HealthCheck = Callable[[], Awaitable[None]]


def error_message(exc: BaseException | None, status: int) -> str:
    """The sentence shown to the caller for ``exc`` (never internals of a 500)."""
    if isinstance(exc, ServiceError):
        return str(exc)
    if isinstance(exc, web.HTTPError):
        if exc.log_message:
            return exc.log_message % exc.args if exc.args else exc.log_message
        return exc.reason or _phrase(status)
    if status >= 500:
        return "Internal error: the service logged it. Try again, or tell an administrator."
    return _phrase(status)


def _phrase(status: int) -> str:
    try:
        return HTTPStatus(status).phrase
    except ValueError:
        return "Error"


class InFlight:
    """Counts the requests being handled, so a shutdown can wait for them."""

    def __init__(self):
        self.count = 0
        self._idle = asyncio.Event()
        self._idle.set()

    def enter(self) -> None:
        self.count += 1
        self._idle.clear()

    def leave(self) -> None:
        self.count = max(0, self.count - 1)
        if self.count == 0:
            self._idle.set()

    async def wait_idle(self) -> None:
        await self._idle.wait()


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not a number JSON allows")


class BaseHandler(HubOAuthenticated, web.RequestHandler):
    """Base of every page and API handler of a classhub service.

    Route specs pass the dependencies: ``(pattern, Handler, {"hub_auth": ..., "store":
    ...})``; each becomes an attribute of the handler.
    """

    def initialize(self, hub_auth, **deps: Any) -> None:
        self.hub_auth = hub_auth
        self._inflight = self.settings.get("service_inflight")
        if self._inflight is not None:
            self._inflight.enter()
        for name, value in deps.items():
            if hasattr(web.RequestHandler, name) or name.startswith("_"):
                raise ValueError(f"dependency name {name!r} would shadow a handler attribute")
            setattr(self, name, value)

    def on_finish(self) -> None:
        if self._inflight is not None:
            self._inflight.leave()
            self._inflight = None

    @property
    def log(self) -> logging.Logger:
        return self.settings.get("log") or logging.getLogger("classhub.service")

    @property
    def max_body_size(self) -> int:
        return self.settings["service_max_body_size"]

    #: True on a service's home (``GET <prefix>``): a script of another classhub page on
    #: the same origin may read who is signed in there and the service's XSRF token
    #: (``serviceClient`` in common/web/static/classhub.js: a class's copy, deleting a
    #: person). JupyterHub accepts a cookie on a script's GET only with the service's XSRF
    #: token, which such a page cannot have yet; this read-only GET is let through when the
    #: browser says it comes from the same origin (``Sec-Fetch-Site``), so no other site's
    #: page can use it (and none could read the answer anyway: no CORS).
    same_origin_home = False

    def check_xsrf_cookie(self) -> None:
        if (
            self.same_origin_home
            and self.request.method in ("GET", "HEAD")
            and self.request.headers.get("Sec-Fetch-Site") == "same-origin"
        ):
            return
        super().check_xsrf_cookie()

    # ----- who is calling

    async def prepare(self) -> None:
        """Identify the caller (cached by HubOAuth for a few seconds) before any method.

        The hub being down is a 503 with a clear message, not HubAuth's 500."""
        try:
            model = await self.hub_auth.get_user(self, sync=False)
        except web.HTTPError as e:
            if e.status_code < 500:
                raise
            self.log.warning("Could not check a caller with the hub: %s", e.log_message)
            raise web.HTTPError(
                503,
                "JupyterHub is unreachable, so your sign-in cannot be checked; try again shortly.",
            ) from None
        if model:
            try:
                model = self.check_hub_user(model)
            except UserNotAllowed:
                kind, name = model.get("kind", "user"), model.get("name", "")
                raise web.HTTPError(
                    403,
                    f"The {kind} {name} may not use this service: the token lacks the "
                    f"scope {' or '.join(sorted(self.hub_scopes or ()))}. Ask an administrator.",
                ) from None
        self.current_user = model

    def require_user(self) -> dict:
        """The caller's hub model (a person), or 403 with how to sign in."""
        model = self.current_user
        if not model:
            raise web.HTTPError(
                403,
                "You are not signed in. Open "
                f"{self.settings['service_prefix']} in a browser to sign in through "
                "JupyterHub, or send an 'Authorization: token <token>' header.",
            )
        if model.get("kind", "user") != "user":
            raise web.HTTPError(
                403, "This API acts for people: call it with a user's token, not a service's."
            )
        return model

    # ----- JSON in

    def json_body(self, allowed: Collection[str], *, required: Collection[str] = ()) -> dict:
        """The request body as a JSON object with only ``allowed`` keys, or a clear 4xx.

        An empty body is ``{}``. Refused: bodies over the size limit (413), invalid UTF-8
        or JSON, NaN/Infinity, anything but an object, unknown or missing fields (400)."""
        raw = self.request.body or b""
        if len(raw) > self.max_body_size:
            raise web.HTTPError(
                413,
                f"The request body is {len(raw)} bytes; the limit is {self.max_body_size} "
                "bytes. Send less at once (split a large CSV file).",
            )
        if not raw.strip():
            body: Any = {}
        else:
            try:
                body = json.loads(raw.decode("utf-8"), parse_constant=_reject_constant)
            except UnicodeDecodeError:
                raise web.HTTPError(400, "The request body is not UTF-8 text.") from None
            except RecursionError:
                raise web.HTTPError(400, "The request body is nested too deeply.") from None
            except ValueError as e:
                raise web.HTTPError(400, f"The request body is not valid JSON: {e}.") from None
        if not isinstance(body, dict):
            raise web.HTTPError(
                400, f"The request body must be a JSON object, not {_json_type(body)}."
            )
        unknown = sorted(set(body) - set(allowed))
        if unknown:
            raise web.HTTPError(
                400,
                f"Unknown field(s): {', '.join(map(str, unknown))[:300]}. "
                f"Allowed: {', '.join(sorted(allowed))}.",
            )
        missing = [f for f in required if f not in body]
        if missing:
            raise web.HTTPError(400, f"Missing field(s): {', '.join(missing)}.")
        return body

    # ----- JSON out

    def write_json(self, data: Any, status: int = 200) -> None:
        self.set_status(status)
        self.set_header("Content-Type", "application/json; charset=UTF-8")
        self.set_header("Cache-Control", "no-store")
        self.finish(json.dumps(data, default=str))

    def write_error(self, status_code: int, **kwargs: Any) -> None:
        exc = (kwargs.get("exc_info") or (None, None, None))[1]
        if isinstance(exc, ServiceError):
            status_code = exc.status_code
            self.set_status(status_code)
        self.set_header("Content-Type", "application/json; charset=UTF-8")
        self.set_header("Cache-Control", "no-store")
        if status_code == 503:
            self.set_header("Retry-After", "5")
        self.finish(json.dumps({"status": status_code, "message": error_message(exc, status_code)}))

    def log_exception(self, typ, value, tb) -> None:
        # never tornado's default: it logs the query string
        where = f"{self.request.method} {self.request.path}"
        if isinstance(value, Unavailable):
            self.log.warning("%s: 503 %s (%s)", where, value, value.detail)
        elif isinstance(value, ServiceError):
            level = logging.ERROR if value.status_code >= 500 else logging.INFO
            self.log.log(level, "%s: %s %s", where, value.status_code, value)
        elif isinstance(value, web.HTTPError):
            level = logging.WARNING if value.status_code >= 500 else logging.INFO
            self.log.log(level, "%s: %s %s", where, value.status_code, error_message(value, 0))
        else:
            self.log.error("%s: uncaught exception", where, exc_info=(typ, value, tb))

    # ----- pages

    def template_namespace(self) -> dict:
        """What every template sees; pages add their own."""
        return {
            "prefix": self.settings["service_prefix"],
            "user": self.current_user,
            "xsrf_token": self.xsrf_token.decode("ascii") if self.current_user else "",
            "static_url": self.static_url,
        }

    def render_template(self, name: str, **context: Any) -> str:
        env = self.settings.get("jinja2_env")
        if env is None:
            raise RuntimeError("this service has no templates (ServiceApp.template_paths)")
        return env.get_template(name).render(**{**self.template_namespace(), **context})


class OAuthCallbackHandler(BaseHandler, HubOAuthCallbackHandler):
    """``<prefix>oauth_callback``: completes the OAuth flow and sets the service's cookie."""


class HealthHandler(BaseHandler):
    """``GET <prefix>health``: 200 with one entry per dependency, or 503 naming the one
    that is down. No sign-in needed (load balancers and the admin's probes call it)."""

    def initialize(self, hub_auth, checks: Mapping[str, HealthCheck], timeout: float) -> None:
        super().initialize(hub_auth)
        self.checks = checks
        self.timeout = timeout

    async def prepare(self) -> None:
        self.current_user = None

    async def get(self) -> None:
        names = list(self.checks)
        results = await asyncio.gather(*(self._check(n) for n in names))
        checks = dict(zip(names, results, strict=True))
        down = [n for n, r in checks.items() if not r["ok"]]
        if not down:
            self.write_json({"status": "ok", "checks": checks})
            return
        message = "; ".join(f"{n}: {checks[n]['message']}" for n in down)
        self.write_json({"status": 503, "message": message, "checks": checks}, status=503)

    async def _check(self, name: str) -> dict:
        try:
            async with asyncio.timeout(self.timeout):
                await self.checks[name]()
        except Unavailable as e:
            return {"ok": False, "message": str(e)}
        except TimeoutError:
            return {"ok": False, "message": f"no answer within {self.timeout:g} s"}
        return {"ok": True}


class NotFoundHandler(BaseHandler):
    """Every path no route matches: a JSON 404 (without asking the hub who is calling)."""

    async def prepare(self) -> None:
        raise web.HTTPError(404, f"There is nothing at {self.request.path}.")


def _json_type(value: Any) -> str:
    if isinstance(value, list):
        return "an array"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, bool) or value is None:
        return json.dumps(value)
    if isinstance(value, int | float) and math.isfinite(value):
        return "a number"
    return type(value).__name__
