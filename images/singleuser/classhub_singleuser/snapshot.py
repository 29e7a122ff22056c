"""A snapshot of one folder of the student's home, as a zip, for the grades service.

The grades service takes it when the student presses Submit or a teacher collects, in its
helper container (:mod:`.homectl`), which mounts the student's home read-only: nothing is
ever sent to the student's server. :func:`snapshot` raises
:class:`SnapshotError` for a bad folder name or a folder that is a link (symlink) or lies
under one, :class:`SnapshotMissing` for a folder that does not exist, and
:class:`SnapshotTooLarge` for a folder over :data:`MAX_FILES` or :data:`MAX_BYTES`.

The zip (:func:`snapshot`) holds every regular file under ``~/<folder>``, named relative to
it (``notebook.ipynb``, ``data/x.csv``), sorted by the UTF-8 bytes of that name, each
deflated with the fixed time 1980-01-01 00:00 and mode 0644, without folder entries (empty
folders are not kept): the same files give the same bytes whatever their mtimes or the
order they were made in. Left out, each listed in ``skipped`` with its reason (a folder's
path ends with ``/`` and nothing under it is looked at):

* ``"excluded"``: a name matching :data:`DEFAULT_EXCLUDE` (checkpoints, caches, ``.git``);
* ``"link"``: a link (symlink), to a file or a folder, inside home or not: never followed;
* ``"not a regular file"``: FIFOs, sockets, devices (never opened);
* ``"name not allowed"``: a name classhub cannot store as a submitted file (the rules of
  the files service's ``validate_path``: not UTF-8, control or invisible characters, a
  backslash, a part that starts or ends with a space or starts with ``.classhub``, over
  255 bytes a part or 900 bytes in all), or one equal to an earlier name once both are
  NFC-normalised;
* ``"too deep"``: a folder whose files would be more than :data:`MAX_DEPTH` levels down;
* ``"unreadable"``: uid 1000 may not read it (permissions);
* ``"changed while reading"``: replaced by something else during the snapshot.

The student's home is hostile to us (the primitives of :mod:`.fsutil`): every folder is
opened with ``O_NOFOLLOW`` relative to its parent's descriptor, so no link is followed even
if a folder is swapped for one half-way, and nothing outside ``~/<folder>`` is read.

Importing the module costs nothing: zipfile is imported on first use.
"""

from __future__ import annotations

import errno
import hashlib
import os
import stat
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, BinaryIO

from . import fsutil

if TYPE_CHECKING:
    import zipfile
    from collections.abc import Iterable

MAX_FILES = 2000
MAX_BYTES = 100 << 20  # file content, uncompressed, all files together
MAX_DEPTH = 32  # parts of a name in the zip, as the files service's MAX_DEPTH
DEFAULT_EXCLUDE = (".ipynb_checkpoints", "__pycache__", ".git", ".DS_Store", "*.pyc")
# deflate level 1: 5 MB of notebook text in 0.06 CPU-s instead of 0.22 at the default 6,
# for a zip about 11% larger (a deadline snapshots a whole class at once)
COMPRESS_LEVEL = 1

EXCLUDED = "excluded"
LINK = "link"
SPECIAL = "not a regular file"
BAD_NAME = "name not allowed"
TOO_DEEP = "too deep"
UNREADABLE = "unreadable"
CHANGED = "changed while reading"

ZIP_TIME = (1980, 1, 1, 0, 0, 0)
_FILE_ATTR = (stat.S_IFREG | 0o644) << 16
_RESERVED_PREFIX = ".classhub"
_SEGMENT_MAX = 255  # bytes, as the files service's MAX_SEGMENT_BYTES
_PATH_MAX = 900  # bytes, as the files service's MAX_PATH_BYTES
_INVISIBLE = frozenset({"Cc", "Cf", "Cs", "Zl", "Zp"})  # as the files service's

# kinds of directory entries
_DIR, _FILE, _LINK, _OTHER, _UNREADABLE = "dir", "file", "link", "other", "unreadable"


class SnapshotError(ValueError):
    """No snapshot (HTTP 400): a bad folder name, or the folder is or lies under a link."""


class SnapshotMissing(SnapshotError):
    """The folder does not exist (HTTP 404)."""


class SnapshotTooLarge(SnapshotError):
    """The folder is over ``max_files`` or ``max_bytes`` (HTTP 413)."""


@dataclass
class SnapshotInfo:
    """What went into a snapshot; ``skipped`` is ``[{"path": ..., "reason": ...}]``."""

    files: int = 0
    bytes: int = 0
    sha256: str = ""
    skipped: list[dict[str, str]] = field(default_factory=list)


# ----- names -----


def check_folder(folder: str) -> list[str]:
    """The parts of ``folder`` (relative to home), or SnapshotError saying what is wrong.

    The rules of :func:`.fsutil.check_path` (as material's ``check_dest``): relative, no
    empty, ``.`` or ``..`` part, no backslash, no control or invisible character; and no
    part starting with ``.classhub``.
    """
    parts = fsutil.check_path(folder, "folder", SnapshotError)
    for part in parts:
        if part.casefold().startswith(_RESERVED_PREFIX):
            raise SnapshotError(f"Bad folder {folder!r}: {_RESERVED_PREFIX} is reserved.")
    return parts


def _name_problem(rel: str, name: str) -> bool:
    """Whether the files service would refuse ``rel`` (its last part ``name``) as a path.

    Only ``name`` is checked for characters: the parts before it were checked as folders.
    """
    import unicodedata

    if "\\" in name or name != name.strip():
        return True
    if name.casefold().startswith(_RESERVED_PREFIX):
        return True
    if any(unicodedata.category(ch) in _INVISIBLE for ch in name):
        return True  # lone surrogates (names that are not UTF-8) are category Cs
    nfc = unicodedata.normalize("NFC", rel)
    return (
        len(unicodedata.normalize("NFC", name).encode("utf-8")) > _SEGMENT_MAX
        or len(nfc.encode("utf-8")) > _PATH_MAX
    )


def content_hash(files: Iterable[tuple[str, str]]) -> str:
    """The snapshot's hash: over ``(name, sha256 hex of the content)`` pairs.

    SHA-256 of, for each file in order of the UTF-8 bytes of its name,
    ``name (UTF-8) + b"\\0" + sha256 hex (ASCII) + b"\\n"``. It depends on names and
    contents only, so a copy can be checked with any zip reader.
    """
    h = hashlib.sha256()
    for name, digest in sorted(files, key=lambda item: item[0].encode("utf-8")):
        h.update(name.encode("utf-8") + b"\0" + digest.encode("ascii") + b"\n")
    return h.hexdigest()


def _size(n: int) -> str:
    if n >= 1 << 20 and n % (1 << 20) == 0:
        return f"{n >> 20} MiB"
    if n >= 1 << 20:
        return f"{n / (1 << 20):.1f} MiB"
    return f"{n} bytes"


# ----- the file system (all relative to directory descriptors, no link followed) -----


def _open_folder(home_fd: int, parts: list[str], folder: str) -> int:
    """A descriptor for ``home/folder``; SnapshotError if it or a parent is a link."""
    try:
        return fsutil.open_dir(home_fd, parts)
    except fsutil.Blocked as e:
        shown = "/".join(["~", *parts[: e.depth + 1]])
        if e.kind in (fsutil.MISSING, fsutil.GONE):
            raise SnapshotMissing(f"The folder {folder} does not exist in your server.") from None
        if e.kind == fsutil.LINK:
            raise SnapshotError(
                f"{shown} is a link (symlink); classhub does not follow links."
                " Move the work into a real folder and try again."
            ) from None
        if e.kind == fsutil.REFUSED:
            why = e.error.strerror or type(e.error).__name__
            raise SnapshotError(f"{shown} cannot be read ({why}).") from None
        raise SnapshotMissing(
            f"The folder {folder} does not exist in your server ({shown} is not a folder)."
        ) from None


def _list(fd: int) -> list[tuple[bytes, str, str]]:
    """``(sort key, name, kind)`` of the entries of folder ``fd``, sorted.

    The key is the name's bytes, with ``/`` after a folder's: sorting each folder by it
    and walking depth-first gives the order of the whole names' bytes.
    """
    entries = []
    with os.scandir(fd) as it:
        for entry in it:
            name = entry.name
            try:
                if entry.is_symlink():
                    kind = _LINK
                elif entry.is_dir(follow_symlinks=False):
                    kind = _DIR
                elif entry.is_file(follow_symlinks=False):
                    kind = _FILE
                else:
                    kind = _OTHER
            except FileNotFoundError:
                continue  # gone since the listing
            except OSError:  # its type could not be read (no search permission)
                kind = _UNREADABLE
            key = name.encode("utf-8", "surrogateescape")
            entries.append((key + b"/" if kind == _DIR else key, name, kind))
    entries.sort()
    return entries


class _Walk:
    def __init__(
        self,
        archive: zipfile.ZipFile | None,
        folder: str,
        max_files: int,
        max_bytes: int,
        exclude: Iterable[str],
    ):
        import fnmatch

        self.archive = archive
        self.folder = folder
        self.max_files = max_files
        self.max_bytes = max_bytes
        self.exclude = tuple(exclude)
        self.match = fnmatch.fnmatchcase
        self.info = SnapshotInfo()
        self.hashes: list[tuple[str, str]] = []
        self.seen: set[str] = set()  # NFC names taken (folders with a trailing "/")

    def skip(self, path: str, reason: str) -> None:
        self.info.skipped.append({"path": path, "reason": reason})

    def excluded(self, name: str) -> bool:
        return any(self.match(name, pattern) for pattern in self.exclude)

    def folder_fd(self, fd: int, name: str, shown: str) -> int | None:
        try:
            return os.open(name, fsutil.O_DIR, dir_fd=fd)
        except FileNotFoundError:
            return None
        except OSError as e:
            if e.errno == errno.ELOOP:
                self.skip(shown, LINK)
            elif e.errno == errno.ENOTDIR:
                self.skip(shown, CHANGED)
            else:
                self.skip(shown, UNREADABLE)
            return None

    def walk(self, fd: int, prefix: str, depth: int) -> None:
        """Add the files under folder ``fd`` (named ``prefix``, ``depth`` parts deep)."""
        import unicodedata

        try:
            entries = _list(fd)
        except PermissionError:
            self.skip(prefix, UNREADABLE)
            return
        for _key, name, kind in entries:
            rel = prefix + name
            shown = rel + "/" if kind == _DIR else rel
            if self.excluded(name):
                self.skip(shown, EXCLUDED)
                continue
            if kind == _LINK:
                self.skip(shown, LINK)
                continue
            if kind == _OTHER:
                self.skip(shown, SPECIAL)
                continue
            if kind == _UNREADABLE:
                self.skip(shown, UNREADABLE)
                continue
            if _name_problem(rel, name):
                self.skip(shown, BAD_NAME)
                continue
            nfc = unicodedata.normalize("NFC", shown)
            if nfc in self.seen:
                self.skip(shown, BAD_NAME)
                continue
            self.seen.add(nfc)
            if kind == _FILE:
                self.file(fd, name, rel)
                continue
            if depth + 2 > MAX_DEPTH:  # its files would be depth + 2 parts deep
                self.skip(shown, TOO_DEEP)
                continue
            sub = self.folder_fd(fd, name, shown)
            if sub is not None:
                try:
                    self.walk(sub, shown, depth + 1)
                finally:
                    os.close(sub)

    def file(self, dir_fd: int, name: str, rel: str) -> None:
        import zipfile

        try:
            fd = os.open(name, fsutil.O_READ, dir_fd=dir_fd)
        except FileNotFoundError:
            return  # deleted since the listing
        except OSError as e:
            self.skip(rel, LINK if e.errno == errno.ELOOP else UNREADABLE)
            return
        try:
            st = os.fstat(fd)
            if not stat.S_ISREG(st.st_mode):
                self.skip(rel, CHANGED)
                return
            info = self.info
            if info.files >= self.max_files:
                raise SnapshotTooLarge(
                    f"~/{self.folder} has more than {self.max_files} files; a snapshot can"
                    f" hold at most {self.max_files}. Remove files that are not part of the"
                    " work (or move them to another folder) and try again."
                )
            budget = self.max_bytes - info.bytes  # what this file may still hold
            if st.st_size > budget:
                self.too_large()
            zinfo = zipfile.ZipInfo(rel, date_time=ZIP_TIME)
            zinfo.compress_type = zipfile.ZIP_DEFLATED
            zinfo._compresslevel = COMPRESS_LEVEL  # compress_level from Python 3.13 on
            zinfo.create_system = 3  # Unix, whatever the platform, for the same bytes
            zinfo.external_attr = _FILE_ATTR
            zinfo.file_size = st.st_size  # lets zipfile choose zip64 by the expected size
            h = hashlib.sha256()
            size = 0
            with self.archive.open(zinfo, "w") as out:
                # Read to the end as it is now (a file may grow or shrink meanwhile), never
                # past the budget.
                while chunk := os.read(fd, min(fsutil.CHUNK, budget - size + 1)):
                    size += len(chunk)
                    if size > budget:
                        self.too_large()
                    h.update(chunk)
                    out.write(chunk)
            info.files += 1
            info.bytes += size
            self.hashes.append((rel, h.hexdigest()))
        finally:
            os.close(fd)

    def too_large(self) -> None:
        raise SnapshotTooLarge(
            f"~/{self.folder} holds more than {_size(self.max_bytes)} of files; a snapshot"
            f" can hold at most {_size(self.max_bytes)}. Remove large files that are not"
            " part of the work (data, downloads) and try again."
        )


def snapshot(
    home: Path | str,
    folder: str,
    out: BinaryIO,
    *,
    max_files: int = MAX_FILES,
    max_bytes: int = MAX_BYTES,
    exclude: Iterable[str] = DEFAULT_EXCLUDE,
) -> SnapshotInfo:
    """Write the zip of ``home/folder`` to ``out`` (see the module docstring).

    ``exclude`` holds patterns (``fnmatch``, case-sensitive) matched against each file's
    and folder's own name. Raises SnapshotError for a bad ``folder`` or one that is or lies
    under a link, SnapshotMissing if it does not exist, SnapshotTooLarge as soon as more
    than ``max_files`` files or ``max_bytes`` bytes are found (counted while reading);
    ``out`` then holds a partial zip, to be thrown away.
    """
    import zipfile

    parts = check_folder(folder)
    home_fd = os.open(Path(home), os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        top = _open_folder(home_fd, parts, folder)
    finally:
        os.close(home_fd)
    try:
        with zipfile.ZipFile(
            out, "w", zipfile.ZIP_DEFLATED, compresslevel=COMPRESS_LEVEL
        ) as archive:
            walk = _Walk(archive, folder, max_files, max_bytes, exclude)
            walk.walk(top, "", 0)
    finally:
        os.close(top)
    info = walk.info
    info.sha256 = content_hash(walk.hashes)
    return info
