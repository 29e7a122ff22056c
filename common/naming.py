"""Docker object names for a student's server: bounded, valid and collision-free."""

from __future__ import annotations

import hashlib
import re

_FOLD = re.compile(r"[^a-z0-9]+")


def _readable(text: str, limit: int) -> str:
    return _FOLD.sub("-", text.lower()).strip("-")[:limit].strip("-") or "x"


def object_name(prefix: str, kind: str, user: str, server: str) -> str:
    """A Docker container/volume name for ``(user, server)``.

    Docker names must match ``[a-zA-Z0-9][a-zA-Z0-9_.-]+``; user names may hold any
    unicode character and be hundreds of characters long. The name is a readable,
    folded prefix plus a hash of the exact pair, so two users never share a name and a
    name never exceeds ~90 characters.
    """
    digest = hashlib.sha256(f"{user}\0{server}".encode()).hexdigest()[:12]
    parts = [prefix, kind, _readable(user, 32)]
    if server:
        parts.append(_readable(server, 20))
    parts.append(digest)
    return "-".join(parts)
