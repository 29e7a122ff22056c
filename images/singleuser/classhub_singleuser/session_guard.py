"""End a revoked sign-in session's access to this server within seconds.

When the hub ends a sign-in session (a new login takes it over, logout, an admin,
expiry) it deletes that session's OAuth access tokens. Two things would still let the old
browser in:

1. HubOAuth caches the hub's token -> user answer for ``cache_max_age`` seconds (300 by
   default). :func:`link` sets ``HubOAuth.cache_max_age`` through the server's config
   (5 s by default), so HTTP requests and new websockets with a deleted token fail
   within seconds. :func:`load` checks that the HubOAuth instance that authenticates
   requests really picked the value up, and logs the effective value.
2. jupyter-server authenticates a websocket once, at its handshake; an open kernel or
   terminal websocket is never checked again. :class:`SessionGuard` remembers every
   authenticated websocket (weakly) with the credential that opened it, asks the hub
   again every ``check_interval`` seconds whether that credential is still good, and
   closes the websocket with code 1008 ("policy violation") when the hub says no
   (HTTP 401/403/404, or the token lost the scope to access this server).

The guard shares HubOAuth's cache (same keys). A refusal HubOAuth already has (younger
than its cache age) closes at once, without asking the hub. A cached "valid" is not
reused: it can be up to ``cache_max_age`` old, which would make the worst case from
revocation to close ``cache_max_age + check_interval`` (10 s) instead of
``check_interval`` (5 s) plus one hub round trip. That costs the hub no extra requests:
each answer the guard gets goes into HubOAuth's cache, where it spares the same browser's
HTTP requests their own check for ``cache_max_age``; and after a close, the browser's
reconnect with the dead token is refused at once instead of riding out the cache.

If the hub does not answer (outage, timeout, 5xx) websockets stay open and a warning is
logged: a hub restart must not cut every student off. Tokens and cookies are never logged.

Only this module's :func:`link` and :func:`load` run at start-up, and they import nothing
the server has not imported already.
"""

from __future__ import annotations

import asyncio
import hashlib
import inspect
import os
import weakref

from tornado.ioloop import PeriodicCallback
from tornado.websocket import WebSocketHandler
from traitlets import Float, Integer, Unicode, default
from traitlets.config import Config, LoggingConfigurable

POLICY_VIOLATION = 1008
# What the hub answers on /hub/api/user for a token it no longer accepts.
REJECTED = frozenset({401, 403, 404})
VALID, REVOKED, UNKNOWN = "valid", "revoked", "unknown"
_MISSING = object()

# One guard per ServerApp (one in production; tests may build several).
_guards: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


def _env_number(log, name: str, cast, fallback, minimum):
    """A number from the environment (for trait defaults); ``fallback`` if unset or bad.

    A bad value is logged and ignored rather than raised: a typo in a deployment's
    environment must not keep every student's server from starting.
    """
    raw = os.environ.get(name, "").strip()
    if not raw:
        return fallback
    try:
        value = cast(raw)
    except ValueError:
        value = None
    if value is None or value < minimum:
        log.warning("Ignoring %s=%r (want a number >= %s); using %s", name, raw, minimum, fallback)
        return fallback
    return value


def _cache_key(token: str, session_id: str) -> str:
    """The key HubAuth.user_for_token files the hub's answer for ``token`` under.

    If a future jupyterhub changes it, reads miss (the guard asks the hub every interval)
    and writes are never read: more hub requests, never a weaker check.
    """
    digest = hashlib.sha256(token.encode("utf8", "replace")).hexdigest()
    return f"token:{session_id}:{digest}"


class SessionGuard(LoggingConfigurable):
    """Short hub-auth cache and re-validation of open websockets (see module docstring).

    Configure as ``c.SessionGuard.<trait>`` in a jupyter_server config file, or through
    the environment variables named below (which the spawner can set per container).
    """

    check_interval = Float(
        min=0,
        config=True,
        help="""Seconds between re-checks of every open websocket's credential with the hub.

        A websocket whose token the hub no longer accepts is closed (code 1008) at the
        next check, so within about this many seconds of the revocation. Each check
        costs one hub request per distinct credential with open websockets (answers are
        shared with HubOAuth's cache). 0 disables the re-checks (websockets then live
        until the browser closes them).

        Default: $CLASSHUB_WS_RECHECK_INTERVAL, else 5.
        """,
    )

    @default("check_interval")
    def _default_check_interval(self):
        return _env_number(self.log, "CLASSHUB_WS_RECHECK_INTERVAL", float, 5.0, 0)

    auth_cache_max_age = Integer(
        min=1,
        config=True,
        help="""Seconds HubOAuth may reuse the hub's answer for a token (HubOAuth.cache_max_age).

        jupyterhub's default is 300: a deleted token would keep working for up to five
        minutes. Set as server config before HubOAuth is created, unless
        HubOAuth.cache_max_age (or HubAuth.cache_max_age) is configured explicitly,
        which then wins. Must be at least 1 (0 would mean "cache forever").
        Lower values cost one hub request per credential in use per this many seconds.

        Default: $CLASSHUB_AUTH_CACHE_MAX_AGE, else 5.
        """,
    )

    @default("auth_cache_max_age")
    def _default_auth_cache_max_age(self):
        return _env_number(self.log, "CLASSHUB_AUTH_CACHE_MAX_AGE", int, 5, 1)

    hub_timeout = Float(
        min=0.1,
        config=True,
        help="""Seconds to wait for the hub's answer on one re-check.

        Without an answer in time the websocket stays open (the hub may be restarting)
        and is checked again at the next interval.

        Default: $CLASSHUB_WS_RECHECK_TIMEOUT, else 3.
        """,
    )

    @default("hub_timeout")
    def _default_hub_timeout(self):
        return _env_number(self.log, "CLASSHUB_WS_RECHECK_TIMEOUT", float, 3.0, 0.1)

    close_reason = Unicode(
        "session ended; sign in again",
        config=True,
        help="""Reason sent in the close frame of a websocket whose session was revoked
        (at most 123 bytes of UTF-8).""",
    )

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self.hub_auth = None
        self.cache_age_explicit = False
        # handler -> (token, session id, user name); weak, so closed handlers go with GC
        self._sockets: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()
        self._callback: PeriodicCallback | None = None
        self._round: asyncio.Future | None = None
        self._hub_trouble = False
        self._request_kwargs: dict | None = None

    # ----- start-up -----

    def configure_hub_oauth(self, serverapp) -> None:
        """Put ``HubOAuth.cache_max_age`` into the server's config (link time)."""
        cfg = serverapp.config
        for section in ("HubOAuth", "HubAuth"):
            if section in cfg and "cache_max_age" in cfg[section]:
                self.cache_age_explicit = True
                return
        serverapp.update_config(Config({"HubOAuth": {"cache_max_age": self.auth_cache_max_age}}))

    def install(self, serverapp) -> None:
        """Check the HubOAuth in use and start tracking websockets (load time)."""
        provider = serverapp.identity_provider
        hub_auth = getattr(provider, "hub_auth", None)
        if hub_auth is None or not hasattr(hub_auth, "cache_max_age"):
            self.log.info("classhub session guard: not running under JupyterHub auth; inactive")
            return
        self.hub_auth = hub_auth
        effective = hub_auth.cache_max_age
        source = "explicit config" if self.cache_age_explicit else "classhub config"
        if not self.cache_age_explicit and effective != self.auth_cache_max_age:
            # Only if HubOAuth was created before config could reach it.
            self.log.warning(
                "classhub session guard: HubOAuth did not take cache_max_age from config"
                " (has %s); setting %s on it",
                effective,
                self.auth_cache_max_age,
            )
            hub_auth.cache_max_age = effective = self.auth_cache_max_age
            source = "set on the instance"
        cache = hub_auth.cache
        if getattr(cache, "max_age", effective) != effective:
            # The cache copies max_age when it is created.
            cache.max_age = cache.purge_interval = effective
        self.log.info(
            "classhub session guard: HubOAuth.cache_max_age=%ss (%s), websocket re-check every %ss"
            " (hub timeout %ss)",
            effective,
            source,
            self.check_interval,
            self.hub_timeout,
        )
        if not self.check_interval:
            return
        # Every request jupyter-server authenticates goes through the identity provider's
        # get_user(handler) (jupyter-server 2's documented hook); wrapping it on this one
        # instance registers each authenticated websocket, whatever its class: kernels and
        # terminals (WebSocketMixin) and also the events websocket and extensions' ones,
        # which do not use WebSocketMixin. No jupyter-server class is patched, and the
        # credential to re-check is right there in the request being authenticated.
        # (jupyterhub-singleuser forces ServerApp.identity_provider_class, so a subclass
        # cannot be configured instead.)
        original = provider.get_user

        async def get_user(handler):
            user = original(handler)
            if inspect.isawaitable(user):
                user = await user
            if user is not None and isinstance(handler, WebSocketHandler):
                self.remember(handler, user)
            return user

        provider.get_user = get_user
        self._callback = PeriodicCallback(self._tick, self.check_interval * 1000)
        self._callback.start()

    # ----- tracking -----

    def remember(self, handler, user) -> None:
        """Note the credential that authenticated websocket ``handler``."""
        hub_auth = self.hub_auth
        # HubAuth tries the URL/header token first and falls back to its cookie when that
        # token is missing or refused; _token_authenticated says which one it accepted.
        token = hub_auth.get_token(handler, in_cookie=False)
        if not (token and getattr(handler, "_token_authenticated", False)):
            token = hub_auth._get_token_cookie(handler) or token
        if not token:
            self.log.warning(
                "classhub session guard: no hub token on websocket %s; cannot re-check it",
                handler.request.path,
            )
            return
        name = getattr(user, "username", None) or "?"
        self._sockets[handler] = (token, hub_auth.get_session_id(handler), name)

    def _tick(self) -> None:
        if self._round is not None and not self._round.done():
            return  # the last round is still waiting for the hub (bounded by hub_timeout)
        groups: dict[tuple[str, str], list] = {}
        for handler, (token, session_id, _name) in list(self._sockets.items()):
            if _is_open(handler):
                groups.setdefault((token, session_id), []).append(handler)
        if groups:
            self._round = asyncio.ensure_future(self._check(groups))
            self._round.add_done_callback(self._round_done)

    def _round_done(self, future: asyncio.Future) -> None:
        if not future.cancelled() and future.exception() is not None:
            self.log.error("classhub session guard: re-check failed", exc_info=future.exception())

    async def _check(self, groups: dict) -> None:
        """Ask about each credential once, concurrently; close what the hub refuses."""
        results = await asyncio.gather(*(self._validate(*cred) for cred in groups))
        kept, why = 0, ""
        for handlers, (verdict, detail) in zip(groups.values(), results, strict=True):
            if verdict == REVOKED:
                for handler in handlers:
                    self._close(handler, detail)
            elif verdict == UNKNOWN:
                kept += len(handlers)
                why = detail
        if kept and not self._hub_trouble:
            self.log.warning(
                "classhub session guard: could not re-check %d websocket(s) with the hub at %s"
                " (%s); keeping them open until it answers",
                kept,
                self.hub_auth.api_url,
                why,
            )
        elif kept:
            self.log.debug("classhub session guard: hub still not answering (%s)", why)
        elif self._hub_trouble:
            self.log.info("classhub session guard: the hub answers re-checks again")
        self._hub_trouble = bool(kept)

    async def _validate(self, token: str, session_id: str) -> tuple[str, str]:
        key = _cache_key(token, session_id)
        cache = self.hub_auth.cache
        # Only answers younger than cache_max_age come back; a cached "valid" is not
        # trusted (see the module docstring), a cached refusal is final.
        if cache.get(key, _MISSING) is None:
            return REVOKED, "cached hub answer: token refused"
        try:
            status, model = await asyncio.wait_for(self._ask_hub(token), self.hub_timeout)
        except TimeoutError:
            return UNKNOWN, f"no answer within {self.hub_timeout}s"
        except Exception as e:  # any failure to get an answer: fail open
            return UNKNOWN, type(e).__name__
        if status == 200:
            cache[key] = model
            return self._verdict(model, "HTTP 200")
        if status in REJECTED:
            cache[key] = None  # what HubAuth itself caches for a refused token
            return REVOKED, f"hub answered HTTP {status}"
        return UNKNOWN, f"hub answered HTTP {status}"

    def _verdict(self, model, source: str) -> tuple[str, str]:
        if model is None:
            return REVOKED, f"{source}: no user"
        hub_auth = self.hub_auth
        if not hub_auth.check_scopes(hub_auth.access_scopes, {"scopes": model.get("scopes", [])}):
            return REVOKED, f"{source}: token no longer grants access to this server"
        return VALID, source

    async def _ask_hub(self, token: str):
        # Imported here, not at start-up: already loaded by jupyterhub-singleuser today,
        # and a leaner entry point should not have to load them before the first check.
        from jupyterhub.httpclient import fetch
        from jupyterhub.utils import url_path_join

        hub_auth = self.hub_auth
        if self._request_kwargs is None:
            kwargs = {}
            if hub_auth.certfile or hub_auth.keyfile:
                from jupyterhub.utils import make_ssl_context

                kwargs["ssl"] = make_ssl_context(
                    hub_auth.keyfile, hub_auth.certfile, cafile=hub_auth.client_ca
                )
            self._request_kwargs = kwargs
        response = await fetch(
            url_path_join(hub_auth.api_url, "user"),
            # The header lets the hub tell a re-check from a request of the browser (e.g.
            # to check a sign-in session without extending its idle expiry).
            headers={"Authorization": f"token {token}", "X-Classhub-Recheck": "websocket"},
            raise_for_status=False,
            **self._request_kwargs,
        )
        if response.status == 200:
            return 200, await response.json()
        await response.read()
        return response.status, None

    def _close(self, handler, detail: str) -> None:
        entry = self._sockets.pop(handler, None)
        name = entry[2] if entry else "?"
        self.log.info(
            "classhub session guard: closing websocket %s of %s (%s)",
            handler.request.path,
            name,
            detail,
        )
        # Nothing the browser sent still reaches the kernel or the terminal once its
        # session is revoked: tornado goes on delivering the frames it has already read
        # (an execute request typed just before, keystrokes). And jupyter-server reads a
        # kernel frame that arrives after the close with the wrong protocol (the closed
        # handler no longer names its subprotocol, so a v1 frame is parsed as the old
        # binary format, whose first four bytes then ask for a format string of millions
        # of fields): closed during its opening, the server grew past 1 GiB in a second
        # and was OOM-killed. This instance's handler ignores them; no class is patched.
        handler.on_message = _ignore_message
        handler.close(POLICY_VIOLATION, self.close_reason)


def _ignore_message(message) -> None:
    """What a websocket closed by the guard does with a frame that still arrives."""


def _is_open(handler) -> bool:
    conn = handler.ws_connection  # None before the handshake and after close()
    if conn is None:
        return False
    try:
        return not conn.is_closing()
    except AttributeError:
        # tornado drops the connection's stream when a handshake is aborted (is_closing()
        # then raises on None.closed()); such a socket is gone. Raising here failed the
        # whole round, so no other websocket was re-checked (seen in a Chromium run).
        return False


def link(serverapp) -> None:
    guard = SessionGuard(parent=serverapp, log=serverapp.log)
    guard.configure_hub_oauth(serverapp)
    _guards[serverapp] = guard


def load(serverapp) -> None:
    guard = _guards.get(serverapp)
    if guard is None:  # loaded without being linked
        link(serverapp)
        guard = _guards[serverapp]
    guard.install(serverapp)
