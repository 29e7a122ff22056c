"""The grades service's limits per student against the real hub, Traefik, PostgreSQL,
SeaweedFS and a real class server: at most 2 versions of one assignment (a third Submit is
refused and says every version is kept; a teacher's collect still works), and a
submission quota of 600 KB over all of a student's versions (a Submit past it is refused
with the numbers, and nothing is stored)."""

import pytest
import requests
from minio import Minio

from harness.classes import assert_error
from harness.files import files_stack
from harness.stack import wait_for
from tests.integration.test_grades_loop import GRADES, iso, who

pytestmark = pytest.mark.integration

CODE = "chem5"


@pytest.fixture(scope="module")
def stack(tmp_path_factory):
    env = {"CLASSHUB_GRADES_MAX_VERSIONS": "2", "CLASSHUB_GRADES_STUDENT_QUOTA": "600K"}
    for stack in files_stack(tmp_path_factory.mktemp("grades-limits"), env=env):
        health = stack.url + GRADES + "health"
        wait_for(lambda h=health: requests.get(h, timeout=5).ok, 60, what="grades")
        yield stack


def assignment(teacher, slug: str) -> None:
    body = {"slug": slug, "title": slug.upper(), "max_points": 10, "due_at": iso(3600)}
    r = teacher.post(f"api/classes/{CODE}/assignments", json=body)
    assert r.status_code == 201, r.text


def versions(stack, student: str, slug: str) -> list[int]:
    r = stack.psql(
        "SELECT version FROM classhub_grades.submissions s JOIN classhub_grades.assignments a"
        " ON a.id = s.assignment_id WHERE s.username = %s AND a.slug = %s ORDER BY version",
        student,
        slug,
    )
    return list(r)


def write_random(stack, user: str, path: str, size: int) -> None:
    """``size`` random (incompressible) bytes, made inside the student's server."""
    script = (
        "import os, sys; p = sys.argv[1]; os.makedirs(os.path.dirname(p), exist_ok=True);"
        f" open(p, 'wb').write(os.urandom({size}))"
    )
    code, out = stack.server_container(user, CODE).exec_run(
        ["python3", "-c", script, f"/home/jovyan/{path}"], user="1000"
    )
    assert code == 0, out


def stored_snapshots(stack, prefix: str) -> list[str]:
    s3 = Minio(
        f"127.0.0.1:{stack.s3_port}",
        access_key=stack.s3_access_key,
        secret_key=stack.s3_secret_key,
        secure=False,
    )
    return [o.object_name for o in s3.list_objects("classhub-files", prefix, recursive=True)]


def test_versions_cap_and_submission_quota(stack):
    stack.enroll("tina7", CODE, teacher=True)
    stack.enroll("sam7", CODE)
    tina, sam = who(stack, "tina7", "teacher"), who(stack, "sam7")
    assignment(tina, "hw1")
    assignment(tina, "hw2")
    stack.spawn("sam7", CODE)

    # the cap: two versions, then a clear refusal; nothing of the first two is lost
    for n in (1, 2):
        stack.write_home("sam7", CODE, f"{CODE}/assignments/hw1/a.py", b"print(%d)\n" % n)
        r = sam.post(f"api/classes/{CODE}/assignments/hw1/submit")
        assert r.status_code == 201 and r.json()["version"] == n, r.text
    stack.write_home("sam7", CODE, f"{CODE}/assignments/hw1/a.py", b"print(3)\n")
    body = assert_error(sam.post(f"api/classes/{CODE}/assignments/hw1/submit"), 409)
    assert "2 versions" in body["message"] and "counts" in body["message"], body
    assert versions(stack, "sam7", "hw1") == [1, 2]
    seen = sam.get(f"api/classes/{CODE}/assignments").json()
    (hw1,) = [a for a in seen["assignments"] if a["slug"] == "hw1"]
    assert hw1["max_versions"] == 2 and len(hw1["submissions"]) == 2
    # the teacher still collects the folder as it is now
    r = tina.post(f"api/classes/{CODE}/assignments/hw1/collect")
    assert r.status_code == 200, r.text
    (collected,) = r.json()["students"]
    assert collected["status"] == "collected" and collected["version"] == 3, collected
    assert versions(stack, "sam7", "hw1") == [1, 2, 3]

    # the quota: 600 KB over every version of every assignment
    used = seen["submission_storage"]["used"]
    assert seen["submission_storage"]["quota"] == 600 << 10 and used < 10_000
    write_random(stack, "sam7", f"{CODE}/assignments/hw2/data.bin", 350_000)
    r = sam.post(f"api/classes/{CODE}/assignments/hw2/submit")
    assert r.status_code == 201, r.text
    write_random(stack, "sam7", f"{CODE}/assignments/hw2/data.bin", 350_000)
    body = assert_error(sam.post(f"api/classes/{CODE}/assignments/hw2/submit"), 413)
    assert "of the 0.6 MB you may use" in body["message"], body
    assert "earlier versions are kept" in body["message"], body
    assert versions(stack, "sam7", "hw2") == [1]
    # the refused snapshot was not kept in the store
    assert len(stored_snapshots(stack, f"submissions/{CODE}/hw2/sam7/")) == 1
    assert len(stored_snapshots(stack, f"submissions/{CODE}/hw1/sam7/")) == 3
    storage = sam.get(f"api/classes/{CODE}/assignments").json()["submission_storage"]
    assert 350_000 < storage["used"] < 400_000
