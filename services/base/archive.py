"""Safe unpacking of uploaded zip archives, and building zips (pure: no S3).

Teachers upload whole folders as one zip. :func:`plan` checks every member before a
single byte is unpacked (names, types, encryption, counts, declared sizes, compression
ratios); :func:`read_entry` then streams each planned file and stops as soon as the
real bytes exceed what was declared or what a :class:`Budget` allows, because the sizes
in a zip's directory are only claims.
"""

from __future__ import annotations

import copy
import stat
import zipfile
import zlib
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import BinaryIO

from .names import BadName, quoted, validate_folder, validate_path
from .zipdir import ZipDirectoryRefused, check_directory

MiB = 1024 * 1024
#: entries at most this big are never refused for their compression ratio
RATIO_FLOOR = MiB
#: the fixed timestamp (the earliest a zip can hold) that makes :func:`build_zip` repeatable
ZIP_EPOCH = (1980, 1, 1, 0, 0, 0)
_SUPPORTED = frozenset(
    {zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED, zipfile.ZIP_BZIP2, zipfile.ZIP_LZMA}
)
_NO_LIMIT = 2**62
DIRECTORY_BYTES_PER_ENTRY = 512
_UTF8_FLAG = 0x800
_ENCRYPTED_FLAG = 0x1
_READ_ERRORS = (
    zipfile.BadZipFile,
    zlib.error,
    EOFError,
    OSError,
    NotImplementedError,
    RuntimeError,
    ValueError,  # a negative seek from a damaged offset
)


class BadArchive(ValueError):
    """An archive that cannot be unpacked; ``str()`` says which member and why."""


@dataclass(frozen=True)
class Limits:
    """How much one archive may unpack to."""

    max_files: int = 2000
    max_total_bytes: int = 512 * MiB
    max_file_bytes: int = 256 * MiB
    #: unpacked/packed size above which an entry bigger than 1 MiB counts as a zip bomb
    max_ratio: int = 200

    @property
    def max_entries(self) -> int:
        """The most entries the archive's directory may list: files, plus their folders
        and the extras macOS adds to every file (``__MACOSX/._name``)."""
        return 3 * self.max_files + 100

    @property
    def max_directory_bytes(self) -> int:
        """The most bytes its directory may take (512 per entry on average; the longest
        name classhub accepts is 900 bytes): what ``zipfile`` reads into memory."""
        return self.max_entries * DIRECTORY_BYTES_PER_ENTRY


@dataclass(frozen=True)
class Entry:
    """One file to unpack: its validated destination path and its declared size."""

    path: str
    info: zipfile.ZipInfo
    size: int


class Budget:
    """The bytes one archive has unpacked so far; pass one to every :func:`read_entry`."""

    def __init__(self, limits: Limits):
        self.limits = limits
        self.used = 0

    def take(self, n: int) -> None:
        """Count ``n`` more bytes; raise :class:`BadArchive` past ``max_total_bytes``."""
        self.used += n
        if self.used > self.limits.max_total_bytes:
            raise BadArchive(
                f"the archive unpacks to more than {_size(self.limits.max_total_bytes)}"
            )


def _size(n: int) -> str:
    return f"{n / MiB:g} MiB" if n >= MiB else f"{n} bytes"


def _refuse(member: str, problem: str) -> BadArchive:
    return BadArchive(f"the archive member {quoted(member)} {problem}")


def open_zip(fileobj: BinaryIO, limits: Limits | None = None) -> zipfile.ZipFile:
    """Open an uploaded file as a zip, or raise :class:`BadArchive`.

    The archive's directory is checked against ``limits`` first, from the end records
    alone (:func:`~services.base.zipdir.check_directory`): ``zipfile`` reads the whole
    directory into memory, so millions of entries must be refused before it does."""
    limits = limits or Limits()
    try:
        check_directory(
            fileobj, max_entries=limits.max_entries, max_bytes=limits.max_directory_bytes
        )
    except ZipDirectoryRefused as e:
        raise BadArchive(str(e)) from e
    except OSError as e:
        raise BadArchive(f"the uploaded file cannot be read ({e})") from e
    try:
        return zipfile.ZipFile(fileobj)
    except (zipfile.BadZipFile, EOFError, OSError, NotImplementedError, ValueError) as e:
        raise BadArchive(f"the uploaded file is not a zip archive or it is damaged ({e})") from e


def member_name(info: zipfile.ZipInfo) -> str:
    """The member's name as stored (before zipfile cuts it at a NUL byte).

    Names without the zip's UTF-8 flag are read as cp437; many tools write UTF-8 without
    setting the flag, so such a name is re-read as UTF-8 when its bytes allow it.
    """
    name = info.orig_filename
    if info.flag_bits & _UTF8_FLAG or name.isascii():
        return name
    try:
        return name.encode("cp437").decode("utf-8")
    except UnicodeError:
        return name


def _is_junk(name: str) -> bool:
    """Files macOS adds to every zip it makes; skipped without a word."""
    parts = name.split("/")
    return "__MACOSX" in parts or parts[-1] == ".DS_Store"


def _destination(name: str, root: str) -> str:
    """The validated path ``name`` unpacks to under the folder ``root``."""
    try:
        validate_path(name)
    except BadName as e:
        raise _refuse(name, f"has a name that cannot be used: {e.problem}") from e
    try:
        return validate_path(f"{root}/{name}" if root else name)
    except BadName as e:
        raise _refuse(name, f"cannot go into the folder {quoted(root)}: {e.problem}") from e


def _check_member(name: str, info: zipfile.ZipInfo, limits: Limits) -> None:
    """Refuse a member that is not a plain, readable file of acceptable size."""
    if stat.S_ISLNK(info.external_attr >> 16):
        raise _refuse(name, "is a symbolic link; only plain files can be unpacked")
    if info.flag_bits & _ENCRYPTED_FLAG:
        raise _refuse(name, "is encrypted; upload an archive without a password")
    if info.compress_type not in _SUPPORTED:
        raise _refuse(name, "uses a compression method classhub cannot read")
    if info.file_size > limits.max_file_bytes:
        raise _refuse(name, f"is larger than {_size(limits.max_file_bytes)}")
    ratio = info.file_size / max(info.compress_size, 1)
    if info.file_size > RATIO_FLOOR and ratio > limits.max_ratio:
        raise _refuse(name, f"is compressed {ratio:.0f} to 1, which looks like a zip bomb")


def _check_clashes(entries: list[Entry]) -> None:
    """Refuse two members with one path, or a path that is both a file and a folder."""
    files: dict[str, str] = {}
    folders: dict[str, str] = {}
    for entry in entries:
        name = member_name(entry.info)
        if entry.path in files:
            raise _refuse(name, f"has the same name as {quoted(files[entry.path])}")
        files[entry.path] = name
        parts = entry.path.split("/")
        for i in range(1, len(parts)):
            folders.setdefault("/".join(parts[:i]), name)
    for path, name in files.items():
        if path in folders:
            raise _refuse(name, f"is a file, but {quoted(folders[path])} uses it as a folder")


def plan(zf: zipfile.ZipFile, limits: Limits, *, root: str = "") -> list[Entry]:
    """Check every member of ``zf`` and return the files to unpack, in archive order.

    Nothing is read yet. Folder entries are skipped (folders follow from the file
    paths), and so is macOS junk: anything under ``__MACOSX/`` and ``.DS_Store`` files.
    Every other member must have a name :func:`~services.base.names.validate_path`
    accepts once put under ``root`` (backslashes are refused, not converted), be a plain
    unencrypted file within ``limits`` (count, size, total, compression ratio), and not
    clash with another member. Raises :class:`BadArchive` naming the first bad member
    (and :class:`~services.base.names.BadName` for a bad ``root``).
    """
    root = validate_folder(root)
    entries: list[Entry] = []
    total = 0
    for info in zf.infolist():
        name = member_name(info)
        if _is_junk(name) or name.endswith("/"):
            continue
        path = _destination(name, root)
        _check_member(name, info, limits)
        if len(entries) >= limits.max_files:
            raise _refuse(name, f"is one file too many: at most {limits.max_files} are allowed")
        total += info.file_size
        if total > limits.max_total_bytes:
            raise _refuse(name, f"takes the archive over {_size(limits.max_total_bytes)}")
        entries.append(Entry(path, info, info.file_size))
    _check_clashes(entries)
    return entries


def read_entry(
    zf: zipfile.ZipFile, entry: Entry, budget: Budget, chunk_size: int = MiB
) -> Iterator[bytes]:
    """Yield the bytes of ``entry`` in chunks of at most ``chunk_size``.

    Raises :class:`BadArchive` as soon as the data is longer than the declared size or
    ``max_file_bytes``, when ``budget`` runs out, or when the data is damaged.
    """
    limit = min(entry.size, budget.limits.max_file_bytes)
    name = member_name(entry.info)
    done = 0
    try:
        with zf.open(_unbounded(entry.info)) as f:
            while chunk := f.read(min(chunk_size, limit + 1 - done)):
                done += len(chunk)
                if done > limit:
                    raise _too_big(name, entry.size, limit)
                budget.take(len(chunk))
                yield chunk
    except BadArchive:
        raise
    except _READ_ERRORS as e:
        raise _refuse(name, f"is damaged and cannot be unpacked ({e})") from e
    if done < entry.size:
        raise _refuse(name, "is damaged: it holds fewer bytes than it declares")


def _unbounded(info: zipfile.ZipInfo) -> zipfile.ZipInfo:
    """A copy of ``info`` that lets zipfile read past the declared size.

    zipfile stops at the declared size without a word (or fails its CRC check there), so
    a lie can only be seen by reading on; :func:`read_entry` counts the bytes itself.
    """
    probe = copy.copy(info)
    probe.file_size = _NO_LIMIT
    return probe


def _too_big(name: str, declared: int, limit: int) -> BadArchive:
    if limit < declared:
        return _refuse(name, f"is larger than {_size(limit)}")
    return _refuse(name, f"holds more than the {_size(declared)} it declares (a zip bomb?)")


def build_zip(files: Iterable[tuple[str, bytes]], fileobj: BinaryIO) -> None:
    """Write ``files`` (path, content) as a deflate zip to ``fileobj``.

    Timestamps are fixed to 1980-01-01 and modes to 0644, so the same files give the same
    bytes. Paths must pass :func:`~services.base.names.validate_path`; a path given twice
    raises ValueError.
    """
    seen: set[str] = set()
    with zipfile.ZipFile(fileobj, "w", compression=zipfile.ZIP_DEFLATED) as zf:
        for path, data in files:
            path = validate_path(path)
            if path in seen:
                raise ValueError(f"{quoted(path)} is in the zip twice")
            seen.add(path)
            info = zipfile.ZipInfo(path, date_time=ZIP_EPOCH)
            info.compress_type = zipfile.ZIP_DEFLATED
            info.create_system = 3  # unix, so the mode below is read
            info.external_attr = (stat.S_IFREG | 0o644) << 16
            zf.writestr(info, data)
