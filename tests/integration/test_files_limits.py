"""What one person can make the files service hold or parse, through the real upload path
(the hub, Traefik, SeaweedFS, the files service run by the hub): a zip of many thousands
of entries is refused by its directory alone, and uploads waiting in staging count
against the person's staging allowance."""

import io
import struct
import zipfile

import pytest
import requests
from minio import Minio

from harness.classes import assert_error
from harness.files import (
    FILES,
    files_stack,
    listing,
    person,
    put_to_store,
    sign,
    upload,
)

pytestmark = pytest.mark.integration

MiB = 1 << 20
ENV = {
    "CLASSHUB_FILES_MAX_ZIP_SIZE": "16M",
    "CLASSHUB_FILES_MAX_FILE_SIZE": "1M",
    "CLASSHUB_FILES_STAGING_QUOTA": "20M",
    "CLASSHUB_FILES_USER_QUOTA": "40M",
    "CLASSHUB_FILES_MAX_ZIP_FILES": "50",  # at most 3 x 50 + 100 = 250 entries
}


@pytest.fixture(scope="module")
def stack(tmp_path_factory):
    yield from files_stack(tmp_path_factory.mktemp("files-limits"), env=ENV)


def staged_keys(stack, user: str) -> list[str]:
    """What waits in the person's staging place, read from the store itself."""
    s3 = Minio(
        f"127.0.0.1:{stack.s3_port}",
        access_key=stack.s3_access_key,
        secret_key=stack.s3_secret_key,
        secure=False,
    )
    return [
        o.object_name
        for o in s3.list_objects("classhub-files", prefix=f"staging/{user}/", recursive=True)
    ]


def empty_entries(n: int) -> bytes:
    """A valid zip of ``n`` empty files (zip64 end records past 65535), made fast."""
    local, central, offset = [], [], 0
    for i in range(n):
        name = b"%d" % i
        header = struct.pack("<4s5H3L2H", b"PK\x03\x04", 20, 0, 0, 0, 0x21, 0, 0, 0, len(name), 0)
        central.append(
            struct.pack(
                "<4s6H3L5H2L",
                b"PK\x01\x02",
                20,
                20,
                0,
                0,
                0,
                0x21,
                0,
                0,
                0,
                len(name),
                0,
                0,
                0,
                0,
                0,
                offset,
            )
            + name
        )
        local.append(header + name)
        offset += len(header) + len(name)
    directory = b"".join(central)
    body = b"".join(local) + directory
    record = struct.pack(
        "<4sQ2H2L4Q", b"PK\x06\x06", 44, 45, 45, 0, 0, n, n, len(directory), offset
    )
    locator = struct.pack("<4sLQL", b"PK\x06\x07", 0, len(body), 1)
    end = struct.pack(
        "<4s4H2LH", b"PK\x05\x06", 0, 0, min(n, 0xFFFF), min(n, 0xFFFF), len(directory), offset, 0
    )
    return body + record + locator + end


def unpack(who, data: bytes) -> requests.Response:
    r = sign(who, "me", folder="in", size=len(data), unpack=True)
    assert r.status_code == 200, r.text
    assert put_to_store(r.json(), data).status_code == 200
    return who.post(f"api/files/me/uploads/{r.json()['id']}", timeout=120)


def test_a_zip_bomb_of_entries_is_refused_by_its_directory(stack):
    zed = person(stack, "zed")
    bomb = empty_entries(120_000)
    assert 8 * MiB < len(bomb) < 16 * MiB
    assert_error(unpack(zed, bomb), 400, "120,000 entries; at most 250")
    # an end record alone that claims five million entries
    claim = struct.pack("<4sQ2H2L4Q", b"PK\x06\x06", 44, 45, 45, 0, 0, 5_000_000, 5_000_000, 1, 0)
    claim += struct.pack("<4sLQL", b"PK\x06\x07", 0, 0, 1)
    claim += struct.pack("<4s4H2LH", b"PK\x05\x06", 0, 0, 0xFFFF, 0xFFFF, 0xFFFFFFFF, 0, 0)
    assert_error(unpack(zed, claim), 400, "5,000,000 entries")
    # nothing landed, the staged archives are gone, the service is fine
    assert listing(zed, "me")["files"] == []
    assert staged_keys(stack, "zed") == []
    assert requests.get(stack.url + FILES + "health", timeout=10).status_code == 200
    # an ordinary archive still unpacks
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        zf.writestr("a.txt", "fine")
    r = unpack(zed, buf.getvalue())
    assert r.status_code == 200 and r.json()["files"] == ["in/a.txt"], r.text


def test_staged_uploads_count_against_the_staging_allowance(stack):
    amy = person(stack, "amy")
    # two zips of 16 MB signed at once: the second finds 16 of 20 MB waiting
    first = sign(amy, "me", folder="x", size=16 * MiB, unpack=True)
    assert first.status_code == 200, first.text
    assert_error(sign(amy, "me", folder="y", size=16 * MiB, unpack=True), 413, "unfinished uploads")
    # the bytes arrive but "done" is never called: they still count
    assert put_to_store(first.json(), b"\0" * (16 * MiB)).status_code == 200
    assert staged_keys(stack, "amy") == [f"staging/amy/{first.json()['id']}.zip"]
    assert_error(sign(amy, "me", folder="y", size=8 * MiB, unpack=True), 413, "16.0 MB")
    upload(amy, "me", "notes.txt", b"v1")  # a new file goes to its place, not to staging
    small = sign(amy, "me", folder="z", size=4 * MiB, unpack=True)
    assert small.status_code == 200, small.text  # 16 + 4 MB: exactly the allowance
    # replacing a file goes through staging too, and counts the same
    assert_error(sign(amy, "me", path="notes.txt", size=1000), 413, "unfinished uploads")
    # another person is not affected
    assert sign(person(stack, "bea"), "me", folder="x", size=16 * MiB, unpack=True).ok
    # once the first upload is reported (refused: it is no zip) its staged bytes are gone
    assert_error(amy.post(f"api/files/me/uploads/{first.json()['id']}"), 400, "not a zip")
    assert staged_keys(stack, "amy") == []
    again = sign(amy, "me", folder="y", size=16 * MiB, unpack=True)
    assert again.status_code == 200, again.text
