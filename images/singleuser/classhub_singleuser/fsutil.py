"""The careful file-system primitives of the code that works on students' homes.

:mod:`.snapshot` (reading a folder into a zip), :mod:`.material` (merging a zip into a
folder) and :mod:`.homectl` (the homes helper's command, and a teacher's read-only view)
share them. The student's home is hostile to us, so everything here works relative to
directory descriptors and never follows a link:

* every folder is opened with ``O_NOFOLLOW`` relative to its parent's descriptor
  (:func:`open_dir`), so a folder swapped for a link half-way cannot redirect a read or a
  write;
* files are opened with ``O_NOFOLLOW`` and ``O_NONBLOCK`` (:data:`O_READ`: a FIFO the
  student put in place never hangs the helper) and ``O_NOCTTY``;
* new files are made with ``O_EXCL`` (:data:`O_NEW`), and a file is written to a
  temporary name in the same folder, fsynced and renamed or hard-linked into place
  (:func:`write_atomic`).

It also holds the one check of a relative name (:func:`check_path`) that the folder,
destination and zip-member rules of the other modules build on.

Importing the module costs nothing: only ``os``, ``errno``, ``stat`` and ``hashlib``.
"""

from __future__ import annotations

import errno
import hashlib
import os
import stat
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from collections.abc import Iterable

O_DIR = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC
# O_NONBLOCK: opening a FIFO the student put in place must not hang us; O_NOCTTY: a
# terminal device never becomes ours.
O_READ = os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC | os.O_NONBLOCK | os.O_NOCTTY
O_NEW = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC

CHUNK = 1 << 20
DIR_MODE = 0o755
FILE_MODE = 0o644
TMP_MARK = ".classhub-tmp-"  # in the names of write_atomic's temporary files

NAME_MAX = 255  # bytes, one path segment (the kernel's limit)
PATH_MAX = 4096  # bytes, a whole relative name
_BAD_CATEGORIES = frozenset({"Cc", "Cf", "Cs", "Co", "Zl", "Zp"})

# What is at a name (kind): the words homectl's view puts into its answers.
FOLDER, FILE, LINK, OTHER = "folder", "file", "link", "other"
# Why a folder could not be opened (Blocked.kind), besides LINK, FILE and OTHER:
MISSING = "missing"  # not there (and not made)
GONE = "gone"  # it was not a folder, then vanished before it could be looked at
REFUSED = "refused"  # the system refused (permissions, disk full, ...): Blocked.error


# ----- names -----


def check_path(path: str, what: str, error: type[ValueError] = ValueError) -> list[str]:
    """The segments of the relative name ``path``, or ``error`` naming ``what`` and why.

    Refused: an empty name, a backslash, a leading ``/``, a control or invisible
    character, more than :data:`PATH_MAX` bytes (or text that is not valid), an empty,
    ``.`` or ``..`` segment, a segment over :data:`NAME_MAX` bytes.
    """
    import unicodedata

    def bad(why: str) -> ValueError:
        return error(f"Bad {what} {path!r}: {why}.")

    if not isinstance(path, str) or not path:
        raise bad("it is empty")
    if "\\" in path:
        raise bad("backslashes are not allowed")
    if path.startswith("/"):
        raise bad("it must be relative, not start with '/'")
    for ch in path:
        if unicodedata.category(ch) in _BAD_CATEGORIES:
            raise bad(f"it contains the control or invisible character {ch!r}")
    try:
        if len(path.encode("utf-8")) > PATH_MAX:
            raise bad("it is too long")
    except UnicodeEncodeError:
        raise bad("it is not valid text") from None
    parts = path.split("/")
    for part in parts:
        if part in ("", ".", ".."):
            raise bad("empty, '.' and '..' segments are not allowed")
        if len(part.encode("utf-8")) > NAME_MAX:
            raise bad(f"the name {part[:40]!r}... is too long")
    return parts


# ----- looking -----


def lstat(name: str, dir_fd: int) -> os.stat_result | None:
    """``name`` in folder ``dir_fd`` as it is (a link is not followed); None if missing."""
    try:
        return os.stat(name, dir_fd=dir_fd, follow_symlinks=False)
    except FileNotFoundError:
        return None


def kind(st: os.stat_result) -> str:
    """:data:`FOLDER`, :data:`FILE`, :data:`LINK` or :data:`OTHER` (FIFOs, sockets,
    devices)."""
    if stat.S_ISDIR(st.st_mode):
        return FOLDER
    if stat.S_ISREG(st.st_mode):
        return FILE
    if stat.S_ISLNK(st.st_mode):
        return LINK
    return OTHER


# ----- folders -----


class Blocked(Exception):
    """Folder ``parts[depth]`` of :func:`open_dir` could not be opened.

    ``kind`` says why: :data:`LINK`, :data:`FILE` or :data:`OTHER` (it is not a folder),
    :data:`GONE` (it was not a folder and vanished before it could be looked at),
    :data:`MISSING` (not there, ``error`` the FileNotFoundError) or :data:`REFUSED` (any
    other OSError, in ``error``).
    """

    def __init__(self, depth: int, kind: str, error: OSError | None = None):
        super().__init__(depth, kind)
        self.depth = depth
        self.kind = kind
        self.error = error


def _classify(fd: int, name: str, depth: int) -> Blocked:
    """Why ``name`` in ``fd`` could not be opened as a folder (ELOOP or ENOTDIR)."""
    st = lstat(name, fd)
    return Blocked(depth, GONE if st is None else kind(st))


def _subdir(fd: int, name: str, depth: int, create: bool, mode: int) -> int:
    try:
        return os.open(name, O_DIR, dir_fd=fd)
    except FileNotFoundError as e:
        if not create:
            raise Blocked(depth, MISSING, e) from None
    except OSError as e:
        if e.errno not in (errno.ELOOP, errno.ENOTDIR):
            raise Blocked(depth, REFUSED, e) from None
        raise _classify(fd, name, depth) from None
    try:
        os.mkdir(name, mode, dir_fd=fd)
        made = True
    except FileExistsError:
        made = False  # made meanwhile; checked by the open below
    except OSError as e:
        raise Blocked(depth, REFUSED, e) from None
    try:
        nfd = os.open(name, O_DIR, dir_fd=fd)
    except FileNotFoundError as e:  # removed again meanwhile
        raise Blocked(depth, REFUSED, e) from None
    except OSError as e:
        if e.errno not in (errno.ELOOP, errno.ENOTDIR):
            raise Blocked(depth, REFUSED, e) from None
        raise _classify(fd, name, depth) from None
    if made:
        try:
            os.fchmod(nfd, mode)  # whatever the umask
        except BaseException:
            os.close(nfd)
            raise
    return nfd


def open_dir(base_fd: int, parts: Iterable[str], *, create: bool = False, mode: int = DIR_MODE):
    """A descriptor for folder ``parts`` under ``base_fd``, each segment opened with
    ``O_NOFOLLOW`` relative to its parent's descriptor (a link is never followed).

    ``create``: a missing segment is made (with ``mode``, whatever the umask). Raises
    :class:`Blocked` with the segment's index and why it could not be opened; an OSError
    from looking at a segment that is not a folder propagates as it is.
    """
    fd = os.dup(base_fd)
    try:
        for depth, part in enumerate(parts):
            nfd = _subdir(fd, part, depth, create, mode)
            os.close(fd)
            fd = nfd
        return fd
    except BaseException:
        os.close(fd)
        raise


# ----- files -----


def hash_file(dir_fd: int, name: str) -> tuple[str, int] | None:
    """(sha256, size) of regular file ``name`` in ``dir_fd``, None if it is not one (any
    more): missing, a link, a folder or a special file."""
    try:
        fd = os.open(name, O_READ, dir_fd=dir_fd)
    except FileNotFoundError:
        return None
    except OSError as e:
        if e.errno == errno.ELOOP:
            return None
        raise
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):
            return None
        h = hashlib.sha256()
        size = 0
        while chunk := os.read(fd, CHUNK):
            h.update(chunk)
            size += len(chunk)
        return h.hexdigest(), size
    finally:
        os.close(fd)


def write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view) :]


def write_atomic(
    dir_fd: int, name: str, chunks: Iterable[bytes], *, replace: bool, mode: int = FILE_MODE
) -> str:
    """Write ``chunks`` to ``name`` in ``dir_fd`` atomically; their sha256.

    The content goes to a temporary name in the same folder (with :data:`TMP_MARK`),
    is fsynced, then put into place. ``replace``: renamed over whatever file is there.
    Otherwise the name must still be free: the finished file is hard-linked into place,
    which fails rather than replace something the student made meanwhile
    (FileExistsError). The temporary file never stays behind.
    """
    tmp = f".{name[:40]}{TMP_MARK}{os.urandom(8).hex()}"
    fd = os.open(tmp, O_NEW, mode, dir_fd=dir_fd)
    placed = False
    try:
        try:
            os.fchmod(fd, mode)  # whatever the umask
            h = hashlib.sha256()
            for chunk in chunks:
                h.update(chunk)
                write_all(fd, chunk)
            os.fsync(fd)
        finally:
            os.close(fd)
        if replace:
            os.replace(tmp, name, src_dir_fd=dir_fd, dst_dir_fd=dir_fd)
            placed = True
        else:
            try:
                os.link(tmp, name, src_dir_fd=dir_fd, dst_dir_fd=dir_fd, follow_symlinks=False)
            except OSError as e:
                if e.errno not in (errno.EPERM, errno.EOPNOTSUPP, errno.ENOTSUP, errno.EMLINK):
                    raise
                # no hard links on this file system: check, then rename
                if lstat(name, dir_fd) is not None:
                    raise FileExistsError(errno.EEXIST, os.strerror(errno.EEXIST)) from None
                os.replace(tmp, name, src_dir_fd=dir_fd, dst_dir_fd=dir_fd)
                placed = True
        return h.hexdigest()
    finally:
        if not placed:
            try:
                os.unlink(tmp, dir_fd=dir_fd)
            except FileNotFoundError:
                pass
