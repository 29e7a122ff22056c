"""The pure parts of material pushes: labels, ids, reports from the (hostile) homes
helper, deliveries and homes that appear later (with fakes of the helper and the stores),
the zip, and the push API's time and count helpers (services/files/push.py,
services/files/handlers.py)."""

import datetime
import hashlib
import io
import json
import re
import stat
import zipfile

import pytest

from common.errors import BadRequest
from services.base.homes import HelperUnavailable, HomeMissing, HomeRefused
from services.base.names import push_label
from services.base.s3 import StoredObject
from services.files.handlers import _counts, _iso, _parse_at
from services.files.push import (
    NO_HOME,
    Pusher,
    _clean_report,
    build_material_zip,
    delivered_after,
    material_dest,
    new_push_id,
    summarise,
)
from services.files.pushstore import DELIVERED, FAILED, WAITING

pytestmark = pytest.mark.unit

UTC = datetime.UTC


def ts(*args, tz=UTC) -> float:
    return datetime.datetime(*args, tzinfo=tz).timestamp()


# ----- push_label, new_push_id, material_dest


def test_push_label_is_utc():
    assert push_label(ts(2026, 12, 1, 10, 30, 59)) == "2026-12-01 10.30 UTC"
    # the same moment given in another zone is labelled in UTC
    plus2 = datetime.timezone(datetime.timedelta(hours=2))
    assert push_label(ts(2026, 12, 1, 12, 30, tz=plus2)) == "2026-12-01 10.30 UTC"
    assert push_label(0) == "1970-01-01 00.00 UTC"
    assert push_label(ts(2027, 1, 2, 3, 4, 5) + 0.9) == "2027-01-02 03.04 UTC"


def test_new_push_id_format():
    push_id = new_push_id(ts(2026, 12, 1, 10, 30, 0))
    assert re.fullmatch(r"20261201T103000-[0-9a-f]{8}", push_id)
    # the push routes accept it
    assert re.fullmatch(r"[0-9A-Za-z-]+", push_id)


def test_new_push_ids_sort_by_time():
    times = [
        ts(2026, 1, 1, 0, 0, 0),
        ts(2026, 1, 1, 0, 0, 1),
        ts(2026, 1, 1, 0, 1, 0),
        ts(2026, 2, 1, 9, 0, 0),
        ts(2026, 10, 1, 0, 0, 0),
        ts(2027, 1, 1, 0, 0, 0),
    ]
    ids = [new_push_id(t) for t in times]
    assert sorted(ids) == ids
    assert sorted(reversed(ids)) == ids


def test_new_push_ids_are_unique():
    now = ts(2026, 12, 1, 10, 30)
    assert len({new_push_id(now) for _ in range(200)}) == 200


def test_material_dest():
    assert material_dest("bio") == "bio/material"
    assert material_dest("cs-101") == "cs-101/material"


# ----- summarise


def test_summarise_counts_each_list():
    report = {
        "added": ["a", "b"],
        "updated": ["c"],
        "unchanged": [],
        "conflicts": [{"path": "d", "saved_as": "d (teacher's version)"}],
        "errors": [{"path": "e", "message": "x"}, {"path": "f", "message": "y"}],
    }
    assert summarise(report) == {
        "added": 2,
        "updated": 1,
        "unchanged": 0,
        "skipped": 0,
        "conflicts": 1,
        "errors": 2,
    }


def test_summarise_missing_or_empty_fields_count_zero():
    zero = {"added": 0, "updated": 0, "unchanged": 0, "skipped": 0, "conflicts": 0, "errors": 0}
    assert summarise({}) == zero
    assert summarise({"added": None, "extra": [1, 2, 3]}) == zero


# ----- _clean_report


def raw(data) -> bytes:
    return json.dumps(data).encode()


def test_clean_report_keeps_known_fields():
    report = _clean_report(
        raw(
            {
                "added": ["a.txt", "w1/b.ipynb"],
                "updated": ["c.txt"],
                "unchanged": ["d.txt"],
                "skipped": ["g.txt"],
                "conflicts": [{"path": "e.txt", "saved_as": "e (v).txt"}],
                "errors": [{"path": "f.txt", "message": "disk full"}],
            }
        )
    )
    assert report == {
        "added": ["a.txt", "w1/b.ipynb"],
        "updated": ["c.txt"],
        "unchanged": ["d.txt"],
        "skipped": ["g.txt"],
        "conflicts": [{"path": "e.txt", "saved_as": "e (v).txt"}],
        "errors": [{"path": "f.txt", "message": "disk full"}],
    }


def test_clean_report_drops_unknown_fields_and_non_string_paths():
    report = _clean_report(
        raw(
            {
                "added": ["ok", 1, None, ["x"], {"p": 1}],
                "updated": None,
                "evil": "<script>",
                "conflicts": [
                    {"path": "a", "saved_as": "b", "html": "<b>"},
                    "not an object",
                    {"path": 5},
                ],
                "errors": [{"message": "no path"}],
            }
        )
    )
    assert report == {
        "added": ["ok"],
        "updated": [],
        "unchanged": [],
        "skipped": [],
        "conflicts": [{"path": "a", "saved_as": "b"}, {"path": "5", "saved_as": ""}],
        "errors": [{"path": "", "message": "no path"}],
    }


def test_clean_report_caps_lengths():
    report = _clean_report(
        raw(
            {
                "added": ["x" * 5000] + ["y"] * 20000,
                "errors": [{"path": "p" * 3000, "message": "m" * 3000}] * 10001,
            }
        )
    )
    assert len(report["added"]) == 10000
    assert report["added"][0] == "x" * 1024
    assert len(report["errors"]) == 10000
    assert report["errors"][0] == {"path": "p" * 1024, "message": "m" * 1024}


@pytest.mark.parametrize("body", [b"[]", b'"report"', b"3", b"null"])
def test_clean_report_rejects_a_non_object(body):
    with pytest.raises(ValueError, match="not an object"):
        _clean_report(body)


@pytest.mark.parametrize("body", [b"", b"{", b"\xff\xfe", b"<html>"])
def test_clean_report_rejects_what_is_not_json(body):
    with pytest.raises(ValueError):
        _clean_report(body)


@pytest.mark.parametrize(
    "body",
    [b'{"added": 5}', b'{"added": "abc"}', b'{"conflicts": 1}', b"[" * 100_000],
    ids=["int", "string", "int-conflicts", "deep-nesting"],
)
def test_clean_report_survives_any_shape(body):
    try:
        report = _clean_report(body)
    except ValueError:
        return  # refused as "not understood": a failed delivery, fine
    assert report["added"] == [] and report["conflicts"] == []


# ----- Pusher: deliveries through the homes helper, homes that appear later


class FakeHomes:
    """A stand-in for services.base.homes.Homes."""

    def __init__(self, existing=(), outcome=None):
        self.homes = set(existing)  # (user, code)
        self.outcome = outcome or {"added": ["sheet.txt"]}
        self.applied: list[tuple[str, str, str, str]] = []
        self.given: list[dict | None] = []  # the record each apply got

    def volume(self, user, server):
        return f"vol-{user}-{server}"

    async def existing(self):
        return {self.volume(u, c) for u, c in self.homes}

    async def apply(self, user, server, dest, label, data, *, delivered=None):
        self.applied.append((user, server, dest, label))
        self.given.append(None if delivered is None else dict(delivered))
        if (user, server) not in self.homes:
            raise HomeMissing("no home")
        if isinstance(self.outcome, BaseException):
            raise self.outcome
        return self.outcome


class FakePushes:
    def __init__(self, pushes):
        self.pushes = {p["_id"]: p for p in pushes}
        self.records: dict[tuple[str, str], dict] = {}
        self.delivered: dict[tuple[str, str, str], dict] = {}

    async def delivered_files(self, code, user, dest):
        found = self.delivered.get((code, user, dest))
        return None if found is None else dict(found)

    async def save_delivered(self, code, user, dest, files, now):
        self.delivered[(code, user, dest)] = dict(files)

    async def record(self, push, user, fields):
        self.records[(push["_id"], user)] = {"code": push["code"], **fields}

    async def update(self, push_id, fields):
        self.pushes[push_id].update(fields)

    async def deliveries(self, push_id):
        return [{"user": u, **f} for (p, u), f in self.records.items() if p == push_id]

    async def deliveries_of(self, code, user):
        return {p: f for (p, u), f in self.records.items() if u == user and f["code"] == code}

    async def delivered_pushes_of(self, code):
        return [p for p in self.pushes.values() if p["code"] == code]

    async def codes_with_pushes(self):
        return sorted({p["code"] for p in self.pushes.values()})

    async def waiting(self):
        return sorted(
            {(f["code"], u) for (_, u), f in self.records.items() if f["status"] == WAITING}
        )


class FakeMembership:
    def __init__(self, students):
        self._students = students

    async def students(self, code):
        return list(self._students)


def _push(push_id="p1", code="bio"):
    return {
        "_id": push_id,
        "code": code,
        "dest": f"{code}/material",
        "label": "2026-12-01 10.30 UTC",
        "zip_key": f"pushes/{code}/{push_id}.zip",
    }


class FakeObjects:
    async def run_job(self, what, fn, timeout):
        return b"zip"


def _pusher(homes, pushes, students=("ann", "bob"), clock=lambda: 42.0):
    pusher = Pusher(
        objects=FakeObjects(),
        pushes=pushes,
        membership=FakeMembership(students),
        homes=homes,
        clock=clock,
    )
    return pusher


async def test_a_push_is_delivered_to_homes_and_waits_for_students_without_one():
    homes = FakeHomes(existing=[("ann", "bio")])
    pushes = FakePushes([_push()])
    pusher = _pusher(homes, pushes)
    await pusher._run_claimed(dict(pushes.pushes["p1"]))
    assert pushes.records[("p1", "ann")]["status"] == DELIVERED
    assert pushes.records[("p1", "ann")]["report"]["added"] == ["sheet.txt"]
    assert pushes.records[("p1", "bob")] == {
        "code": "bio",
        "status": WAITING,
        "message": NO_HOME,
        "updated": 42.0,
    }
    # only the home that exists was touched, and only at the push's folder
    assert homes.applied == [("ann", "bio", "bio/material", "2026-12-01 10.30 UTC")]


@pytest.mark.parametrize(
    "outcome, status, words",
    [
        (HelperUnavailable("docker down"), WAITING, "(docker down); retried by itself"),
        (HomeRefused("Bad destination folder", 400), FAILED, "refused: Bad destination"),
        ([1, 2], FAILED, "refused"),  # a report that is not an object
    ],
)
async def test_a_delivery_that_cannot_be_made_says_why(outcome, status, words):
    homes = FakeHomes(existing=[("ann", "bio")], outcome=outcome)
    pushes = FakePushes([_push()])
    assert await _pusher(homes, pushes)._deliver(pushes.pushes["p1"], "ann") == status
    assert words in pushes.records[("p1", "ann")]["message"]


async def test_a_home_that_appears_gets_the_pushes_it_missed_in_order():
    homes = FakeHomes(existing=[("ann", "bio")])
    pushes = FakePushes([_push("p1"), _push("p2")])
    pusher = _pusher(homes, pushes)
    for push_id in ("p1", "p2"):
        await pusher._run_claimed(dict(pushes.pushes[push_id]))
    assert await pusher.sync_new_homes() == 0  # the first look: ann has everything
    homes.applied.clear()
    homes.homes.add(("bob", "bio"))  # bob starts the class for the first time
    assert await pusher.sync_new_homes() == 2
    assert [(u, p) for u, _, _, p in homes.applied] == [("bob", "2026-12-01 10.30 UTC")] * 2
    assert pushes.records[("p1", "bob")]["status"] == DELIVERED
    assert pushes.records[("p2", "bob")]["status"] == DELIVERED
    homes.applied.clear()
    assert await pusher.sync_new_homes() == 0  # nothing new: nothing done
    assert homes.applied == []


async def test_waiting_deliveries_are_retried_after_a_while():
    now = [100.0]
    homes = FakeHomes(existing=[("ann", "bio")], outcome=HelperUnavailable("docker down"))
    pushes = FakePushes([_push()])
    pusher = _pusher(homes, pushes, students=("ann",), clock=lambda: now[0])
    await pusher._run_claimed(dict(pushes.pushes["p1"]))
    assert pushes.records[("p1", "ann")]["status"] == WAITING
    assert await pusher.sync_new_homes() == 0  # tried again (a new look), failed again
    tries = len(homes.applied)
    assert await pusher.sync_new_homes() == 0
    assert len(homes.applied) == tries  # within retry_after: not tried
    homes.outcome = {"updated": ["sheet.txt"]}
    now[0] += 61
    assert await pusher.sync_new_homes() == 1
    assert pushes.records[("p1", "ann")]["status"] == DELIVERED


async def test_the_record_of_what_was_delivered_goes_to_the_helper_and_is_kept():
    homes = FakeHomes(existing=[("ann", "bio")])
    pushes = FakePushes([_push()])
    push = pushes.pushes["p1"]
    push["files"] = [
        {"path": "sheet.txt", "size": 2, "sha256": "a" * 64},
        {"path": "lost.txt", "size": 2, "sha256": "b" * 64},
    ]
    pusher = _pusher(homes, pushes, students=("ann",))
    homes.outcome = {"added": ["sheet.txt"], "errors": [{"path": "lost.txt", "message": "x"}]}
    assert await pusher._deliver(push, "ann") == DELIVERED
    assert homes.given == [{}]  # nothing recorded yet
    # only what reached the student is recorded
    assert pushes.delivered[("bio", "ann", "bio/material")] == {"sheet.txt": "a" * 64}
    homes.outcome = {"skipped": ["sheet.txt"], "added": ["lost.txt"]}
    assert await pusher._deliver(push, "ann") == DELIVERED
    assert homes.given[-1] == {"sheet.txt": "a" * 64}
    assert pushes.delivered[("bio", "ann", "bio/material")] == {
        "sheet.txt": "a" * 64,
        "lost.txt": "b" * 64,
    }


async def test_a_push_without_hashes_decides_by_the_homes_record_only():
    homes = FakeHomes(existing=[("ann", "bio")])
    pushes = FakePushes([_push()])  # packed before hashes were recorded
    assert await _pusher(homes, pushes)._deliver(pushes.pushes["p1"], "ann") == DELIVERED
    assert homes.given == [None] and pushes.delivered == {}


def test_delivered_after():
    teacher = {"a": "1" * 64, "b": "2" * 64, "c": "3" * 64, "d": "4" * 64, "e": "5" * 64}
    before = {"a": "0" * 64, "e": "9" * 64, "gone": "8" * 64}
    report = {
        "added": ["b"],
        "updated": ["a"],
        "unchanged": [],
        "skipped": ["c"],
        "conflicts": [{"path": "d", "saved_as": "d.teacher-x"}],
        "errors": [{"path": "e", "message": "disk full"}],
    }
    assert delivered_after(before, teacher, report) == {
        "a": "1" * 64,
        "b": "2" * 64,
        "c": "3" * 64,
        "d": "4" * 64,
        "e": "9" * 64,  # not delivered: keeps what it had
        "gone": "8" * 64,  # no longer in the material: kept (harmless)
    }
    # a path the push does not have (a hostile report) is not recorded
    assert delivered_after(None, teacher, {"added": ["zzz"]}) == {}


# ----- build_material_zip


class FakeStore:
    def __init__(self, objects: dict[str, list[bytes]]):
        self.objects = objects
        self.read: list[str] = []

    def iter_object(self, key):
        self.read.append(key)
        yield from self.objects[key]


PREFIX = "classes/bio/material/"


def stored(key, data_chunks):
    return StoredObject(key, sum(len(c) for c in data_chunks), 0.0, "etag")


def test_build_material_zip_holds_relative_paths_and_bytes():
    contents = {
        PREFIX + "intro.ipynb": [b'{"cells": []}'],
        PREFIX + "week1/data.csv": [b"a,b\n", b"1,2\n", b"3,4\n"],
        PREFIX + "week1/deep/empty.txt": [],
        PREFIX + "caf\u00e9 notes.md": ["héllo".encode()],
    }
    store = FakeStore(contents)
    objects = [stored(k, v) for k, v in contents.items()]
    spool = io.BytesIO()
    hashes = build_material_zip(store, objects, PREFIX, spool)
    assert store.read == list(contents)
    assert hashes["week1/data.csv"] == hashlib.sha256(b"a,b\n1,2\n3,4\n").hexdigest()
    assert hashes["week1/deep/empty.txt"] == hashlib.sha256(b"").hexdigest()
    assert len(hashes) == 4
    spool.seek(0)
    with zipfile.ZipFile(spool) as zf:
        assert zf.testzip() is None
        assert zf.namelist() == [
            "intro.ipynb",
            "week1/data.csv",
            "week1/deep/empty.txt",
            "caf\u00e9 notes.md",
        ]
        assert zf.read("intro.ipynb") == b'{"cells": []}'
        assert zf.read("week1/data.csv") == b"a,b\n1,2\n3,4\n"
        assert zf.read("week1/deep/empty.txt") == b""
        assert zf.read("caf\u00e9 notes.md") == "héllo".encode()
        for info in zf.infolist():
            assert info.date_time == (1980, 1, 1, 0, 0, 0)
            assert stat.S_IMODE(info.external_attr >> 16) == 0o644
            assert info.compress_type == zipfile.ZIP_DEFLATED


def test_build_material_zip_of_nothing_is_an_empty_zip():
    spool = io.BytesIO()
    build_material_zip(FakeStore({}), [], PREFIX, spool)
    spool.seek(0)
    with zipfile.ZipFile(spool) as zf:
        assert zf.namelist() == []


def test_build_material_zip_refuses_an_object_outside_the_prefix():
    contents = {"classes/other/material/x.txt": [b"x"]}
    with pytest.raises(ValueError, match="not inside"):
        build_material_zip(
            FakeStore(contents), [stored(k, v) for k, v in contents.items()], PREFIX, io.BytesIO()
        )


# ----- handlers: _parse_at, _iso, _counts


@pytest.mark.parametrize(
    "text,expected",
    [
        ("2026-12-02T09:00:00+01:00", ts(2026, 12, 2, 8, 0, 0)),
        ("2026-12-02T09:00:00-05:30", ts(2026, 12, 2, 14, 30, 0)),
        ("2026-12-02T09:00:00Z", ts(2026, 12, 2, 9, 0, 0)),
        ("2026-12-02T09:00:00.500+00:00", ts(2026, 12, 2, 9, 0, 0) + 0.5),
        ("2026-12-02T09:00+00:00", ts(2026, 12, 2, 9, 0, 0)),
    ],
)
def test_parse_at_with_time_zone(text, expected):
    assert _parse_at(text) == expected


@pytest.mark.parametrize("text", ["2026-12-02T09:00:00", "2026-12-02 09:00", "2026-12-02"])
def test_parse_at_naive_asks_for_a_time_zone(text):
    with pytest.raises(BadRequest, match="needs a time zone") as e:
        _parse_at(text)
    assert e.value.status_code == 400


@pytest.mark.parametrize("text", ["tomorrow", "2026-13-01T00:00:00Z", "09:00", "x" * 500])
def test_parse_at_garbage_is_a_bad_request(text):
    with pytest.raises(BadRequest, match="is not a date and time") as e:
        _parse_at(text)
    assert e.value.status_code == 400
    assert len(str(e.value)) < 200  # the echoed input is cut


@pytest.mark.parametrize("value", [1764666000, 1.5, True, ["2026-12-02T09:00:00Z"], {"a": 1}])
def test_parse_at_non_string_is_a_bad_request(value):
    with pytest.raises(BadRequest, match="'at' must be a date and time") as e:
        _parse_at(value)
    assert e.value.status_code == 400


@pytest.mark.parametrize("value", [None, ""])
def test_parse_at_empty_means_now(value):
    assert _parse_at(value) is None


def test_iso():
    assert _iso(None) is None
    assert _iso(0) == "1970-01-01T00:00:00Z"
    assert _iso(ts(2026, 12, 1, 10, 30)) == "2026-12-01T10:30:00Z"
    assert _iso(ts(2026, 12, 1, 10, 30) + 0.25) == "2026-12-01T10:30:00.250000Z"
    # what the API answers, the API accepts
    at = ts(2026, 12, 2, 8, 15, 7)
    assert _parse_at(_iso(at)) == at


def test_counts():
    assert _counts([]) == {}
    deliveries = [
        {"status": "delivered"},
        {"status": "waiting"},
        {"status": "delivered"},
        {"status": "failed", "message": "x"},
        {},
    ]
    assert _counts(deliveries) == {"delivered": 2, "waiting": 1, "failed": 1, "?": 1}
