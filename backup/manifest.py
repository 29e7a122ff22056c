"""The manifest of a backup, and the pure choices around it.

A backup is one directory, ``<destination>/<name>`` with ``name`` the UTC time it was
started (``20261206T190000Z``), holding:

``manifest.json``
    what is in it: every file with its size and SHA-256, and a fingerprint of every part
    (each table, collection, bucket and home) taken from the data that went into the
    backup, so a restore can prove that the stores now hold exactly that.
``postgres/<database>.dump``
    ``pg_dump -Fc`` of each database.
``mongo/<database>/<collection>.bson`` and ``.metadata.json``
    every document (BSON, one after the other) and the indexes: ``mongodump``'s layout,
    which ``mongorestore`` reads too.
``s3/index.json`` and ``s3/objects/<sha256>``
    every object of every bucket, stored once per content.
``homes/<volume>.tar.gz``
    each student home.

A backup being written is ``<name>.partial``; it gets its name only once its manifest is
written, so a directory without ``.partial`` is complete. Nothing here does any I/O but
:func:`file_digest`, :func:`read` and :func:`write`.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

FORMAT = "classhub-backup/1"
MANIFEST = "manifest.json"
PARTIAL = ".partial"
#: a backup's name: the UTC second it started (sorts in time order)
NAME = re.compile(r"^\d{8}T\d{6}Z$")
PARTS = ("postgres", "mongo", "s3", "homes")


class BackupError(Exception):
    """A backup or restore cannot go on; the message says what to do."""


def backup_name(now: float) -> str:
    """The name of a backup started at ``now`` (seconds since the epoch)."""
    return time.strftime("%Y%m%dT%H%M%SZ", time.gmtime(now))


def file_digest(path: str, chunk: int = 1 << 20) -> tuple[int, str]:
    """``(size, sha256 hex)`` of a file."""
    h = hashlib.sha256()
    size = 0
    with open(path, "rb") as f:
        while block := f.read(chunk):
            h.update(block)
            size += len(block)
    return size, h.hexdigest()


@dataclass
class Manifest:
    """What one backup holds (``manifest.json``)."""

    name: str
    created: float
    deployment: str
    #: relative path -> {"size": bytes, "sha256": hex}
    files: dict[str, dict] = field(default_factory=dict)
    #: part -> what the part says about itself (databases, fingerprints, homes)
    parts: dict[str, dict] = field(default_factory=dict)
    finished: float | None = None
    warnings: list[str] = field(default_factory=list)

    def add_file(self, relpath: str, size: int, sha256: str) -> None:
        if relpath.startswith("/") or ".." in relpath.split("/"):
            raise ValueError(f"{relpath!r} is not a path inside the backup")
        self.files[relpath] = {"size": size, "sha256": sha256}

    def as_json(self) -> dict:
        return {
            "format": FORMAT,
            "name": self.name,
            "created": self.created,
            "finished": self.finished,
            "deployment": self.deployment,
            "parts": self.parts,
            "files": dict(sorted(self.files.items())),
            "warnings": self.warnings,
        }

    @classmethod
    def from_json(cls, data: Mapping) -> Manifest:
        if data.get("format") != FORMAT:
            raise BackupError(
                f"this is not a classhub backup manifest of format {FORMAT} "
                f"(it says {data.get('format')!r})"
            )
        return cls(
            name=data["name"],
            created=data["created"],
            deployment=data.get("deployment", ""),
            files=dict(data.get("files") or {}),
            parts=dict(data.get("parts") or {}),
            finished=data.get("finished"),
            warnings=list(data.get("warnings") or []),
        )

    # ----- homes

    def homes(self) -> list[dict]:
        """The homes in this backup: ``{"volume", "suffix", "file", "fingerprint", ...}``."""
        return list((self.parts.get("homes") or {}).get("homes") or [])


def write(directory: str, manifest: Manifest) -> str:
    """Write ``manifest.json`` into ``directory`` (0600, atomically)."""
    path = os.path.join(directory, MANIFEST)
    temp = path + ".tmp"
    fd = os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as f:
        json.dump(manifest.as_json(), f, indent=1, sort_keys=False)
        f.write("\n")
    os.replace(temp, path)
    return path


def read(directory: str) -> Manifest:
    path = os.path.join(directory, MANIFEST)
    try:
        with open(path, encoding="utf-8") as f:
            data = json.load(f)
    except FileNotFoundError:
        raise BackupError(
            f"{directory} has no {MANIFEST}: it is not a backup, or one that did not finish"
        ) from None
    except json.JSONDecodeError as e:
        raise BackupError(f"{path} is damaged ({e})") from None
    return Manifest.from_json(data)


# ----- checks


def check_files(
    manifest: Manifest, found: Mapping[str, tuple[int, str] | None], *, only: Iterable[str] = ()
) -> list[str]:
    """Problems between the manifest's files and what is on disk: ``found`` maps each
    relative path to ``(size, sha256)``, or None when the file is missing. ``only``:
    check just these paths (a single home's archive). No problem: an empty list."""
    wanted = set(only) or set(manifest.files)
    problems = []
    for relpath in sorted(wanted):
        expected = manifest.files.get(relpath)
        if expected is None:
            problems.append(f"{relpath}: not in the manifest")
            continue
        got = found.get(relpath)
        if got is None:
            problems.append(f"{relpath}: missing")
        elif got[0] != expected["size"]:
            problems.append(f"{relpath}: {got[0]} bytes, the manifest says {expected['size']}")
        elif got[1] != expected["sha256"]:
            problems.append(f"{relpath}: its checksum differs from the manifest's (damaged)")
    return problems


def compare_fingerprints(expected: Mapping, actual: Mapping, what: str) -> list[str]:
    """Differences between two fingerprints (``{name: {"count", "sha256"}}``), as
    sentences: what is missing, extra or different."""
    problems = []
    for name in sorted(set(expected) | set(actual)):
        if name not in actual:
            problems.append(f"{what} {name}: in the backup, missing after the restore")
        elif name not in expected:
            problems.append(f"{what} {name}: not in the backup, present after the restore")
        elif expected[name] != actual[name]:
            e, a = expected[name], actual[name]
            detail = (
                f"{e.get('count')} items in the backup, {a.get('count')} now"
                if e.get("count") != a.get("count")
                else "same number of items, different contents"
            )
            problems.append(f"{what} {name} differs: {detail}")
    return problems


# ----- choosing backups


def complete_backups(names: Iterable[str]) -> list[str]:
    """The complete backups among directory names, oldest first."""
    return sorted(n for n in names if NAME.match(n))


def choose(names: Iterable[str], wanted: str) -> str:
    """The backup called ``wanted`` among ``names`` (``latest``: the newest complete one).
    ``wanted`` may also be a prefix that names exactly one (``20261206`` on a day with one
    backup)."""
    complete = complete_backups(names)
    if not complete:
        raise BackupError("there is no complete backup there yet (run make backup)")
    if wanted in ("", "latest"):
        return complete[-1]
    if wanted in complete:
        return wanted
    if wanted + PARTIAL in set(names):
        raise BackupError(
            f"backup {wanted} did not finish (it is {wanted}{PARTIAL}); choose another"
        )
    matches = [n for n in complete if n.startswith(wanted)]
    if len(matches) == 1:
        return matches[0]
    if matches:
        raise BackupError(
            f"{wanted!r} names {len(matches)} backups: {', '.join(matches)}; give one"
        )
    raise BackupError(f"no backup {wanted!r}; there are: {', '.join(complete[-10:])}")


def to_prune(names: Iterable[str], keep: int) -> list[str]:
    """The complete backups to delete so that the newest ``keep`` remain (``keep`` 0:
    keep all). Unfinished ``.partial`` directories are left for an admin to look at."""
    if keep <= 0:
        return []
    complete = complete_backups(names)
    return complete[: max(0, len(complete) - keep)]


def home_suffix(volume: str, prefix: str) -> str:
    """A home volume's name without its deployment prefix (``home-alice-<hash>``): how a
    home is found again in a deployment with another prefix."""
    head = prefix + "-"
    if prefix and volume.startswith(head + "home-"):
        return volume[len(head) :]
    return volume


def select_homes(manifest: Manifest, suffix: str, readable: str) -> tuple[dict | None, list[dict]]:
    """The home whose suffix is exactly ``suffix`` (the user's and server's own), and, when
    there is none, the user's other homes (suffixes that start with ``home-<readable>-``:
    their class servers), so the message can name them."""
    homes = manifest.homes()
    for home in homes:
        if home.get("suffix") == suffix:
            return home, []
    start = f"home-{readable}-"
    return None, [h for h in homes if str(h.get("suffix", "")).startswith(start)]
