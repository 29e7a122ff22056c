"""Folder snapshots for submissions (classhub_singleuser.snapshot), and the answer the
helper's command gives for each (classhub_singleuser.homectl.snapshot_item: the status and
message the grades service shows)."""

import errno
import hashlib
import io
import json
import os
import stat
import unicodedata
import zipfile
from pathlib import Path

import pytest

from classhub_singleuser import homectl
from classhub_singleuser import snapshot as snap
from classhub_singleuser.snapshot import (
    DEFAULT_EXCLUDE,
    MAX_BYTES,
    MAX_DEPTH,
    SnapshotError,
    SnapshotInfo,
    SnapshotMissing,
    SnapshotTooLarge,
    content_hash,
    snapshot,
)

pytestmark = pytest.mark.unit

FOLDER = "math101/assignments/week1"
EMPTY_SHA = hashlib.sha256(b"").hexdigest()


@pytest.fixture
def home(tmp_path):
    h = tmp_path / "jovyan"
    h.mkdir()
    return h


def make(root: Path, files: dict[str, bytes | str]) -> Path:
    """Files under ``root`` (made with their folders); returns ``root``."""
    for name, data in files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data.encode() if isinstance(data, str) else data)
    return root


def work(home: Path, files: dict[str, bytes | str] | None = None) -> Path:
    folder = home / FOLDER
    folder.mkdir(parents=True, exist_ok=True)
    return make(folder, files or {})


def answer(home, folder, tmp=None, **caps) -> tuple[int, str]:
    """(status, message) of the helper's command for a snapshot of ``home/folder``
    (status 200 and the zip's size on success)."""
    import tempfile

    with tempfile.TemporaryDirectory() as out:
        item = {"id": "0", "home": str(home), "folder": folder}
        result = homectl.snapshot_item(item, out, **caps)
        if result["ok"]:
            return 200, str(os.path.getsize(os.path.join(out, "0.zip")))
        assert not os.path.exists(os.path.join(out, "0.zip"))  # no partial zip left
        return result["status"], result["message"]


def take(home, folder=FOLDER, **kw) -> tuple[SnapshotInfo, bytes]:
    out = io.BytesIO()
    info = snapshot(home, folder, out, **kw)
    return info, out.getvalue()


def members(data: bytes) -> dict[str, bytes]:
    with zipfile.ZipFile(io.BytesIO(data)) as zf:
        assert zf.testzip() is None
        return {name: zf.read(name) for name in zf.namelist()}


def skipped(info: SnapshotInfo) -> dict[str, str]:
    return {e["path"]: e["reason"] for e in info.skipped}


FILES = {
    "notebook.ipynb": '{"cells": []}',
    "data/x.csv": "a,b\n1,2\n",
    "data/sub/deep.txt": "deep",
    "README": b"\x00\xffbinary",
    "ä ö.txt": "umlauts",
}


# ----- the zip -----


def test_the_zip_holds_every_file_sorted_with_fixed_metadata(home):
    work(home, FILES)
    (home / FOLDER / "empty").mkdir()
    make(home, {"math101/other.txt": "outside the folder", "top.txt": "x"})
    info, data = take(home)
    with zipfile.ZipFile(io.BytesIO(data)) as zf:
        infos = zf.infolist()
        names = [i.filename for i in infos]
        assert names == sorted(names, key=lambda n: n.encode("utf-8"))
        assert set(names) == set(FILES)  # no folder entries, nothing from outside
        for i in infos:
            assert i.date_time == (1980, 1, 1, 0, 0, 0)
            assert i.compress_type == zipfile.ZIP_DEFLATED
            assert i.create_system == 3
            assert i.external_attr >> 16 == stat.S_IFREG | 0o644
    got = members(data)
    for name, content in FILES.items():
        assert got[name] == (content.encode() if isinstance(content, str) else content)
    assert info.files == len(FILES)
    assert info.bytes == sum(len(v) for v in got.values())
    assert info.skipped == []


def test_the_order_is_that_of_the_whole_names_bytes(home):
    work(home, dict.fromkeys(["a.txt", "a-c", "a/b-x", "a/b/c", "a0", "B", "ä", "z/a"], "x"))
    _, data = take(home)
    # "-" < "." < "/" < "0": a folder's files sit between its name's neighbours
    assert list(members(data)) == ["B", "a-c", "a.txt", "a/b-x", "a/b/c", "a0", "z/a", "ä"]


def test_sha256_is_the_documented_recipe_recomputed_from_the_zip(home):
    work(home, FILES)
    info, data = take(home)
    h = hashlib.sha256()
    for name, content in sorted(members(data).items(), key=lambda kv: kv[0].encode()):
        digest = hashlib.sha256(content).hexdigest()
        h.update(name.encode() + b"\0" + digest.encode() + b"\n")
    assert info.sha256 == h.hexdigest()
    assert info.sha256 == content_hash(
        (n, hashlib.sha256(c).hexdigest()) for n, c in members(data).items()
    )


def test_same_content_gives_the_same_bytes_and_hash_whatever_mtimes_and_order(tmp_path):
    one, two = tmp_path / "one", tmp_path / "two"
    for h in (one, two):
        h.mkdir()
    work(one, FILES)
    work(two, dict(reversed(list(FILES.items()))))
    for i, p in enumerate(sorted((two / FOLDER).rglob("*"))):
        os.utime(p, (1_000_000 + i, 2_000_000_000 - i))
    a_info, a = take(one)
    b_info, b = take(two)
    assert a == b
    assert a_info == b_info
    os.utime(one / FOLDER / "notebook.ipynb", (5, 5))
    again_info, again = take(one)
    assert (again, again_info.sha256) == (a, a_info.sha256)


def test_the_hash_follows_content_and_names(home):
    work(home, {"a": "1", "b": "2"})
    first, _ = take(home)
    (home / FOLDER / "a").write_text("changed")
    changed, _ = take(home)
    (home / FOLDER / "a").write_text("1")
    (home / FOLDER / "b").rename(home / FOLDER / "c")
    renamed, _ = take(home)
    assert len({first.sha256, changed.sha256, renamed.sha256}) == 3
    (home / FOLDER / "c").rename(home / FOLDER / "b")
    assert take(home)[0].sha256 == first.sha256


def test_an_empty_folder_gives_a_valid_empty_zip(home):
    work(home)
    info, data = take(home)
    assert members(data) == {}
    assert (info.files, info.bytes, info.sha256, info.skipped) == (0, 0, EMPTY_SHA, [])


def test_a_folder_at_the_top_of_home(home):
    make(home, {"hw/x.py": "print(1)"})
    info, data = take(home, "hw")
    assert list(members(data)) == ["x.py"] and info.files == 1


# ----- what is left out -----


def test_default_exclusions(home):
    work(
        home,
        {
            "nb.ipynb": "{}",
            ".ipynb_checkpoints/nb-checkpoint.ipynb": "{}",
            "sub/.ipynb_checkpoints/x": "x",
            "__pycache__/m.cpython-311.pyc": "x",
            "m.py": "x",
            "stray.pyc": "x",
            ".git/config": "x",
            ".DS_Store": "x",
            "sub/.DS_Store": "x",
            ".env": "kept",
        },
    )
    info, data = take(home)
    assert list(members(data)) == [".env", "m.py", "nb.ipynb"]
    assert skipped(info) == {
        ".DS_Store": "excluded",
        ".git/": "excluded",
        ".ipynb_checkpoints/": "excluded",
        "__pycache__/": "excluded",
        "stray.pyc": "excluded",
        "sub/.DS_Store": "excluded",
        "sub/.ipynb_checkpoints/": "excluded",
    }
    assert set(DEFAULT_EXCLUDE) == {
        ".ipynb_checkpoints",
        "__pycache__",
        ".git",
        ".DS_Store",
        "*.pyc",
    }


def test_custom_exclusions(home):
    work(home, {"a.pyc": "x", "b.log": "x", "c.txt": "x"})
    info, data = take(home, exclude=["*.log"])
    assert list(members(data)) == ["a.pyc", "c.txt"]
    assert skipped(info) == {"b.log": "excluded"}


def test_links_are_never_followed_and_nothing_outside_home_is_read(home, tmp_path):
    secret = make(tmp_path / "elsewhere", {"secret.txt": "SECRET", "d/s.txt": "SECRET"})
    folder = work(home, {"real.txt": "mine", "inner/x.txt": "inner"})
    (folder / "passwd").symlink_to("/etc/passwd")
    (folder / "secret").symlink_to(secret / "secret.txt")
    (folder / "etc").symlink_to("/etc", target_is_directory=True)
    (folder / "outdir").symlink_to(secret / "d", target_is_directory=True)
    (folder / "again").symlink_to(folder / "inner", target_is_directory=True)  # inside home
    (folder / "alias.txt").symlink_to("real.txt")
    (folder / "dangling").symlink_to(folder / "nothing-here")
    (folder / "loop").symlink_to(folder / "loop")
    info, data = take(home)
    got = members(data)
    assert list(got) == ["inner/x.txt", "real.txt"]
    assert all(b"SECRET" not in c and b"root:" not in c for c in got.values())
    assert skipped(info) == dict.fromkeys(
        ["again", "alias.txt", "dangling", "etc", "loop", "outdir", "passwd", "secret"], "link"
    )


@pytest.mark.parametrize("where", ["math101", "math101/assignments", FOLDER])
def test_a_link_as_the_folder_or_one_of_its_parents_is_refused(home, tmp_path, where):
    make(tmp_path / "real" / FOLDER, {"x.txt": "outside home"})
    link = home / where
    link.parent.mkdir(parents=True, exist_ok=True)
    link.symlink_to(tmp_path / "real" / where, target_is_directory=True)
    assert (home / FOLDER / "x.txt").exists()  # a follower would find the file
    out = io.BytesIO()
    with pytest.raises(SnapshotError, match="link") as e:
        snapshot(home, FOLDER, out)
    assert not isinstance(e.value, SnapshotMissing | SnapshotTooLarge)
    assert f"~/{where}" in str(e.value)
    status, message = answer(home, FOLDER)
    assert status == 400 and "link" in message


@pytest.mark.timeout(10)
def test_a_fifo_is_skipped_without_hanging(home):
    folder = work(home, {"a.txt": "a"})
    os.mkfifo(folder / "pipe")
    info, data = take(home)
    assert list(members(data)) == ["a.txt"]
    assert skipped(info) == {"pipe": "not a regular file"}


@pytest.mark.timeout(10)
def test_a_fifo_swapped_in_after_the_listing_is_not_read(home, monkeypatch):
    folder = work(home, {"a.txt": "a"})
    os.mkfifo(folder / "pipe")
    real_list = snap._list

    def listed_as_files(fd):  # as if "pipe" was a file when the folder was listed
        return [(k, n, snap._FILE if n == "pipe" else kind) for k, n, kind in real_list(fd)]

    monkeypatch.setattr(snap, "_list", listed_as_files)
    info, data = take(home)
    assert list(members(data)) == ["a.txt"]
    assert skipped(info) == {"pipe": "changed while reading"}


def test_a_socket_is_skipped(home, monkeypatch):
    import socket

    folder = work(home, {"a.txt": "a"})
    monkeypatch.chdir(folder)  # AF_UNIX paths are short: bind a relative one
    with socket.socket(socket.AF_UNIX) as sock:
        sock.bind("sock")
        info, data = take(home)
    assert list(members(data)) == ["a.txt"]
    assert skipped(info) == {"sock": "not a regular file"}


@pytest.mark.parametrize(
    "name",
    [
        "back\\slash",
        " leading",
        "trailing ",
        ".classhub-state",
        ".CLASSHUB",
        "bell\x07",
        "rtl\u202e",
    ],
)
def test_names_the_files_service_would_refuse_are_skipped(home, name):
    folder = work(home, {"ok.txt": "ok"})
    (folder / name).write_text("x")
    (folder / "dir").mkdir()
    (folder / "dir" / name).mkdir()
    (folder / "dir" / name / "inside.txt").write_text("x")
    info, data = take(home)
    assert list(members(data)) == ["ok.txt"]
    assert skipped(info) == {name: "name not allowed", f"dir/{name}/": "name not allowed"}


def test_a_name_that_is_not_utf8_is_skipped(home):
    folder = work(home, {"ok.txt": "ok"})
    fd = os.open(os.fsencode(folder) + b"/bad\xff.txt", os.O_WRONLY | os.O_CREAT, 0o644)
    os.close(fd)
    info, data = take(home)
    assert list(members(data)) == ["ok.txt"]
    assert [e["reason"] for e in info.skipped] == ["name not allowed"]
    # the helper's result line carries it as ASCII JSON the service can read back
    line = json.dumps(info.skipped, ensure_ascii=True)
    assert line.isascii() and json.loads(line) == info.skipped


def test_names_equal_once_nfc_normalised_keep_only_the_first(home):
    nfc = unicodedata.normalize("NFC", "é.txt")
    nfd = unicodedata.normalize("NFD", "é.txt")
    work(home, {nfc: "composed", nfd: "decomposed"})
    info, data = take(home)
    first = min(nfc, nfd, key=str.encode)
    assert list(members(data)) == [first]
    assert skipped(info) == {max(nfc, nfd, key=str.encode): "name not allowed"}


def test_folders_too_deep_are_skipped(home):
    deepest_ok = "/".join(f"d{i}" for i in range(1, MAX_DEPTH))  # 31 folders
    work(home, {f"{deepest_ok}/f.txt": "ok", f"{deepest_ok}/d{MAX_DEPTH}/g.txt": "too deep"})
    info, data = take(home)
    assert list(members(data)) == [f"{deepest_ok}/f.txt"]
    assert len(f"{deepest_ok}/f.txt".split("/")) == MAX_DEPTH
    assert skipped(info) == {f"{deepest_ok}/d{MAX_DEPTH}/": "too deep"}


#: an unprivileged uid and gid (nobody/nogroup) for the checks root cannot make
UNPRIVILEGED = 65534


def snapshot_unprivileged(home: Path, folder: str = FOLDER) -> dict:
    """Take a snapshot in a forked child that drops to ``UNPRIVILEGED`` when the tests run
    as root (root reads files whatever their mode); returns the child's uid, the zip's
    members and the skipped entries. A fork, not a new interpreter: the unprivileged user
    may not be able to run this one (a virtualenv under /root)."""
    import traceback

    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: never returns into pytest
        code = 1
        try:
            os.close(read)
            if os.geteuid() == 0:
                os.setgroups([])
                os.setgid(UNPRIVILEGED)
                os.setuid(UNPRIVILEGED)
            info, data = take(home, folder)
            out = {"uid": os.getuid(), "members": list(members(data)), "skipped": info.skipped}
            payload, code = json.dumps(out), 0
        except BaseException:
            payload = traceback.format_exc()
        finally:
            with os.fdopen(write, "w") as pipe:
                pipe.write(payload)
            os._exit(code)
    os.close(write)
    with os.fdopen(read) as pipe:
        raw = pipe.read()
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0, raw
    return json.loads(raw)


@pytest.fixture
def student_home():
    """A home the unprivileged user owns, outside pytest's root-only temporary folder."""
    import shutil
    import tempfile

    base = Path(tempfile.mkdtemp(prefix="classhub-snapshot-"))
    try:
        base.chmod(0o755)
        yield base / "jovyan"
    finally:
        for path in base.rglob("*"):
            if path.is_dir() and not path.is_symlink():
                path.chmod(0o755)
        shutil.rmtree(base)


def test_unreadable_files_and_folders_are_skipped(student_home):
    """For real: chmod 0 on a file and a folder of the student's own, read by a non-root
    process (root would read them whatever their mode)."""
    home = student_home
    home.mkdir()
    folder = work(home, {"ok.txt": "ok", "locked.txt": "x", "closed/x.txt": "x"})
    if os.geteuid() == 0:
        for path in (home, *home.rglob("*")):
            os.chown(path, UNPRIVILEGED, UNPRIVILEGED)
    (folder / "locked.txt").chmod(0)
    (folder / "closed").chmod(0)
    seen = snapshot_unprivileged(home)
    assert seen["uid"] != 0
    assert seen["members"] == ["ok.txt"]
    assert {e["path"]: e["reason"] for e in seen["skipped"]} == {
        "closed/": "unreadable",
        "locked.txt": "unreadable",
    }


def test_permission_errors_skip_the_file_or_folder(home, monkeypatch):
    """The same as above for any user (root reads files whatever their mode)."""
    work(home, {"ok.txt": "ok", "locked.txt": "x", "closed/x.txt": "x"})
    real_open = os.open

    def refusing_open(path, flags, *args, **kwargs):
        if path in ("locked.txt", "closed"):
            raise PermissionError(errno.EACCES, os.strerror(errno.EACCES))
        return real_open(path, flags, *args, **kwargs)

    monkeypatch.setattr(snap.os, "open", refusing_open)
    info, data = take(home)
    monkeypatch.undo()
    assert list(members(data)) == ["ok.txt"]
    assert skipped(info) == {"closed/": "unreadable", "locked.txt": "unreadable"}


# ----- limits -----


def test_too_many_files(home):
    work(home, {"a": "1", "b": "2", "c": "3", "x.pyc": "", "y.pyc": ""})
    info, _ = take(home, max_files=3)  # excluded files do not count
    assert info.files == 3
    with pytest.raises(SnapshotTooLarge, match="more than 2 files") as e:
        take(home, max_files=2)
    assert "at most 2" in str(e.value) and FOLDER in str(e.value)
    status, message = answer(home, FOLDER, max_files=2)
    assert status == 413 and "at most 2" in message


def test_too_many_bytes(home):
    work(home, {"a": b"x" * 6, "b": b"y" * 6})
    info, _ = take(home, max_bytes=12)
    assert info.bytes == 12
    with pytest.raises(SnapshotTooLarge, match="more than 11 bytes") as e:
        take(home, max_bytes=11)
    assert "at most 11 bytes" in str(e.value)
    status, message = answer(home, FOLDER, max_bytes=11)
    assert status == 413 and "11 bytes" in message


def test_the_default_byte_limit_is_named_in_mib():
    w = snap._Walk(None, FOLDER, 10, MAX_BYTES, ())
    with pytest.raises(SnapshotTooLarge, match="more than 100 MiB"):
        w.too_large()
    assert MAX_BYTES == 100 << 20


def test_bytes_are_counted_while_reading_not_taken_from_stat(home, monkeypatch):
    """A file bigger than its stat size (it grew) cannot slip past the limit."""
    work(home, {"small": b"x" * 5, "grows": b"y" * 100})
    real_fstat = os.fstat

    def stale_fstat(fd):
        st = real_fstat(fd)
        if not stat.S_ISREG(st.st_mode):
            return st
        fields = list(st[:10])
        fields[stat.ST_SIZE] = 1  # what stat said before the file grew
        return os.stat_result(fields)

    monkeypatch.setattr(snap.os, "fstat", stale_fstat)
    with pytest.raises(SnapshotTooLarge):
        take(home, max_bytes=50)
    monkeypatch.undo()
    info, data = take(home, max_bytes=105)
    assert info.bytes == 105 and members(data)["grows"] == b"y" * 100


# ----- the folder argument -----


@pytest.mark.parametrize(
    "folder",
    [
        "/etc",
        "../x",
        "math101/../../x",
        "./math101",
        "math101//week1",
        "math101/",
        "math101\\week1",
        "math\x00101",
        "math\n101",
        "math\u200b101",
        ".classhub",
        ".classhub/material",
        "math101/.classhub-x",
        ".ClassHub",
    ],
)
def test_bad_folder_names(home, folder):
    with pytest.raises(SnapshotError) as e:
        take(home, folder)
    assert not isinstance(e.value, SnapshotMissing | SnapshotTooLarge)
    status, message = answer(home, folder)
    assert status == 400 and message


def test_no_folder(home):
    status, message = answer(home, "")
    assert status == 400 and "empty" in message


def test_a_missing_folder(home):
    with pytest.raises(SnapshotMissing) as e:
        take(home)
    assert str(e.value) == f"The folder {FOLDER} does not exist in your server."
    assert answer(home, FOLDER) == (404, str(e.value))


def test_a_file_where_a_folder_should_be_counts_as_missing(home):
    make(home, {"math101/assignments": "a file"})
    with pytest.raises(SnapshotMissing, match="~/math101/assignments is not a folder"):
        take(home)
    assert answer(home, FOLDER)[0] == 404


def test_a_home_that_does_not_exist_is_a_404(tmp_path):
    status, message = answer(tmp_path / "no-home", FOLDER)
    assert status == 404 and "no home folder" in message


def test_an_error_reading_the_home_is_a_500(home, tmp_path, monkeypatch):
    work(home)

    def failing(*args, **kwargs):
        raise OSError(errno.EIO, "Input/output error")

    monkeypatch.setattr(snap, "snapshot", failing)
    status, message = answer(home, FOLDER)
    assert status == 500 and message == "The snapshot could not be made (Input/output error)."
