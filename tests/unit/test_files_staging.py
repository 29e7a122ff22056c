"""Staged uploads (replacements, zips to unpack) count against the person's staging
allowance, and abandoned ones are found for removal (services/files/uploads.py)."""

from dataclasses import dataclass

import pytest

from services.base.names import BadName, staging_prefix
from services.files.app import FilesApp
from services.files.uploads import (
    PendingUploads,
    TooLarge,
    Upload,
    abandoned,
    check_staging,
    staged_bytes,
)

pytestmark = pytest.mark.unit

MiB = 1 << 20


@dataclass
class Stored:
    key: str
    size: int
    modified: float = 0.0


def upload(key: str, size: int, *, owner: str = "sam", staged: bool = True, expires=2000.0):
    return Upload(
        id=key.rsplit("/", 1)[-1].split(".")[0],
        area_prefix="users/sam/",
        owner=owner,
        path="x",
        key=key,
        size=size,
        expires=expires,
        unpack=key.endswith(".zip"),
        staged=staged,
    )


def test_staging_keys_are_per_person():
    assert staging_prefix("sam") == "staging/sam/"
    with pytest.raises(BadName):
        staging_prefix("../users/tom")


def test_staged_bytes_count_arrived_objects_and_signed_uploads_once():
    stored = [Stored("staging/sam/a.zip", 300 * MiB), Stored("staging/sam/b", 10 * MiB)]
    pending = [
        upload("staging/sam/a.zip", 400 * MiB),  # arrived: the object's size counts
        upload("staging/sam/c.zip", 200 * MiB),  # signed, not sent yet: its signed size
        upload("users/sam/new.txt", 50 * MiB, staged=False),  # not staged: the area's quota
    ]
    assert staged_bytes(stored, pending) == 510 * MiB


def test_check_staging_refuses_past_the_allowance():
    check_staging(size=500 * MiB, staged=500 * MiB, allowance=1024 * MiB)
    with pytest.raises(TooLarge) as caught:
        check_staging(size=600 * MiB, staged=500 * MiB, allowance=1024 * MiB)
    assert caught.value.status_code == 413
    message = str(caught.value)
    assert "500.0 MB" in message and "600.0 MB" in message and "1.0 GB" in message


def test_abandoned_are_old_objects_no_upload_waits_for():
    stored = [
        Stored("staging/sam/a.zip", 1, modified=100.0),  # old, its upload still pending
        Stored("staging/sam/b.zip", 1, modified=100.0),  # old, nobody waits: abandoned
        Stored("staging/sam/c.zip", 1, modified=990.0),  # too recent to tell
        Stored("staging/old-layout-id", 1, modified=10.0),  # from before per-person keys
    ]
    gone = abandoned(stored, {"staging/sam/a.zip"}, now=1000.0, min_age=660.0)
    assert gone == ["staging/sam/b.zip", "staging/old-layout-id"]


def test_pending_staged_uploads_expire_after_their_grace():
    now = [1000.0]
    pending = PendingUploads(lambda: now[0], grace=60.0)
    pending.add(upload("staging/sam/a.zip", 5, expires=1100.0))
    pending.add(upload("staging/sam/b", 5, expires=1100.0))
    pending.add(upload("users/sam/c", 5, staged=False, expires=1100.0))
    pending.add(upload("staging/tom/d.zip", 5, owner="tom", expires=1100.0))
    assert {u.key for u in pending.staged_by("sam")} == {"staging/sam/a.zip", "staging/sam/b"}
    assert len(pending.keys()) == 4
    now[0] = 1161.0
    assert pending.staged_by("sam") == [] and pending.keys() == set()


def test_staging_quota_setting(monkeypatch):
    monkeypatch.delenv("CLASSHUB_FILES_STAGING_QUOTA", raising=False)
    app = FilesApp(s3_access_key="k", s3_secret_key="s")
    assert app.limits()["staging_quota"] == 1 << 30
    monkeypatch.setenv("CLASSHUB_FILES_STAGING_QUOTA", "2G")
    assert FilesApp().limits()["staging_quota"] == 2 << 30
    with pytest.raises(Exception, match="at least max_zip_size"):
        FilesApp(staging_quota="100M").limits()
