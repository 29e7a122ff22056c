"""The weekly schedule and the warm-up plan (services/classes/schedule.py): checks with
clear messages, meeting times across time zones, daylight-saving changes and midnight,
overlapping classes sharing the capacity, and which warm servers count as unused."""

from __future__ import annotations

from datetime import UTC, datetime
from zoneinfo import ZoneInfo

import pytest

from services.classes.model import InvalidClass, Limits, class_changes
from services.classes.schedule import (
    Due,
    InvalidSchedule,
    Warm,
    check_schedule,
    due_meeting,
    is_unused,
    next_meeting,
    occurrences,
    plan_warm,
)

pytestmark = pytest.mark.unit

LEAD = 600


def at(text: str, zone: str = "UTC") -> float:
    """Epoch seconds of a local wall-clock time ``YYYY-MM-DD HH:MM`` in ``zone``."""
    return datetime.fromisoformat(text).replace(tzinfo=ZoneInfo(zone)).timestamp()


def utc(ts: float) -> str:
    return datetime.fromtimestamp(ts, UTC).strftime("%Y-%m-%d %H:%M")


def sched(zone: str, *meetings: tuple) -> dict:
    return check_schedule(
        {
            "timezone": zone,
            "meetings": [{"days": d, "start": s, "minutes": m} for d, s, m in meetings],
        }
    )


# ----- checks


def test_a_schedule_is_normalised():
    s = check_schedule(
        {
            "timezone": " Europe/Paris ",
            "meetings": [{"days": ["Wednesday", "mon", "mon"], "start": "9:05", "minutes": 90}],
        }
    )
    assert s == {
        "timezone": "Europe/Paris",
        "meetings": [{"days": ["mon", "wed"], "start": "09:05", "minutes": 90}],
    }
    # a browser's <input type=time> may send seconds
    assert sched("UTC", (["fri"], "14:30:00", 45))["meetings"][0]["start"] == "14:30"


def test_no_meetings_is_no_schedule():
    assert check_schedule(None) is None
    assert check_schedule({"timezone": "UTC", "meetings": []}) is None


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("mon 9:00", "must be an object"),
        ({"timezone": "UTC", "meetings": [], "extra": 1}, "Unknown schedule field"),
        ({"timezone": "Mars/Olympus", "meetings": [{}]}, "Unknown time zone 'Mars/Olympus'"),
        ({"meetings": [{"days": ["mon"], "start": "09:00", "minutes": 60}]}, "'timezone'"),
        ({"timezone": "UTC", "meetings": "mon"}, "'meetings' must be a list"),
        ({"timezone": "UTC", "meetings": [{"days": [], "start": "09:00", "minutes": 5}]}, "days"),
        (
            {"timezone": "UTC", "meetings": [{"days": ["funday"], "start": "09:00", "minutes": 5}]},
            "'funday' is not a day",
        ),
        (
            {"timezone": "UTC", "meetings": [{"days": ["mon"], "start": "25:00", "minutes": 5}]},
            "24-hour time",
        ),
        (
            {"timezone": "UTC", "meetings": [{"days": ["mon"], "start": "9am", "minutes": 5}]},
            "24-hour time",
        ),
        (
            {"timezone": "UTC", "meetings": [{"days": ["mon"], "start": "09:00", "minutes": 0}]},
            "between 1 and 720",
        ),
        (
            {"timezone": "UTC", "meetings": [{"days": ["mon"], "start": "09:00", "minutes": 1.5}]},
            "whole number",
        ),
        (
            {"timezone": "UTC", "meetings": [{"days": ["mon"], "start": "09:00", "minutes": True}]},
            "whole number",
        ),
        (
            {"timezone": "UTC", "meetings": [{"days": ["mon"], "start": "09:00", "room": "B2"}]},
            "meeting 1: unknown field(s) room",
        ),
        (
            {
                "timezone": "UTC",
                "meetings": [{"days": ["mon"], "start": "09:00", "minutes": 5}] * 15,
            },
            "at most 14",
        ),
    ],
)
def test_bad_schedules_are_refused_with_a_reason(value, message):
    with pytest.raises(InvalidSchedule, match=message.replace("(", r"\(").replace(")", r"\)")):
        check_schedule(value)


def test_the_class_api_turns_a_bad_schedule_into_a_400():
    limits = Limits(
        images=(),
        default_image="x",
        max_cpu_limit=2,
        max_mem_limit=2 << 30,
        default_cpu_limit=1,
        default_mem_limit=1 << 30,
        default_idle_timeout=3600,
        min_idle_timeout=300,
        max_idle_timeout=86400,
        max_students=100,
    )
    with pytest.raises(InvalidClass) as e:
        class_changes({"schedule": {"timezone": "Nowhere", "meetings": [{}]}}, limits, {})
    assert e.value.status_code == 400 and "Unknown time zone" in str(e.value)
    ok = class_changes(
        {
            "schedule": {
                "timezone": "UTC",
                "meetings": [{"days": "tue", "start": "10:00", "minutes": 50}],
            }
        },
        limits,
        {},
    )
    assert ok["schedule"]["meetings"][0]["days"] == ["tue"]
    assert class_changes({"schedule": None}, limits, {}) == {"schedule": None}


# ----- meeting times


def test_weekly_meetings_in_their_time_zone():
    s = sched("America/New_York", (["mon", "wed"], "09:00", 75))
    # Monday 2026-12-07 09:00 in New York (EST, UTC-5) is 14:00 UTC
    found = occurrences(s, at("2026-12-07 00:00"), at("2026-12-10 00:00"))
    assert [utc(t) for t, _ in found] == ["2026-12-07 14:00", "2026-12-09 14:00"]
    assert {m for _, m in found} == {75}


def test_daylight_saving_keeps_the_wall_clock_time():
    s = sched("Europe/Paris", (["mon"], "09:00", 60))
    winter = next_meeting(s, at("2026-03-20 00:00"))[0]  # Mon 23 March, CET
    summer = next_meeting(s, at("2026-03-27 00:00"))[0]  # Mon 30 March, CEST
    assert utc(winter) == "2026-03-23 08:00" and utc(summer) == "2026-03-30 07:00"


def test_a_start_skipped_by_spring_forward_happens_an_hour_later_on_the_wall_clock():
    # Sunday 29 March 2026: Paris jumps from 02:00 to 03:00; 02:30 does not exist
    s = sched("Europe/Paris", (["sun"], "02:30", 60))
    start = next_meeting(s, at("2026-03-28 12:00"))[0]
    assert utc(start) == "2026-03-29 01:30"  # 03:30 CEST
    assert datetime.fromtimestamp(start, ZoneInfo("Europe/Paris")).strftime("%H:%M") == "03:30"


def test_a_start_repeated_by_fall_back_is_the_first_one():
    # Sunday 25 October 2026: Paris goes from 03:00 back to 02:00; 02:30 happens twice
    s = sched("Europe/Paris", (["sun"], "02:30", 60))
    start = next_meeting(s, at("2026-10-24 12:00"))[0]
    assert utc(start) == "2026-10-25 00:30"  # 02:30 CEST, the first one
    # the warm-up is due only in the ten minutes before that one
    assert due_meeting(s, start - 300, LEAD) == start
    assert due_meeting(s, start + 3600 - 300, LEAD) is None


def test_the_warm_up_window_and_a_meeting_just_after_midnight():
    # Tuesday 00:05 in Tokyo: its warm-up starts on Monday at 23:55 local time
    s = sched("Asia/Tokyo", (["tue"], "00:05", 90))
    start = at("2026-12-08 00:05", "Asia/Tokyo")
    assert due_meeting(s, at("2026-12-07 23:54", "Asia/Tokyo"), LEAD) is None
    assert due_meeting(s, at("2026-12-07 23:55", "Asia/Tokyo"), LEAD) == start
    assert due_meeting(s, at("2026-12-08 00:04", "Asia/Tokyo"), LEAD) == start
    assert due_meeting(s, start, LEAD) is None  # at the start it is over: no late warm-up
    # the day is the one the meeting starts on: nothing on Monday night's own date
    assert due_meeting(s, at("2026-12-08 23:55", "Asia/Tokyo"), LEAD) is None


def test_a_meeting_crossing_midnight_is_one_meeting():
    s = sched("UTC", (["fri"], "23:30", 120))
    found = occurrences(s, at("2026-12-11 00:00"), at("2026-12-13 00:00"))
    assert [(utc(t), m) for t, m in found] == [("2026-12-11 23:30", 120)]
    assert due_meeting(s, at("2026-12-11 23:25"), LEAD) == at("2026-12-11 23:30")


def test_overlapping_meeting_lines_give_the_earliest_due_meeting():
    s = sched("UTC", (["mon"], "09:00", 60), (["mon"], "09:05", 60))
    assert due_meeting(s, at("2026-12-07 08:56"), LEAD) == at("2026-12-07 09:00")
    assert due_meeting(s, at("2026-12-07 09:01"), LEAD) == at("2026-12-07 09:05")


def test_no_schedule_or_no_lead_is_never_due():
    assert due_meeting(None, at("2026-12-07 08:55"), LEAD) is None
    s = sched("UTC", (["mon"], "09:00", 60))
    assert due_meeting(s, at("2026-12-07 08:55"), 0) is None
    assert next_meeting(None, 0) is None


# ----- the plan


def test_plan_skips_running_and_already_warmed_servers():
    m = at("2026-12-07 09:00")
    plan = plan_warm(
        [Due("bio", m, ("ann", "bob", "cat", "ann"))],
        active={("bob", "bio")},
        warmed={("cat", "bio", m)},
        warm_now=0,
        capacity=10,
    )
    assert plan == [Warm("ann", "bio", m)]


def test_capacity_is_platform_wide_and_counts_warm_servers_already_running():
    m = at("2026-12-07 09:00")
    due = [Due("bio", m, tuple(f"s{i}" for i in range(10)))]
    assert len(plan_warm(due, active=set(), warmed=set(), warm_now=0, capacity=4)) == 4
    assert len(plan_warm(due, active=set(), warmed=set(), warm_now=3, capacity=4)) == 1
    assert plan_warm(due, active=set(), warmed=set(), warm_now=5, capacity=4) == []
    assert plan_warm(due, active=set(), warmed=set(), warm_now=0, capacity=0) == []


def test_overlapping_classes_share_the_capacity_in_turn_earliest_meeting_first():
    m9, m910 = at("2026-12-07 09:00"), at("2026-12-07 09:10")
    due = [
        Due("chem", m9, ("c1", "c2", "c3")),
        Due("bio", m9, ("b1", "b2", "b3")),
        Due("art", m910, ("a1", "a2")),
    ]
    plan = plan_warm(due, active=set(), warmed=set(), warm_now=0, capacity=5)
    assert [(w.username, w.code) for w in plan] == [
        ("b1", "bio"),
        ("c1", "chem"),
        ("b2", "bio"),
        ("c2", "chem"),
        ("b3", "bio"),
    ]
    plan = plan_warm(due, active=set(), warmed=set(), warm_now=0, capacity=8)
    assert [w.code for w in plan][-2:] == ["art", "art"]


def test_a_student_in_two_overlapping_classes_gets_both_servers():
    m = at("2026-12-07 09:00")
    due = [Due("bio", m, ("ann",)), Due("chem", m, ("ann",))]
    plan = plan_warm(due, active=set(), warmed=set(), warm_now=0, capacity=5)
    assert {(w.username, w.code) for w in plan} == {("ann", "bio"), ("ann", "chem")}


# ----- unused


READY = {"ready": True, "pending": None, "started": "2026-12-07T08:50:01.000000Z"}


def unused(**kw):
    args = {
        "server": READY,
        "user_last_activity": 100.0,
        "server_last_activity": 100.0,
        "started": READY["started"],
        "ready_at": 120.0,
    }
    return is_unused(**{**args, **kw})


def test_a_warm_server_nobody_touched_is_unused():
    assert unused()
    assert unused(user_last_activity=None, server_last_activity=None)


def test_any_activity_after_it_was_ready_means_used():
    assert not unused(user_last_activity=121.0)  # the student signed in, for example
    assert not unused(server_last_activity=500.0)  # a kernel ran


def test_uncertain_servers_count_as_used():
    assert not unused(ready_at=None)  # never seen ready
    assert not unused(server={**READY, "started": "2026-12-07T09:01:00Z"})  # restarted
    assert not unused(server={**READY, "pending": "spawn"})
    assert not unused(server={**READY, "ready": False})
    assert not unused(server=None)
