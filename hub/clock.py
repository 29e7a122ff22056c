"""The one clock of classhub's hub-side code, so tests can move time.

Code that needs the time takes a ``now`` argument or calls :func:`now`; tests replace the
function with ``monkeypatch.setattr(hub.clock, "now", ...)``.
"""

from __future__ import annotations

import time


def now() -> float:
    """Seconds since the epoch (wall clock, for expiry times shared with other systems)."""
    return time.time()
