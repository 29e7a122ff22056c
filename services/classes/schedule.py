"""A class's weekly meetings and the warm-up plan (pure: no I/O, times are arguments).

A schedule as stored on the class record and sent by the class page::

    {"timezone": "Europe/Paris",
     "meetings": [{"days": ["mon", "wed"], "start": "09:00", "minutes": 90},
                  {"days": ["fri"], "start": "23:30", "minutes": 120}]}

Each meeting repeats every week on its days, at its local start time in the schedule's
time zone (an IANA name). Local times follow daylight-saving time: a meeting at 09:00 is
at 09:00 on the wall clock in summer and in winter. A start that does not exist on a
spring-forward day (02:30 when the clocks jump from 02:00 to 03:00) happens one hour
later on the wall clock (03:30, Python's ``fold=0``); a start that happens twice on a
fall-back day is the first of the two. A meeting may cross midnight (23:30 for 120
minutes); the day named is the day it starts.

The warm-up (``services/classes/warmup.py``) asks :func:`due_meeting` which meeting of
a class starts within the lead time, :func:`plan_warm` which servers to start within
the admin's capacity, and :func:`is_unused` which warm servers nobody used.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError, available_timezones

DAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
MAX_MEETINGS = 14
MAX_MINUTES = 12 * 60
FIELDS = frozenset({"timezone", "meetings"})
MEETING_FIELDS = frozenset({"days", "start", "minutes"})
_START_RE = re.compile(r"^([01]?\d|2[0-3]):([0-5]\d)(?::00)?$")


class InvalidSchedule(ValueError):
    """A schedule the service refuses; the message says which field and how to fix it."""


# ----- checking


def check_timezone(value: Any) -> str:
    if not isinstance(value, str) or not value.strip():
        raise InvalidSchedule(
            "'timezone' must be a time zone name such as 'Europe/Paris' or 'UTC'."
        )
    name = value.strip()
    if name not in _zone_names():
        raise InvalidSchedule(
            f"Unknown time zone {name[:60]!r}: use a name from the IANA list, such as "
            "'Europe/Paris', 'America/New_York' or 'UTC'."
        )
    try:
        ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise InvalidSchedule(f"Time zone {name[:60]!r} is not installed on this server.") from None
    return name


def _zone_names() -> set[str]:
    return available_timezones() | {"UTC"}


def check_meeting(value: Any, index: int) -> dict:
    where = f"meeting {index + 1}"
    if not isinstance(value, Mapping):
        raise InvalidSchedule(f"{where} must be an object with 'days', 'start' and 'minutes'.")
    unknown = sorted(set(value) - MEETING_FIELDS)
    if unknown:
        raise InvalidSchedule(
            f"{where}: unknown field(s) {', '.join(map(str, unknown))[:100]}; "
            "allowed: days, start, minutes."
        )
    days = value.get("days")
    if isinstance(days, str):
        days = [days]
    if not isinstance(days, list) or not days:
        raise InvalidSchedule(f"{where}: 'days' must list one or more of {', '.join(DAYS)}.")
    out_days = []
    for day in days:
        d = day.strip().lower()[:3] if isinstance(day, str) else None
        if d not in DAYS:
            raise InvalidSchedule(
                f"{where}: {str(day)[:20]!r} is not a day; use {', '.join(DAYS)}."
            )
        if d not in out_days:
            out_days.append(d)
    start = value.get("start")
    match = _START_RE.match(start.strip()) if isinstance(start, str) else None
    if not match:
        raise InvalidSchedule(
            f"{where}: 'start' must be a 24-hour time such as '09:00' or '14:30'."
        )
    minutes = value.get("minutes")
    if isinstance(minutes, bool) or not isinstance(minutes, int):
        raise InvalidSchedule(f"{where}: 'minutes' (the duration) must be a whole number.")
    if not 1 <= minutes <= MAX_MINUTES:
        raise InvalidSchedule(
            f"{where}: 'minutes' must be between 1 and {MAX_MINUTES} (12 hours), got {minutes}."
        )
    return {
        "days": sorted(out_days, key=DAYS.index),
        "start": f"{int(match.group(1)):02d}:{match.group(2)}",
        "minutes": minutes,
    }


def check_schedule(value: Any) -> dict | None:
    """The schedule to store, or None (no schedule: ``null`` or no meetings)."""
    if value is None:
        return None
    if not isinstance(value, Mapping):
        raise InvalidSchedule(
            "'schedule' must be an object with 'timezone' and 'meetings', or null."
        )
    unknown = sorted(set(value) - FIELDS)
    if unknown:
        raise InvalidSchedule(
            f"Unknown schedule field(s): {', '.join(map(str, unknown))[:100]}; "
            "allowed: timezone, meetings."
        )
    meetings = value.get("meetings", [])
    if not isinstance(meetings, list):
        raise InvalidSchedule("'meetings' must be a list.")
    if len(meetings) > MAX_MEETINGS:
        raise InvalidSchedule(
            f"A class has at most {MAX_MEETINGS} meeting lines; got {len(meetings)}."
        )
    if not meetings:
        return None
    return {
        "timezone": check_timezone(value.get("timezone")),
        "meetings": [check_meeting(m, i) for i, m in enumerate(meetings)],
    }


# ----- meeting times


def _local_start(day: date, start: str, zone: ZoneInfo) -> datetime:
    hour, minute = (int(x) for x in start.split(":"))
    # fold=0: a time skipped by a spring-forward is shifted later by the gap, a repeated
    # one is the first of the two (PEP 495)
    return datetime.combine(day, time(hour, minute), tzinfo=zone)


def occurrences(schedule: Mapping, begin: float, end: float) -> list[tuple[float, int]]:
    """``(start, minutes)`` of every meeting that starts in ``[begin, end)`` (epoch
    seconds), in time order."""
    zone = ZoneInfo(schedule["timezone"])
    first = datetime.fromtimestamp(begin, UTC).astimezone(zone).date() - timedelta(days=1)
    last = datetime.fromtimestamp(end, UTC).astimezone(zone).date() + timedelta(days=1)
    out = set()
    day = first
    while day <= last:
        name = DAYS[day.weekday()]
        for meeting in schedule["meetings"]:
            if name in meeting["days"]:
                at = _local_start(day, meeting["start"], zone).timestamp()
                if begin <= at < end:
                    out.add((at, meeting["minutes"]))
        day += timedelta(days=1)
    return sorted(out)


def next_meeting(schedule: Mapping | None, now: float) -> tuple[float, int] | None:
    """The next meeting starting at or after ``now`` (within 8 days), or None."""
    if not schedule:
        return None
    found = occurrences(schedule, now, now + 8 * 86400)
    return found[0] if found else None


def due_meeting(schedule: Mapping | None, now: float, lead: float) -> float | None:
    """The start of the meeting whose warm-up window ``[start - lead, start)`` holds
    ``now``: the earliest one when windows overlap; None outside every window."""
    if not schedule or lead <= 0:
        return None
    found = occurrences(schedule, now, now + lead + 1e-6)
    starts = [s for s, _ in found if s - lead <= now < s]
    return min(starts) if starts else None


# ----- the plan


@dataclass(frozen=True)
class Due:
    """A class whose meeting at ``meeting`` (epoch) is due for its warm-up."""

    code: str
    meeting: float
    students: tuple[str, ...]


@dataclass(frozen=True)
class Warm:
    username: str
    code: str
    meeting: float


def plan_warm(
    due: Iterable[Due],
    *,
    active: set[tuple[str, str]],
    warmed: set[tuple[str, str, float]],
    warm_now: int,
    capacity: int,
) -> list[Warm]:
    """The servers to start now, at most ``capacity - warm_now`` of them.

    ``active``: ``(username, code)`` of servers running or pending (never started
    twice); ``warmed``: ``(username, code, meeting)`` already warmed for that meeting
    (never again, even if its student stopped it); ``warm_now``: warm servers still
    running. The earliest meeting comes first; classes whose meetings start at the same
    moment share the capacity in turn (one student of each class, then the next), so an
    overlap never leaves one class cold while another gets all of it. Within a class,
    students in roster order.
    """
    room = max(0, capacity - warm_now)
    if room == 0:
        return []
    by_start: dict[float, list[list[Warm]]] = {}
    for d in sorted(due, key=lambda d: (d.meeting, d.code)):
        todo = [
            Warm(name, d.code, d.meeting)
            for name in dict.fromkeys(d.students)
            if (name, d.code) not in active and (name, d.code, d.meeting) not in warmed
        ]
        by_start.setdefault(d.meeting, []).append(todo)
    plan: list[Warm] = []
    for start in sorted(by_start):
        queues = [list(q) for q in by_start[start]]
        while any(queues) and len(plan) < room:
            for q in queues:
                if q and len(plan) < room:
                    plan.append(q.pop(0))
    return plan


def is_unused(
    *,
    server: Mapping | None,
    user_last_activity: float | None,
    server_last_activity: float | None,
    started: str | None,
    ready_at: float | None,
) -> bool:
    """Whether a warm server may be stopped as unused: it is still the same run that the
    warm-up started (its ``started`` unchanged), it was seen ready at ``ready_at``, and
    neither its student nor the server reported any activity after that. Anything
    uncertain (pending, never seen ready, restarted) counts as used: a server is never
    stopped under a student who might be working in it."""
    if not server or server.get("stopped") or server.get("pending") or not server.get("ready"):
        return False
    if ready_at is None or started is None or server.get("started") != started:
        return False
    last = max(user_last_activity or 0.0, server_last_activity or 0.0)
    return last <= ready_at
