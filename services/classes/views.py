"""The JSON shapes of a class, per caller (pure). A student's view never has a roster."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime

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
        "created_at": _iso(record.get("created_at")),
        "updated_at": _iso(record.get("updated_at")),
        "role": role,
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
