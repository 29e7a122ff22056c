"""Reading the files of a stored version (its snapshot zip in S3) without downloading it.

A version is a zip of up to 110 MB in the S3 store. To list its files or read one of them
the service reads only what it needs, with ranged GETs (:class:`ObjectReader`, a seekable
file over the object behind a 1 MiB read buffer): the end records and the directory, then
the one member. Blocking (the ``minio`` SDK): run these in the store's thread pool
(:meth:`services.base.s3.ObjectStore.run_job`).

The snapshot was made from a home the student controls, so it is read as untrusted: its
directory is checked before ``zipfile`` reads it (:func:`services.base.zipdir.
check_directory`), names must be names classhub accepts
(:func:`services.base.names.validate_path`), and a member is read with its size checked as
it is read (:func:`services.base.archive.read_entry`), never beyond the declared size or
the caller's limit.
"""

from __future__ import annotations

import io
import zipfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass

from minio.error import S3Error

from common.errors import NotFound
from services.base import archive
from services.base.names import BadName, validate_path
from services.base.zipdir import ZipDirectoryRefused, check_directory

from .snapcheck import DIRECTORY_BYTES_PER_FILE, MAX_SNAPSHOT_FILES

#: the read buffer over the object: one ranged GET reads this much
BUFFER = 1 << 20
_MISSING = {"NoSuchKey", "NoSuchObject", "ResourceNotFound"}


class SnapshotMissing(NotFound):
    """The version's zip is not in the store (removed by hand, or a store restored from an
    older backup)."""


class SnapshotUnreadable(ValueError):
    """The version's zip cannot be read (damaged); ``str()`` says why."""


@dataclass(frozen=True)
class SnapshotFile:
    path: str
    size: int
    crc: int


class ObjectReader(io.RawIOBase):
    """A read-only, seekable file over one S3 object of ``size`` bytes (ranged GETs)."""

    def __init__(self, client, bucket: str, key: str, size: int):
        super().__init__()
        self._client, self._bucket, self._key, self._size = client, bucket, key, size
        self._pos = 0

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def tell(self) -> int:
        return self._pos

    def seek(self, offset: int, whence: int = io.SEEK_SET) -> int:
        if whence == io.SEEK_SET:
            pos = offset
        elif whence == io.SEEK_CUR:
            pos = self._pos + offset
        elif whence == io.SEEK_END:
            pos = self._size + offset
        else:
            raise ValueError(f"invalid whence {whence}")
        if pos < 0:
            raise OSError("seek before the start of the snapshot")
        self._pos = pos
        return pos

    def readinto(self, buffer) -> int:
        want = min(len(buffer), self._size - self._pos)
        if want <= 0:
            return 0
        try:
            response = self._client.get_object(
                self._bucket, self._key, offset=self._pos, length=want
            )
        except S3Error as e:
            if e.code in _MISSING:
                raise SnapshotMissing(
                    "The snapshot of this version is missing from the file store; an "
                    "administrator can restore it from a backup."
                ) from None
            raise
        try:
            got = 0
            view = memoryview(buffer)
            for chunk in response.stream(BUFFER):
                n = min(len(chunk), want - got)
                view[got : got + n] = chunk[:n]
                got += n
                if got >= want:
                    break
        finally:
            response.close()
            response.release_conn()
        self._pos += got
        return got


def open_snapshot(objects, key: str, size: int) -> zipfile.ZipFile:
    """The version's zip, opened over the store (blocking). :class:`SnapshotUnreadable`
    when it is no zip classhub made."""
    raw = ObjectReader(objects.client, objects.bucket, key, size)
    reader = io.BufferedReader(raw, BUFFER)
    try:
        check_directory(
            reader,
            max_entries=MAX_SNAPSHOT_FILES,
            max_bytes=MAX_SNAPSHOT_FILES * DIRECTORY_BYTES_PER_FILE,
        )
        return zipfile.ZipFile(reader)
    except ZipDirectoryRefused as e:
        raise SnapshotUnreadable(f"The snapshot cannot be read: {e}.") from None
    except (zipfile.BadZipFile, EOFError, ValueError) as e:
        raise SnapshotUnreadable(f"The snapshot is damaged: {e}.") from None


def _entries(zf: zipfile.ZipFile) -> dict[str, zipfile.ZipInfo]:
    found: dict[str, zipfile.ZipInfo] = {}
    for info in zf.infolist():
        name = archive.member_name(info)
        if name.endswith("/"):
            continue
        try:
            path = validate_path(name)
        except BadName:
            continue  # classhub's snapshots hold no such name; never served
        found.setdefault(path, info)
    return found


def list_files(objects, key: str, size: int) -> list[SnapshotFile]:
    """The files of a version, sorted by path (blocking)."""
    with open_snapshot(objects, key, size) as zf:
        return sorted(
            (SnapshotFile(path, info.file_size, info.CRC) for path, info in _entries(zf).items()),
            key=lambda f: f.path,
        )


class FileTooLarge(ValueError):
    """The file is larger than the caller may read at once."""


def _entry(zf: zipfile.ZipFile, path: str) -> zipfile.ZipInfo:
    info = _entries(zf).get(path)
    if info is None:
        raise NotFound(f"This version has no file {path!r}.")
    return info


def iter_file(
    zf: zipfile.ZipFile, path: str, max_bytes: int, info: zipfile.ZipInfo | None = None
) -> Iterator[bytes]:
    """The bytes of ``path`` (whose directory entry is ``info``, looked up when not given)
    in chunks (blocking), at most ``max_bytes``."""
    info = info or _entry(zf, path)
    if info.file_size > max_bytes:
        raise FileTooLarge(f"{path} is larger than {max_bytes >> 20} MB.")
    limits = archive.Limits(max_files=1, max_total_bytes=max_bytes, max_file_bytes=max_bytes)
    entry = archive.Entry(path, info, info.file_size)
    try:
        yield from archive.read_entry(zf, entry, archive.Budget(limits))
    except archive.BadArchive as e:
        raise SnapshotUnreadable(f"The snapshot is damaged: {e}.") from None


def read_file(objects, key: str, size: int, path: str, max_bytes: int) -> bytes:
    """The bytes of one file of a version (blocking), at most ``max_bytes``."""
    with open_snapshot(objects, key, size) as zf:
        return b"".join(iter_file(zf, path, max_bytes))


def read_files(
    objects, key: str, size: int, paths: list[str], max_bytes: int
) -> dict[str, bytes | None]:
    """Several files of a version (None for one it does not have), blocking."""
    out: dict[str, bytes | None] = {}
    with open_snapshot(objects, key, size) as zf:
        for path in paths:
            try:
                out[path] = b"".join(iter_file(zf, path, max_bytes))
            except NotFound:
                out[path] = None
    return out


def copy_files(
    objects,
    key: str,
    size: int,
    add: Callable[[str, int, Iterator[bytes]], None],
    max_bytes: int,
) -> list[str]:
    """Every file of a version, in path order, handed to ``add(path, size, chunks)``
    (blocking); the paths given."""
    done = []
    with open_snapshot(objects, key, size) as zf:
        entries = _entries(zf)
        for path in sorted(entries):
            info = entries[path]
            add(path, info.file_size, iter_file(zf, path, max_bytes, info))
            done.append(path)
    return done
