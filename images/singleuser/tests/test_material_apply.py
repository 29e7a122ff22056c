"""Class material pushes: the merge into ~/<dest> (classhub_singleuser.material).

The chosen behaviour: a file the teacher did not change since it was last delivered is
not delivered again, whatever the student did to their copy (ran it, edited it, deleted
it); a file the student deleted comes back only when the teacher changed it, or when the
whole destination folder is gone. Files the teacher dropped from the material stay in the
student's home.

The helper's command (classhub_singleuser.homectl.apply_item) gives the status and report
the files and grades services read for each home: tested here too.
"""

import errno
import hashlib
import io
import json
import os
import stat
import zipfile
from pathlib import Path

import pytest

from classhub_singleuser import fsutil, homectl, material
from classhub_singleuser.material import (
    MaterialError,
    MaterialTooLarge,
    Report,
    apply_material,
    apply_zip,
    check_label,
    conflict_name,
    state_file_name,
)

pytestmark = pytest.mark.unit

DEST = "math101/material"
NB = "week1/notebook.ipynb"
SAVED = "week1/notebook.teacher-w1.ipynb"


def make_zip(files: dict[str, bytes | str | None]) -> bytes:
    """A zip of ``files``; a value of None makes a folder entry (name ends with /)."""
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as zf:
        for name, data in files.items():
            if data is None:
                zf.writestr(zipfile.ZipInfo(name), b"")
            else:
                zf.writestr(name, data)
    return buf.getvalue()


@pytest.fixture
def home(tmp_path):
    h = tmp_path / "jovyan"
    h.mkdir()
    return h


def push(home, files, label="w1", dest=DEST, **kw) -> Report:
    return apply_zip(home, dest, make_zip(files), label, **kw)


def leftovers(root: Path) -> list[str]:
    return [str(p) for p in root.rglob("*") if ".classhub-tmp-" in p.name]


def record(home, dest=DEST) -> dict:
    path = home / ".classhub" / "material" / state_file_name(dest)
    return json.loads(path.read_text())["files"]


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


# ----- the merge rule -----


def test_added_then_unchanged_with_modes_and_record(home):
    r = push(home, {NB: b"v1", "README": b"hello", "data/": None})
    assert r.added == [NB, "README"]
    assert (r.updated, r.unchanged, r.conflicts, r.errors) == ([], [], [], [])
    base = home / DEST
    assert (base / NB).read_bytes() == b"v1"
    assert (base / "data").is_dir()
    assert stat.S_IMODE((base / NB).stat().st_mode) == 0o644
    for folder in (home / "math101", base, base / "week1", base / "data"):
        assert stat.S_IMODE(folder.stat().st_mode) == 0o755
    assert record(home) == {NB: sha(b"v1"), "README": sha(b"hello")}

    r = push(home, {NB: b"v1", "README": b"hello", "data/": None})
    assert r.skipped == [NB, "README"]
    assert (r.added, r.updated, r.unchanged, r.conflicts, r.errors) == ([], [], [], [], [])
    assert leftovers(home) == []


def test_updated_when_the_student_did_not_touch_it(home):
    push(home, {NB: b"v1"})
    r = push(home, {NB: b"v2 longer"})
    assert r.updated == [NB]
    assert (home / DEST / NB).read_bytes() == b"v2 longer"
    assert record(home)[NB] == sha(b"v2 longer")
    r = push(home, {NB: b"v3 same!!"})  # same size as v2: hashed first, then written
    assert r.updated == [NB]
    assert (home / DEST / NB).read_bytes() == b"v3 same!!"


def test_conflict_keeps_the_students_file_and_saves_the_teachers_beside_it(home):
    push(home, {NB: b"v1"})
    (home / DEST / NB).write_bytes(b"student's answers")
    r = push(home, {NB: b"v2"})
    assert r.conflicts == [{"path": NB, "saved_as": SAVED, "already_saved": False}]
    assert (r.added, r.updated, r.unchanged, r.errors) == ([], [], [], [])
    assert (home / DEST / NB).read_bytes() == b"student's answers"
    assert (home / DEST / SAVED).read_bytes() == b"v2"
    assert stat.S_IMODE((home / DEST / SAVED).stat().st_mode) == 0o644
    assert record(home) == {NB: sha(b"v2")}  # delivered (as a copy)

    # The same push again: nothing new is written, nothing reported but skipped.
    before = sorted(p.name for p in (home / DEST / "week1").iterdir())
    r = push(home, {NB: b"v2"})
    assert r.skipped == [NB]
    assert (r.added, r.updated, r.unchanged, r.conflicts, r.errors) == ([], [], [], [], [])
    assert sorted(p.name for p in (home / DEST / "week1").iterdir()) == before
    assert leftovers(home) == []


def test_file_present_before_any_push_is_the_students(home):
    (home / DEST).mkdir(parents=True)
    (home / DEST / "README").write_bytes(b"mine")
    r = push(home, {"README": b"teacher"})
    assert r.conflicts == [
        {"path": "README", "saved_as": "README.teacher-w1", "already_saved": False}
    ]
    assert (home / DEST / "README").read_bytes() == b"mine"


def test_student_copy_equal_to_the_new_version_is_unchanged_and_recorded(home):
    push(home, {NB: b"v1"})
    (home / DEST / NB).write_bytes(b"v2")  # e.g. the student applied the fix themselves
    r = push(home, {NB: b"v2"})
    assert r.unchanged == [NB]
    assert record(home)[NB] == sha(b"v2")
    assert push(home, {NB: b"v3"}).updated == [NB]


def test_second_teacher_version_after_the_student_edited(home):
    push(home, {NB: b"v1"})
    (home / DEST / NB).write_bytes(b"student")
    push(home, {NB: b"v2"}, label="w1")
    r = push(home, {NB: b"v3"}, label="w2")
    saved_w2 = "week1/notebook.teacher-w2.ipynb"
    assert r.conflicts == [{"path": NB, "saved_as": saved_w2, "already_saved": False}]
    assert (home / DEST / NB).read_bytes() == b"student"
    assert (home / DEST / SAVED).read_bytes() == b"v2"
    assert (home / DEST / saved_w2).read_bytes() == b"v3"

    # Same label, new content, and the student edited the saved copy: neither is replaced.
    (home / DEST / saved_w2).write_bytes(b"student edited the copy")
    r = push(home, {NB: b"v4"}, label="w2")
    numbered = "week1/notebook.teacher-w2-2.ipynb"
    assert r.conflicts == [{"path": NB, "saved_as": numbered, "already_saved": False}]
    assert (home / DEST / saved_w2).read_bytes() == b"student edited the copy"
    assert (home / DEST / numbered).read_bytes() == b"v4"
    assert push(home, {NB: b"v4"}, label="w2").skipped == [NB]
    # delivered as a copy, then the copy deleted: the home's record still says delivered;
    # when the home's record is lost, the copy already there is found and reported
    (home / ".classhub" / "material" / state_file_name(DEST)).unlink()
    r = push(home, {NB: b"v4"}, label="w2")
    assert r.conflicts == [{"path": NB, "saved_as": numbered, "already_saved": True}]


def test_a_deleted_file_comes_back_only_when_the_teacher_changed_it(home):
    push(home, {NB: b"v1", "README": b"r"})
    (home / DEST / NB).unlink()
    r = push(home, {NB: b"v1", "README": b"r"})
    assert r.skipped == [NB, "README"] and r.added == []
    assert not (home / DEST / NB).exists()
    r = push(home, {NB: b"v2", "README": b"r"})
    assert r.added == [NB] and r.skipped == ["README"]
    assert (home / DEST / NB).read_bytes() == b"v2"


def test_a_deleted_destination_folder_gets_everything_again(home):
    import shutil

    push(home, {NB: b"v1", "README": b"r"})
    shutil.rmtree(home / DEST)
    r = push(home, {NB: b"v1", "README": b"r"})
    assert r.added == [NB, "README"]
    assert (home / DEST / NB).read_bytes() == b"v1"


def test_a_run_notebook_is_not_delivered_again_when_the_teacher_did_not_change_it(home):
    push(home, {NB: b"v1"})
    (home / DEST / NB).write_bytes(b"v1 with outputs")  # the student ran it
    r = push(home, {NB: b"v1"})
    assert r.skipped == [NB] and r.conflicts == []
    assert sorted(p.name for p in (home / DEST / "week1").iterdir()) == ["notebook.ipynb"]
    r = push(home, {NB: b"v2"})  # now the teacher changed it
    assert r.conflicts == [{"path": NB, "saved_as": SAVED, "already_saved": False}]
    assert (home / DEST / NB).read_bytes() == b"v1 with outputs"


def test_the_callers_record_wins_over_the_homes(home):
    push(home, {NB: b"v1"})
    (home / DEST / NB).write_bytes(b"v1 with outputs")
    # the student rewrote the home's record to say their copy is what was delivered
    path = home / ".classhub" / "material" / state_file_name(DEST)
    path.write_text(json.dumps({"version": 1, "dest": DEST, "files": {NB: sha(b"x")}}))
    r = push(home, {NB: b"v1"}, delivered={NB: sha(b"v1")})
    assert r.skipped == [NB]
    # with no record at all (not the caller's, not the home's), a differing copy is theirs
    path.unlink()
    r = push(home, {NB: b"v1"}, delivered={})
    assert r.conflicts[0]["saved_as"] == SAVED
    assert (home / DEST / NB).read_bytes() == b"v1 with outputs"


def test_files_dropped_from_the_material_are_left_alone(home):
    push(home, {"a": b"1", "b": b"2"})
    r = push(home, {"a": b"1"})
    assert r.skipped == ["a"]
    assert (home / DEST / "b").read_bytes() == b"2"


def test_empty_files_and_dotfiles(home):
    r = push(home, {".env": b"", "empty": b""})
    assert r.added == [".env", "empty"]
    assert push(home, {".env": b"", "empty": b""}).skipped == [".env", "empty"]
    (home / DEST / ".env").write_bytes(b"SECRET=1")
    r = push(home, {".env": b"X=2"})
    assert r.conflicts[0]["saved_as"] == ".env.teacher-w1"


# ----- what is in the way -----


def test_symlinked_dest_folder_is_not_written_through(home, tmp_path):
    outside = tmp_path / "outside"
    outside.mkdir()
    (home / "math101").symlink_to(outside)
    r = push(home, {NB: b"v1", "README": b"r"})
    assert [e["path"] for e in r.errors] == [NB, "README"]
    assert "link" in r.errors[0]["message"] and "~/math101" in r.errors[0]["message"]
    assert list(outside.iterdir()) == []
    assert r.added == []


def test_symlinked_file_and_parent_are_not_written_through(home, tmp_path):
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "target").write_bytes(b"precious")
    (home / DEST).mkdir(parents=True)
    (home / DEST / "README").symlink_to(outside / "target")
    (home / DEST / "week1").symlink_to(outside)
    r = push(home, {"README": b"teacher", NB: b"v1", "ok.txt": b"fine"})
    assert {e["path"] for e in r.errors} == {"README", NB}
    assert all("link" in e["message"] for e in r.errors)
    assert r.added == ["ok.txt"]
    assert (outside / "target").read_bytes() == b"precious"
    assert sorted(p.name for p in outside.iterdir()) == ["target"]
    assert (home / DEST / "README").is_symlink()
    assert leftovers(tmp_path) == []


def test_folder_where_a_file_goes_and_file_where_a_folder_goes(home):
    (home / DEST / "notes.md").mkdir(parents=True)
    (home / DEST / "week1").write_bytes(b"a file")
    (home / DEST / "data").write_bytes(b"a file too")
    r = push(home, {"notes.md": b"x", NB: b"v1", "data/": None, "other": b"o"})
    errors = {e["path"]: e["message"] for e in r.errors}
    assert set(errors) == {"notes.md", NB, "data/"}
    assert "folder" in errors["notes.md"]
    assert "not a folder" in errors[NB]
    assert r.added == ["other"]
    assert (home / DEST / "week1").read_bytes() == b"a file"


def test_a_special_file_in_the_way_is_an_error_and_does_not_hang(home):
    (home / DEST).mkdir(parents=True)
    os.mkfifo(home / DEST / "pipe")
    r = push(home, {"pipe": b"x"})
    assert [e["path"] for e in r.errors] == ["pipe"]
    assert stat.S_ISFIFO((home / DEST / "pipe").lstat().st_mode)


def test_dest_that_is_a_file(home):
    (home / "math101").write_bytes(b"file")
    r = push(home, {"a": b"1"})
    assert r.errors == [
        {"path": "a", "message": "~/math101 is a file in the student's home, not a folder."}
    ]


def test_disk_full_is_an_error_for_that_file_and_leaves_no_temp_files(home, monkeypatch):
    real_fsync = os.fsync
    calls = []

    def fsync(fd):
        calls.append(fd)
        if len(calls) == 2:
            raise OSError(errno.ENOSPC, "No space left on device")
        real_fsync(fd)

    monkeypatch.setattr(os, "fsync", fsync)
    r = push(home, {"a": b"1", "b": b"2", "c": b"3"})
    assert r.added == ["a", "c"]
    assert r.errors == [{"path": "b", "message": material._os_message(OSError(errno.ENOSPC, ""))}]
    assert "disk is full" in r.errors[0]["message"]
    assert not (home / DEST / "b").exists()
    assert leftovers(home) == []
    assert set(record(home)) == {"a", "c"}


def test_a_file_the_student_creates_meanwhile_is_not_replaced(home, monkeypatch):
    real_lstat = fsutil.lstat

    def lstat(name, dir_fd):
        st = real_lstat(name, dir_fd)
        if name == "a" and st is None:  # the student creates it right after the check
            fd = os.open(name, os.O_WRONLY | os.O_CREAT, 0o644, dir_fd=dir_fd)
            os.write(fd, b"student")
            os.close(fd)
        return st

    monkeypatch.setattr(fsutil, "lstat", lstat)
    r = push(home, {"a": b"teacher"})
    assert r.added == [] and [e["path"] for e in r.errors] == ["a"]
    assert (home / DEST / "a").read_bytes() == b"student"
    assert leftovers(home) == []


# ----- the record -----


def test_corrupt_or_foreign_state_file_is_treated_as_empty(home):
    push(home, {NB: b"v1"})
    state = home / ".classhub" / "material" / state_file_name(DEST)
    for bad in (b"{not json", b"[]", b'{"dest": "other", "files": {}}', b'{"files": 3}'):
        state.write_bytes(bad)
        # Without a record, the file (equal to v1, not to v2) counts as the student's.
        r = push(home, {NB: b"v2"})
        assert r.conflicts and r.conflicts[0]["path"] == NB
        assert (home / DEST / NB).read_bytes() == b"v1"
        (home / DEST / SAVED).unlink()
    # A push that finds the file identical rewrites a good record.
    state.write_bytes(b"\x00garbage")
    assert push(home, {NB: b"v1"}).unchanged == [NB]
    assert record(home) == {NB: sha(b"v1")}
    assert push(home, {NB: b"v2"}).updated == [NB]


def test_symlinked_state_folder_is_not_followed(home, tmp_path):
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    (home / ".classhub").symlink_to(elsewhere)
    r = push(home, {"a": b"1"})
    assert r.added == ["a"]
    assert r.errors and r.errors[0]["path"] == "" and "record" in r.errors[0]["message"]
    assert list(elsewhere.iterdir()) == []


def test_explicit_state_dir_and_separate_records_per_dest(home, tmp_path):
    state = tmp_path / "state"
    push(home, {"a": b"1"}, state_dir=state)
    push(home, {"a": b"1"}, dest="other", state_dir=state)
    assert sorted(p.name for p in state.iterdir()) == sorted(
        [state_file_name(DEST), state_file_name("other")]
    )
    assert push(home, {"a": b"2"}, state_dir=state).updated == ["a"]
    assert not (home / ".classhub").exists()


# ----- refused as a whole (HTTP 400), before anything is written -----


@pytest.mark.parametrize(
    "name",
    [
        "../x",
        "a/../../x",
        "/abs",
        "a\\b",
        "./a",
        "a//b",
        "a/./b",
        "a\x01b",
        "a\u202eb",  # right-to-left override
        "a\u200bb",  # zero-width space
        "x" * 256,
    ],
)
def test_bad_member_names_refuse_the_whole_push(home, name):
    with pytest.raises(MaterialError):
        push(home, {"good.txt": b"ok", name: b"bad"})
    assert list(home.iterdir()) == []


def test_nul_in_a_member_name_is_refused(home):
    data = make_zip({"good.txt": b"ok", "evilXX": b"bad"}).replace(b"evilXX", b"ev\x00/..")
    with pytest.raises(MaterialError):
        apply_zip(home, DEST, data, "w1")
    assert list(home.iterdir()) == []


def symlink_zip() -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        zf.writestr("good.txt", b"ok")
        info = zipfile.ZipInfo("link")
        info.create_system = 3
        info.external_attr = (stat.S_IFLNK | 0o777) << 16
        zf.writestr(info, b"/etc/passwd")
    return buf.getvalue()


@pytest.mark.parametrize(
    "data",
    [
        pytest.param(symlink_zip(), id="symlink-member"),
        pytest.param(make_zip({"a": b"1", "a/b": b"2"}), id="file-and-folder"),
        pytest.param(make_zip({"a/": None, "a": b"2"}), id="folder-and-file"),
        pytest.param(b"not a zip at all", id="not-a-zip"),
        pytest.param(b"", id="empty-body"),
        pytest.param(make_zip({"a": b"1"})[:-10], id="truncated"),
    ],
)
def test_bad_zips_refuse_the_whole_push(home, data):
    with pytest.raises(MaterialError):
        apply_zip(home, DEST, data, "w1")
    assert list(home.iterdir()) == []


def test_duplicate_members_are_refused(home):
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        zf.writestr("a", b"1")
        with pytest.warns(UserWarning):
            zf.writestr("a", b"2")
    with pytest.raises(MaterialError, match="twice"):
        apply_zip(home, DEST, buf.getvalue(), "w1")


@pytest.mark.parametrize(
    "dest", ["", "/abs", "../x", "a/../b", "a\\b", "a//b", ".", "a/", ".classhub/x", "a\x7fb"]
)
def test_bad_dest_is_refused(home, dest):
    with pytest.raises(MaterialError):
        push(home, {"a": b"1"}, dest=dest)
    assert list(home.iterdir()) == []


def test_caps_on_members_and_unpacked_size(home):
    files = {f"f{i}": b"x" * 10 for i in range(5)}
    with pytest.raises(MaterialTooLarge):
        push(home, files, max_members=4)
    with pytest.raises(MaterialTooLarge):
        push(home, files, max_bytes=49)
    assert list(home.iterdir()) == []
    assert len(push(home, files, max_members=5, max_bytes=50).added) == 5


def test_member_whose_real_content_is_bigger_than_declared(home):
    archive = zipfile.ZipFile(io.BytesIO(make_zip({"small": b"s", "big": b"B" * 100_000})))
    archive.getinfo("big").file_size = 10  # the directory lies: 10 bytes
    report = apply_material(home, DEST, archive, "w1", max_bytes=100)
    # zipfile stops at the declared size and the CRC check fails: nothing of it is written.
    assert report.added == ["small"]
    assert [e["path"] for e in report.errors] == ["big"]
    assert "damaged" in report.errors[0]["message"]
    assert not (home / DEST / "big").exists()
    assert leftovers(home) == []


def test_reading_never_goes_past_the_declared_size():
    class Lying:
        def open(self, info):
            return io.BytesIO(b"x" * 5000)

    info = zipfile.ZipInfo("f")
    info.file_size = 10
    with pytest.raises(MaterialTooLarge):
        list(material._read_member(Lying(), info))


def test_member_whose_real_content_is_smaller_than_declared(home):
    archive = zipfile.ZipFile(io.BytesIO(make_zip({"f": b"12345"})))
    archive.getinfo("f").file_size = 50
    report = apply_material(home, DEST, archive, "w1")
    assert [e["path"] for e in report.errors] == ["f"]
    assert leftovers(home) == []


# ----- the label and the conflict name -----


@pytest.mark.parametrize("label", ["w1", "Week 3", "v1.2_final-B", "Übung 4", "x" * 40])
def test_good_labels(label):
    assert check_label(label) == label


@pytest.mark.parametrize(
    "label", ["", "x" * 41, "a/b", "a\\b", "a'b", "a\nb", " lead", "trail ", "a\u202eb", None]
)
def test_bad_labels(home, label):
    with pytest.raises(ValueError):
        check_label(label)
    with pytest.raises(ValueError):
        push(home, {"a": b"1"}, label=label)
    assert list(home.iterdir()) == []


def test_conflict_names():
    label = "2026-12-06 10.30 UTC"  # what the files service labels a push with
    assert conflict_name("lesson1.ipynb", label) == "lesson1.teacher-2026-12-06.ipynb"
    assert conflict_name("dir/notebook.ipynb", "L") == "dir/notebook.teacher-L.ipynb"
    assert conflict_name("README", label) == "README.teacher-2026-12-06"
    assert conflict_name(".env", "L") == ".env.teacher-L"
    assert conflict_name("a/b.tar.gz", "L") == "a/b.tar.teacher-L.gz"
    assert conflict_name("n.ipynb", label, 3) == "n.teacher-2026-12-06-3.ipynb"
    assert conflict_name("n.ipynb", "week 1") == "n.teacher-week-1.ipynb"
    assert conflict_name("n.ipynb", "__") == "n.teacher-__.ipynb"
    for path in ("lesson1.ipynb", "README", ".env"):
        for lab in (label, "L", "week 1", "été 2"):
            name = conflict_name(path, lab, 2)
            assert " " not in name and "'" not in name and '"' not in name
    with pytest.raises(ValueError):
        conflict_name("x", "bad/label")


# ----- the delivery decision (pure) -----

V1, V2, MINE = sha(b"v1"), sha(b"v2"), sha(b"mine")


@pytest.mark.parametrize(
    "previous, teacher, student, expected",
    [
        # the teacher did not change it since the last delivery: never delivered again
        (V1, V1, V1, material.SKIP),
        (V1, V1, MINE, material.SKIP),  # the student ran or edited it
        (V1, V1, None, material.SKIP),  # the student deleted it
        # never delivered
        (None, V1, None, material.ADD),
        (None, V1, V1, material.SAME),
        (None, V1, MINE, material.COPY),  # a file of the student's own of that name
        # the teacher changed it
        (V1, V2, None, material.ADD),  # deleted by the student: the new version comes
        (V1, V2, V2, material.SAME),
        (V1, V2, V1, material.UPDATE),  # untouched: replaced
        (V1, V2, MINE, material.COPY),  # the student's: kept, the new one beside it
    ],
)
def test_decide(previous, teacher, student, expected):
    assert material.decide(previous, teacher, student) == expected


# ----- the helper's answer -----


def deliver(home, tmp_path, dest, label, data: bytes, delivered=None, **caps) -> dict:
    """The helper's result line for one home (homectl.apply_item)."""
    path = tmp_path / "material.zip"
    path.write_bytes(data)
    item = {"id": "0", "home": str(home), "dest": dest, "label": label, "zip": str(path)}
    if delivered is not None:
        item["delivered"] = delivered
    result = homectl.apply_item(item, **caps)
    json.dumps(result)  # one JSON line
    return result


def test_the_helper_answers_with_the_report(home, tmp_path):
    result = deliver(home, tmp_path, DEST, "w1", make_zip({"a": b"1"}))
    assert result == {
        "id": "0",
        "ok": True,
        "report": {
            "added": ["a"],
            "updated": [],
            "unchanged": [],
            "skipped": [],
            "conflicts": [],
            "errors": [],
        },
    }


def test_the_helper_decides_by_the_services_record(home, tmp_path):
    deliver(home, tmp_path, DEST, "w1", make_zip({"a": b"1", "b": b"2"}))
    (home / DEST / "a").write_bytes(b"ran")
    (home / ".classhub" / "material" / state_file_name(DEST)).unlink()  # the student's
    record = {"a": sha(b"1"), "b": sha(b"2"), "bad": "not a hash", "c": 5}
    result = deliver(home, tmp_path, DEST, "w1", make_zip({"a": b"1", "b": b"2"}), record)
    assert result["report"]["skipped"] == ["a", "b"]
    assert (home / DEST / "a").read_bytes() == b"ran"
    # a record that is not an object is no record (and the home's is gone again): the copy
    # of "a" is the student's
    (home / ".classhub" / "material" / state_file_name(DEST)).unlink()
    result = deliver(home, tmp_path, DEST, "2026-12-06 10.30 UTC", make_zip({"a": b"1"}), [1])
    assert result["report"]["conflicts"][0]["saved_as"] == "a.teacher-2026-12-06"


@pytest.mark.parametrize(
    ("dest", "label", "data"),
    [
        (DEST, "w1", b"garbage"),
        ("../x", "w1", None),
        (DEST, "bad/label", None),
        (".classhub/material", "w1", None),
        (DEST, "", None),
    ],
)
def test_the_helper_refuses_a_bad_push_with_400_and_writes_nothing(
    home, tmp_path, dest, label, data
):
    data = make_zip({"a": b"1"}) if data is None else data
    result = deliver(home, tmp_path, dest, label, data)
    assert result["ok"] is False and result["status"] == 400
    assert isinstance(result["message"], str) and result["message"]
    assert list(home.iterdir()) == []


def test_the_helper_refuses_a_push_over_the_caps(home, tmp_path):
    data = make_zip({"a": b"1", "b": b"2", "c": b"3"})
    result = deliver(home, tmp_path, DEST, "w1", data, max_members=2)
    assert result["status"] == 400 and "at most" in result["message"]


def test_report_to_json():
    r = Report(added=["ä"], conflicts=[{"path": "x", "saved_as": "y", "already_saved": False}])
    assert json.loads(r.to_json()) == r.to_dict()
    assert "ä" in r.to_json()
