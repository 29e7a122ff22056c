"""The in-process stand-ins of the hub tier: a proxy, the account store and Redis.

Only what the hub tier must not start is replaced; everything else is production code.

- :class:`MemoryProxy`: the routing table in a dict (requests go straight to the hub, as
  jupyterhub's own tests do with ``bypass_proxy``); Traefik is tested in the integration
  tier.
- :class:`MemoryAccounts`: the local accounts in a dict, with the same public methods,
  rules (:mod:`authenticator.account_rules`), CSV import (:mod:`authenticator.accounts_csv`)
  and real argon2 hashes as :class:`authenticator.accounts.AccountStore`, whose SQL only
  PostgreSQL runs (tests/integration/test_accounts_store.py covers it).
- :class:`ClassroomMockSpawner`: JupyterHub's MockSpawner with the two settings of
  ``ClassroomSpawner`` the hub's pages read (``student_default_server`` off,
  ``class_servers_only`` on, their defaults); the spawner itself runs in the integration
  tier.
- Redis: ``fakeredis`` (Lua scripts through ``lupa``) behind the production
  :class:`authenticator.sessions.SessionStore`: every script and command of the sessions
  and the login limits runs as written. Only ``SessionStore.from_url`` is replaced (its
  socket timeouts and reconnect retries are tested against a real Redis in
  tests/integration/test_session_store.py).
"""

from __future__ import annotations

from datetime import UTC, datetime

import fakeredis
from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from jupyterhub.proxy import Proxy
from jupyterhub.tests.mocking import MockSpawner
from traitlets import Bool, Unicode

from authenticator import JWTAuthenticator
from authenticator.account_rules import (
    AccountExists,
    AccountNotFound,
    check_password,
    check_role,
    check_username,
)
from authenticator.accounts import STORE, UNAVAILABLE, Account
from authenticator.sessions import SessionStore
from common.errors import StoreUnavailable
from common.naming import object_name
from common.usernames import InvalidUsername, normalize_username


class MemoryProxy(Proxy):
    """A proxy that only remembers its routes (nothing listens on the public URL)."""

    should_start = False

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self.routes: dict[str, dict] = {}

    async def add_route(self, routespec, target, data):
        self.routes[routespec] = {"routespec": routespec, "target": target, "data": data}

    async def delete_route(self, routespec):
        self.routes.pop(routespec, None)

    async def get_all_routes(self):
        return {k: dict(v) for k, v in self.routes.items()}


class MemoryAccounts:
    """Local accounts in memory; ``down = True`` makes every call fail like PostgreSQL
    being unreachable."""

    def __init__(self):
        # real argon2, with cheap parameters: the tier checks behaviour, not hash cost
        self.hasher = PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1)
        self.rows: dict[str, dict] = {}
        #: (actor, action, username) of every change, oldest first
        self.audit: list[tuple[str, str, str]] = []
        self.down = False
        self.opened = False

    def _check_up(self) -> None:
        if self.down:
            raise StoreUnavailable(UNAVAILABLE, "the test switched it off", store=STORE)

    async def open(self) -> None:
        self._check_up()
        self.opened = True

    async def close(self) -> None:
        self.opened = False

    @staticmethod
    def _account(row: dict) -> Account:
        return Account(row["username"], row["role"], row["disabled"], row["created_at"])

    async def verify(self, username: str, password: str) -> Account | None:
        self._check_up()
        try:
            name = normalize_username(username)
        except InvalidUsername:
            return None
        row = self.rows.get(name)
        if row is None or not isinstance(password, str) or not password:
            return None
        try:
            ok = self.hasher.verify(row["password_hash"], password)
        except (VerificationError, InvalidHashError):
            ok = False
        if not ok or row["disabled"]:
            return None
        return self._account(row)

    async def create(
        self,
        username: str,
        password: str,
        role: str = "student",
        *,
        if_missing: bool = False,
        actor: str = "classhub-user",
    ) -> Account:
        self._check_up()
        name = check_username(username)
        role = check_role(role)
        check_password(password, name)
        if name in self.rows:
            if if_missing:
                return self._account(self.rows[name])
            raise AccountExists(f"an account named {name} already exists")
        self.rows[name] = {
            "username": name,
            "role": role,
            "disabled": False,
            "created_at": datetime.now(UTC),
            "password_hash": self.hasher.hash(password),
        }
        self.audit.append((actor, "create", name))
        return self._account(self.rows[name])

    async def get(self, username: str) -> Account | None:
        self._check_up()
        row = self.rows.get(check_username(username))
        return self._account(row) if row else None

    async def list(self) -> list[Account]:
        self._check_up()
        return [self._account(self.rows[name]) for name in sorted(self.rows)]

    async def created_by(self, username: str) -> str | None:
        self._check_up()
        name = check_username(username)
        made = [actor for actor, action, who in self.audit if who == name and action == "create"]
        return made[-1] if made else None

    async def standing(self, username: str) -> tuple[bool, str | None] | None:
        self._check_up()
        row = self.rows.get(check_username(username))
        return (row["disabled"], await self.created_by(username)) if row else None

    async def search(self, text: str = "", offset: int = 0, limit: int = 50):
        self._check_up()
        names = [n for n in sorted(self.rows) if text.lower() in n]
        page = names[offset : offset + limit]
        return [self._account(self.rows[n]) for n in page], len(names)

    def _row(self, username: str) -> dict:
        self._check_up()
        name = check_username(username)
        if name not in self.rows:
            raise AccountNotFound(f"there is no account named {name}")
        return self.rows[name]

    async def set_password(self, username: str, password: str, *, actor="classhub-user") -> None:
        check_password(password, check_username(username))
        self._row(username)["password_hash"] = self.hasher.hash(password)
        self.audit.append((actor, "password", check_username(username)))

    async def set_role(self, username: str, role: str, *, actor="classhub-user") -> None:
        self._row(username)["role"] = check_role(role)
        self.audit.append((actor, "role", check_username(username)))

    async def set_disabled(self, username: str, disabled: bool, *, actor="classhub-user") -> None:
        self._row(username)["disabled"] = bool(disabled)
        self.audit.append((actor, "disable" if disabled else "enable", check_username(username)))

    async def delete(self, username: str, *, actor="classhub-user") -> None:
        self._row(username)
        del self.rows[check_username(username)]
        self.audit.append((actor, "delete", check_username(username)))

    async def import_csv(
        self,
        text: str,
        *,
        default_role: str = "student",
        skip_existing: bool = False,
        actor: str = "classhub-user",
    ):
        from authenticator import accounts_csv as ac

        self._check_up()
        rows = ac.parse_accounts_csv(text, default_role=default_role)
        existing = {r.username for r in rows if r.error is None and r.username in self.rows}
        if ac.is_blocked(rows, existing, skip_existing=skip_existing):
            return ac.build_report(rows, existing, skip_existing=skip_existing, applied=False)
        for r in ac.rows_to_create(rows, existing):
            await self.create(r.username, r.password, r.role, actor=actor)
        return ac.build_report(rows, existing, skip_existing=skip_existing, applied=True)


def session_store_on(server: fakeredis.FakeServer) -> type[SessionStore]:
    """A SessionStore class whose ``from_url`` connects to ``server`` (whatever the URL)."""

    class FakeRedisSessionStore(SessionStore):
        @classmethod
        def from_url(cls, url, *, timeout, idle_timeout, prefix="classhub"):
            client = fakeredis.FakeAsyncRedis(server=server, decode_responses=True)
            return cls(client, idle_timeout=idle_timeout, prefix=prefix)

    return FakeRedisSessionStore


class MockJWTAuthenticator(JWTAuthenticator):
    """The production authenticator with its account store in memory."""

    def make_account_store(self):
        return MemoryAccounts()


class ClassroomMockSpawner(MockSpawner):
    """MockSpawner with the settings of ClassroomSpawner that the hub's pages read."""

    student_default_server = Bool(False, config=True)
    class_servers_only = Bool(True, config=True)


class SwarmMockSpawnerBase(ClassroomMockSpawner):
    """What SwarmClassroomSpawner keeps that the hub's Swarm APIs read and write: the
    home's volume name and the node its newest files are tied to (``home_node``, kept in
    the spawner's state)."""

    prefix = Unicode("ch")
    home_node = ""

    @property
    def home_volume(self):
        return object_name(self.prefix, "home", self.user.name, self.name or "")

    def get_state(self):
        state = super().get_state()
        if self.home_node:
            state["home_node"] = self.home_node
        return state

    def load_state(self, state):
        super().load_state(state)
        self.home_node = state.get("home_node", "")
