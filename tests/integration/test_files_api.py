"""The files service against the real hub, Traefik, SeaweedFS (S3) and nx-27017."""

import io
import time
import zipfile

import pytest
import requests

from harness.classes import assert_error
from harness.files import (
    download,
    listing,
    person,
    put_to_store,
    sign,
    upload,
)
from harness.stack import start_mongo, start_s3, wait_for

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def stack(files_stack_for_module):
    return files_stack_for_module  # the worker's shared stack (conftest.py)


def test_private_files_round_trip_through_presigned_urls(stack):
    sam = person(stack, "sam")
    done = upload(sam, "me", "notes/week 1.txt", b"hello files")
    assert done == {"path": "notes/week 1.txt", "size": 11}
    body = listing(sam, "me")
    assert [f["path"] for f in body["files"]] == ["notes/week 1.txt"]
    assert body["used"] == 11 and body["area"]["kind"] == "private"
    assert download(sam, "me", "notes/week 1.txt") == b"hello files"


def test_nobody_reaches_another_persons_files(stack):
    sam, kim = person(stack, "sam2"), person(stack, "kim2")
    upload(sam, "me", "secret.txt", b"sam's secret")
    # kim's area is kim's: the same path is simply not there, and no name leaves the area
    assert_error(kim.get("api/files/me/download", params={"path": "secret.txt"}), 404)
    assert listing(kim, "me")["files"] == []
    for hostile in (
        "../sam2/secret.txt",
        "/users/sam2/secret.txt",
        "a/../../sam2/secret.txt",
        "..\\sam2\\secret.txt",
        "x\u202e.txt",
        "ok/\x00.txt",
        ".classhub-state",
    ):
        assert_error(kim.get("api/files/me/download", params={"path": hostile}), 400)
        assert_error(sign(kim, "me", path=hostile, size=3), 400)
    # a signed link names one object: changing it to another person's breaks the signature
    url = kim_url = None
    upload(kim, "me", "mine.txt", b"kim")
    kim_url = kim.get("api/files/me/download", params={"path": "mine.txt"}).json()["url"]
    url = kim_url.replace("/users/kim2/mine.txt", "/users/sam2/secret.txt")
    assert url != kim_url
    assert requests.get(url, timeout=10).status_code == 403
    # unsigned requests for the store's paths never reach it (Traefik routes only signed ones)
    for probe in (
        "/classhub-files/users/sam2/secret.txt",
        "/classhub-files?list-type=2",
        "/classhub-files/?prefix=users/",
    ):
        r = requests.get(stack.url + probe, timeout=10)
        assert r.status_code in (403, 404) and b"sam's secret" not in r.content
    r = requests.put(stack.url + "/classhub-files/users/sam2/secret.txt", data=b"x", timeout=10)
    assert r.status_code in (403, 404, 405)
    # an upload URL names one object: pointed at another person's key it is refused, and
    # turned into a server-side copy of their file it copies nothing
    signed = sign(kim, "me", path="copy.txt", size=1).json()
    moved = {**signed, "url": signed["url"].replace("/users/kim2/copy.txt", "/users/sam2/x.txt")}
    assert put_to_store(moved, b"k").status_code == 403
    source = "/classhub-files/users/sam2/secret.txt"
    # Traefik removes the copy header, so this is a plain upload of kim's one byte
    assert put_to_store(signed, b"k", **{"x-amz-copy-source": source}).status_code == 200
    assert kim.post(f"api/files/me/uploads/{signed['id']}").status_code == 200
    assert download(kim, "me", "copy.txt") == b"k"
    # the old form upload (POST to the bucket) is not routed to the store at all
    posted = requests.post(stack.url + "/classhub-files", files={"file": b"x"}, timeout=10)
    assert posted.status_code in (403, 404, 405)
    assert download(sam, "me", "secret.txt") == b"sam's secret"


def test_a_download_link_expires_and_is_never_shown_inline(stack):
    ann = person(stack, "ann2")
    upload(ann, "me", "page.html", b"<script>alert(1)</script>")
    url = ann.get("api/files/me/download", params={"path": "page.html"}).json()["url"]
    r = requests.get(url, timeout=10)
    assert r.status_code == 200
    assert r.headers["Content-Disposition"].startswith("attachment")
    assert r.headers["Content-Type"] == "application/octet-stream"
    assert "sandbox" in r.headers["Content-Security-Policy"]
    assert r.headers["X-Content-Type-Options"] == "nosniff"
    time.sleep(4.5)  # CLASSHUB_FILES_DOWNLOAD_EXPIRY=3 in these tests
    assert requests.get(url, timeout=10).status_code == 403


def test_size_and_quota_are_enforced_before_anything_is_stored(stack):
    bo = person(stack, "bo2")
    # over the largest file (1M): refused before signing
    assert_error(sign(bo, "me", path="big.bin", size=1_200_000), 413, "at most")
    # a client that lies about the size, streams a body of unknown length, changes the
    # signed type or asks for more than an upload: the store refuses it, nothing lands
    r = sign(bo, "me", path="liar.bin", size=10)
    signed = r.json()
    assert put_to_store(signed, b"x" * 1000).status_code == 403
    assert put_to_store(signed, b"x" * 9).status_code == 403
    assert put_to_store(signed, iter([b"x" * 5, b"x" * 5])).status_code == 403  # chunked
    assert put_to_store(signed, b"x" * 10, **{"Content-Type": "text/html"}).status_code == 403
    assert put_to_store(signed, b"x" * 10, **{"x-amz-meta-evil": "1"}).status_code == 403
    assert_error(bo.post(f"api/files/me/uploads/{signed['id']}"), 409, "has not arrived")
    assert listing(bo, "me")["files"] == []
    # the quota (2M) counts signed uploads that are not done yet
    first = sign(bo, "me", path="a.bin", size=900_000)
    second = sign(bo, "me", path="b.bin", size=900_000)
    assert first.status_code == second.status_code == 200
    assert_error(sign(bo, "me", path="c.bin", size=900_000), 413, "Not enough space")
    for signed in (first.json(), second.json()):
        assert put_to_store(signed, b"y" * 900_000).status_code == 200
        assert bo.post(f"api/files/me/uploads/{signed['id']}").status_code == 200
    assert listing(bo, "me")["used"] == 1_800_000
    upload(bo, "me", "c.bin", b"z" * 290_000)  # 2,090,000 of 2,097,152 bytes
    # replacing a file with a bigger one that does not fit keeps the old file
    assert_error(sign(bo, "me", path="a.bin", size=1_000_000), 413, "Not enough space")
    assert download(bo, "me", "a.bin") == b"y" * 900_000


def test_replacing_a_file_and_renaming_and_deleting(stack):
    cy = person(stack, "cy2")
    upload(cy, "me", "draft.txt", b"one")
    upload(cy, "me", "draft.txt", b"two, longer")
    assert download(cy, "me", "draft.txt") == b"two, longer"
    assert listing(cy, "me")["used"] == 11
    upload(cy, "me", "week1/a.txt", b"a")
    upload(cy, "me", "week1/b.txt", b"b")
    r = cy.post("api/files/me/rename", json={"from": "week1", "to": "archive/week1"})
    assert r.status_code == 200 and r.json()["moved"] == 2, r.text
    assert_error(
        cy.post("api/files/me/rename", json={"from": "draft.txt", "to": "archive/week1/a.txt"}), 409
    )
    assert_error(cy.post("api/files/me/rename", json={"from": "nope", "to": "x"}), 404)
    assert_error(cy.post("api/files/me/rename", json={"from": "draft.txt", "to": "../x"}), 400)
    assert sorted(f["path"] for f in listing(cy, "me")["files"]) == [
        "archive/week1/a.txt",
        "archive/week1/b.txt",
        "draft.txt",
    ]
    assert cy.delete("api/files/me/file", params={"path": "draft.txt"}).status_code == 204
    assert cy.delete("api/files/me/folder", params={"path": "archive"}).json()["deleted"] == 2
    assert listing(cy, "me")["files"] == []


def _zip(entries: dict[str, bytes]) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as zf:
        for name, data in entries.items():
            zf.writestr(name, data)
    return buf.getvalue()


def _unpack(who, area, folder, data: bytes):
    r = sign(who, area, folder=folder, size=len(data), unpack=True)
    assert r.status_code == 200, r.text
    assert put_to_store(r.json(), data).status_code == 200
    return who.post(f"api/files/{area}/uploads/{r.json()['id']}")


def test_a_zip_unpacks_as_a_folder_and_hostile_archives_change_nothing(stack):
    di = person(stack, "di2")
    r = _unpack(
        di,
        "me",
        "course",
        _zip({"week1/nb.ipynb": b"{}", "data/x.csv": b"1,2", "__MACOSX/._x": b"junk"}),
    )
    assert r.status_code == 200, r.text
    assert sorted(r.json()["files"]) == ["course/data/x.csv", "course/week1/nb.ipynb"]
    slip = _zip({"ok.txt": b"fine", "../../users/other/evil.txt": b"evil"})
    assert_error(_unpack(di, "me", "", slip), 400, "not allowed")
    bomb = _zip({"zeros.bin": b"\0" * 20_000_000})
    assert_error(_unpack(di, "me", "", bomb), 400)
    many = _zip({f"f{i}.txt": b"x" for i in range(60)})
    assert_error(_unpack(di, "me", "", many), 400, "too many")
    assert_error(_unpack(di, "me", "", b"this is not a zip"), 400, "not a zip")
    # nothing of the refused archives landed, and their staged bytes are gone
    assert sorted(f["path"] for f in listing(di, "me")["files"]) == [
        "course/data/x.csv",
        "course/week1/nb.ipynb",
    ]


def test_bad_requests_are_clear_4xx(stack):
    ed = person(stack, "ed2")
    assert_error(
        ed.call(
            "POST",
            "api/files/me/uploads",
            data=b"{not json",
            headers={"Content-Type": "application/json"},
        ),
        400,
        "JSON",
    )
    assert_error(sign(ed, "me", path="a.txt", size=1, colour="red"), 400, "Unknown field")
    assert_error(sign(ed, "me", path="a.txt", size=-1), 400, "size")
    assert_error(sign(ed, "me", path="a.txt", size="12"), 400, "size")
    assert_error(sign(ed, "me", size=3), 400, "path")
    assert_error(ed.get("api/files/me/download"), 400, "path")
    assert_error(
        ed.post("api/files/me/uploads/00ff00ff00ff00ff00ff00ff"), 404, "Upload the file again"
    )
    assert_error(ed.get("api/files/class/nosuchclass"), 404)
    assert_error(ed.get("api/files/class/Bad..Code"), 400)


def test_material_is_read_by_the_class_and_written_by_its_teachers(stack):
    stack.enroll("tia3", "bio3", teacher=True)
    stack.enroll("stu3", "bio3")
    stack.enroll("out3", "chem3")
    tia, stu, out = person(stack, "tia3", "teacher"), person(stack, "stu3"), person(stack, "out3")
    upload(tia, "class/bio3", "week1/sheet.txt", b"exercise 1")
    body = listing(stu, "class/bio3")
    assert [f["path"] for f in body["files"]] == ["week1/sheet.txt"]
    assert body["area"] == {"kind": "material", "owner": "bio3", "writable": False}
    assert download(stu, "class/bio3", "week1/sheet.txt") == b"exercise 1"
    # students only read; people outside the class learn nothing about it
    assert_error(sign(stu, "class/bio3", path="mine.txt", size=1), 403, "teachers")
    assert_error(stu.delete("api/files/class/bio3/file", params={"path": "week1/sheet.txt"}), 403)
    assert_error(stu.post("api/files/class/bio3/rename", json={"from": "week1", "to": "w"}), 403)
    assert_error(stu.post("api/classes/bio3/pushes", json={}), 403)
    for call in (
        lambda: out.get("api/files/class/bio3"),
        lambda: out.get("api/files/class/bio3/download", params={"path": "week1/sheet.txt"}),
        lambda: sign(out, "class/bio3", path="x.txt", size=1),
        lambda: out.get("api/classes/bio3/pushes"),
    ):
        assert_error(call(), 404)
    # a teacher of one class is a stranger to another
    assert_error(tia.get("api/files/class/chem3"), 404)


def test_the_store_down_is_a_503_and_the_service_recovers_by_itself(stack):
    fay = person(stack, "fay3")
    upload(fay, "me", "kept.txt", b"kept")
    stack.s3.stop()
    try:
        assert_error(fay.get("api/files/me"), 503, "file store is unreachable")
        assert_error(sign(fay, "me", path="new.txt", size=3), 503)
        health = requests.get(stack.url + "/services/files/health", timeout=10)
        assert health.status_code == 503 and "s3" in health.json()["message"]
    finally:
        stack.s3, _ = start_s3(
            stack.workdir / "s3",
            stack.s3_access_key,
            stack.s3_secret_key,
            port=stack.s3_port,
            identities=stack.s3_identities,
        )
        stack.processes.append(stack.s3)
    wait_for(lambda: fay.get("api/files/me").status_code == 200, 60, what="files service back")
    assert download(fay, "me", "kept.txt") == b"kept"
    upload(fay, "me", "after.txt", b"after")


def test_mongodb_down_stops_only_pushes_and_they_come_back(stack):
    stack.enroll("gil3", "geo3", teacher=True)
    gil = person(stack, "gil3", "teacher")
    upload(gil, "class/geo3", "map.txt", b"map")
    stack.mongo.stop()
    try:
        assert_error(gil.get("api/classes/geo3/pushes"), 503, "material database is unreachable")
        assert_error(gil.post("api/classes/geo3/pushes", json={}), 503)
        # files do not need MongoDB
        assert [f["path"] for f in listing(gil, "class/geo3")["files"]] == ["map.txt"]
        assert download(gil, "class/geo3", "map.txt") == b"map"
    finally:
        stack.mongo, _ = start_mongo(stack.workdir / "mongo", port=stack.mongo_port)
        stack.processes.append(stack.mongo)
    wait_for(lambda: gil.get("api/classes/geo3/pushes").status_code == 200, 60, what="pushes back")
    r = gil.post("api/classes/geo3/pushes", json={})
    assert r.status_code == 202, r.text
