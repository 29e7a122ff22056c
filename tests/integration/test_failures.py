"""Failed spawns: a clear message for the student, nothing left behind."""

import concurrent.futures
import json

import pytest
import requests

from harness.stack import wait_for

pytestmark = pytest.mark.integration


def progress_events(stack, user, server):
    """Read the hub's spawn-progress event stream (what the spawn page shows)."""
    path = stack.server_path(user, server)
    events = []
    if not stack.server_model(user, server):
        return None
    with requests.get(
        stack.url + "/hub/api" + path.replace("/server", "/server/progress")
        if not server
        else stack.url + "/hub/api" + path + "/progress",
        headers={"Authorization": f"token {stack.token}"},
        stream=True,
        timeout=90,
    ) as r:
        if r.status_code == 400:
            return None  # not pending (yet)
        assert r.status_code == 200, r.text
        for line in r.iter_lines(decode_unicode=True):
            if line and line.startswith("data:"):
                event = json.loads(line[5:])
                events.append(event)
                if event.get("failed") or event.get("ready"):
                    break
    return events


def assert_nothing_left(stack, user, server):
    mine = [
        c
        for c in stack.containers()
        if c.labels.get("classhub.user") == user and c.labels.get("classhub.server") == server
    ]
    assert mine == []
    wait_for(
        lambda: f"/user/{user}/{server}/" not in stack.api("GET", "/proxy").json(),
        5,
        what="no route",
    )
    home = [v.name for v in stack.volumes() if f"-home-{user}-{server}-" in v.name]
    assert home == [], home


@pytest.mark.parametrize(
    "server, expected",
    [
        ("missingimage", "is not installed on this server"),
        ("notallowed", "is not on this hub's list of allowed images"),
        ("oom", "ran out of memory (24M)"),
        ("slow", "did not become ready within 4 seconds"),
    ],
)
def test_failed_spawn_explains_and_cleans_up(stack, server, expected):
    user = "fay"
    stack.enroll(user, server)
    expect_spawn_failure(stack, user, server, expected)
    assert_nothing_left(stack, user, server)


def expect_spawn_failure(stack, user, server, expected, **kwargs):
    r = stack.api("POST", stack.server_path(user, server), **kwargs)
    if r.status_code >= 400:
        # failed fast enough for the API to answer with the error itself
        assert expected in r.json()["message"]
    else:
        events = progress_events(stack, user, server)
        assert events and events[-1].get("failed"), events
        assert expected in events[-1]["message"], events[-1]
        wait_for(lambda: not stack.server_model(user, server), 30, what="server gone")


def test_user_options_cannot_override_image(stack):
    stack.create_user("gus")
    expect_spawn_failure(stack, "gus", "", "take no options", json={"image": "evil/image"})
    assert_nothing_left(stack, "gus", "")


def test_spawn_progress_events_tell_the_story(stack):
    stack.enroll("hugo", "prog")
    with concurrent.futures.ThreadPoolExecutor(1) as pool:
        post = pool.submit(stack.api, "POST", stack.server_path("hugo", "prog"))
        # follow the stream the spawn page reads, from as early as the hub offers it
        events = wait_for(
            lambda: progress_events(stack, "hugo", "prog"),
            20,
            interval=0.02,
            what="progress stream",
        )
        assert post.result().status_code in (201, 202)
    messages = [e.get("message", "") for e in events]
    assert any("Creating your server" in m for m in messages), messages
    assert any("Starting JupyterLab" in m for m in messages), messages
    assert events[-1].get("ready"), events
    stack.stop("hugo", "prog")
