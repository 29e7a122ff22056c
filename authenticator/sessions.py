"""One active sign-in session per user, kept in Redis.

A session is one browser's sign-in: JupyterHub's ``jupyterhub-session-id`` cookie, which
also tags every OAuth token the hub issues to that browser. Redis holds, per user, the one
live session id with when and where it began; the key expires after the idle time and is
extended by activity. Every change is one Lua script, so concurrent logins of one user can
never leave two live sessions.

Everything here is plain async code with explicit arguments; the clock is passed in.
"""

from __future__ import annotations

import hashlib
import json
import logging
from dataclasses import asdict, dataclass

import redis.asyncio as aioredis
from redis.asyncio.retry import Retry
from redis.backoff import ExponentialBackoff
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import RedisError

from common.errors import StoreUnavailable

log = logging.getLogger(__name__)

TAKEOVER = "takeover"
REJECT = "reject"
POLICIES = (TAKEOVER, REJECT)
#: names the store in :class:`~common.errors.StoreUnavailable` (``.store``): when Redis
#: cannot be reached in time, sign-ins fail closed
STORE = "sessions"


@dataclass(frozen=True)
class Session:
    user: str
    session_id: str
    started: float
    address: str = ""
    agent: str = ""
    method: str = ""

    def to_json(self) -> str:
        return json.dumps(asdict(self), separators=(",", ":"))

    @classmethod
    def from_json(cls, raw: str | bytes | None) -> Session | None:
        if not raw:
            return None
        data = json.loads(raw)
        return cls(**{k: data.get(k, "") for k in cls.__dataclass_fields__})


@dataclass(frozen=True)
class BeginResult:
    accepted: bool
    session: Session  # the new session, or the one that blocks it (reject policy)
    replaced: Session | None = None  # the session that was ended (takeover policy)


# KEYS[1] session key; ARGV: new json, new sid, policy, ttl ms
_BEGIN = """
local old = redis.call('GET', KEYS[1])
if old then
  local o = cjson.decode(old)
  if o['session_id'] ~= ARGV[2] and ARGV[3] == 'reject' then
    return {0, old}
  end
end
redis.call('SET', KEYS[1], ARGV[1], 'PX', tonumber(ARGV[4]))
if old then return {1, old} end
return {1, false}
"""

# KEYS[1] session key; ARGV: sid, ttl ms, extend-if-below ms
_TOUCH = """
local cur = redis.call('GET', KEYS[1])
if not cur then return 0 end
if cjson.decode(cur)['session_id'] ~= ARGV[1] then return 0 end
if redis.call('PTTL', KEYS[1]) < tonumber(ARGV[3]) then
  redis.call('PEXPIRE', KEYS[1], tonumber(ARGV[2]))
end
return 1
"""

# KEYS[1] session key; ARGV[1] sid ('' = whatever session is live)
_END = """
local cur = redis.call('GET', KEYS[1])
if not cur then return false end
if ARGV[1] ~= '' and cjson.decode(cur)['session_id'] ~= ARGV[1] then return false end
redis.call('DEL', KEYS[1])
return cur
"""


class SessionStore:
    """Per-user live session, one-time JWT ids and login failure counters in Redis."""

    def __init__(
        self,
        client: aioredis.Redis,
        *,
        idle_timeout: float,
        prefix: str = "classhub",
    ):
        self.redis = client
        self.idle_ms = int(idle_timeout * 1000)
        # extend the expiry only when a tenth of the idle time has passed: one write per
        # user per few minutes instead of one per request
        self.extend_below_ms = self.idle_ms - max(1000, self.idle_ms // 10)
        self.prefix = prefix
        self._begin = client.register_script(_BEGIN)
        self._touch = client.register_script(_TOUCH)
        self._end = client.register_script(_END)

    @classmethod
    def from_url(
        cls, url: str, *, timeout: float, idle_timeout: float, prefix: str = "classhub"
    ) -> SessionStore:
        client = aioredis.Redis.from_url(
            url,
            socket_timeout=timeout,
            socket_connect_timeout=timeout,
            health_check_interval=30,
            decode_responses=True,
            # After Redis restarts, every pooled connection is dead and its next command
            # fails at once. Without a retry that failure reached a person as a 503 although
            # Redis was back; two quick retries on a fresh connection hide the restart.
            # Timeouts are not retried: a hung Redis must not cost three timeouts per request.
            retry=Retry(ExponentialBackoff(cap=0.5, base=0.05), 2),
            retry_on_error=[RedisConnectionError],
        )
        return cls(client, idle_timeout=idle_timeout, prefix=prefix)

    def _key(self, user: str) -> str:
        return f"{self.prefix}:session:{user}"

    async def call(self, what: str, coro):
        try:
            return await coro
        except (RedisError, OSError) as e:
            log.warning("Redis unavailable while %s: %s", what, type(e).__name__)
            raise StoreUnavailable(
                "The session store (Redis) is unreachable; sign-in is paused until it is back.",
                type(e).__name__,
                store=STORE,
            ) from e

    async def begin(self, session: Session, policy: str) -> BeginResult:
        """Make ``session`` the user's live session under ``policy``."""
        if policy not in POLICIES:
            raise ValueError(f"unknown session policy {policy!r}")
        ok, old = await self.call(
            "starting a session",
            self._begin(
                keys=[self._key(session.user)],
                args=[session.to_json(), session.session_id, policy, self.idle_ms],
            ),
        )
        previous = Session.from_json(old)
        if not ok:
            return BeginResult(False, previous)
        if previous and previous.session_id == session.session_id:
            previous = None
        return BeginResult(True, session, previous)

    async def touch(self, user: str, session_id: str, *, extend: bool = True) -> bool:
        """True when ``session_id`` is ``user``'s live session; activity (``extend``)
        pushes its idle expiry back."""
        below = self.extend_below_ms if extend else -1
        found = await self.call(
            "checking a session",
            self._touch(keys=[self._key(user)], args=[session_id, self.idle_ms, below]),
        )
        return bool(found)

    async def end(self, user: str, session_id: str = "") -> Session | None:
        """End ``user``'s session (only if it is ``session_id``, when given)."""
        raw = await self.call(
            "ending a session", self._end(keys=[self._key(user)], args=[session_id])
        )
        return Session.from_json(raw)

    async def get(self, user: str) -> tuple[Session | None, float]:
        """The live session and the seconds until it expires when idle."""
        pipe = self.redis.pipeline(transaction=False)
        pipe.get(self._key(user))
        pipe.pttl(self._key(user))
        raw, pttl = await self.call("reading a session", pipe.execute())
        return Session.from_json(raw), max(pttl, 0) / 1000

    async def list(self) -> list[tuple[Session, float]]:
        """Every live session with its remaining idle time (a SCAN, for the admin page)."""

        async def scan():
            keys = [k async for k in self.redis.scan_iter(self._key("*"), count=500)]
            if not keys:
                return []
            pipe = self.redis.pipeline(transaction=False)
            for k in keys:
                pipe.get(k)
                pipe.pttl(k)
            values = await pipe.execute()
            return list(zip(values[::2], values[1::2], strict=True))

        pairs = await self.call("listing sessions", scan())
        out = [(Session.from_json(raw), max(pttl, 0) / 1000) for raw, pttl in pairs if raw]
        return sorted(out, key=lambda p: p[0].user)

    async def claim_jti(self, jti: str, ttl: float) -> bool:
        """Record a JWT id as used; False when it was used before (a replay)."""
        digest = hashlib.sha256(jti.encode()).hexdigest()
        ok = await self.call(
            "recording a token id",
            self.redis.set(
                f"{self.prefix}:jti:{digest}", "1", nx=True, px=max(1000, int(ttl * 1000))
            ),
        )
        return bool(ok)

    async def ping(self) -> bool:
        await self.call("pinging", self.redis.ping())
        return True

    async def close(self) -> None:
        await self.redis.aclose()
