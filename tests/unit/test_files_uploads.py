"""Upload checks and reservations: size and quota arithmetic, and the bytes that uploads
signed but not yet done hold (services/files/uploads.py)."""

import re

import pytest

from common.units import size_text
from services.files.uploads import (
    PendingUploads,
    TooLarge,
    Upload,
    check_new_upload,
)

pytestmark = pytest.mark.unit

MiB = 1 << 20


class FakeClock:
    def __init__(self, t: float = 1000.0):
        self.t = t

    def __call__(self) -> float:
        return self.t


def check(**overrides):
    args = {
        "size": 100,
        "max_file_size": 10 * MiB,
        "quota": 1000,
        "used": 0,
        "replaced": 0,
        "reserved": 0,
        "label": "your files",
    }
    check_new_upload(**{**args, **overrides})


def upload(upload_id="u1", *, prefix="users/sam/", owner="sam", size=100, expires=1100.0):
    return Upload(
        id=upload_id,
        area_prefix=prefix,
        owner=owner,
        path="notes.txt",
        key=prefix + "notes.txt",
        size=size,
        expires=expires,
    )


# ----- size_text


@pytest.mark.parametrize(
    "n,text",
    [
        (0, "0 bytes"),
        (1023, "1023 bytes"),
        (1024, "1.0 KB"),
        (1536, "1.5 KB"),
        (MiB, "1.0 MB"),
        (15 * MiB, "15.0 MB"),
        (1 << 30, "1.0 GB"),
        (5 * (1 << 30) + (1 << 29), "5.5 GB"),
        (1 << 40, "1.0 TB"),
    ],
)
def test_size_text(n, text):
    assert size_text(n) == text


# ----- check_new_upload: the file size limit


def test_too_large_file_names_both_sizes():
    with pytest.raises(TooLarge) as e:
        check(size=15 * MiB, max_file_size=10 * MiB, quota=1 << 40)
    assert e.value.status_code == 413
    message = str(e.value)
    assert "15.0 MB" in message and "10.0 MB" in message
    assert message == "The file is 15.0 MB; files may be at most 10.0 MB."


def test_file_of_exactly_the_max_size_is_allowed():
    check(size=10 * MiB, max_file_size=10 * MiB, quota=1 << 40)
    with pytest.raises(TooLarge):
        check(size=10 * MiB + 1, max_file_size=10 * MiB, quota=1 << 40)


def test_size_limit_is_checked_before_the_quota():
    with pytest.raises(TooLarge, match="files may be at most"):
        check(size=2000, max_file_size=1500, quota=1000)


# ----- check_new_upload: the quota


def test_exact_quota_boundary_is_allowed_one_byte_more_is_refused():
    # used 600 - replaced 100 + reserved 200 = 700; 300 free
    check(size=300, quota=1000, used=600, replaced=100, reserved=200)
    with pytest.raises(TooLarge) as e:
        check(size=301, quota=1000, used=600, replaced=100, reserved=200)
    assert e.value.status_code == 413
    assert str(e.value) == (
        "Not enough space in your files: 301 bytes needed, 300 bytes free of 1000 bytes. "
        "Delete files you no longer need and try again."
    )


def test_replaced_bytes_are_given_back():
    with pytest.raises(TooLarge):
        check(size=500, quota=1000, used=600)
    # replacing a 100-byte file with a 500-byte one: 600 - 100 + 500 = 1000
    check(size=500, quota=1000, used=600, replaced=100)


def test_reserved_bytes_count_against_the_quota():
    check(size=400, quota=1000, used=600, reserved=0)
    with pytest.raises(TooLarge, match="400 bytes needed, 200 bytes free"):
        check(size=400, quota=1000, used=600, reserved=200)


def test_free_is_never_negative():
    with pytest.raises(TooLarge, match="0 bytes free of 1000 bytes"):
        check(size=1, quota=1000, used=1500)


def test_quota_message_names_the_area_and_human_sizes():
    with pytest.raises(TooLarge) as e:
        check(
            size=3 * MiB,
            max_file_size=100 * MiB,
            quota=10 * MiB,
            used=9 * MiB,
            label="the material of bio",
        )
    assert str(e.value).startswith(
        "Not enough space in the material of bio: 3.0 MB needed, 1.0 MB free of 10.0 MB."
    )


def test_empty_file_fits_a_full_area():
    check(size=0, quota=1000, used=1000)


# ----- PendingUploads


def test_reservations_add_up_per_area_prefix():
    clock = FakeClock()
    pending = PendingUploads(clock)
    pending.add(upload("a", prefix="users/sam/", size=100))
    pending.add(upload("b", prefix="users/sam/", size=250))
    pending.add(upload("c", prefix="users/samuel/", size=7))
    pending.add(upload("d", prefix="classes/bio/material/", size=1000))
    assert pending.reserved("users/sam/") == 350
    assert pending.reserved("users/samuel/") == 7
    assert pending.reserved("classes/bio/material/") == 1000
    assert pending.reserved("users/nobody/") == 0


def test_reservations_expire_with_the_clock():
    clock = FakeClock(1000.0)
    pending = PendingUploads(clock)
    pending.add(upload("a", size=100, expires=1100.0))
    pending.add(upload("b", size=50, expires=1200.0))
    clock.t = 1099.9
    assert pending.reserved("users/sam/") == 150
    clock.t = 1100.0  # the signature has expired: so has the reservation
    assert pending.reserved("users/sam/") == 50
    clock.t = 5000.0
    assert pending.reserved("users/sam/") == 0


def test_get_returns_the_owners_upload():
    pending = PendingUploads(FakeClock(1000.0))
    u = upload("a", owner="sam")
    pending.add(u)
    assert pending.get("a", "sam") == u
    assert pending.get("nope", "sam") is None


def test_get_refuses_another_owner():
    pending = PendingUploads(FakeClock(1000.0))
    pending.add(upload("a", owner="sam"))
    assert pending.get("a", "alex") is None
    assert PendingUploads(FakeClock(1000.0), grace=1e9).get("a", "alex") is None


def test_get_refuses_an_expired_upload():
    clock = FakeClock(1000.0)
    pending = PendingUploads(clock, grace=0.0)
    pending.add(upload("a", expires=1100.0))
    clock.t = 1099.0
    assert pending.get("a", "sam") is not None
    clock.t = 1100.0
    assert pending.get("a", "sam") is None


def test_get_honours_the_grace_period():
    clock = FakeClock(1000.0)
    pending = PendingUploads(clock, grace=60.0)
    pending.add(upload("a", expires=1100.0))
    clock.t = 1130.0
    assert pending.get("a", "sam") is not None
    clock.t = 1159.9
    assert pending.get("a", "sam") is not None
    clock.t = 1160.0
    assert pending.get("a", "sam") is None


def test_grace_period_survives_other_uploads_being_signed():
    clock = FakeClock(1000.0)
    pending = PendingUploads(clock, grace=60.0)
    pending.add(upload("a", owner="sam", expires=1100.0))
    clock.t = 1110.0  # signature expired 10 s ago; still within a 60 s grace
    pending.reserved("users/alex/")  # another person signs an upload...
    pending.add(upload("b", prefix="users/alex/", owner="alex", expires=1400.0))
    assert pending.get("a", "sam") is not None
    # an expired signature reserves nothing: its bytes can no longer arrive
    assert pending.reserved("users/sam/") == 0


def test_finish_removes_the_upload_and_its_reservation():
    pending = PendingUploads(FakeClock(1000.0))
    pending.add(upload("a", size=100))
    pending.add(upload("b", size=40))
    pending.finish("a")
    assert pending.get("a", "sam") is None
    assert pending.reserved("users/sam/") == 40
    pending.finish("a")  # finishing twice (or an unknown id) is harmless
    pending.finish("unknown")
    assert pending.get("b", "sam") is not None


def test_new_ids_are_hex_and_unique():
    ids = {PendingUploads.new_id() for _ in range(500)}
    assert len(ids) == 500
    for upload_id in ids:
        # the upload-done route only accepts [0-9a-f]+
        assert re.fullmatch(r"[0-9a-f]{24}", upload_id)
