"""The owner gate: on one shared origin, a student's server answers only its owner.

Without per-user origins (``CLASSHUB_SERVERS_DOMAIN`` unset) every server is served from
the hub's own origin. A student controls everything their server sends, the single-user
server process included, so a page of theirs opened by anybody else (a teacher helping, an
admin, a classmate following a link) would run with that person's hub session. Checks in
the server cannot help: the server is the attacker.

So Traefik asks this small service before it forwards any request to a student's server
(its ``forwardAuth`` middleware, set by the spawner's labels): the request passes only
when the browser's ``jupyterhub-session-id`` cookie is the live session of the user whose
server it is (authenticator/sessions.py, in Redis). Everybody else gets a page from here
saying whose server it is, or, without a live session, the way to the sign-in page. The
server never sees their request. Teachers and admins use the read-only views of the
classes service instead; with per-user origins they open servers as usual.

Answers (the request Traefik sends carries the original ``X-Forwarded-Uri`` and cookies):
204 pass; 302 to the hub's sign-in page (no or an ended session); 403 a page (another
person's server); 503 a page (Redis unreachable and no recent answer to reuse).
"""

from __future__ import annotations

import asyncio
import html
import logging
import re
import signal
import time
from dataclasses import dataclass
from urllib.parse import quote, unquote, urlsplit

from tornado import web
from tornado.httpserver import HTTPServer
from traitlets import Float, Integer, Unicode, validate
from traitlets.config import Application

from common.errors import StoreUnavailable
from common.hubenv import BIND_IP, GATE_PORT, REDIS_URL, own_address
from common.settings import EnvTable

from .sessions import SessionStore

SESSION_COOKIE = "jupyterhub-session-id"

PASS, SIGN_IN, OTHERS, UNAVAILABLE = "pass", "sign-in", "others", "unavailable"


def owner_of(uri: str, base_url: str = "/") -> str | None:
    """The user whose server ``uri`` (``X-Forwarded-Uri``: path and query) belongs to:
    the first segment after ``<base_url>user/``, percent-decoded; None for anything else."""
    path = urlsplit(uri).path
    head = base_url.rstrip("/") + "/user/"
    if not path.startswith(head):
        return None
    name = unquote(path[len(head) :].split("/", 1)[0])
    return name or None


_SID_RE = re.compile(r"[A-Za-z0-9_-]{8,128}")


def session_cookie(header: str) -> str:
    """The value of the session cookie in a ``Cookie`` header ("" when absent or not a
    session id). Two cookies of that name (a page setting its own on a narrower path)
    make it ambiguous: "" too."""
    values = []
    for part in header.split(";"):
        name, _, value = part.strip().partition("=")
        if name == SESSION_COOKIE:
            values.append(value.strip().strip('"'))
    if len(values) != 1 or not _SID_RE.fullmatch(values[0]):
        return ""
    return values[0]


@dataclass
class _Known:
    session_id: str
    at: float


class OwnerGate:
    """Decides one request; keeps each user's live session id for ``cache_seconds`` (so a
    JupyterLab page's many requests cost one Redis read) and reuses an answer up to
    ``stale_seconds`` old while Redis cannot be reached."""

    def __init__(
        self,
        store: SessionStore,
        *,
        cache_seconds: float = 2.0,
        stale_seconds: float = 600.0,
        clock=time.monotonic,
    ):
        self.store = store
        self.cache_seconds = cache_seconds
        self.stale_seconds = stale_seconds
        self.clock = clock
        self._known: dict[str, _Known] = {}

    async def live_session(self, user: str) -> str | None:
        """The live session id of ``user`` ("" when none), or None when unknown (Redis
        unreachable and nothing recent enough cached)."""
        now = self.clock()
        known = self._known.get(user)
        if known and now - known.at < self.cache_seconds:
            return known.session_id
        try:
            session, _ = await self.store.get(user)
        except StoreUnavailable:
            if known and now - known.at < self.stale_seconds:
                return known.session_id
            return None
        live = session.session_id if session else ""
        if len(self._known) > 100_000:
            self._known.clear()
        self._known[user] = _Known(live, now)
        return live

    async def decide(
        self, uri: str, cookie_header: str, base_url: str = "/", authorization: str = ""
    ) -> str:
        owner = owner_of(uri, base_url)
        if owner is None:
            return OTHERS  # the gate only guards /user/<name>/...
        if authorization.split(" ", 1)[0].lower() in ("token", "bearer"):
            # an API client with a token: the server checks the token with the hub. A
            # browser never adds such a header by itself, so no page can make another
            # person's browser send one; the gate is about cookies.
            return PASS
        sid = session_cookie(cookie_header)
        if not sid:
            return SIGN_IN
        live = await self.live_session(owner)
        if live is None:
            return UNAVAILABLE
        if live and live == sid:
            return PASS
        # another person (a teacher, an admin, a classmate), or the owner's own ended
        # session: telling them apart would need an index by session id; the page says both
        return OTHERS


PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>{title}</title>
<meta name="viewport" content="width=device-width, initial-scale=1">
<style>body{{font-family:system-ui,sans-serif;max-width:40em;margin:4em auto;padding:0 1em;
line-height:1.5}}a{{color:#0b5cad}}</style></head>
<body><h1>{title}</h1><p>{text}</p><p><a href="{home}">Back to classhub</a></p></body></html>
"""


class CheckHandler(web.RequestHandler):
    def initialize(self, gate: OwnerGate, base_url: str, log: logging.Logger) -> None:
        self.gate = gate
        self.base_url = base_url
        self.log = log

    def set_default_headers(self) -> None:
        self.set_header("Cache-Control", "no-store")
        self.set_header("Content-Security-Policy", "default-src 'none'; style-src 'unsafe-inline'")
        self.set_header("X-Content-Type-Options", "nosniff")

    async def get(self) -> None:
        uri = self.request.headers.get("X-Forwarded-Uri", "")
        headers = self.request.headers
        decision = await self.gate.decide(
            uri, headers.get("Cookie", ""), self.base_url, headers.get("Authorization", "")
        )
        home = self.base_url.rstrip("/") + "/hub/home"
        if decision == PASS:
            self.set_status(204)
            return
        if decision == SIGN_IN:
            # absolute: Traefik resolves a relative Location against the gate's own address
            proto = headers.get("X-Forwarded-Proto", "http")
            origin = (
                f"{'https' if proto == 'https' else 'http'}://{headers.get('X-Forwarded-Host', '')}"
            )
            login = self.base_url.rstrip("/") + "/hub/login"
            path = urlsplit(uri).path
            self.redirect(origin + (f"{login}?next={quote(path, safe='/')}" if path else login))
            return
        owner = owner_of(uri, self.base_url) or ""
        if decision == UNAVAILABLE:
            self.log.warning("Owner gate: the session store cannot be reached")
            self.set_status(503)
            self.set_header("Retry-After", "10")
            self._page(
                home,
                "Server temporarily unavailable",
                "classhub cannot check your sign-in right now (its session store does not "
                "answer). Nothing is lost; try again in a minute.",
            )
            return
        self.log.info("Owner gate: refused a request for a server of %s", owner)
        self.set_status(403)
        login = self.base_url.rstrip("/") + "/hub/login"
        next_path = quote(urlsplit(uri).path, safe="/")
        self._page(
            home,
            "This server is not yours",
            f"This is the server of {html.escape(owner)}. On this classhub, a server is "
            "opened only by its owner, signed in. Teachers see their students' work in the "
            "read-only views of their class page. If it is yours, your session has ended: "
            f'<a href="{html.escape(login)}?next={html.escape(next_path)}">sign in again</a>.',
        )

    def _page(self, home: str, title: str, text: str) -> None:
        self.set_header("Content-Type", "text/html; charset=utf-8")
        self.finish(PAGE.format(title=html.escape(title), text=text, home=html.escape(home)))


class HealthHandler(web.RequestHandler):
    def get(self) -> None:
        self.finish({"status": "ok"})


#: the gate's settings from the environment (the hub's, which the gate's service shares)
GATE_TABLE = EnvTable(
    (
        GATE_PORT.of("port"),
        BIND_IP.of("ip"),
        REDIS_URL.of("redis_url"),
    )
)


@GATE_TABLE.install
class GateApp(Application):
    """``classhub-gate``: the owner gate service (see the module's description)."""

    name = "classhub-gate"

    ip = Unicode(
        config=True,
        help="""Address the gate listens on (``CLASSHUB_BIND_IP``, 127.0.0.1). Only
        Traefik calls it: from the same machine, or in a Swarm stack over the core network,
        whose subnet is given instead (``10.217.0.0/24``: the gate's own address in it).

        Example: ``c.GateApp.ip = "127.0.0.1"``
        """,
    )

    port = Integer(
        config=True,
        help="""Port the gate listens on (``CLASSHUB_GATE_PORT``, 8082). Traefik's
        forwardAuth address is ``http://127.0.0.1:<port>/check``.

        Example: ``c.GateApp.port = 8082``
        """,
    )

    @validate("port")
    def _check_port(self, proposal):
        if not 0 < proposal.value < 65536:
            raise ValueError(
                f"GateApp.port must be 1-65535 (CLASSHUB_GATE_PORT), got {proposal.value}"
            )
        return proposal.value

    redis_url = Unicode(
        config=True,
        help="""Redis holding the live sessions, which the gate checks (the
        authenticator's ``redis_url``). Set from ``CLASSHUB_REDIS_URL``; it may hold a
        password: never logged.

        Example: ``c.GateApp.redis_url = "redis://:pw@127.0.0.1:16379/0"``
        """,
    )

    redis_prefix = Unicode(
        "classhub",
        config=True,
        help="""Prefix of the Redis keys (the authenticator's ``redis_prefix``).

        Example: ``c.GateApp.redis_prefix = "classhub"``
        """,
    )

    redis_timeout = Float(
        1.0,
        config=True,
        help="""Seconds one Redis read may take before the gate answers from its recent
        answers, or 503.

        Example: ``c.GateApp.redis_timeout = 1.0``
        """,
    )

    cache_seconds = Float(
        2.0,
        config=True,
        help="""Seconds the gate reuses a user's live session id: one Redis read serves a
        JupyterLab page's burst of requests. An ended session loses its server at most this
        much later (the session guard closes its websockets within 5 s anyway).

        Example: ``c.GateApp.cache_seconds = 2``
        """,
    )

    stale_seconds = Float(
        600.0,
        config=True,
        help="""While Redis cannot be reached, seconds an earlier answer is still used, so
        signed-in students keep their servers through a short Redis outage; after that the
        gate answers 503 until Redis is back.

        Example: ``c.GateApp.stale_seconds = 600``
        """,
    )

    base_url = Unicode(
        "/",
        config=True,
        help="""The hub's base URL path (``JUPYTERHUB_BASE_URL``).

        Example: ``c.GateApp.base_url = "/"``
        """,
    )

    def make_app(self, store: SessionStore) -> web.Application:
        gate = OwnerGate(store, cache_seconds=self.cache_seconds, stale_seconds=self.stale_seconds)
        args = {"gate": gate, "base_url": self.base_url, "log": self.log}
        return web.Application(
            [(r"/check", CheckHandler, args), (r"/health", HealthHandler)],
            log_function=lambda handler: None,  # never log the forwarded URIs (queries)
        )

    async def serve(self) -> None:
        store = SessionStore.from_url(
            self.redis_url, timeout=self.redis_timeout, idle_timeout=60, prefix=self.redis_prefix
        )
        # As a container's first process (pid 1) a signal without a handler is ignored:
        # `docker stop` would wait its 10 s and kill the gate. Set before listening, so a
        # signal sent once the port answers always finds them.
        stopping = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, stopping.set)
        server = HTTPServer(self.make_app(store), xheaders=False)
        ip = own_address(self.ip)
        server.listen(self.port, ip)
        self.log.info("classhub gate listening on %s:%d", ip, self.port)
        await stopping.wait()
        self.log.info("classhub gate stopping")
        server.stop()
        await store.close()


def main(argv=None) -> None:
    app = GateApp()
    app.initialize(argv)
    asyncio.run(app.serve())


if __name__ == "__main__":
    main()
