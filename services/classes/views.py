"""The JSON shapes of a class, per caller (pure). A student's view never has a roster."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime

from .joincodes import shown_join_code
from .rules import STUDENT
from .servers import server_state, server_url


def _iso(value) -> str | None:
    return value.isoformat() if isinstance(value, datetime) else value


def full_view(record: Mapping, role: str) -> dict:
    """A class for its teachers and admins: everything, roster included."""
    return {
        "code": record["code"],
        "name": record["name"],
        "term": record.get("term", ""),
        "teachers": list(record.get("teachers", [])),
        "students": list(record.get("students", [])),
        "environment": dict(record["environment"]),
        "archived": bool(record.get("archived")),
        # weekly meetings; the warm-up starts the servers before each (.schedule)
        "schedule": record.get("schedule"),
        "created_at": _iso(record.get("created_at")),
        "updated_at": _iso(record.get("updated_at")),
        "role": role,
        # students who have it enrol themselves (when the admin turned join codes on)
        "join_code": shown_join_code(record["join_code"]) if record.get("join_code") else None,
    }


def summary_view(record: Mapping, role: str) -> dict:
    """A class in a teacher's or admin's list: the roster as a count."""
    view = full_view(record, role)
    view["student_count"] = len(view.pop("students"))
    return view


def student_view(record: Mapping, server: Mapping | None, *, username: str, base_url: str) -> dict:
    """A class for one of its students: what it is and the state of their own server."""
    return {
        "code": record["code"],
        "name": record["name"],
        "term": record.get("term", ""),
        "archived": bool(record.get("archived")),
        "role": STUDENT,
        "server": {
            "url": server_url(base_url, username, record["code"]),
            **server_state(server),
        },
    }


def _size(n: int) -> str:
    for unit, size in (("TB", 1 << 40), ("GB", 1 << 30), ("MB", 1 << 20), ("KB", 1 << 10)):
        if n >= size:
            return f"{n / size:.1f} {unit}"
    return f"{n} bytes"


def home_views(homes: list[Mapping], class_names: Mapping[str, str]) -> list[dict]:
    """A person's home folders for "My classes" (from the hub's ``/classhub/homes``):
    which server, how much is used of how much, and whether it is (nearly) full."""
    views = []
    for home in homes:
        server = str(home.get("server") or "")
        used, quota = home.get("used"), home.get("quota")
        if server:
            name = class_names.get(server)
            label = f"{name} ({server})" if name else server
        else:
            label = "Your own server"
        percent = None
        if isinstance(used, int) and isinstance(quota, int) and quota > 0:
            percent = min(100, round(100 * used / quota))
        views.append(
            {
                "server": server,
                "label": label,
                "used": used,
                "quota": quota,
                "used_text": _size(used) if isinstance(used, int) else "unknown",
                "quota_text": _size(quota) if isinstance(quota, int) else "no limit",
                "percent": percent,
                "full": percent is not None and percent >= 95,
            }
        )
    return sorted(views, key=lambda v: (v["server"] != "", v["label"]))
