"""Login attempt limits, counted in Redis, that never lock the rightful owner out.

Failed attempts are counted in fixed windows (``Limits.window`` from the first failure):

- per account **and** client address: at ``per_user`` failures that account is locked
  *from that address* for the rest of the window, without even checking the password (so
  a guesser learns nothing and burns no argon2 time). The owner signing in from another
  address is not affected.
- per client address (password failures and refused tokens): at ``per_address`` every
  sign-in from that address is refused for the rest of the window.
- per account, from every address together: never a lock, only a slow-down. From
  ``slowdown_after`` failures on, each password attempt for the account waits a little
  longer before it is checked (``slowdown_step`` more per failure, at most
  ``slowdown_max`` seconds), so guessing from many addresses stays slow while the owner
  waits a few seconds at worst.

A password attempt is counted as failed *before* its password is checked (one Lua script
checks the limits and counts it), so a burst of parallel guesses cannot all slip past the
limits while the first ones are being checked. A successful sign-in takes its count back
and clears that account's count from that address; the account's slow-down count runs out
with its window. Refused tokens (cheap to check, not a guessing target) are counted per
address after the check.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

from .sessions import SessionStore


@dataclass(frozen=True)
class Limits:
    per_user: int = 5  # per account and address
    per_address: int = 50
    window: int = 900  # seconds
    slowdown_after: int = 5
    slowdown_step: float = 0.5  # seconds
    slowdown_max: float = 3.0  # seconds


@dataclass(frozen=True)
class Verdict:
    """What to do with an attempt: refuse it for ``retry_after`` seconds (``locked`` says
    by which limit: ``"account"`` from this address, or ``"address"``), or check it after
    waiting ``delay`` seconds."""

    retry_after: int = 0
    locked: str = ""
    delay: float = 0.0


def slowdown(failures: int, limits: Limits) -> float:
    """Seconds to wait before checking a password of an account with ``failures``."""
    if failures < limits.slowdown_after:
        return 0.0
    return min(limits.slowdown_max, limits.slowdown_step * (failures - limits.slowdown_after + 1))


# KEYS: account from this address, address, account; ARGV: per_user, per_address, window.
# Returns {locked, ttl, earlier account failures}: locked is '' when the attempt may go on,
# and then it has been counted on all three keys.
_ATTEMPT = """
local a = tonumber(redis.call('GET', KEYS[2]) or '0')
if a >= tonumber(ARGV[2]) then return {'address', redis.call('TTL', KEYS[2]), 0} end
local p = tonumber(redis.call('GET', KEYS[1]) or '0')
if p >= tonumber(ARGV[1]) then return {'account', redis.call('TTL', KEYS[1]), 0} end
local u = 0
for i, key in ipairs(KEYS) do
  local n = redis.call('INCR', key)
  if redis.call('TTL', key) < 0 then redis.call('EXPIRE', key, tonumber(ARGV[3])) end
  if i == 3 then u = n - 1 end
end
return {'', 0, u}
"""

# KEYS: as above; ARGV[1]: '1' to clear the account's count from this address (a success).
# Takes one attempt back from each count that still exists (never creates a key; a count
# back at zero is deleted).
_RELEASE = """
for i, key in ipairs(KEYS) do
  if i == 1 and ARGV[1] == '1' then
    redis.call('DEL', key)
  elseif tonumber(redis.call('GET', key) or '0') > 0 then
    if redis.call('DECR', key) <= 0 then redis.call('DEL', key) end
  end
end
return 1
"""


def _h(value: str) -> str:
    return hashlib.sha256(value.encode("utf-8", "replace")).hexdigest()[:32]


class LoginLimiter:
    def __init__(self, store: SessionStore, limits: Limits):
        self.store = store
        self.limits = limits
        self._attempt = store.redis.register_script(_ATTEMPT)
        self._release = store.redis.register_script(_RELEASE)

    def _keys(self, user: str, address: str) -> tuple[str, str, str]:
        """(account from this address, address, account from everywhere)."""
        p = self.store.prefix
        return (
            f"{p}:fail:pair:{_h(user + chr(0) + address)}",
            f"{p}:fail:addr:{_h(address)}",
            f"{p}:fail:user:{_h(user)}",
        )

    async def check(self, user: str, address: str) -> Verdict:
        """The verdict for an attempt for ``user`` (empty: a token) from ``address``,
        counting nothing (see :meth:`attempt` for passwords)."""
        pkey, akey, ukey = self._keys(user, address)
        pipe = self.store.redis.pipeline(transaction=False)
        for key in (pkey, akey):
            pipe.get(key)
            pipe.ttl(key)
        pipe.get(ukey)
        pcount, pttl, acount, attl, ucount = await self.store.call(
            "checking login limits", pipe.execute()
        )
        if int(acount or 0) >= self.limits.per_address:
            return Verdict(retry_after=max(int(attl), 1), locked="address")
        if user and int(pcount or 0) >= self.limits.per_user:
            return Verdict(retry_after=max(int(pttl), 1), locked="account")
        return Verdict(delay=slowdown(int(ucount or 0), self.limits) if user else 0.0)

    async def retry_after(self, user: str, address: str) -> int:
        """Seconds until the next attempt is allowed (0: allowed now)."""
        return (await self.check(user, address)).retry_after

    async def attempt(self, user: str, address: str) -> Verdict:
        """Check the limits for a password attempt and, when it may go on, count it as
        failed already; call :meth:`succeeded` or :meth:`release` when it did not fail."""
        locked, ttl, earlier = await self.store.call(
            "checking login limits",
            self._attempt(
                keys=list(self._keys(user, address)),
                args=[self.limits.per_user, self.limits.per_address, self.limits.window],
            ),
        )
        if locked:
            return Verdict(retry_after=max(int(ttl), 1), locked=str(locked))
        return Verdict(delay=slowdown(int(earlier), self.limits))

    async def succeeded(self, user: str, address: str) -> None:
        """The attempt was right: take its count back and clear the account's count from
        this address."""
        await self.store.call(
            "clearing login failures",
            self._release(keys=list(self._keys(user, address)), args=["1"]),
        )

    async def release(self, user: str, address: str) -> None:
        """The attempt was not decided (a store was down): take its count back."""
        await self.store.call(
            "releasing a login attempt",
            self._release(keys=list(self._keys(user, address)), args=["0"]),
        )

    async def failed(self, user: str, address: str) -> None:
        """Count a failure that :meth:`attempt` did not count (a refused token: ``user``
        empty, the address only)."""
        pkey, akey, ukey = self._keys(user, address)
        pipe = self.store.redis.pipeline(transaction=True)
        for key in (pkey, akey, ukey) if user else (akey,):
            pipe.incr(key)
            pipe.expire(key, self.limits.window, nx=True)
        await self.store.call("counting a failed login", pipe.execute())
