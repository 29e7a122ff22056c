"""Refuse a zip by the size of its central directory, before ``zipfile`` reads it.

``zipfile.ZipFile(f)`` reads the whole central directory into memory and makes one
``ZipInfo`` per entry before any limit on the number of files can be checked: an upload
of a few hundred MB that holds millions of empty entries (or claims a directory of
gigabytes) costs gigabytes of memory there. :func:`check_directory` reads only the end of
the file (the end-of-central-directory record, the zip64 locator and the zip64 record:
at most 64 KiB + 98 bytes) and refuses an archive whose directory is larger, or claims
more entries, than the limits, before anything else is read.

Every reading ``zipfile`` might act on counts: the 32-bit record and the zip64 record
both where Python 3.11 looks for it (just before the locator) and where the locator points
(newer Pythons, other tools); the largest claim decides. ``zipfile`` then reads at most
the directory size that passed here (the bytes just before the end record), so a lying
entry count gains an attacker nothing.
"""

from __future__ import annotations

import os
import struct
from dataclasses import dataclass
from typing import BinaryIO

#: signature, disk, directory's disk, entries on this disk, entries, size, offset, comment
EOCD = struct.Struct("<4s4H2LH")
EOCD_SIG = b"PK\x05\x06"
#: signature, disk of the zip64 record, its offset, number of disks
LOCATOR = struct.Struct("<4sLQL")
LOCATOR_SIG = b"PK\x06\x07"
#: signature, record size, made by, needed, disk, directory's disk, entries on this disk,
#: entries, directory size, directory offset
ZIP64 = struct.Struct("<4sQ2H2L4Q")
ZIP64_SIG = b"PK\x06\x06"
SEARCHED = (1 << 16) + EOCD.size  # as zipfile: the longest comment and the record
#: the 32-bit record's "see the zip64 record" values
MARK16, MARK32 = 0xFFFF, 0xFFFFFFFF


class ZipDirectoryRefused(ValueError):
    """The archive's directory is too large, or the file is no zip; ``str()`` says which
    in words a teacher understands."""


@dataclass(frozen=True)
class Directory:
    """What the end of an archive claims about its central directory (largest claims)."""

    entries: int
    size: int
    zip64: bool


def _end_record(fileobj: BinaryIO, length: int) -> tuple[int, tuple]:
    """``(position, fields)`` of the end-of-central-directory record, found as zipfile
    finds it: at the very end, else the last signature in the last 64 KiB + 22 bytes."""
    if length >= EOCD.size:
        fileobj.seek(length - EOCD.size)
        tail = fileobj.read(EOCD.size)
        if tail[:4] == EOCD_SIG and tail[-2:] == b"\0\0":
            return length - EOCD.size, EOCD.unpack(tail)
    start = max(0, length - SEARCHED)
    fileobj.seek(start)
    data = fileobj.read(length - start)
    at = data.rfind(EOCD_SIG)
    if at < 0 or len(data) - at < EOCD.size:
        raise ZipDirectoryRefused(
            "the uploaded file is not a zip archive (it has no zip directory)"
        )
    return start + at, EOCD.unpack_from(data, at)


def _zip64_records(fileobj: BinaryIO, eocd_at: int) -> list[tuple]:
    """The zip64 end records the archive may mean (none without a locator)."""
    if eocd_at < LOCATOR.size:
        return []
    fileobj.seek(eocd_at - LOCATOR.size)
    sig, disk, offset, disks = LOCATOR.unpack(fileobj.read(LOCATOR.size))
    if sig != LOCATOR_SIG:
        return []
    if disk != 0 or disks > 1:
        raise ZipDirectoryRefused("the archive spans several files (disks); upload one zip file")
    records = []
    for at in dict.fromkeys((eocd_at - LOCATOR.size - ZIP64.size, offset)):
        if 0 <= at <= eocd_at - ZIP64.size:
            fileobj.seek(at)
            raw = fileobj.read(ZIP64.size)
            if len(raw) == ZIP64.size and raw[:4] == ZIP64_SIG:
                records.append(ZIP64.unpack(raw))
    return records


def read_directory(fileobj: BinaryIO) -> Directory:
    """The largest entry count and directory size the archive's end records claim.
    Reads at most 64 KiB + 98 bytes from the end; leaves the position at the start."""
    length = fileobj.seek(0, os.SEEK_END)
    try:
        eocd_at, eocd = _end_record(fileobj, length)
        (_, disk, cd_disk, here32, entries32, size32, _, _) = eocd
        if disk != 0 or cd_disk != 0:
            raise ZipDirectoryRefused(
                "the archive spans several files (disks); upload one zip file"
            )
        records = _zip64_records(fileobj, eocd_at)
    finally:
        fileobj.seek(0)
    entries = [n for n in (here32, entries32) if not (records and n == MARK16)]
    sizes = [] if records and size32 == MARK32 else [size32]
    for record in records:
        entries += [record[6], record[7]]  # entries on this disk, entries in all
        sizes.append(record[8])
    return Directory(max(entries, default=0), max(sizes, default=0), bool(records))


def check_directory(fileobj: BinaryIO, *, max_entries: int, max_bytes: int) -> Directory:
    """Refuse (:class:`ZipDirectoryRefused`) an archive whose directory claims more than
    ``max_entries`` entries or ``max_bytes`` bytes; else what it claims. Pure apart from
    reading the end of ``fileobj``; call it before ``zipfile.ZipFile(fileobj)``."""
    directory = read_directory(fileobj)
    if directory.entries > max_entries:
        raise ZipDirectoryRefused(
            f"the archive holds {directory.entries:,} entries; at most {max_entries:,} "
            "(files and folders together) can be unpacked"
        )
    if directory.size > max_bytes:
        raise ZipDirectoryRefused(
            f"the archive's list of contents takes {directory.size:,} bytes, more than the "
            f"{max_bytes:,} an archive of at most {max_entries:,} entries needs"
        )
    return directory
