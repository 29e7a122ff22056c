"""Class servers as the hub reports them (pure functions of hub user models).

A class's server is the named server ``<code>`` of each person on its roster; it lives at
``/user/<name>/<code>/``. The hub's listing of active users (``GET /users?state=active``)
has every running or pending server; a roster name missing from it is ``stopped``.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import datetime
from urllib.parse import quote

from jupyterhub.utils import subdomain_hook_idna

RUNNING = "running"
PENDING = "pending"
STOPPED = "stopped"


def server_url(base_url: str, username: str, code: str) -> str:
    """The public address of ``username``'s server of class ``code``: a path on the hub's
    origin, or with per-user origins (``base_url`` like ``http://{user}.servers.example:8000/``)
    on the user's own host, named by JupyterHub's ``idna`` subdomain hook."""
    if "{user}." in base_url:
        head, _, rest = base_url.partition("{user}.")
        domain, slash, path = rest.partition("/")
        name, _, port = domain.partition(":")
        host = subdomain_hook_idna(username, name, "user")
        base_url = f"{head}{host}{':' + port if port else ''}{slash}{path}"
    return f"{base_url.rstrip('/')}/user/{quote(username, safe='')}/{code}/"


def server_state(model: Mapping | None) -> dict:
    """``{"state", "pending", "ready", "started", "last_activity"}`` of one hub server
    model (None: no such server)."""
    if not model or model.get("stopped"):
        return {
            "state": STOPPED,
            "pending": None,
            "ready": False,
            "started": None,
            "last_activity": (model or {}).get("last_activity"),
        }
    pending = model.get("pending")
    if pending:
        state = PENDING
    elif model.get("ready"):
        state = RUNNING
    else:
        state = PENDING
    return {
        "state": state,
        "pending": pending,
        "ready": bool(model.get("ready")),
        "started": model.get("started"),
        "last_activity": model.get("last_activity"),
    }


def active_servers(users: Iterable[Mapping], code: str) -> dict[str, Mapping]:
    """``{username: server model}`` of the active servers named ``code``."""
    out = {}
    for user in users:
        server = (user.get("servers") or {}).get(code)
        if server is not None:
            out[user["name"]] = server
    return out


def roster_servers(
    names: Iterable[str], active: Mapping[str, Mapping], code: str, base_url: str
) -> list[dict]:
    """One entry per roster name: its server's state and URL."""
    return [
        {"username": n, "url": server_url(base_url, n, code), **server_state(active.get(n))}
        for n in names
    ]


def parse_time(value: str | None) -> float | None:
    """Epoch seconds of a hub timestamp (``2026-12-01T09:20:18.123456Z``), None if unset
    or unreadable."""
    if not value:
        return None
    try:
        return datetime.fromisoformat(value.replace("Z", "+00:00")).timestamp()
    except ValueError:
        return None


START, STOP = "start", "stop"


def plan_bulk(
    action: str,
    roster: Iterable[str],
    active: Mapping[str, Mapping],
    problems: Mapping[str, str],
) -> dict[str, list | dict]:
    """What "start all" (``action`` ``start``) or "stop all" (``stop``) of a class does:
    ``{"act": names to start or stop, "unchanged": names already in that state,
    "skipped": {name: why}}``. ``active`` holds the roster's running or pending servers
    (:func:`active_servers`), ``problems`` why the caller may not act on a name
    (``rules.student_problem``: a teacher acts only on students)."""
    if action not in (START, STOP):
        raise ValueError(f"unknown action {action!r}; expected {START!r} or {STOP!r}")
    act, unchanged, skipped = [], [], {}
    for name in dict.fromkeys(roster):
        running = name in active
        if running == (action == START):
            unchanged.append(name)
        elif problems.get(name):
            skipped[name] = problems[name]
        else:
            act.append(name)
    return {"act": act, "unchanged": unchanged, "skipped": skipped}
