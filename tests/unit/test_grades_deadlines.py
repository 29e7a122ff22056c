"""services.grades.deadlines and the collector's deadline snapshot, with fakes for the
store, the homes helper and the S3 store (the real ones: test_grades_deadline_store.py
and test_grades_deadline.py)."""

import io
import zipfile
from datetime import UTC, datetime

import pytest

from common.errors import Unavailable
from services.base.homes import HelperUnavailable, HomeMissing, HomeRefused, HomeSnapshot
from services.grades.collect import Collector
from services.grades.deadlines import Deadliner
from services.grades.store import DeadlineClaim, DeadlineRound

pytestmark = pytest.mark.unit

DUE = datetime(2025, 3, 1, 8, 0, tzinfo=UTC)


def zipped() -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as zf:
        zf.writestr("work.ipynb", "{}")
    return buffer.getvalue()


def claim(user="ann"):
    return DeadlineClaim(7, "bio", "hw1", user, DUE, 1, "c" * 32)


class Homes:
    def __init__(self, outcome):
        self.outcome = outcome

    async def snapshot(self, user, server, folder):
        if isinstance(self.outcome, BaseException):
            raise self.outcome
        return self.outcome


class Store:
    def __init__(self, first="changed", second="taken"):
        self.answers = [first, second]
        self.calls, self.missing, self.failed = [], [], []

    async def record_deadline_snapshot(self, claimed, **kw):
        self.calls.append(kw)
        answer = self.answers.pop(0)
        return None if answer is None else (answer, object())

    async def deadline_missing(self, claimed, reason):
        self.missing.append(reason)
        return True

    async def deadline_failed(self, claimed, error, retry_after):
        self.failed.append((error, retry_after))
        return True


class Objects:
    def __init__(self, down=False):
        self.stored, self.removed, self.down = [], [], down

    async def put_bytes(self, key, data, content_type):
        if self.down:
            raise Unavailable("The file store is unreachable right now.")
        self.stored.append(key)

    async def remove(self, keys):
        self.removed += keys


def collector(homes, store, objects=None):
    return Collector(store=store, objects=objects or Objects(), homes=homes, clock=lambda: 0.0)


def snapshot():
    data = zipped()
    return HomeSnapshot(data, "a" * 64, 1, len(data), [], 0)


async def test_a_new_folder_is_stored_then_recorded():
    store, objects = Store(), Objects()
    result = await collector(Homes(snapshot()), store, objects).deadline_snapshot(
        claim(), retry_after=30
    )
    assert result == "taken"
    assert "storage_key" not in store.calls[0]  # asked before anything is stored
    assert store.calls[1]["storage_key"] == objects.stored[0]
    assert objects.stored[0].startswith("submissions/bio/hw1/ann/") and objects.removed == []


async def test_an_unchanged_folder_stores_nothing():
    store, objects = Store(first="unchanged"), Objects()
    result = await collector(Homes(snapshot()), store, objects).deadline_snapshot(
        claim(), retry_after=30
    )
    assert (result, objects.stored, len(store.calls)) == ("unchanged", [], 1)


@pytest.mark.parametrize("second", [None, "unchanged"])
async def test_a_lost_claim_or_a_late_match_removes_what_was_stored(second):
    store, objects = Store(second=second), Objects()
    result = await collector(Homes(snapshot()), store, objects).deadline_snapshot(
        claim(), retry_after=30
    )
    assert result == ("lost" if second is None else "unchanged")
    assert objects.removed == objects.stored and len(objects.stored) == 1


@pytest.mark.parametrize(
    "error, reason",
    [
        (HomeMissing("x"), "no home folder for bio: the class server was never started"),
        (HomeRefused("no such folder", 404), "no folder bio/assignments/hw1 in their home"),
        (HomeRefused("more than 100 MiB", 413), "could not be taken: more than 100 MiB"),
    ],
)
async def test_nothing_to_take_is_missing_with_the_reason(error, reason):
    store = Store()
    result = await collector(Homes(error), store).deadline_snapshot(claim(), retry_after=30)
    assert result == "missing" and reason in store.missing[0]


async def test_the_helper_or_the_store_down_is_tried_again():
    store = Store()
    result = await collector(Homes(HelperUnavailable("docker down")), store).deadline_snapshot(
        claim(), retry_after=30
    )
    assert result == "failed" and store.failed[0][1] == 30
    store = Store()
    result = await collector(Homes(snapshot()), store, Objects(down=True)).deadline_snapshot(
        claim(), retry_after=12
    )
    assert result == "failed" and store.failed == [("The file store is unreachable right now.", 12)]


class Membership:
    def __init__(self, students):
        self._students = students

    async def students(self, code):
        if isinstance(self._students, BaseException):
            raise self._students
        return self._students


class RoundStore:
    def __init__(self, rounds):
        self.rounds = list(rounds)
        self.planned, self.postponed = [], []

    async def claim_deadline_round(self, *, lease):
        return self.rounds.pop(0) if self.rounds else None

    async def plan_deadlines(self, claimed, students):
        self.planned.append((claimed.slug, sorted(students)))
        return len(students)

    async def postpone_deadline_round(self, claimed, retry_after):
        self.postponed.append((claimed.slug, retry_after))


async def test_rounds_are_planned_with_the_roster_and_postponed_when_the_hub_is_down():
    rounds = [
        DeadlineRound(1, "bio", "hw1", DUE, "x" * 32),
        DeadlineRound(2, "bio", "hw2", DUE, "y" * 32),
    ]
    store = RoundStore(rounds)
    deadliner = Deadliner(store=store, collector=None, membership=Membership(["b", "a"]))
    assert await deadliner.plan_due() == 4
    assert store.planned == [("hw1", ["a", "b"]), ("hw2", ["a", "b"])]
    store = RoundStore(rounds[:1])
    down = Deadliner(
        store=store,
        collector=None,
        membership=Membership(Unavailable("The hub is unreachable.")),
        retry_after=7,
    )
    assert await down.plan_due() == 0 and store.postponed == [("hw1", 7)]


class ClaimStore:
    def __init__(self, claims):
        self.claims = claims

    async def claim_deadline_snapshots(self, *, lease, limit):
        claims, self.claims = self.claims, []
        return claims[:limit]


class Outcomes:
    def __init__(self, outcomes):
        self.outcomes = outcomes

    async def deadline_snapshot(self, claimed, *, retry_after):
        outcome = self.outcomes[claimed.username]
        if isinstance(outcome, BaseException):
            raise outcome
        return outcome


async def test_every_due_snapshot_is_taken_at_once_and_counted():
    claims = [claim(u) for u in ("a", "b", "c", "d", "e")]
    outcomes = {
        "a": "taken",
        "b": "taken",
        "c": "unchanged",
        "d": Unavailable("db down"),
        "e": RuntimeError("a bug"),
    }
    deadliner = Deadliner(store=ClaimStore(claims), collector=Outcomes(outcomes), membership=None)
    counts = await deadliner.snapshot_due()
    assert counts == {"taken": 2, "unchanged": 1, "failed": 2}
    assert await deadliner.snapshot_due() == {}


def test_bad_settings_are_refused():
    with pytest.raises(ValueError):
        Deadliner(store=None, collector=None, membership=None, lease=0)
