"""Zips refused by the size of their central directory, before ``zipfile`` parses it
(services/base/zipdir.py and archive.open_zip), on crafted and real archives."""

import io
import struct
import tracemalloc
import zipfile

import pytest

from services.base import archive
from services.base.archive import BadArchive, Limits, open_zip
from services.base.zipdir import (
    EOCD,
    LOCATOR,
    ZIP64,
    Directory,
    ZipDirectoryRefused,
    check_directory,
    read_directory,
)

pytestmark = pytest.mark.unit

LOCAL = struct.Struct("<4s5H3L2H")
CENTRAL = struct.Struct("<4s6H3L5H2L")


def many_empty_entries(n: int, *, zip64: bool | None = None) -> bytes:
    """A valid zip of ``n`` empty stored files (zip64 end records past 65535 entries, as
    zipfile writes them), made fast: byte by byte instead of through zipfile."""
    local, central, offset = [], [], 0
    for i in range(n):
        name = b"%d" % i
        header = LOCAL.pack(b"PK\x03\x04", 20, 0, 0, 0, 0x21, 0, 0, 0, len(name), 0) + name
        central.append(
            CENTRAL.pack(
                b"PK\x01\x02", 20, 20, 0, 0, 0, 0x21, 0, 0, 0, len(name), 0, 0, 0, 0, 0, offset
            )
            + name
        )
        local.append(header)
        offset += len(header)
    directory = b"".join(central)
    body = b"".join(local) + directory
    if zip64 is None:
        zip64 = n > 0xFFFF
    if not zip64:
        return body + EOCD.pack(b"PK\x05\x06", 0, 0, n, n, len(directory), offset, 0)
    record = ZIP64.pack(b"PK\x06\x06", 44, 45, 45, 0, 0, n, n, len(directory), offset)
    locator = LOCATOR.pack(b"PK\x06\x07", 0, len(body), 1)
    end = EOCD.pack(b"PK\x05\x06", 0, 0, min(n, 0xFFFF), min(n, 0xFFFF), len(directory), offset, 0)
    return body + record + locator + end


def claims(entries: int, size: int, *, prefix: bytes = b"", comment: bytes = b"") -> bytes:
    """A file that is only an end record claiming ``entries`` and ``size``."""
    e16, s32 = min(entries, 0xFFFF), min(size, 0xFFFFFFFF)
    return prefix + EOCD.pack(b"PK\x05\x06", 0, 0, e16, e16, s32, 0, len(comment)) + comment


def zip64_claims(entries: int, size: int, *, at_locator_offset_only: bool = False) -> bytes:
    record = ZIP64.pack(b"PK\x06\x06", 44, 45, 45, 0, 0, entries, entries, size, 0)
    if at_locator_offset_only:
        # the record where the locator points, with other bytes between it and the locator
        body, record_at = record + b"\0" * 100, 0
    else:
        body, record_at = record, 0
    locator = LOCATOR.pack(b"PK\x06\x07", 0, record_at, 1)
    end = EOCD.pack(b"PK\x05\x06", 0, 0, 0xFFFF, 0xFFFF, 0xFFFFFFFF, 0xFFFFFFFF, 0)
    return body + locator + end


def real_zip(*names: str, comment: bytes = b"") -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as zf:
        for name in names:
            zf.writestr(name, "x" * 100)
        zf.comment = comment
    return buf.getvalue()


@pytest.fixture
def no_zipfile(monkeypatch):
    """zipfile.ZipFile must not even be called (it would parse the directory)."""

    def forbidden(*args, **kwargs):
        raise AssertionError("zipfile.ZipFile was called on an archive that must be refused")

    monkeypatch.setattr(archive.zipfile, "ZipFile", forbidden)


def test_an_ordinary_archive_passes_and_is_read_from_the_start():
    blob = real_zip("a.txt", "b/c.txt", comment=b"made by a test" * 100)
    f = io.BytesIO(blob)
    found = check_directory(f, max_entries=10, max_bytes=10_000)
    assert (found.entries, found.zip64) == (2, False)
    assert f.tell() == 0
    assert len(zipfile.ZipFile(f).infolist()) == 2


def test_crafted_archives_are_valid_zips():
    for n in (0, 3, 70_000):  # 70,000: past 65,535 entries, so zip64 end records
        blob = many_empty_entries(n)
        assert read_directory(io.BytesIO(blob)) == Directory(
            n, n * 46 + len(b"".join(b"%d" % i for i in range(n))), n > 0xFFFF
        )
        with zipfile.ZipFile(io.BytesIO(blob)) as zf:
            assert len(zf.infolist()) == n


def test_an_end_record_claiming_millions_of_entries_is_refused_before_parsing(no_zipfile):
    blob = zip64_claims(5_000_000, 5_000_000 * 46)
    with pytest.raises(BadArchive, match="5,000,000 entries"):
        open_zip(io.BytesIO(blob), Limits())


def test_a_huge_directory_is_refused_whatever_count_it_claims(no_zipfile):
    # a few entries claimed, but a directory of 300 MB: zipfile would read all of it
    with pytest.raises(BadArchive, match="list of contents takes 314,572,800 bytes"):
        open_zip(io.BytesIO(claims(10, 300 << 20, prefix=b"\0" * 100)), Limits())


def test_the_zip64_record_counts_wherever_it_is():
    for where in (False, True):
        blob = zip64_claims(9_000_000, 1 << 20, at_locator_offset_only=where)
        with pytest.raises(ZipDirectoryRefused, match="9,000,000 entries"):
            check_directory(io.BytesIO(blob), max_entries=6100, max_bytes=10 << 20)


def test_a_zip64_record_with_small_numbers_passes():
    found = check_directory(io.BytesIO(zip64_claims(5, 500)), max_entries=10, max_bytes=1000)
    assert found == Directory(5, 500, True)


def test_200k_real_empty_entries_are_refused_without_reading_the_directory(no_zipfile):
    blob = many_empty_entries(200_000)
    assert len(blob) > 10 << 20
    f = io.BytesIO(blob)
    tracemalloc.start()
    try:
        with pytest.raises(BadArchive, match="200,000 entries; at most 6,100"):
            open_zip(f, Limits())
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    # only the end of the file was read: the 9 MB directory never was
    assert peak < 512 << 10, peak


def test_the_limits_follow_the_file_limit():
    limits = Limits(max_files=2000)
    assert limits.max_entries == 6100
    assert limits.max_directory_bytes == 6100 * 512
    # a folder of 2000 files with folders and macOS extras still fits
    names = [f"d{i // 50}/f{i}.txt" for i in range(2000)]
    names += [f"__MACOSX/d{i // 50}/._f{i}.txt" for i in range(2000)]
    blob = real_zip(*names)
    assert check_directory(io.BytesIO(blob), max_entries=6100, max_bytes=6100 * 512).entries == 4000
    assert len(archive.plan(open_zip(io.BytesIO(blob), limits), limits)) == 2000


@pytest.mark.parametrize(
    ("blob", "message"),
    [
        (b"", "not a zip archive"),
        (b"hello, this is text" * 100, "not a zip archive"),
        (b"PK\x05\x06" + b"\0" * 5, "not a zip archive"),
        (EOCD.pack(b"PK\x05\x06", 1, 0, 1, 1, 46, 0, 0), "several files"),
        (
            LOCATOR.pack(b"PK\x06\x07", 0, 0, 3)
            + EOCD.pack(b"PK\x05\x06", 0, 0, 0xFFFF, 0xFFFF, 0xFFFFFFFF, 0xFFFFFFFF, 0),
            "several files",
        ),
    ],
)
def test_broken_end_records_are_refused(blob, message):
    with pytest.raises(ZipDirectoryRefused, match=message):
        check_directory(io.BytesIO(blob), max_entries=10, max_bytes=1000)
