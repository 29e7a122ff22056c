"""The files service against the real hub, Traefik, SeaweedFS (S3) and nx-27017."""

import pytest
import requests

from tests.integration.test_classes_support import assert_error
from tests.integration.test_files_support import (
    download,
    files_stack,
    listing,
    person,
    post_to_store,
    sign,
    upload,
)

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def stack(tmp_path_factory):
    yield from files_stack(tmp_path_factory.mktemp("files"))


def test_private_files_round_trip_through_presigned_urls(stack):
    sam = person(stack, "sam")
    done = upload(sam, "me", "notes/week 1.txt", b"hello files")
    assert done == {"path": "notes/week 1.txt", "size": 11}
    body = listing(sam, "me")
    assert [f["path"] for f in body["files"]] == ["notes/week 1.txt"]
    assert body["used"] == 11 and body["area"]["kind"] == "private"
    assert download(sam, "me", "notes/week 1.txt") == b"hello files"
