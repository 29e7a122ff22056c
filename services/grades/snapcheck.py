"""The one check of a snapshot's bytes before it is stored: its zip directory.

A snapshot comes from the student's own server, which the student controls, so its bytes
and its ``X-Classhub-Files`` header are claims. Nothing in the service unpacks a snapshot
today, but whatever opens one later (a teacher's viewer, a re-check) must not meet a zip
whose directory lists millions of entries: :func:`snapshot_files` refuses a snapshot whose
directory is larger than classhub's own snapshots can be (at most
:data:`MAX_SNAPSHOT_FILES` files, like the image's extension) before it is stored, and
counts the files from the zip itself rather than from the header.
"""

from __future__ import annotations

import io

from common.errors import Conflict
from services.base.zipdir import ZipDirectoryRefused, check_directory

#: the most files a snapshot holds (the extension's MAX_FILES)
MAX_SNAPSHOT_FILES = 2000
#: directory bytes per file: a name of up to 900 bytes, the zip64 extra field, headers
DIRECTORY_BYTES_PER_FILE = 1024


class BadSnapshot(Conflict):
    """The snapshot the student's server sent is not one classhub makes."""


def snapshot_files(data: bytes, *, max_files: int = MAX_SNAPSHOT_FILES) -> int:
    """The number of files in the snapshot zip ``data`` (its directory's entries), or
    :class:`BadSnapshot` when it is no zip or its directory is too large."""
    try:
        directory = check_directory(
            io.BytesIO(data),
            max_entries=max_files,
            max_bytes=max_files * DIRECTORY_BYTES_PER_FILE,
        )
    except ZipDirectoryRefused as e:
        raise BadSnapshot(
            f"The snapshot your server sent was refused: {e}. Nothing was handed in."
        ) from None
    return directory.entries
