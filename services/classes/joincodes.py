"""Join codes: a per-class random code a signed-in student types to enrol themself
(when the admin turns it on, ``ClassesApp.join_codes``), and the limit on wrong guesses.

Pure functions and one in-memory limiter (the service is one process); no I/O.
"""

from __future__ import annotations

import secrets
from collections import OrderedDict, deque
from dataclasses import dataclass, field

#: no 0/O, 1/I/L: codes are read off a board and typed in
ALPHABET = "ABCDEFGHJKMNPQRSTUVWXYZ23456789"
LENGTH = 10  # ~49 bits: guessing one among thousands of classes stays hopeless

WRONG = (
    "That join code is not valid (or its class does not take new students now). "
    "Check it with your teacher; codes look like ABCD-EFGH-JK."
)


def new_join_code() -> str:
    return "".join(secrets.choice(ALPHABET) for _ in range(LENGTH))


def normal_join_code(raw: object) -> str | None:
    """The code as stored (upper case, without spaces or dashes), or None when it cannot
    be one (so it is never looked up)."""
    if not isinstance(raw, str) or len(raw) > 40:
        return None
    code = "".join(ch for ch in raw.upper() if ch not in " -\t")
    if len(code) != LENGTH or any(ch not in ALPHABET for ch in code):
        return None
    return code


def shown_join_code(code: str) -> str:
    """``ABCDEFGHJK`` as ``ABCD-EFGH-JK``, easier to read out."""
    return "-".join(code[i : i + 4] for i in range(0, len(code), 4))


@dataclass
class JoinLimiter:
    """Wrong join codes per account and per address within ``window`` seconds; at the
    limit, further tries are refused until the oldest failure leaves the window. At most
    ``max_keys`` keys are remembered (the oldest are forgotten first)."""

    per_account: int = 10
    per_address: int = 30
    window: float = 600.0
    max_keys: int = 20_000
    _failures: OrderedDict = field(default_factory=OrderedDict)

    def _recent(self, key: str, now: float) -> deque:
        times = self._failures.get(key)
        if times is None:
            return deque()
        while times and times[0] <= now - self.window:
            times.popleft()
        if not times:
            del self._failures[key]
        return times

    def retry_after(self, account: str, address: str, now: float) -> float:
        """Seconds until ``account`` from ``address`` may try again (0: now)."""
        waits = []
        for key, limit in (("u:" + account, self.per_account), ("a:" + address, self.per_address)):
            times = self._recent(key, now)
            if len(times) >= limit:
                waits.append(times[0] + self.window - now)
        return max(waits, default=0.0)

    def failed(self, account: str, address: str, now: float) -> None:
        for key in ("u:" + account, "a:" + address):
            times = self._failures.pop(key, None) or deque()
            times.append(now)
            self._failures[key] = times  # most recent last
        while len(self._failures) > self.max_keys:
            self._failures.popitem(last=False)
