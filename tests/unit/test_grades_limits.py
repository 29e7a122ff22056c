"""The grades service's limits per student (pure parts): the versions cap, the submission
quota, and the check of a snapshot's zip directory before it is stored."""

import io
import zipfile

import pytest

from services.grades.app import GradesApp
from services.grades.rules import SubmissionQuotaExceeded, VersionLimit, check_submission_limits
from services.grades.snapcheck import BadSnapshot, snapshot_files

pytestmark = pytest.mark.unit

MB = 1 << 20


def limits(**kw):
    args = dict(versions=0, max_versions=20, used_bytes=0, new_bytes=0, quota=100 * MB)
    args.update(kw)
    check_submission_limits(collected=args.pop("collected", False), **args)


def test_versions_below_the_cap_pass():
    limits(versions=19, used_bytes=50 * MB, new_bytes=10 * MB)
    limits(versions=500, max_versions=0)  # 0: no cap


def test_the_cap_refuses_a_students_next_version_with_what_to_do():
    with pytest.raises(VersionLimit) as caught:
        limits(versions=20)
    assert caught.value.status_code == 409
    message = str(caught.value)
    assert "20 versions" in message and "counts" in message and "collect" in message


def test_the_quota_refuses_with_numbers():
    with pytest.raises(SubmissionQuotaExceeded) as caught:
        limits(used_bytes=95 * MB, new_bytes=10 * MB)
    assert caught.value.status_code == 413
    message = str(caught.value)
    assert "95.0 MB of the 100.0 MB" in message and "this one is 10.0 MB" in message
    assert "earlier versions are kept" in message
    limits(used_bytes=100 * MB)  # exactly full: nothing new yet, the pre-check passes
    with pytest.raises(SubmissionQuotaExceeded):
        limits(used_bytes=101 * MB)


def test_a_teachers_collect_is_never_refused():
    limits(versions=50, used_bytes=500 * MB, new_bytes=100 * MB, collected=True)


def zip_of(n: int) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        for i in range(n):
            zf.writestr(f"f{i}.txt", "x")
    return buf.getvalue()


def test_snapshot_files_come_from_the_zip_itself():
    assert snapshot_files(zip_of(3)) == 3
    assert snapshot_files(zip_of(0)) == 0
    assert snapshot_files(zip_of(30), max_files=30) == 30


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (zip_of(31), "31 entries; at most 30"),
        (b"<html>not a zip</html>", "not a zip archive"),
        # an end record claiming 10 million entries (all the "snapshot" there is)
        (b"PK\x05\x06\0\0\0\0\xff\xff\xff\xff\0\0\0\x10\0\0\0\0\0\0", "65,535 entries"),
    ],
)
def test_hostile_snapshots_are_refused(data, message):
    with pytest.raises(BadSnapshot, match=message) as caught:
        snapshot_files(data, max_files=30)
    assert caught.value.status_code == 409
    assert "Nothing was handed in" in str(caught.value)


def test_limit_settings(monkeypatch):
    monkeypatch.delenv("CLASSHUB_GRADES_MAX_VERSIONS", raising=False)
    monkeypatch.delenv("CLASSHUB_GRADES_STUDENT_QUOTA", raising=False)
    app = GradesApp()
    assert (app.max_versions, app.student_quota) == (20, "1G")
    monkeypatch.setenv("CLASSHUB_GRADES_MAX_VERSIONS", "5")
    monkeypatch.setenv("CLASSHUB_GRADES_STUDENT_QUOTA", "300M")
    app = GradesApp()
    assert (app.max_versions, app.student_quota) == (5, "300M")
    with pytest.raises(Exception, match="cannot be negative"):
        GradesApp(max_versions=-1)
    with pytest.raises(Exception, match="not a size"):
        GradesApp(student_quota="lots")
