"""Releasing assignments' starting files, without services: when a release is due, what
the teacher's page says, the push ids, the files service's rule for service callers, and
the releaser against a fake store and a fake files service (down, back, empty, a retried
call that finds its push)."""

from datetime import UTC, datetime, timedelta

import pytest
from tornado.httpclient import HTTPClientError, HTTPRequest, HTTPResponse

from common.errors import Forbidden
from services.files.app import FilesApp
from services.files.areas import (
    LIST_STARTING_FILES,
    READ_RELEASE_PUSH,
    RELEASE_PUSH,
    UPLOAD_STARTING_FILE,
    check_release_service,
)
from services.files.handlers import RELEASE_ID_RE
from services.grades import rules
from services.grades.release import (
    FilesClient,
    FilesNotFound,
    FilesRefused,
    FilesUnavailable,
    Releaser,
)
from services.grades.store import ReleaseClaim

pytestmark = pytest.mark.unit

NOW = datetime(2026, 12, 1, 10, 0, tzinfo=UTC)
KEY = "0123456789abcdef0123456789abcdef"


# ----------------------------------------------------------------------------- due / state


@pytest.mark.parametrize(
    "release_at, archived, rounds, pushed, due",
    [
        (None, False, 1, 0, True),  # no release date: at once
        (NOW - timedelta(days=1), False, 1, 0, True),  # in the past: at once
        (NOW, False, 1, 0, True),  # exactly now
        (NOW + timedelta(microseconds=1), False, 1, 0, False),  # not a moment early
        (NOW + timedelta(days=1), False, 1, 0, False),
        (None, False, 1, 1, False),  # made already: exactly once
        (None, False, 2, 1, True),  # "release again": one more round
        (None, True, 1, 0, False),  # archived: never
    ],
)
def test_release_due(release_at, archived, rounds, pushed, due):
    assert rules.release_due(release_at, archived, rounds, pushed, NOW) is due


def test_release_due_needs_an_aware_now():
    with pytest.raises(ValueError):
        rules.release_due(None, False, 1, 0, datetime(2026, 1, 1))  # noqa: DTZ001


def _state(**kw):
    args = {
        "release_at": None,
        "archived": False,
        "rounds": 1,
        "pushed": 0,
        "released_at": None,
        "files": None,
        "error": None,
        "now": NOW,
    }
    return rules.release_state(**{**args, **kw})


def test_release_states():
    later = NOW + timedelta(hours=1)
    assert _state(release_at=later) == rules.RELEASE_SCHEDULED
    assert _state() == rules.RELEASE_PENDING
    assert _state(error="files down") == rules.RELEASE_FAILED
    assert _state(archived=True) == rules.RELEASE_ARCHIVED
    assert _state(pushed=1, released_at=NOW, files=3) == rules.RELEASE_DONE
    assert _state(pushed=1, released_at=NOW, files=0) == rules.RELEASE_EMPTY
    # released before release pushes were recorded (migration 0003)
    assert _state(pushed=1) == rules.RELEASE_BEFORE
    # a second round asked for: pending again, and failed when it failed
    assert _state(rounds=2, pushed=1, released_at=NOW, files=3) == rules.RELEASE_PENDING
    assert _state(rounds=2, pushed=1, released_at=NOW, error="x") == rules.RELEASE_FAILED
    # moved to the future after it was released: still released (nothing is undone)
    assert _state(release_at=later, pushed=1, released_at=NOW, files=1) == rules.RELEASE_DONE


def test_release_push_ids_match_what_the_files_service_accepts():
    push_id = rules.release_push_id(KEY, 1)
    assert push_id == f"release-{KEY}-1"
    assert RELEASE_ID_RE.fullmatch(push_id)
    assert RELEASE_ID_RE.fullmatch(rules.release_push_id(KEY.upper(), 12))
    for bad_key, bad_round in [("short", 1), ("../" + KEY, 1), (KEY, 0), (KEY, True), (KEY, -1)]:
        with pytest.raises(ValueError):
            rules.release_push_id(bad_key, bad_round)


@pytest.mark.parametrize(
    "push_id",
    ["20261201T103000-1a2b3c4d", f"release-{KEY}-0", f"release-{KEY}", "release-xyz-1", ""],
)
def test_the_files_service_refuses_other_ids(push_id):
    assert not RELEASE_ID_RE.fullmatch(push_id)


# ----------------------------------------------------------------------------- files side


ALLOWED = frozenset({"grades"})


@pytest.mark.parametrize(
    "action", [LIST_STARTING_FILES, UPLOAD_STARTING_FILE, RELEASE_PUSH, READ_RELEASE_PUSH]
)
def test_a_listed_service_may_release(action):
    check_release_service("grades", ALLOWED, action, assignment="hw1")


def test_a_listed_service_may_list_starting_files_without_an_assignment():
    check_release_service("grades", ALLOWED, LIST_STARTING_FILES, assignment=None)


@pytest.mark.parametrize("service", ["classes", "classhub-tests", "", "Grades", "grades "])
@pytest.mark.parametrize("action", [LIST_STARTING_FILES, RELEASE_PUSH, READ_RELEASE_PUSH])
def test_an_unlisted_service_may_do_nothing(service, action):
    with pytest.raises(Forbidden, match="release_services"):
        check_release_service(service, ALLOWED, action, assignment="hw1")


@pytest.mark.parametrize("assignment", [None, ""])
def test_a_listed_service_may_never_push_the_material(assignment):
    for action in (RELEASE_PUSH, READ_RELEASE_PUSH, UPLOAD_STARTING_FILE):
        with pytest.raises(Forbidden, match="starting files"):
            check_release_service("grades", ALLOWED, action, assignment=assignment)


@pytest.mark.parametrize("action", ["delete", "rename", "download", "material", "unpack"])
def test_a_listed_service_may_do_nothing_else(action):
    with pytest.raises(Forbidden):
        check_release_service("grades", ALLOWED, action, assignment="hw1")


def test_no_service_is_allowed_when_the_list_is_empty():
    with pytest.raises(Forbidden):
        check_release_service("grades", frozenset(), RELEASE_PUSH, assignment="hw1")


def test_release_services_default_and_environment(monkeypatch):
    monkeypatch.delenv("CLASSHUB_FILES_RELEASE_SERVICES", raising=False)
    assert FilesApp().release_services == {"grades"}
    monkeypatch.setenv("CLASSHUB_FILES_RELEASE_SERVICES", " grades, marks ,")
    assert FilesApp().release_services == {"grades", "marks"}
    monkeypatch.setenv("CLASSHUB_FILES_RELEASE_SERVICES", "")
    assert FilesApp().release_services == set()
    assert FilesApp(release_services={"x"}).release_services == {"x"}


# ----------------------------------------------------------------------------- the releaser


class FakeStore:
    """The claim rules of GradesStore.claim_release on one assignment, in memory."""

    def __init__(self, rounds=1):
        self.rounds, self.pushed = rounds, 0
        self.claimed = None
        self.error = None
        self.retry_wait = False
        self.made: list[tuple[int, str | None, int]] = []
        self.serial = 0

    async def claim_release(self, *, lease, assignment_id=None):
        due = self.pushed < self.rounds and self.claimed is None
        if not due or (self.retry_wait and assignment_id is None):
            return None
        self.serial += 1
        self.claimed = f"claim{self.serial}"
        return ReleaseClaim(7, "bio", "hw1", self.pushed + 1, KEY, self.claimed)

    async def finish_release(self, claim, *, push_id, files):
        if claim.claim != self.claimed:
            return False
        self.pushed = max(self.pushed, claim.round)
        self.made.append((claim.round, push_id, files))
        self.claimed, self.error, self.retry_wait = None, None, False
        return True

    async def fail_release(self, claim, error, *, retry_after):
        if claim.claim != self.claimed:
            return False
        self.claimed, self.error, self.retry_wait = None, error, True
        return True


class FakeFiles:
    timeout = 1.0

    def __init__(self, files=("a.py",)):
        self.files = list(files)
        self.down = False
        self.pushes: dict[str, dict] = {}
        self.posts = 0

    async def starting_files(self, code, slug):
        if self.down:
            raise FilesUnavailable("connection refused")
        return [{"path": p, "size": 1, "modified": 0} for p in self.files]

    async def release(self, code, slug, push_id):
        if self.down:
            raise FilesUnavailable("connection refused")
        self.posts += 1
        if push_id in self.pushes:
            return self.pushes[push_id], False
        self.pushes[push_id] = {"id": push_id, "status": "scheduled"}
        return self.pushes[push_id], True


async def test_files_service_down_is_recorded_and_retried_once_back():
    store, files = FakeStore(), FakeFiles()
    releaser = Releaser(store=store, files=files, retry_after=30)
    files.down = True
    assert await releaser.release_due() == 0
    assert store.error and "unreachable" in store.error and store.pushed == 0
    # within the retry wait the loop leaves it alone; the teacher's button does not wait
    assert await releaser.release_due() == 0
    store.retry_wait = False  # the wait is over
    files.down = False
    assert await releaser.release_due() == 1
    assert store.made == [(1, f"release-{KEY}-1", 1)] and store.error is None
    # exactly once: nothing more is due
    assert await releaser.release_due() == 0 and len(files.pushes) == 1


async def test_a_retried_call_finds_the_push_made_the_first_time():
    store, files = FakeStore(), FakeFiles()
    # the files service made the push, but its answer was lost (the service stopped)
    files.pushes[f"release-{KEY}-1"] = {"id": f"release-{KEY}-1", "status": "done"}
    releaser = Releaser(store=store, files=files)
    assert await releaser.release_due() == 1
    assert len(files.pushes) == 1 and store.made == [(1, f"release-{KEY}-1", 1)]


async def test_no_starting_files_no_push():
    store, files = FakeStore(), FakeFiles(files=())
    releaser = Releaser(store=store, files=files)
    assert await releaser.release_due() == 1
    assert files.posts == 0 and store.made == [(1, None, 0)]


async def test_release_again_is_a_new_round_with_its_own_push():
    store, files = FakeStore(), FakeFiles()
    releaser = Releaser(store=store, files=files)
    assert await releaser.release_now(7) is True
    assert await releaser.release_now(7) is None  # nothing asked for: nothing pushed
    store.rounds = 2  # "Release again now"
    assert await releaser.release_now(7) is True
    assert [m[1] for m in store.made] == [f"release-{KEY}-1", f"release-{KEY}-2"]


async def test_a_claim_held_elsewhere_is_not_pushed_here():
    store, files = FakeStore(), FakeFiles()
    store.claimed = "someone-else"
    assert await Releaser(store=store, files=files).release_now(7) is None
    assert files.posts == 0


# ----------------------------------------------------------------------------- the client


class FakeHTTP:
    def __init__(self, code=200, body=b"{}", error: Exception | None = None):
        self.code, self.body, self.error = code, body, error
        self.requests: list[HTTPRequest] = []

    async def fetch(self, request):
        self.requests.append(request)
        if self.error is not None:
            raise self.error
        import io

        response = HTTPResponse(request, self.code, buffer=io.BytesIO(self.body))
        if self.code >= 400:
            raise HTTPClientError(self.code, response=response)
        return response

    def close(self):
        pass


def _client(http):
    client = FilesClient("http://127.0.0.1:10102/services/files", "secret-token", timeout=3)
    client._http = http
    return client


async def test_client_lists_the_assignment_folder_only_with_its_token_and_timeouts():
    body = (
        b'{"files": [{"path": "hw1/a.py", "size": 3, "modified": 1},'
        b' {"path": "hw2/b.py", "size": 1}, {"path": "hw1/data/x.csv", "size": 2}]}'
    )
    http = FakeHTTP(body=body)
    files = await _client(http).starting_files("bio", "hw1")
    assert [f["path"] for f in files] == ["a.py", "data/x.csv"]
    (request,) = http.requests
    assert request.url == (
        "http://127.0.0.1:10102/services/files/api/files/class/bio/assignments?folder=hw1"
    )
    assert request.headers["Authorization"] == "token secret-token"
    assert request.request_timeout == 3 and request.connect_timeout == 3
    assert request.follow_redirects is False


async def test_client_posts_the_release_with_its_id():
    http = FakeHTTP(code=202, body=b'{"id": "release-x-1", "status": "scheduled"}')
    push, created = await _client(http).release("bio", "hw1", "release-x-1")
    assert created is True and push["id"] == "release-x-1"
    import json

    assert json.loads(http.requests[0].body) == {"assignment": "hw1", "release_id": "release-x-1"}
    http = FakeHTTP(code=200, body=b'{"id": "release-x-1", "status": "done"}')
    assert (await _client(http).release("bio", "hw1", "release-x-1"))[1] is False


@pytest.mark.parametrize(
    "http, error, text",
    [
        (FakeHTTP(error=ConnectionRefusedError()), FilesUnavailable, "unreachable"),
        (FakeHTTP(error=TimeoutError()), FilesUnavailable, "unreachable"),
        (FakeHTTP(code=599), FilesUnavailable, "unreachable"),
        (FakeHTTP(code=503, body=b'{"message": "store down"}'), FilesUnavailable, "unreachable"),
        (
            FakeHTTP(code=403, body=b'{"message": "not in release_services"}'),
            FilesRefused,
            "not in",
        ),
        (FakeHTTP(code=403, body=b"<html>"), FilesRefused, "check its scopes"),
        (FakeHTTP(code=404, body=b'{"message": "There is no class"}'), FilesNotFound, "no class"),
        (FakeHTTP(code=400, body=b'{"message": "bad slug"}'), FilesRefused, "bad slug"),
        (FakeHTTP(code=200, body=b"not json"), FilesRefused, "not JSON"),
        (FakeHTTP(code=200, body=b"[1]"), FilesRefused, "not a JSON object"),
    ],
)
async def test_client_errors_are_clear(http, error, text):
    with pytest.raises(error, match=text):
        await _client(http).starting_files("bio", "hw1")


async def test_client_unavailable_is_a_503_and_never_shows_the_token():
    http = FakeHTTP(error=ConnectionRefusedError("secret-token"))
    with pytest.raises(FilesUnavailable) as caught:
        await _client(http).release("bio", "hw1", "release-x-1")
    assert caught.value.status_code == 503
    assert "secret-token" not in str(caught.value) + caught.value.detail


async def test_client_push_not_found_is_none():
    http = FakeHTTP(code=404, body=b'{"message": "Class bio has no release push"}')
    assert await _client(http).push("bio", "release-x-1") is None
