"""The files service on a test stack (for the integration tests and the benchmarks).

``files_stack`` starts the whole stack with the classes and files services (nx-27017,
SeaweedFS as the S3 store, the real hub running both services, Traefik routing presigned
URLs to the store); :func:`person` signs someone in at the hub and at the files service
like a browser; :func:`upload` does what the page does: sign, PUT the bytes to the store
through Traefik with the signed headers, report done.
"""

from __future__ import annotations

from pathlib import Path

import requests

from harness.classes import TEST_SERVICE_ENV, Person
from harness.stack import Stack, running_stack, wait_for

FILES = "/services/files/"

TEST_FILES_ENV = {
    **TEST_SERVICE_ENV,
    "CLASSHUB_FILES_USER_QUOTA": "2M",
    "CLASSHUB_FILES_MATERIAL_QUOTA": "4M",
    "CLASSHUB_FILES_MAX_FILE_SIZE": "1M",
    "CLASSHUB_FILES_MAX_ZIP_SIZE": "1M",
    "CLASSHUB_FILES_MAX_UNPACKED_SIZE": "2M",
    "CLASSHUB_FILES_MAX_ZIP_FILES": "50",
    "CLASSHUB_FILES_DOWNLOAD_EXPIRY": "3",
    "CLASSHUB_S3_TIMEOUT": "3",
}


def files_stack(workdir: Path, env: dict | None = None):
    new = Stack(workdir, with_files=True, env={**TEST_FILES_ENV, **(env or {})})
    for stack in running_stack(new):
        health = stack.url + FILES + "health"
        wait_for(
            lambda health=health: requests.get(health, timeout=5).status_code == 200,
            60,
            what="files service healthy",
        )
        yield stack


def person(stack: Stack, name: str, role: str = "student") -> Person:
    return Person(stack, name, role, service=FILES)


def sign(who: Person, area: str, **body) -> requests.Response:
    return who.post(f"api/files/{area}/uploads", json=body)


def put_to_store(signed: dict, data, **headers: str) -> requests.Response:
    """What the page's script does with a signed upload: one PUT of the bytes with the
    signed headers (``headers`` add to them or replace them, to play a hostile client)."""
    assert signed["method"] == "PUT", signed
    return requests.put(
        signed["url"], data=data, headers={**signed["headers"], **headers}, timeout=60
    )


def upload(who: Person, area: str, path: str, data: bytes) -> dict:
    r = sign(who, area, path=path, size=len(data))
    assert r.status_code == 200, r.text
    signed = r.json()
    stored = put_to_store(signed, data)
    assert stored.status_code in (200, 201, 204), stored.text
    r = who.post(f"api/files/{area}/uploads/{signed['id']}")
    assert r.status_code == 200, r.text
    return r.json()


def download(who: Person, area: str, path: str) -> bytes:
    r = who.get(f"api/files/{area}/download", params={"path": path})
    assert r.status_code == 200, r.text
    got = requests.get(r.json()["url"], timeout=30)
    assert got.status_code == 200, got.text
    return got.content


def listing(who: Person, area: str) -> dict:
    r = who.get(f"api/files/{area}")
    assert r.status_code == 200, r.text
    return r.json()
