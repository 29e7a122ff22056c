"""JWTAuthenticator: sign-in with a signed JWT or a local account, one session per person.

The hub's normal path runs unchanged: ``authenticate`` checks the credential, JupyterHub
applies its allow and block lists, then ``run_post_auth_hook`` (which runs any configured
``post_auth_hook`` first) starts the person's single session in Redis. ``refresh_user``
checks on requests that the browser's session is still the live one.
"""

from __future__ import annotations

import asyncio
import uuid
import weakref

from jupyterhub import orm
from jupyterhub.auth import Authenticator
from tornado import web

from common import clock
from common.errors import StoreUnavailable
from common.usernames import InvalidUsername, normalize_username

from . import revoke
from .accounts import STORE as ACCOUNTS
from .bearer import bearer_token
from .class_roles import Rosters, class_teacher_roles
from .class_rosters import ClassGroups, teacher_rosters
from .client_address import client_address, proxy_network
from .jwt_verify import TokenRejected, verify_token
from .messages import reject_message
from .ratelimit import Limits, LoginLimiter
from .roles import role_definitions, roles_for
from .sessions import REJECT, Session, SessionStore
from .settings import AuthSettings

#: in the audit log's actor of accounts the classes service made for a teacher
#: ("<teacher> via classes"; user names have no spaces)
TEACHER_MADE = " via "

UNAVAILABLE = (
    "Sign-in is unavailable right now: the session store cannot be reached. "
    "Nothing is wrong with your account; try again in a minute."
)


class JWTAuthenticator(AuthSettings, Authenticator):
    """Sign in with a JWT from the institution's portal or LMS, or with a local account.

    Select it with ``c.JupyterHub.authenticator_class = "classhub-jwt"``. Every setting is
    described in docs/admin-guide.md.
    """

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self._locks: weakref.WeakValueDictionary[str, asyncio.Lock] = weakref.WeakValueDictionary()
        self._ready_lock = asyncio.Lock()
        self.sessions: SessionStore | None = None
        self.accounts = None
        self.limiter: LoginLimiter | None = None
        self.keys = None
        # per teacher: the signature of their classes and the roles built from it
        self._class_roles: dict[str, tuple[Rosters, list[dict]]] = {}
        self._class_groups = ClassGroups()

    # ----- start-up -----

    async def ready(self) -> None:
        """Connect the stores (once); run the accounts migrations; create the first admin."""
        if self.sessions is not None:
            return
        async with self._ready_lock:
            if self.sessions is not None:
                return
            self.keys = self.make_keys()
            if self.password_login:
                self.accounts = self.make_account_store()
                await self.accounts.open()
                await self.bootstrap_admin()
            store = SessionStore.from_url(
                self.redis_url,
                timeout=self.redis_timeout,
                idle_timeout=self.session_idle_timeout,
                prefix=self.redis_prefix,
            )
            self.limiter = LoginLimiter(
                store,
                Limits(
                    per_user=self.login_failures_per_user,
                    per_address=self.login_failures_per_address,
                    window=self.login_failure_window,
                    slowdown_after=self.login_slowdown_after,
                    slowdown_step=self.login_slowdown_step,
                    slowdown_max=self.login_slowdown_max,
                ),
            )
            self.sessions = store

    async def bootstrap_admin(self) -> None:
        name, password = self.first_admin, self.first_admin_password()
        if not (name and password):
            return
        await self.accounts.create(name, password, "admin", if_missing=True, actor="hub")
        self.log.info("First admin account %s is present", name)

    async def load_managed_roles(self):
        # JupyterHub awaits this once at start-up: the place to connect and migrate
        await self.ready()
        return list(self.roles().values())

    def roles(self) -> dict[str, dict]:
        return role_definitions(
            student_scopes=list(self.student_scopes), teacher_scopes=list(self.teacher_scopes)
        )

    def client_address(self, handler) -> str:
        """The client's address: Traefik's X-Real-Ip only from ``trusted_proxies``."""
        return client_address(handler.request, self._proxy_networks())

    def _proxy_networks(self) -> tuple:
        """``trusted_proxies`` parsed once per value (the trait is checked on assignment)."""
        key = tuple(self.trusted_proxies)
        cached = getattr(self, "_proxies_cache", None)
        if cached is None or cached[0] != key:
            cached = (key, tuple(proxy_network(v) for v in key))
            self._proxies_cache = cached
        return cached[1]

    # ----- usernames -----

    def normalize_username(self, username):
        try:
            return normalize_username(username)
        except InvalidUsername:
            return username  # validate_username refuses it

    def validate_username(self, username):
        try:
            return normalize_username(username) == username and super().validate_username(username)
        except InvalidUsername:
            return False

    # ----- authenticate -----

    async def authenticate(self, handler, data):
        await self.ready()
        data = data or {}
        token = bearer_token(handler) or data.get("token")
        try:
            if token:
                return await self._authenticate_token(handler, token)
            if "username" in data and "password" in data:
                if not self.password_login:
                    raise web.HTTPError(
                        400, "Password sign-in is switched off here; sign in through your portal."
                    )
                return await self._authenticate_password(handler, data)
        except StoreUnavailable as e:
            if e.store == ACCOUNTS:
                raise web.HTTPError(
                    503, "Sign-in is unavailable right now: the account database cannot be reached."
                ) from None
            raise web.HTTPError(503, UNAVAILABLE) from None
        raise web.HTTPError(400, "Send a username and password, or a sign-in token.")

    async def _authenticate_token(self, handler, token: str) -> dict:
        if self.keys is None:
            raise web.HTTPError(
                400, "Token sign-in is not set up on this hub; use your username and password."
            )
        address = self.client_address(handler)
        verdict = await self.limiter.check("", address)
        if verdict.retry_after:
            raise web.HTTPError(429, too_many(verdict))
        now = clock.now()
        try:
            identity = await verify_token(token, self.keys, self.verify_settings(), now)
        except TokenRejected as e:
            if e.status != 503:
                await self.limiter.failed("", address)
            raise web.HTTPError(e.status, f"Sign-in token refused: {e.reason}") from None
        # before the token is used up: a 503 here leaves it valid for a retry
        await self._refuse_disabled(identity.username)
        ttl = identity.expires_at - now + self.jwt_leeway
        if not await self.sessions.claim_jti(identity.jti, ttl):
            await self.limiter.failed("", address)
            raise web.HTTPError(
                401, "Sign-in token refused: it was already used. Ask your portal for a new one."
            )
        model = self.auth_model(identity.username, identity.role, "jwt", identity.claims)
        if self.manage_groups:
            model["groups"] = list(identity.groups or [])
        return model

    async def _refuse_disabled(self, name: str) -> None:
        """A local account an admin disabled signs in by no method, a portal's token
        included (an account of the same name is the same person on this hub).

        Nor does a portal's token sign in to an account a teacher created (through the
        classes service): the teacher knows or set its password, so a portal user whose
        name a teacher took before their first sign-in would share an account with them.
        Such accounts sign in with their password; an admin resolves a clash."""
        if self.accounts is None:
            return
        standing = await self.accounts.standing(name)  # one query for both checks
        if standing is None:
            return
        disabled, creator = standing
        if disabled:
            self.log.info("Token sign-in of %s refused: the account is disabled", name)
            raise web.HTTPError(403, "This account is disabled on this hub; ask an admin.")
        if creator and TEACHER_MADE in creator:
            self.log.warning("Token sign-in of %s refused: a teacher made that account", name)
            raise web.HTTPError(
                403,
                "A teacher created a local account with this name: it signs in with its "
                "password only. If this is your name at your institution, ask an admin.",
            )

    async def _authenticate_password(self, handler, data) -> dict | None:
        try:
            username = normalize_username(data.get("username", ""))
        except InvalidUsername:
            return None
        address = self.client_address(handler)
        # counted as a failure until the password proves right
        verdict = await self.limiter.attempt(username, address)
        if verdict.retry_after:
            raise web.HTTPError(429, too_many(verdict))
        try:
            if verdict.delay:
                # an account many have guessed at: slower, never locked
                await asyncio.sleep(verdict.delay)
            account = await self.accounts.verify(username, data.get("password", ""))
        except BaseException:
            await self.limiter.release(username, address)
            raise
        if account is None:
            return None
        await self.limiter.succeeded(username, address)
        return self.auth_model(account.username, account.role, "password", {})

    def auth_model(self, name: str, role: str, method: str, claims: dict) -> dict:
        model = {
            "name": name,
            "admin": role == "admin",
            "roles": roles_for(role, self.roles()),
            "auth_state": {"method": method, "role": role, "claims": claims},
        }
        if self.manage_groups:
            model["groups"] = None  # local accounts carry no groups: leave them as they are
        return model

    # ----- the single session -----

    async def run_post_auth_hook(self, handler, authentication):
        authentication = await super().run_post_auth_hook(handler, authentication)
        if authentication:
            try:
                await self._begin_session(handler, authentication)
            except StoreUnavailable:
                raise web.HTTPError(503, UNAVAILABLE) from None
            if authentication["auth_state"]["role"] == "teacher":
                existing = orm.User.find(handler.db, authentication["name"])
                if existing is not None:
                    signature = teacher_rosters(handler.db, existing, self._class_groups)
                    authentication["roles"] += class_teacher_roles(signature)
        return authentication

    async def _begin_session(self, handler, authentication) -> None:
        name = authentication["name"]
        lock = self._locks.setdefault(name, asyncio.Lock())
        try:
            await asyncio.wait_for(lock.acquire(), timeout=15)
        except TimeoutError:
            raise web.HTTPError(503, "Too many sign-ins at once for this account; retry.") from None
        # held until the sign-in response has set its cookies (see handlers.LoginHandler)
        hold = getattr(handler, "hold_until_finished", None)
        if hold is None:
            lock.release()
        else:
            hold(lock)
        session_id = uuid.uuid4().hex
        browser = handler.get_session_cookie()
        if self.session_policy == REJECT and browser:
            live, _ = await self.sessions.get(name)
            if live and live.session_id == browser:
                session_id = browser  # the same browser signing in again
        session = Session(
            user=name,
            session_id=session_id,
            started=clock.now(),
            address=self.client_address(handler),
            agent=(handler.request.headers.get("User-Agent") or "")[:200],
            method=authentication.get("auth_state", {}).get("method", ""),
        )
        result = await self.sessions.begin(session, self.session_policy)
        if not result.accepted:
            raise web.HTTPError(409, reject_message(result.session, self.session_idle_timeout))
        if result.replaced:
            n = revoke.delete_session_tokens(handler.db, name, result.replaced.session_id)
            self.log.info("Session of %s replaced by a new sign-in (%d tokens revoked)", name, n)
        handler.classhub_session_id = session_id

    async def end_session(self, db, name: str, session_id: str = "") -> Session | None:
        """End ``name``'s live session (only ``session_id``, when given): Redis, tokens, cookie."""
        await self.ready()
        ended = await self.sessions.end(name, session_id)
        if ended:
            revoke.delete_session_tokens(db, name, ended.session_id)
            revoke.rotate_cookie_id(db, name)
        return ended

    async def refresh_user(self, user, handler=None):
        if handler is None or self.sessions is None:
            return True
        token = handler.get_token()
        if token is not None and token.user_id == user.id:
            session_id = token.session_id
            if not session_id:
                # a server's own token or one an admin issued, not a browser's: no session
                # to check, but its rights are the owner's current ones
                return self._teacher_roles_update(user) or True
        else:
            session_id = handler.get_session_cookie()
            if not session_id:
                return False
        # a student server's periodic websocket re-check is not the person's activity
        extend = handler.request.headers.get("X-Classhub-Recheck") != "websocket"
        try:
            live = await self.sessions.touch(user.name, session_id, extend=extend)
        except StoreUnavailable:
            # keep serving signed-in people while Redis is away; new sign-ins fail closed
            return self._teacher_roles_update(user) or True
        if not live:
            self.log.info("Session of %s has ended; sign-in required", user.name)
            return False
        return self._teacher_roles_update(user) or True

    def _teacher_roles_update(self, user) -> dict | None:
        """New roles for a teacher whose class roles differ from their classes' rosters
        now (a student added or removed, a class gained or lost), else None.

        Runs on (nearly) every request of a teacher, without a database query in the
        steady state: the rosters come from the hub session's objects
        (:mod:`.class_rosters`), the role dicts from a per-teacher cache unless the rosters
        changed, and the comparison with the roles held is in memory. Scopes are
        compared, not only role names: ``teacher-<code>`` keeps its name when its
        students change. JupyterHub's ``User.sync_roles`` then updates the existing
        role's scopes (``create_role`` with ``reset_to_defaults=False`` sets any scopes
        that differ)."""
        orm_user = user.orm_user
        held = {r.name: r for r in orm_user.roles}
        if "classhub-teacher" not in held:
            self._class_roles.pop(user.name, None)
            return None
        signature = teacher_rosters(user.db, orm_user, self._class_groups)
        cached = self._class_roles.get(user.name)
        if cached is not None and cached[0] == signature:
            wanted = cached[1]
        else:
            wanted = roles_for("teacher", self.roles()) + class_teacher_roles(signature)
            self._class_roles[user.name] = (signature, wanted)
        if held.keys() == {r["name"] for r in wanted} and all(
            list(held[r["name"]].scopes or []) == r["scopes"] for r in wanted
        ):
            return None
        self.log.info("Updating the class roles of teacher %s", user.name)
        # sync_roles marks the dicts it is given; keep the cached ones clean
        return {"name": user.name, "roles": [dict(r, scopes=list(r["scopes"])) for r in wanted]}

    def get_handlers(self, app):
        from .admin_handlers import admin_handlers
        from .handlers import LoginHandler, LogoutHandler

        return [("/login", LoginHandler), ("/logout", LogoutHandler), *admin_handlers()]


def too_many(verdict) -> str:
    """The 429 message for a refused attempt (a ``ratelimit.Verdict``)."""
    minutes = max(1, round(verdict.retry_after / 60))
    when = f"Try again in {minutes} minute{'s' if minutes != 1 else ''}"
    if verdict.locked == "account":
        return (
            "Too many failed sign-ins for this account from this address. "
            f"{when}, sign in from another device, or ask an admin."
        )
    return f"Too many failed sign-ins from this address. {when}, or ask an admin."
