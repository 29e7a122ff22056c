"""Login attempt limits per user and per address, counted in Redis.

Failed attempts are counted in a fixed window; once a user or an address reaches its
limit, further attempts are refused until the window ends, without even checking the
password (so a guesser learns nothing and burns no argon2 time). A successful sign-in
clears the user's counter.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

from .sessions import SessionStore


@dataclass(frozen=True)
class Limits:
    per_user: int = 5
    per_address: int = 50
    window: int = 900  # seconds


def _h(value: str) -> str:
    return hashlib.sha256(value.encode("utf-8", "replace")).hexdigest()[:32]


class LoginLimiter:
    def __init__(self, store: SessionStore, limits: Limits):
        self.store = store
        self.limits = limits

    def _keys(self, user: str, address: str) -> tuple[str, str]:
        p = self.store.prefix
        return f"{p}:fail:user:{_h(user)}", f"{p}:fail:addr:{_h(address)}"

    async def retry_after(self, user: str, address: str) -> int:
        """Seconds until the next attempt is allowed (0: allowed now)."""
        ukey, akey = self._keys(user, address)
        pipe = self.store.redis.pipeline(transaction=False)
        pipe.get(ukey)
        pipe.ttl(ukey)
        pipe.get(akey)
        pipe.ttl(akey)
        ucount, uttl, acount, attl = await self.store.call("checking login limits", pipe.execute())
        wait = 0
        if user and int(ucount or 0) >= self.limits.per_user:
            wait = max(wait, uttl)
        if int(acount or 0) >= self.limits.per_address:
            wait = max(wait, attl)
        return max(int(wait), 0)

    async def failed(self, user: str, address: str) -> None:
        ukey, akey = self._keys(user, address)
        pipe = self.store.redis.pipeline(transaction=True)
        for key in (ukey, akey) if user else (akey,):
            pipe.incr(key)
            pipe.expire(key, self.limits.window, nx=True)
        await self.store.call("counting a failed login", pipe.execute())

    async def succeeded(self, user: str) -> None:
        ukey, _ = self._keys(user, "")
        await self.store.call("clearing login failures", self.store.redis.delete(ukey))
