"""Warm before class and the start queue, against the real hub, Docker, Traefik and
nx-27017.

- A teacher sets a class's weekly schedule on the API (bad ones are 400s that say why;
  a student cannot); the warm-up (``services.classes.warmup.Warmer``, run here in the
  test's process against the stack's real hub and MongoDB, with its clock moved)
  starts nothing before the lead time, then the servers of the class's enrolled
  students only (not the teacher on its roster, not a student of another class),
  capped by the capacity; 15 minutes after the meeting's start it stops the warm server
  nobody used and keeps the one its student used. The service's own warm-up loop is off
  in this stack (``CLASSHUB_WARM_INTERVAL=0``) so that only the test moves time.
- The start queue: with one start at a time, a rush of starts gets no 429; each waiting
  start's progress stream (what the spawn page shows) gives its place in line as it
  moves, and a student's own start goes before background starts queued earlier.
"""

from __future__ import annotations

import asyncio
import json
import threading
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import requests

from common import startpriority
from common.blocking import BlockingCalls
from harness.classes import TEST_SERVICE_ENV, Person, assert_error, service_pid, wait_healthy
from harness.stack import Stack, running_stack, wait_for
from services.base.hubapi import HubAPI
from services.classes.store import ClassStore
from services.classes.warmup import Warmer

pytestmark = pytest.mark.integration

CODE = "warm1"
OTHER = "cold1"
STUDENTS = ("wsa", "wsb", "wsc")
CAPACITY = 2
QUEUE_CONFIG = "c.ClassroomSpawner.start_concurrency = 1\n"


@pytest.fixture(scope="module")
def stack(tmp_path_factory):
    new = Stack(
        tmp_path_factory.mktemp("warm"),
        with_classes=True,
        extra_config=QUEUE_CONFIG,
        env={**TEST_SERVICE_ENV, "CLASSHUB_WARM_INTERVAL": "0"},
    )
    for stack in running_stack(new):
        wait_healthy(stack)
        yield stack


@pytest.fixture(scope="module")
def people(stack):
    people = {
        "admin": Person(stack, "admin", "admin"),
        "tina": Person(stack, "tina", "teacher"),
        "tom": Person(stack, "tom", "teacher"),
        "olaf": Person(stack, "olaf", "student"),
        **{n: Person(stack, n, "student") for n in STUDENTS},
    }
    admin = people["admin"]
    for code in (CODE, OTHER):
        r = admin.post("api/classes", {"code": code, "name": code.title(), "teachers": ["tina"]})
        assert r.status_code == 201, r.text
    # the roster holds three students and, put there by an admin, a teacher
    r = admin.post(f"api/classes/{CODE}/import", {"csv": "username\n" + "\n".join(STUDENTS)})
    assert r.status_code in (200, 201), r.text
    r = admin.post(f"api/classes/{CODE}/students", {"username": "tom"})
    assert r.status_code == 201, r.text
    r = admin.post(f"api/classes/{OTHER}/students", {"username": "olaf"})
    assert r.status_code == 201, r.text
    return people


def meeting_soon() -> datetime:
    """A meeting a few minutes ahead, on a whole minute (UTC)."""
    now = datetime.now(UTC).replace(second=0, microsecond=0)
    return now + timedelta(minutes=4)


def schedule_for(start: datetime) -> dict:
    day = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")[start.weekday()]
    return {
        "timezone": "UTC",
        "meetings": [{"days": [day], "start": start.strftime("%H:%M"), "minutes": 50}],
    }


def servers_of(stack: Stack) -> set[tuple[str, str]]:
    users = stack.api("GET", "/users", params={"state": "active"}).json()
    return {(u["name"], code) for u in users for code in (u.get("servers") or {})}


def service_token(stack: Stack) -> str:
    """The classes service's own hub API token (from its process's environment), so the
    warm-up below runs with exactly the service's scopes."""
    environ = Path(f"/proc/{service_pid(stack)}/environ").read_bytes().split(b"\0")
    for entry in environ:
        key, _, value = entry.partition(b"=")
        if key == b"JUPYTERHUB_API_TOKEN":
            return value.decode()
    raise LookupError("the classes service has no JUPYTERHUB_API_TOKEN")


async def warm_round(stack: Stack, at: float):
    """One round of the warm-up with the clock at ``at``, as the service runs it, with
    the service's own token."""
    blocking = BlockingCalls(threads=2, timeout=10)
    hub = HubAPI(f"http://127.0.0.1:{stack.hub_port}/hub/api", service_token(stack))
    store = ClassStore(stack.mongo_url, blocking=blocking, timeout=5)
    warmer = Warmer(
        hub, store, clock=lambda: at, lead=600, capacity=CAPACITY, stop_after=900, concurrency=4
    )
    try:
        return await warmer.run_once()
    finally:
        hub.close()
        store.close()
        blocking.close()


def test_schedule_is_checked_and_only_teachers_set_it(people):
    tina, sam = people["tina"], people["wsa"]
    r = tina.patch(f"api/classes/{CODE}", {"schedule": {"timezone": "Mars/Base", "meetings": [{}]}})
    assert_error(r, 400, "Unknown time zone 'Mars/Base'")
    bad = {"timezone": "UTC", "meetings": [{"days": ["mon"], "start": "9am", "minutes": 50}]}
    assert_error(tina.patch(f"api/classes/{CODE}", {"schedule": bad}), 400, "24-hour time")
    good = schedule_for(meeting_soon())
    assert sam.patch(f"api/classes/{CODE}", {"schedule": good}).status_code in (403, 404)
    r = tina.patch(f"api/classes/{CODE}", {"schedule": good})
    assert r.status_code == 200, r.text
    assert r.json()["schedule"] == good
    assert tina.get(f"api/classes/{CODE}").json()["schedule"] == good


def test_warm_up_starts_enrolled_students_within_capacity_and_stops_unused(stack, people):
    start = meeting_soon()
    r = people["tina"].patch(f"api/classes/{CODE}", {"schedule": schedule_for(start)})
    assert r.status_code == 200, r.text
    meeting = start.timestamp()

    # before the lead time: nothing
    early = asyncio.run(warm_round(stack, meeting - 700))
    assert early.started == [] and not servers_of(stack)

    # within it (the real time now): two of the three students, capacity 2
    first = asyncio.run(warm_round(stack, time.time()))
    assert first.failed == {}
    started = set(first.started)
    assert len(started) == CAPACITY
    assert {code for _, code in started} == {CODE}
    assert {name for name, _ in started} <= set(STUDENTS)
    for name, _ in started:
        stack.wait_ready(name, CODE, timeout=180)
    assert servers_of(stack) == started  # not tom (a teacher), not olaf (another class)

    # the next round sees them ready; the capacity is full: nobody else starts
    second = asyncio.run(warm_round(stack, time.time()))
    assert second.started == [] and second.warm_now == CAPACITY
    assert servers_of(stack) == started

    # one student uses their server (the activity its server reports to the hub)
    used, unused = sorted(name for name, _ in started)
    stamp = datetime.now(UTC).isoformat().replace("+00:00", "Z")
    r = stack.api(
        "POST",
        f"/users/{used}/activity",
        json={"last_activity": stamp, "servers": {CODE: {"last_activity": stamp}}},
    )
    assert r.status_code == 200, r.text

    # 15 minutes after the start: the unused one stops, the used one stays; the meeting
    # has begun, so the third student is not warmed any more
    late = asyncio.run(warm_round(stack, meeting + 901))
    assert late.stopped == [(unused, CODE)] and late.kept == [(used, CODE)]
    assert late.started == []
    wait_for(lambda: servers_of(stack) == {(used, CODE)}, 60, what="unused server stopped")

    # a later round never starts them again for the same meeting
    again = asyncio.run(warm_round(stack, meeting - 60))
    assert not any(name in (used, unused) for name, _ in again.started)
    for name, code in again.started:
        stack.wait_ready(name, code, timeout=180)
    stack.stop(used, CODE)
    for name, code in again.started:
        stack.stop(name, code)


def _spawn(stack: Stack, name: str, background: bool, answers: dict) -> None:
    headers = {"Authorization": f"token {stack.token}"}
    if background:
        headers[startpriority.HEADER] = startpriority.BACKGROUND
    r = requests.post(f"{stack.url}/hub/api/users/{name}/server", headers=headers, timeout=300)
    answers[name] = r.status_code


def _progress(stack: Stack, name: str, events: dict) -> None:
    r = requests.get(
        f"{stack.url}/hub/api/users/{name}/server/progress",
        headers={"Authorization": f"token {stack.token}"},
        stream=True,
        timeout=300,
    )
    for line in r.iter_lines(decode_unicode=True):
        if line and line.startswith("data:"):
            event = json.loads(line[5:])
            events.setdefault(name, []).append(event.get("message", ""))
            if event.get("ready") or event.get("failed"):
                break


def _places(messages: list[str]) -> list[int]:
    out = []
    for m in messages:
        if "ahead of you" in m:
            out.append(int(m.rsplit("(", 1)[1].split()[0]))
    return out


def test_a_rush_queues_with_places_and_no_429_students_first(stack):
    # three background starts (a warm-up), then a student's own start; one start at a
    # time (c.ClassroomSpawner.start_concurrency = 1); each comes once the one before has
    # reached the start queue (its spawn page says it is creating the server or shows its
    # place: "pending" alone is too early, as a start checks its image and home before it
    # queues), so the order of arrival in the queue is known
    order = [("qb1", True), ("qb2", True), ("qb3", True), ("qs4", False)]
    for name, _ in order:
        stack.create_user(name)
    answers, events, threads = {}, {}, []
    for name, background in order:
        t = threading.Thread(target=_spawn, args=(stack, name, background, answers))
        t.start()
        threads.append(t)
        wait_for(
            lambda n=name: (stack.server_model(n) or {}).get("pending") == "spawn",
            60,
            interval=0.02,
            what=f"{name} pending",
        )
        # the stream replays a spawn's events from its beginning
        p = threading.Thread(target=_progress, args=(stack, name, events))
        p.start()
        threads.append(p)
        wait_for(
            lambda n=name: any(
                "ahead of you" in m or "Creating your server" in m for m in events.get(n, [])
            ),
            60,
            interval=0.02,
            what=f"{name} in the start queue",
        )
    for t in threads:
        t.join(300)
    assert 429 not in answers.values()
    assert all(status in (201, 202) for status in answers.values()), answers
    for name, _ in order:
        stack.wait_ready(name, timeout=300)
    places = {name: _places(events.get(name, [])) for name, _ in order}
    # the student's own start went straight to the front of the line
    assert places["qs4"] == [0], places
    # qb3 waited behind qb1 and qb2; it was told its place, moved back by one when the
    # student came, then up one at a time to the front
    qb3 = places["qb3"]
    assert qb3 and qb3[-1] == 0, places
    steps = [b - a for a, b in zip(qb3, qb3[1:], strict=False)]
    assert steps.count(1) == 1 and set(steps) <= {1, -1}, places
    assert all(p[-1] == 0 for p in places.values() if p), places
    for name, _ in order:
        stack.stop(name)


def test_teacher_edits_the_schedule_on_the_class_page(stack, people, tmp_path):
    from playwright.sync_api import sync_playwright

    from harness.browser import CHROMIUM, CHROMIUM_ARGS

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        page = browser.new_context().new_page()
        page.set_default_timeout(20_000)
        try:
            page.goto(f"{stack.url}/hub/login?next=/services/classes/classes/{OTHER}")
            page.fill("#token_input", stack.mint("tina", "teacher"))
            page.click("#token_submit")
            page.wait_for_url(f"**/services/classes/classes/{OTHER}")
            assert page.is_visible("#schedule-empty")
            # this stack runs the warm-up from the tests only (CLASSHUB_WARM_INTERVAL=0)
            assert "switched off" in page.inner_text("#schedule-explained")
            page.click("#schedule-add")
            row = "#schedule-meetings tbody tr"
            page.check(f"{row} [data-day=tue]")
            page.check(f"{row} [data-day=thu]")
            page.fill(f"{row} [data-field=start]", "23:30")
            page.fill(f"{row} [data-field=minutes]", "90")
            page.fill("#schedule-timezone", "Mars/Base")
            page.click("#class-schedule button[type=submit]")
            page.wait_for_selector("#action-alert.alert-danger:has-text('Unknown time zone')")
            page.fill("#schedule-timezone", "America/New_York")
            page.click("#class-schedule button[type=submit]")
            page.wait_for_selector("#action-alert.alert-success:has-text('Schedule saved')")
            stored = people["admin"].get(f"api/classes/{OTHER}").json()["schedule"]
            assert stored == {
                "timezone": "America/New_York",
                "meetings": [{"days": ["tue", "thu"], "start": "23:30", "minutes": 90}],
            }
            page.reload()
            assert page.input_value("#schedule-timezone") == "America/New_York"
            assert page.is_checked(f"{row} [data-day=thu]")
            assert page.input_value(f"{row} [data-field=start]") == "23:30"
            page.click(f"{row} [data-action=remove]")
            page.click("#class-schedule button[type=submit]")
            page.wait_for_selector("#action-alert.alert-success:has-text('Schedule removed')")
            assert people["admin"].get(f"api/classes/{OTHER}").json()["schedule"] is None
        except Exception:
            page.screenshot(path=str(tmp_path / "schedule.png"), full_page=True)
            print("screenshot:", tmp_path / "schedule.png")
            raise
        finally:
            browser.close()
