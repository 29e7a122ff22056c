"""Uploaded zips: every member is checked before anything is unpacked, and the bytes are
counted while they are (services/base/archive.py)."""

import io
import random
import stat
import struct
import warnings
import zipfile
import zlib

import pytest

from services.base.archive import (
    ZIP_EPOCH,
    BadArchive,
    Budget,
    Entry,
    Limits,
    MiB,
    build_zip,
    open_zip,
    plan,
    read_entry,
)
from services.base.names import BadName

pytestmark = pytest.mark.unit


def make_zip(*members, compression=zipfile.ZIP_DEFLATED):
    """A zip of ``(name or ZipInfo, data)`` members, written as given (no name cleaning)."""
    buf = io.BytesIO()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # "Duplicate name"
        with zipfile.ZipFile(buf, "w", compression=compression) as zf:
            for name, data in members:
                zf.writestr(name, data)
    return buf.getvalue()


def patch_first(blob, fmt, local_offset, central_offset, value):
    """Set one field of the first member in both its local header and its directory entry."""
    out = bytearray(blob)
    struct.pack_into(fmt, out, local_offset, value)
    directory = struct.unpack_from("<I", out, len(out) - 6)[0]  # end record, no comment
    struct.pack_into(fmt, out, directory + central_offset, value)
    return bytes(out)


def set_flags(blob, flags):
    return patch_first(blob, "<H", 6, 8, flags)


def set_method(blob, method):
    return patch_first(blob, "<H", 8, 10, method)


def set_crc(blob, crc):
    return patch_first(blob, "<I", 14, 16, crc)


def set_file_size(blob, size):
    return patch_first(blob, "<I", 22, 24, size)


def zf_of(blob):
    return open_zip(io.BytesIO(blob))


def plan_of(blob, limits=None, **kw):
    return plan(zf_of(blob), limits or Limits(), **kw)


def refusal(blob, limits=None, **kw):
    with pytest.raises(BadArchive) as caught:
        plan_of(blob, limits, **kw)
    return str(caught.value)


def unpack(blob, limits=None, **kw):
    limits = limits or Limits()
    zf = zf_of(blob)
    budget = Budget(limits)
    return {e.path: b"".join(read_entry(zf, e, budget)) for e in plan(zf, limits, **kw)}


# --- plan: the happy path ---------------------------------------------------------------------


def test_plan_lists_the_files_in_order_with_their_sizes():
    blob = make_zip(("b.txt", b"bb"), ("folder/", b""), ("folder/a.ipynb", b"{}"), ("e", b""))
    entries = plan_of(blob)
    assert [(e.path, e.size) for e in entries] == [("b.txt", 2), ("folder/a.ipynb", 2), ("e", 0)]
    assert all(isinstance(e.info, zipfile.ZipInfo) for e in entries)
    assert unpack(blob) == {"b.txt": b"bb", "folder/a.ipynb": b"{}", "e": b""}


@pytest.mark.parametrize("root", ["week 1", "week 1/", "course/week 1"])
def test_plan_puts_the_files_under_root(root):
    entries = plan_of(make_zip(("a.txt", b"a"), ("sub/b.txt", b"b")), root=root)
    base = root.rstrip("/")
    assert [e.path for e in entries] == [f"{base}/a.txt", f"{base}/sub/b.txt"]


def test_names_are_nfc_normalised():
    assert [e.path for e in plan_of(make_zip(("cafe\u0301.txt", b"x")))] == ["caf\u00e9.txt"]


def test_utf8_names_without_the_utf8_flag_are_read_as_utf8():
    blob = make_zip(("XXbung.txt", b"x"), compression=zipfile.ZIP_STORED)
    blob = blob.replace(b"XXbung.txt", "Übung.txt".encode())  # same length, flag not set
    assert zf_of(blob).infolist()[0].filename == "├£bung.txt"  # what zipfile makes of it
    assert [e.path for e in plan_of(blob)] == ["Übung.txt"]


def test_cp437_names_stay_cp437():
    blob = make_zip(("Xbung.txt", b"x"), compression=zipfile.ZIP_STORED)
    blob = blob.replace(b"Xbung.txt", b"\x81bung.txt")  # "ü" in cp437, not UTF-8
    assert [e.path for e in plan_of(blob)] == ["übung.txt"]


def test_macos_junk_is_skipped_not_refused():
    blob = make_zip(
        ("a.txt", b"a"),
        ("__MACOSX/", b""),
        ("__MACOSX/._a.txt", b"\x00\x05\x16\x07"),
        ("__MACOSX/sub/._b.txt", b"junk"),
        ("__MACOSX/../../evil", b"junk"),
        (".DS_Store", b"junk"),
        ("sub/.DS_Store", b"junk"),
        ("sub/b.txt", b"b"),
    )
    assert [e.path for e in plan_of(blob, Limits(max_files=2))] == ["a.txt", "sub/b.txt"]


# --- plan: hostile names ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "problem"),
    [
        ("../../evil", '".." is not allowed'),
        ("a/../../evil", '".." is not allowed'),
        ("/etc/x", 'cannot start with "/"'),
        ("a\\b", "backslash"),
        ("..\\..\\evil.bat", "backslash"),
        ("a/./b", '"." is not allowed'),
        ("a//b", "empty part"),
        ("evil\u202etxt.exe", "invisible"),
        ("zero\u200bwidth", "invisible"),
        (".classhub/manifest.json", "reserved"),
        (" a.txt", "space"),
        ("x" * 256, "255 bytes"),
        ("/".join(["d"] * 33), "32 folders deep"),
    ],
)
def test_hostile_member_names_are_refused(name, problem):
    message = refusal(make_zip(("ok.txt", b"ok"), (name, b"evil")))
    assert problem in message
    assert "archive member" in message


def test_the_refusal_names_the_member():
    assert refusal(make_zip(("../../evil", b"x"))).startswith(
        'the archive member "../../evil" has a name that cannot be used'
    )


def test_a_backslash_is_refused_not_converted():
    blob = make_zip(("dir\\file.txt", b"x"))
    assert zf_of(blob).infolist()[0].filename == "dir\\file.txt"
    assert "backslash" in refusal(blob)


def test_a_nul_byte_in_a_name_is_refused():
    blob = make_zip(("aXb.txt", b"x"), compression=zipfile.ZIP_STORED)
    blob = blob.replace(b"aXb.txt", b"a\x00b.txt")
    assert zf_of(blob).infolist()[0].filename == "a"  # zipfile cuts the name at the NUL
    assert "\\u0000" in refusal(blob)


def test_a_name_too_long_for_the_root_is_refused():
    root = "/".join(["r" * 200] * 4)  # 803 bytes
    message = refusal(make_zip(("x" * 100, b"x")), root=root)
    assert "cannot go into the folder" in message
    assert "900 bytes" in message


@pytest.mark.parametrize("root", ["../x", "/abs", "a\\b", ".classhub"])
def test_a_bad_root_is_refused(root):
    with pytest.raises(BadName):
        plan_of(make_zip(("a.txt", b"a")), root=root)


# --- plan: member types ----------------------------------------------------------------------


def test_symlinks_are_refused():
    link = zipfile.ZipInfo("notes/link")
    link.create_system = 3
    link.external_attr = (stat.S_IFLNK | 0o777) << 16
    message = refusal(make_zip(("a.txt", b"a"), (link, "/etc/passwd")))
    assert '"notes/link" is a symbolic link' in message


def test_encrypted_members_are_refused():
    blob = set_flags(make_zip(("secret.txt", b"x" * 100)), 0x1)
    assert zf_of(blob).infolist()[0].flag_bits & 0x1
    assert '"secret.txt" is encrypted' in refusal(blob)


def test_unknown_compression_methods_are_refused():
    blob = set_method(make_zip(("a.txt", b"x" * 100)), 99)  # 99: WinZip AES
    assert "compression method" in refusal(blob)


# --- plan: clashes ----------------------------------------------------------------------------


def test_duplicate_members_are_refused():
    message = refusal(make_zip(("a.txt", b"1"), ("b.txt", b"2"), ("a.txt", b"3")))
    assert 'same name as "a.txt"' in message


def test_duplicates_after_normalisation_are_refused():
    message = refusal(make_zip(("caf\u00e9.txt", b"1"), ("cafe\u0301.txt", b"2")))
    assert "same name" in message


@pytest.mark.parametrize(
    "members",
    [
        [("a", b"file"), ("a/b", b"inside")],
        [("a/b", b"inside"), ("a", b"file")],
        [("x/a", b"file"), ("x/a/b/c", b"deep")],
    ],
)
def test_a_path_that_is_a_file_and_a_folder_is_refused(members):
    assert "uses it as a folder" in refusal(make_zip(*members))


def test_a_folder_entry_beside_files_is_no_clash():
    assert len(plan_of(make_zip(("a/", b""), ("a/b", b"x"), ("a/", b"")))) == 1


# --- plan: limits ----------------------------------------------------------------------------


def test_too_many_files_are_refused():
    files = [(f"f{i}.txt", b"x") for i in range(4)]
    assert len(plan_of(make_zip(*files[:3]), Limits(max_files=3))) == 3
    message = refusal(make_zip(*files), Limits(max_files=3))
    assert '"f3.txt"' in message
    assert "at most 3" in message


def test_a_file_over_the_file_limit_is_refused():
    limits = Limits(max_file_bytes=10)
    assert plan_of(make_zip(("a", b"x" * 10)), limits)
    message = refusal(make_zip(("a", b"x" * 10), ("big", b"x" * 11)), limits)
    assert '"big" is larger than 10 bytes' in message


def test_files_over_the_total_limit_are_refused():
    limits = Limits(max_total_bytes=20)
    message = refusal(make_zip(("a", b"x" * 8), ("b", b"x" * 8), ("c", b"x" * 8)), limits)
    assert '"c" takes the archive over 20 bytes' in message


def test_a_zip_bomb_is_refused_by_its_ratio():
    blob = make_zip(("bomb.bin", bytes(20 * MiB)))
    assert len(blob) < 100_000
    assert '"bomb.bin" is compressed' in refusal(blob)
    assert "zip bomb" in refusal(blob)


def test_small_or_incompressible_files_pass_the_ratio_check():
    noise = random.Random(5).randbytes(2 * MiB)
    blob = make_zip(("zeros", bytes(MiB)), ("noise", noise), ("stored", bytes(2 * MiB)))
    blob_stored = make_zip(("stored", bytes(2 * MiB)), compression=zipfile.ZIP_STORED)
    assert [e.path for e in plan_of(blob_stored)] == ["stored"]
    assert [e.path for e in plan_of(blob, Limits(max_ratio=10_000))] == [
        "zeros",
        "noise",
        "stored",
    ]
    assert '"stored"' in refusal(blob)  # 2 MiB of zeros compress far beyond 200:1


# --- read_entry -------------------------------------------------------------------------------


def test_read_entry_streams_in_chunks():
    data = bytes(range(256)) * 10
    zf = zf_of(make_zip(("a.bin", data)))
    budget = Budget(Limits())
    chunks = list(read_entry(zf, plan(zf, Limits())[0], budget, chunk_size=100))
    assert b"".join(chunks) == data
    assert max(len(c) for c in chunks) <= 100
    assert budget.used == len(data)


@pytest.mark.parametrize("compression", [zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED])
@pytest.mark.parametrize("fix_crc", [False, True])
def test_a_member_larger_than_it_declares_is_refused(compression, fix_crc):
    data = b"A" * 100_000
    blob = set_file_size(make_zip(("liar.txt", data), compression=compression), 10)
    if fix_crc:  # so that zipfile's own CRC check cannot notice
        blob = set_crc(blob, zlib.crc32(data[:10]))
        assert zf_of(blob).read("liar.txt") == b"A" * 10  # zipfile trusts the declared size
    zf = zf_of(blob)
    (entry,) = plan(zf, Limits())
    assert entry.size == 10
    with pytest.raises(BadArchive, match='"liar.txt" holds more than the 10 bytes it declares'):
        b"".join(read_entry(zf, entry, Budget(Limits())))


def test_an_entry_with_a_smaller_size_than_its_data_is_refused():
    zf = zf_of(make_zip(("a.txt", b"x" * 1000)))
    (entry,) = plan(zf, Limits())
    with pytest.raises(BadArchive, match="more than the 999 bytes"):
        list(read_entry(zf, Entry(entry.path, entry.info, 999), Budget(Limits())))


def test_read_entry_keeps_to_max_file_bytes():
    zf = zf_of(make_zip(("a.txt", b"x" * 100)))
    (entry,) = plan(zf, Limits())
    with pytest.raises(BadArchive, match='"a.txt" is larger than 50 bytes'):
        list(read_entry(zf, entry, Budget(Limits(max_file_bytes=50))))


def test_the_budget_counts_across_entries():
    zf = zf_of(make_zip(("a", b"x" * 6), ("b", b"x" * 6)))
    a, b = plan(zf, Limits())
    budget = Budget(Limits(max_total_bytes=10))
    assert b"".join(read_entry(zf, a, budget)) == b"x" * 6
    with pytest.raises(BadArchive, match="more than 10 bytes"):
        list(read_entry(zf, b, budget))


def test_budget_take():
    budget = Budget(Limits(max_total_bytes=10))
    budget.take(4)
    budget.take(6)
    assert budget.used == 10
    with pytest.raises(BadArchive, match="unpacks to more than 10 bytes"):
        budget.take(1)


def test_a_member_smaller_than_it_declares_is_refused():
    blob = set_file_size(make_zip(("short.txt", b"x" * 100)), 200)
    zf = zf_of(blob)
    (entry,) = plan(zf, Limits())
    with pytest.raises(BadArchive, match='"short.txt" is damaged: it holds fewer bytes'):
        list(read_entry(zf, entry, Budget(Limits())))


def test_a_damaged_member_is_refused_when_read():
    data = random.Random(1).randbytes(5000)
    blob = make_zip(("a.bin", data), compression=zipfile.ZIP_STORED)
    zf = zf_of(blob.replace(data[1000:1010], b"\x00" * 10))
    (entry,) = plan(zf, Limits())
    with pytest.raises(BadArchive, match='"a.bin" is damaged'):
        list(read_entry(zf, entry, Budget(Limits())))


def test_damaged_archives_only_ever_raise_bad_archive():
    buf = io.BytesIO()
    build_zip([("a/b.txt", b"hello " * 500), ("c.bin", bytes(range(256)) * 8)], buf)
    good = buf.getvalue()
    rnd = random.Random(7)
    for _ in range(500):
        blob = bytearray(good)
        for _ in range(rnd.randint(1, 4)):
            blob[rnd.randrange(len(blob))] = rnd.randrange(256)
        try:
            unpack(bytes(blob[: rnd.randint(len(blob) // 2, len(blob))]))
        except (BadArchive, BadName):
            pass


# --- open_zip ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "data",
    [b"", b"not a zip", b"PK\x03\x04", b"%PDF-1.7\n" + bytes(1000), b"\x1f\x8b\x08" + bytes(20)],
)
def test_a_non_zip_is_refused(data):
    with pytest.raises(BadArchive, match="is not a zip archive"):
        open_zip(io.BytesIO(data))


def test_a_truncated_zip_is_refused():
    blob = make_zip(("a.txt", b"x" * 1000))
    with pytest.raises(BadArchive, match="is not a zip archive"):
        open_zip(io.BytesIO(blob[: len(blob) // 2]))


def test_open_zip_opens_a_zip():
    assert open_zip(io.BytesIO(make_zip(("a", b"a")))).namelist() == ["a"]


# --- build_zip --------------------------------------------------------------------------------

FILES = [("a.txt", b"hello"), ("folder/Übung.ipynb", b"{}" * 1000), ("empty", b"")]


def built(files):
    buf = io.BytesIO()
    build_zip(files, buf)
    return buf.getvalue()


def test_build_zip_is_deterministic():
    assert built(FILES) == built(list(FILES)) == built(iter(FILES))
    assert built(FILES) != built(FILES[::-1])


def test_build_zip_round_trip():
    blob = built(FILES)
    assert unpack(blob) == dict(FILES)
    for info in zf_of(blob).infolist():
        assert info.date_time == ZIP_EPOCH
        assert info.external_attr >> 16 == stat.S_IFREG | 0o644
        assert info.compress_type == zipfile.ZIP_DEFLATED


def test_build_zip_refuses_bad_and_duplicate_names():
    with pytest.raises(BadName):
        built([("../x", b"")])
    with pytest.raises(ValueError, match="twice"):
        built([("a", b"1"), ("a", b"2")])
