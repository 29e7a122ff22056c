"""The one clock of classhub (hub plugins and services), so tests can move time.

Code that needs the time takes a ``now`` argument or calls ``clock.now()`` through the
module (``from common import clock``, never ``from common.clock import now``); tests replace
the function with ``monkeypatch.setattr(common.clock, "now", ...)``.
"""

from __future__ import annotations

import time


def now() -> float:
    """Seconds since the epoch (wall clock, for expiry times shared with other systems)."""
    return time.time()
