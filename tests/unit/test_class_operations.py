"""Class operations as pure decisions: what "start all" / "stop all" of a class does
(services.classes.servers.plan_bulk) and what a copy of a class for a new term takes
(services.classes.model.copy_request)."""

from __future__ import annotations

import pytest

from services.classes.model import InvalidClass, copy_request
from services.classes.servers import START, STOP, plan_bulk

pytestmark = pytest.mark.unit

ROSTER = ["ann", "bob", "cy", "dee"]
ACTIVE = {"bob": {"ready": True}, "dee": {"pending": "spawn"}}


def test_start_all_starts_the_stopped_servers_of_the_roster():
    plan = plan_bulk(START, ROSTER, ACTIVE, {})
    assert plan == {"act": ["ann", "cy"], "unchanged": ["bob", "dee"], "skipped": {}}


def test_stop_all_stops_the_running_and_pending_ones():
    plan = plan_bulk(STOP, ROSTER, ACTIVE, {})
    assert plan == {"act": ["bob", "dee"], "unchanged": ["ann", "cy"], "skipped": {}}


def test_people_the_caller_may_not_act_on_are_skipped_with_the_reason():
    why = {"cy": "Teachers can start or stop only their students' servers: cy is a teacher."}
    plan = plan_bulk(START, ROSTER, ACTIVE, why)
    assert plan["act"] == ["ann"] and plan["skipped"] == why
    # a server already in the wanted state is not "skipped", whoever it is
    plan = plan_bulk(STOP, ROSTER, ACTIVE, {"bob": "no"})
    assert plan["act"] == ["dee"] and plan["skipped"] == {"bob": "no"}


def test_a_name_twice_on_the_roster_is_acted_on_once():
    assert plan_bulk(START, ["ann", "ann"], {}, {})["act"] == ["ann"]


def test_unknown_actions_are_refused():
    with pytest.raises(ValueError, match="unknown action"):
        plan_bulk("restart", ROSTER, ACTIVE, {})


ORIGINAL = {
    "code": "bio101",
    "name": "Biology",
    "term": "2026",
    "teachers": ["tea"],
    "students": ["ann", "bob"],
    "environment": {"image": "classhub/singleuser:latest", "cpu_limit": 0.5},
    "archived": True,
    "created_at": "2026-01-01",
    "created_by": "admin",
}


def test_a_copy_takes_settings_and_teachers_never_students():
    request = copy_request(ORIGINAL, {"code": "bio101-27", "term": "2027"})
    assert request == {
        "code": "bio101-27",
        "name": "Biology",
        "term": "2027",
        "teachers": ["tea"],
        "environment": {"image": "classhub/singleuser:latest", "cpu_limit": 0.5},
    }
    # a copy, not the same lists
    request["teachers"].append("x")
    assert ORIGINAL["teachers"] == ["tea"]


def test_a_copy_needs_a_code_of_its_own():
    with pytest.raises(InvalidClass, match="new 'code'"):
        copy_request(ORIGINAL, {"name": "x"})
    with pytest.raises(InvalidClass, match="code of its own"):
        copy_request(ORIGINAL, {"code": "bio101"})
