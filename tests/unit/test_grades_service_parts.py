"""The grades service's pure parts: hub configuration, the feedback file, refusals."""

import io
from decimal import Decimal

import pytest
from tornado.httpclient import HTTPClientError, HTTPRequest, HTTPResponse
from traitlets.config import Config

from hub.config import ConfigError, apply_env
from services.files.names import BadName
from services.grades.collect import Collector, SnapshotFailed, assignment_folder, feedback_text
from services.grades.config import SCOPES, grades_service_config

pytestmark = pytest.mark.unit

ENV = {"CLASSHUB_S3_ACCESS_KEY": "ak", "CLASSHUB_S3_SECRET_KEY": "sk"}


def test_scopes_are_the_least_the_work_needs():
    assert SCOPES == [
        "read:groups",
        "list:groups",
        "read:servers",
        "start:servers",
        "delete:servers",
        "access:servers",
        "access:services!service=files",
    ]
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
        public_url="http://:8000",
        env={**ENV, "OTHER": "x"},
    )
    env = service["environment"]
    assert env["CLASSHUB_GRADES_DB_URL"] == "postgresql://u:pw@db/x"
    assert env["CLASSHUB_FILES_SERVERS_URL"] == "http://127.0.0.1:8000"
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
    args = {"port": 10103, "db_url": "postgresql://x/y", "public_url": "http://:8000", "env": ENV}
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
    apply_env(c, _env(CLASSHUB_DB_URL="postgresql+psycopg://u@h/db"), gateway_lookup=lambda n: "x")
    assert [s["name"] for s in c.JupyterHub.services] == ["classes", "files", "grades"]
    c = Config()
    apply_env(c, _env(), gateway_lookup=lambda n: "x")  # sqlite hub database: no grades
    assert [s["name"] for s in c.JupyterHub.services] == ["classes", "files"]
    with pytest.raises(ConfigError, match="CLASSHUB_GRADES_PORT"):
        apply_env(
            Config(),
            _env(CLASSHUB_DB_URL="postgresql://h/db", CLASSHUB_GRADES_PORT="x"),
            gateway_lookup=lambda n: "x",
        )


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
    assert "Points: 8.00 of 10.00." in text and text.endswith("Well done.\nSee line 3.\n")
    late = feedback_text(_item(late=True, penalty_percent=Decimal("10")))
    assert "10% penalty, so 7.20 of 10.00" in late
    assert "penalty" not in feedback_text(_item(late=True, penalty_percent=Decimal("0")))
    assert feedback_text(_item(feedback="")).endswith("of 10.00.\n")


def _error(code: int, body: bytes = b"") -> HTTPClientError:
    request = HTTPRequest("http://x/")

    return HTTPClientError(code, response=HTTPResponse(request, code, buffer=io.BytesIO(body)))


@pytest.mark.parametrize(
    "code, body, expected",
    [
        (
            404,
            b'{"message": "The folder bio/assignments/hw1 does not exist in your server."}',
            "does not exist",
        ),
        (404, b"", "not running"),
        (503, b"", "not running"),
        (599, b"", "not running"),
        (302, b"", "not running"),
        (424, b"", "not running"),
        (413, b'{"message": "more than 100 MiB"}', "100 MiB"),
        (413, b"", "too large"),
        (403, b"", "scopes"),
        (400, b'{"message": "bad folder"}', "bad folder"),
        (500, b"[" * 5000, "failed (500)"),
    ],
)
def test_snapshot_refusals_become_clear_messages(code, body, expected):
    failure = Collector._refusal(_error(code, body), "bio/assignments/hw1")
    assert isinstance(failure, SnapshotFailed) and failure.status_code == 409
    assert expected in str(failure)


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
    from services.files.s3 import StoredObject

    objects = _Objects(
        [
            StoredObject("submissions/bio/hw/ann/recorded.zip", 10, 0.0, "e"),
            StoredObject("submissions/bio/hw/ann/orphan-old.zip", 10, 0.0, "e"),
            StoredObject("submissions/bio/hw/ann/orphan-new.zip", 10, 9_000.0, "e"),
        ]
    )
    collector = Collector(
        store=_Store(),
        objects=objects,
        hub=None,
        servers_url="http://127.0.0.1:8000",
        base_url="/",
        token="t",
        clock=lambda: 10_000.0,
    )
    try:
        assert await collector.remove_orphans(min_age=3600) == 1
    finally:
        collector.close()
    assert objects.removed == ["submissions/bio/hw/ann/orphan-old.zip"]
