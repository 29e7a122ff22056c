"""The grades service's pure parts: hub configuration, the feedback file, refusals."""

from decimal import Decimal

import pytest
from traitlets.config import Config

from common.errors import ConfigError
from services.base.homes import HelperUnavailable, HomeMissing, HomeRefused, HomeSnapshot
from services.base.names import BadName
from services.config import apply_env
from services.grades import standing as st
from services.grades.collect import Collector, SnapshotFailed, assignment_folder, feedback_text
from services.grades.config import SCOPES, grades_service_config

pytestmark = pytest.mark.unit

ENV = {"CLASSHUB_S3_ACCESS_KEY": "ak", "CLASSHUB_S3_SECRET_KEY": "sk"}


def test_scopes_are_the_least_the_work_needs():
    assert SCOPES == [
        "read:groups",
        "list:groups",
        "access:services!service=files",
        "custom:classhub:homes",
    ]
    # snapshots and feedback go through helper containers: no right on any server
    assert not any(s.endswith(":servers") or ":servers!" in s for s in SCOPES)
    # list:groups (an admin's Grades page lists every class) is the only listing: no
    # list:users, nothing that writes groups or users, no tokens
    assert not any(s.startswith(("admin:", "tokens", "list:users", "groups")) for s in SCOPES)
    # the files service for releases, and no other service
    assert [s for s in SCOPES if s.startswith("access:services")] == [
        "access:services!service=files"
    ]


def test_service_config_passes_only_what_it_needs():
    service, role = grades_service_config(
        port=10103,
        db_url="postgresql://u:pw@db/x",
        env={**ENV, "OTHER": "x", "CLASSHUB_HOMES_BATCH_SIZE": "10"},
    )
    env = service["environment"]
    assert env["CLASSHUB_GRADES_DB_URL"] == "postgresql://u:pw@db/x"
    assert env["CLASSHUB_HOMES_BATCH_SIZE"] == "10"
    assert not any("SERVERS_URL" in name for name in env)
    assert "OTHER" not in env
    assert role["services"] == ["grades"] and service["url"] == "http://127.0.0.1:10103"


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"port": True}, "port"),
        ({"port": 0}, "port"),
        ({"db_url": "sqlite:///x"}, "PostgreSQL"),
        ({"env": {"CLASSHUB_S3_ACCESS_KEY": "ak"}}, "CLASSHUB_S3_SECRET_KEY"),
    ],
)
def test_service_config_refuses_what_cannot_work(kwargs, message):
    args = {"port": 10103, "db_url": "postgresql://x/y", "env": ENV}
    with pytest.raises(ValueError, match=message):
        grades_service_config(**{**args, **kwargs})


def _env(**extra):
    return {
        "CLASSHUB_HUB_IP": "10.0.0.1",
        "CLASSHUB_MONGO_URL": "mongodb://127.0.0.1:17017/classhub",
        "CLASSHUB_S3_ENDPOINT": "http://127.0.0.1:18333",
        **ENV,
        **extra,
    }


def test_apply_env_runs_the_grades_service_with_postgresql_only():
    c = Config()
    apply_env(c, _env(CLASSHUB_DB_URL="postgresql+psycopg://u@h/db"))
    assert [s["name"] for s in c.JupyterHub.services] == ["classes", "files", "grades"]
    c = Config()
    apply_env(c, _env())  # sqlite hub database: no grades
    assert [s["name"] for s in c.JupyterHub.services] == ["classes", "files"]
    with pytest.raises(ConfigError, match="CLASSHUB_GRADES_PORT"):
        apply_env(Config(), _env(CLASSHUB_DB_URL="postgresql://h/db", CLASSHUB_GRADES_PORT="x"))


def test_the_assignment_folder_is_built_from_checked_names():
    assert assignment_folder("bio", "hw-1") == "bio/assignments/hw-1"
    for code, slug in (("Bio", "hw1"), ("bio", "../x"), ("bio", "HW"), ("bio", "a/b")):
        with pytest.raises(BadName):
            assignment_folder(code, slug)


def _item(**kw):
    item = {
        "title": "Homework 1",
        "version": 2,
        "points": Decimal("8.00"),
        "max_points": Decimal("10.00"),
        "late": False,
        "penalty_percent": Decimal("0"),
        "feedback": "Well done.\nSee line 3.",
    }
    return {**item, **kw}


def test_feedback_file_says_points_penalty_and_feedback():
    text = feedback_text(_item())
    assert text.startswith("# Homework 1: feedback\n") and "Version 2." in text
    assert "counts" not in text  # it is the version that counts
    assert "Points: 8.00 of 10.00." in text and text.endswith("Well done.\nSee line 3.\n")
    other = feedback_text(_item(counting_version=3))
    assert "Version 2. The version that counts for your grade is version 3." in other
    late = feedback_text(_item(late=True, penalty_percent=Decimal("10")))
    assert "10% penalty, so 7.20 of 10.00" in late
    assert "penalty" not in feedback_text(_item(late=True, penalty_percent=Decimal("0")))
    assert feedback_text(_item(feedback="")).endswith("of 10.00.\n")


class _Homes:
    """A stand-in for services.base.homes.Homes: what each call raises or returns."""

    def __init__(self, *, snapshot=None, apply=None, existing=()):
        self._snapshot, self._apply = snapshot, apply
        self._existing = set(existing)
        self.applied: list[tuple] = []

    def volume(self, user, server):
        return f"home-{user}-{server}"

    async def existing(self):
        return {self.volume(u, s) for u, s in self._existing}

    async def snapshot(self, user, server, folder):
        if isinstance(self._snapshot, BaseException):
            raise self._snapshot
        return self._snapshot

    async def apply(self, user, server, dest, label, data):
        self.applied.append((user, server, dest))
        if isinstance(self._apply, BaseException):
            raise self._apply
        return self._apply


def _collector(homes, store=None, clock=lambda: 1000.0):
    return Collector(store=store, objects=None, homes=homes, clock=clock)


@pytest.mark.parametrize(
    "error, expected",
    [
        (HomeMissing("x"), "There is no home folder for bio yet"),
        (HomeRefused("The folder bio/assignments/hw1 does not exist", 404), "does not exist"),
        (HomeRefused("more than 100 MiB", 413), "100 MiB"),
    ],
)
async def test_snapshot_refusals_become_clear_messages(error, expected):
    with pytest.raises(SnapshotFailed, match=expected) as e:
        await _collector(_Homes(snapshot=error)).fetch("ann", "bio", "hw1")
    assert e.value.status_code == 409


async def test_no_helper_is_a_503_to_retry():
    with pytest.raises(HelperUnavailable) as e:
        await _collector(_Homes(snapshot=HelperUnavailable("docker down"))).fetch(
            "ann", "bio", "hw1"
        )
    assert e.value.status_code == 503 and "try again" in str(e.value)


async def test_a_snapshot_is_what_the_helper_took():
    taken = HomeSnapshot(b"zip", "a" * 64, 2, 10, [], 0)
    got = await _collector(_Homes(snapshot=taken)).fetch("ann", "bio", "hw1")
    assert (got.data, got.sha256, got.files, got.size) == (b"zip", "a" * 64, 2, 3)


class _Standing:
    """What standing_data answers for a student with one graded version (on time)."""

    def __init__(self, item):
        self.item = item

    def standing(self, assignment_id, username, now):
        version = st.Version(self.item["submission_id"], 2, now, points=Decimal(8))
        return st.standing([version], due=None, now=now)


class _FeedbackStore:
    def __init__(self, items):
        self.items, self.delivered = items, []

    async def standing_data(self, code, *, assignment_id, username, full):
        (item,) = [i for i in self.items if i["username"] == username]
        return _Standing(item)

    async def undelivered_feedback(self):
        return [i for i in self.items if (i["submission_id"], i["revision"]) not in self.delivered]

    async def feedback_delivered(self, submission_id, revision):
        self.delivered.append((submission_id, revision))
        return True


def _feedback(user, sid):
    return {
        **_item(),
        "username": user,
        "class_code": "bio",
        "assignment_id": 7,
        "slug": "hw1",
        "submission_id": sid,
        "revision": 1,
    }


async def test_feedback_goes_to_homes_that_exist_and_waits_for_the_others():
    store = _FeedbackStore([_feedback("ann", 1), _feedback("bob", 2)])
    homes = _Homes(apply={"added": ["feedback.md"]}, existing=[("ann", "bio")])
    collector = _collector(homes, store)
    assert await collector.deliver_pending_feedback() == 1
    assert homes.applied == [("ann", "bio", "bio/feedback/hw1")]  # bob has no home: not tried
    assert store.delivered == [(1, 1)]
    homes._existing.add(("bob", "bio"))  # bob starts the class: his home appears
    assert await collector.deliver_pending_feedback() == 1
    assert store.delivered == [(1, 1), (2, 1)]


async def test_failed_feedback_is_tried_again_less_and_less_often():
    now = [1000.0]
    store = _FeedbackStore([_feedback("ann", 1)])
    homes = _Homes(apply=HelperUnavailable("docker down"), existing=[("ann", "bio")])
    collector = _collector(homes, store, clock=lambda: now[0])
    assert await collector.deliver_pending_feedback() == 0
    assert await collector.deliver_pending_feedback() == 0
    assert len(homes.applied) == 1  # the second round was within the back-off
    now[0] += 11
    assert await collector.deliver_pending_feedback() == 0
    assert len(homes.applied) == 2
    now[0] += 11  # the back-off doubled (20 s): not yet
    assert await collector.deliver_pending_feedback() == 0
    assert len(homes.applied) == 2
    homes._apply = {"added": ["feedback.md"]}
    now[0] += 10
    assert await collector.deliver_pending_feedback() == 1
    assert store.delivered == [(1, 1)]


class _Objects:
    def __init__(self, objects):
        self.objects, self.removed = objects, []

    async def list(self, prefix):
        return [o for o in self.objects if o.key.startswith(prefix)]

    async def remove(self, keys):
        self.removed += keys


class _Store:
    async def all_storage_keys(self):
        return {"submissions/bio/hw/ann/recorded.zip"}


async def test_orphan_snapshots_are_removed_only_when_old_and_unrecorded():
    from services.base.s3 import StoredObject

    objects = _Objects(
        [
            StoredObject("submissions/bio/hw/ann/recorded.zip", 10, 0.0, "e"),
            StoredObject("submissions/bio/hw/ann/orphan-old.zip", 10, 0.0, "e"),
            StoredObject("submissions/bio/hw/ann/orphan-new.zip", 10, 9_000.0, "e"),
        ]
    )
    collector = Collector(store=_Store(), objects=objects, homes=None, clock=lambda: 10_000.0)
    assert await collector.remove_orphans(min_age=3600) == 1
    assert objects.removed == ["submissions/bio/hw/ann/orphan-old.zip"]


def test_one_feedback_file_per_student_and_assignment():
    from services.grades.collect import one_file_each

    def item(user, version, counting, returned):
        return {
            "username": user,
            "assignment_id": 1,
            "version": version,
            "counting_version": counting,
            "counting_returned": returned,
            "submission_id": 10 * version + len(user),
            "revision": 1,
        }

    # the counting version's grade is returned: only its feedback is written
    write, skip = one_file_each([item("ann", 2, 1, True), item("ann", 1, 1, True)])
    assert [i["version"] for i in write] == [1] and [i["version"] for i in skip] == [2]
    # a later returned grade of another version does not replace it
    write, skip = one_file_each([item("ann", 3, 1, True)])
    assert write == [] and [i["version"] for i in skip] == [3]
    # the counting version has no returned grade: the newest returned one is written
    write, skip = one_file_each([item("bob", 1, 3, False), item("bob", 2, 3, False)])
    assert [i["version"] for i in write] == [2] and [i["version"] for i in skip] == [1]
