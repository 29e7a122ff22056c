"""The file-system primitives the snapshot, material and view code share
(classhub_singleuser.fsutil), on real folders: no link followed on the way down, why a
folder could not be opened and where, folders made whatever the umask, atomic writes that
never replace what the student made meanwhile."""

import errno
import os
import stat

import pytest

from classhub_singleuser import fsutil

pytestmark = pytest.mark.unit


@pytest.fixture
def home(tmp_path):
    home = tmp_path / "home"
    (home / "a" / "b").mkdir(parents=True)
    (home / "a" / "file").write_bytes(b"x")
    (home / "outside").mkdir()
    (home / "a" / "link").symlink_to(home / "outside")
    os.mkfifo(home / "a" / "fifo")
    fd = os.open(home, os.O_RDONLY | os.O_DIRECTORY)
    yield home, fd
    os.close(fd)


def test_open_dir_goes_down_folder_by_folder(home):
    path, fd = home
    sub = fsutil.open_dir(fd, ["a", "b"])
    try:
        assert os.path.samestat(os.fstat(sub), os.stat(path / "a" / "b"))
    finally:
        os.close(sub)


@pytest.mark.parametrize(
    ("parts", "depth", "kind"),
    [
        (["a", "link"], 1, fsutil.LINK),
        (["a", "link", "deeper"], 1, fsutil.LINK),
        (["a", "file"], 1, fsutil.FILE),
        (["a", "fifo"], 1, fsutil.OTHER),
        (["missing", "b"], 0, fsutil.MISSING),
    ],
)
def test_open_dir_says_where_and_why_it_stopped(home, parts, depth, kind):
    _path, fd = home
    with pytest.raises(fsutil.Blocked) as blocked:
        fsutil.open_dir(fd, parts)
    assert (blocked.value.depth, blocked.value.kind) == (depth, kind)
    assert (blocked.value.error is not None) == (kind == fsutil.MISSING)


def test_open_dir_makes_missing_folders_whatever_the_umask(home):
    path, fd = home
    old = os.umask(0o077)
    try:
        os.close(fsutil.open_dir(fd, ["a", "new", "deeper"], create=True))
    finally:
        os.umask(old)
    for made in (path / "a" / "new", path / "a" / "new" / "deeper"):
        assert stat.S_IMODE(made.stat().st_mode) == fsutil.DIR_MODE
    with pytest.raises(fsutil.Blocked) as blocked:  # never through a link, even to make
        fsutil.open_dir(fd, ["a", "link", "new"], create=True)
    assert blocked.value.kind == fsutil.LINK
    assert list((path / "outside").iterdir()) == []


def test_open_dir_reports_what_the_system_refuses(home):
    _path, fd = home
    with pytest.raises(fsutil.Blocked) as blocked:
        fsutil.open_dir(fd, ["a", "x" * 300], create=True)  # root or not
    assert (blocked.value.depth, blocked.value.kind) == (1, fsutil.REFUSED)
    assert blocked.value.error.errno == errno.ENAMETOOLONG


def test_lstat_and_kind(home):
    _path, fd = home
    a = fsutil.open_dir(fd, ["a"])
    try:
        kinds = {name: fsutil.kind(fsutil.lstat(name, a)) for name in os.listdir(a)}
        assert fsutil.lstat("nothing", a) is None
        assert fsutil.hash_file(a, "link") is None and fsutil.hash_file(a, "fifo") is None
        assert fsutil.hash_file(a, "file")[1] == 1
    finally:
        os.close(a)
    assert kinds == {
        "b": fsutil.FOLDER,
        "file": fsutil.FILE,
        "link": fsutil.LINK,
        "fifo": fsutil.OTHER,
    }


def test_write_atomic_never_replaces_a_new_name_the_student_took(home):
    path, fd = home
    a = fsutil.open_dir(fd, ["a"])
    try:
        digest = fsutil.write_atomic(a, "new", iter([b"he", b"llo"]), replace=False)
        assert (path / "a" / "new").read_bytes() == b"hello"
        assert fsutil.hash_file(a, "new") == (digest, 5)
        with pytest.raises(FileExistsError):
            fsutil.write_atomic(a, "file", iter([b"teacher"]), replace=False)
        assert (path / "a" / "file").read_bytes() == b"x"
        fsutil.write_atomic(a, "file", iter([b"teacher"]), replace=True)
        assert (path / "a" / "file").read_bytes() == b"teacher"
        assert stat.S_IMODE((path / "a" / "file").stat().st_mode) == fsutil.FILE_MODE
    finally:
        os.close(a)
    assert not [n for n in os.listdir(path / "a") if fsutil.TMP_MARK in n]


@pytest.mark.parametrize(
    ("path", "why"),
    [
        ("", "it is empty"),
        ("/etc", "relative"),
        ("a\\b", "backslashes"),
        ("a/../b", "'..'"),
        ("a//b", "empty"),
        ("a\nb", "control or invisible"),
        ("x" * 256, "too long"),
    ],
)
def test_check_path_names_the_problem_with_the_callers_error(path, why):
    class Refused(ValueError):
        pass

    with pytest.raises(Refused, match="Bad folder") as refused:
        fsutil.check_path(path, "folder", Refused)
    assert why in str(refused.value)
    assert fsutil.check_path("a/b c/d.ipynb", "folder") == ["a", "b c", "d.ipynb"]
