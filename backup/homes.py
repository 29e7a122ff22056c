"""Student homes: a read-only btrfs snapshot of each, archived with tar; restored into a
new subvolume with its size limit that replaces the home in one rename.

The snapshot makes the archive consistent while the student works: it is the home as
it was at one instant (btrfs copies nothing; the snapshot shares the home's data), and
tar reads the snapshot, not the live home. Snapshots are made beside the homes under a
hidden name (``.backup-...``: never a home volume, never mounted by anybody) and deleted
once archived.

Archives keep what a home folder holds: folders, files, symbolic links and hard links,
with their modes, numeric owners and modification times. Sockets, device nodes and
FIFOs (which no student needs to keep, and a restore must never create) are left out,
and so are extended attributes.
"""

from __future__ import annotations

import hashlib
import os
import secrets
import stat
import tarfile
from collections.abc import Callable
from dataclasses import dataclass

from spawner import btrfs
from spawner import homes as spawner_homes

from .manifest import BackupError

SNAPSHOT_PREFIX = ".backup-"
RESTORE_PREFIX = ".restore-"
REPLACED_PREFIX = ".replaced-"
KEPT = (stat.S_IFDIR, stat.S_IFREG, stat.S_IFLNK)
#: tarfile copies file contents in blocks of this size (its default, 16 KiB, costs time)
COPY_BUFFER = 1 << 20


def home_volumes(root: str) -> list[str]:
    """The homes on the homes filesystem mounted at ``root``: its subvolumes whose names
    are home volume names (hidden ones are snapshots and homes being made)."""
    found = []
    for name in sorted(os.listdir(root)):
        if name.startswith("."):
            continue
        if btrfs.is_subvolume(os.path.join(root, name)):
            found.append(name)
    return found


# ----- fingerprint of a tree (pure but for reading it)


def _hash_file(path: str, h) -> int:
    size = 0
    with open(path, "rb") as f:
        while block := f.read(1 << 20):
            size += len(block)
            h.update(block)
    return size


def tree_fingerprint(root: str) -> dict:
    """``{"count", "bytes", "sha256"}`` of everything an archive of ``root`` keeps: each
    entry's path, kind, mode, owner, and a file's size, content and modification time
    (whole seconds), a link's target. The same tree gives the same fingerprint wherever
    it lies."""
    h = hashlib.sha256()
    count = total = 0

    def entry(path: str, rel: str) -> None:
        nonlocal count, total
        st = os.lstat(path)
        kind = stat.S_IFMT(st.st_mode)
        if kind not in KEPT:
            return
        count += 1
        head = f"{rel}\0{kind:o}\0{stat.S_IMODE(st.st_mode):o}\0{st.st_uid}\0{st.st_gid}\0"
        h.update(head.encode("utf-8", "surrogateescape"))
        if kind == stat.S_IFREG:
            content = hashlib.sha256()
            size = _hash_file(path, content)
            total += size
            h.update(f"{size}\0{int(st.st_mtime)}\0{content.hexdigest()}".encode())
        elif kind == stat.S_IFLNK:
            h.update(os.fsencode(os.readlink(path)))
        h.update(b"\n")

    entry(root, ".")
    for folder, dirs, files in os.walk(root):
        dirs.sort()
        for name in sorted(dirs + files):
            path = os.path.join(folder, name)
            entry(path, os.path.relpath(path, root))
        # os.walk does not descend into links to folders (followlinks=False)
    return {"count": count, "bytes": total, "sha256": h.hexdigest()}


# ----- archive


def _keep_member(info: tarfile.TarInfo) -> tarfile.TarInfo | None:
    if not (info.isdir() or info.isreg() or info.issym() or info.islnk()):
        return None
    info.uname = info.gname = ""  # numeric owners only: uid 1000 is the student everywhere
    return info


def archive(source: str, target: str) -> None:
    """``target`` (a new .tar.gz, 0600) with everything in the folder ``source``."""
    fd = os.open(target, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with (
        os.fdopen(fd, "wb") as raw,
        tarfile.open(fileobj=raw, mode="w:gz", compresslevel=1, format=tarfile.PAX_FORMAT) as tar,
    ):
        tar.add(source, arcname=".", recursive=True, filter=_keep_member)


def _member_check(symlinks: set[str]) -> Callable:
    """A tarfile extraction filter that refuses what an archive made by :func:`archive`
    never holds (an absolute path, ``..``, a device, a path through a symbolic link) and
    keeps everything else exactly (modes and owners included)."""

    def check(member: tarfile.TarInfo, dest: str) -> tarfile.TarInfo:
        name = member.name
        while name.startswith("./"):
            name = name[2:]
        parts = [p for p in name.split("/") if p not in ("", ".")]
        if member.name.startswith("/") or ".." in parts:
            raise BackupError(f"refusing archive member {member.name!r}: outside the home")
        if not (member.isdir() or member.isreg() or member.issym() or member.islnk()):
            raise BackupError(f"refusing archive member {member.name!r}: not a file or folder")
        for i in range(1, len(parts)):
            if "/".join(parts[:i]) in symlinks:
                raise BackupError(f"refusing archive member {member.name!r}: through a link")
        if member.islnk():
            target = [p for p in member.linkname.split("/") if p not in ("", ".")]
            if member.linkname.startswith("/") or ".." in target:
                raise BackupError(f"refusing hard link {member.name!r}: outside the home")
        if member.issym():
            symlinks.add("/".join(parts))
        return member

    return check


def extract(archive_path: str, target: str) -> None:
    """Unpack an archive made by :func:`archive` into the empty folder ``target``, with
    its owners and modes (as root)."""
    with tarfile.open(archive_path, mode="r:gz", copybufsize=COPY_BUFFER) as tar:
        # every member goes through _member_check (paths, kinds, links) before it is made
        tar.extractall(target, numeric_owner=True, filter=_member_check(set()))  # noqa: S202


# ----- back up one home


@dataclass(frozen=True)
class ArchivedHome:
    volume: str
    fingerprint: dict


def backup_home(root: str, volume: str, target: str) -> ArchivedHome:
    """Snapshot the home ``volume`` (read-only), archive the snapshot to ``target``,
    delete the snapshot. Returns the snapshot's fingerprint."""
    path = spawner_homes.subvolume_path(root, volume)
    name = f"{SNAPSHOT_PREFIX}{secrets.token_hex(4)}-{volume}"[: btrfs.NAME_MAX]
    snap = btrfs.snapshot(path, root, name, readonly=True)
    try:
        fingerprint = tree_fingerprint(snap)
        archive(snap, target)
    finally:
        btrfs.delete_subvolume(root, name)
    return ArchivedHome(volume, fingerprint)


def remove_leftover_snapshots(root: str) -> list[str]:
    """Delete snapshots an interrupted backup left behind; their names."""
    gone = []
    for name in sorted(os.listdir(root)):
        if name.startswith(SNAPSHOT_PREFIX) and btrfs.is_subvolume(os.path.join(root, name)):
            btrfs.delete_subvolume(root, name)
            gone.append(name)
    return gone


# ----- restore one home


def home_limit(root: str, volume: str) -> int | None:
    """The size limit of an existing home, or None (no home, or no limit)."""
    usage = spawner_homes.home_usage(root, volume)
    return None if usage is None else usage.quota


def restore_home(root: str, volume: str, archive_path: str, quota: int) -> str:
    """Replace the home ``volume`` (or make it) with the archive's contents, limited to
    ``quota`` bytes. The archive is unpacked into a new subvolume first; only when that
    worked does it take the home's name (the old home is deleted after), so a failed
    restore leaves the home as it was. Returns the home's path."""
    path = spawner_homes.subvolume_path(root, volume)
    if os.path.lexists(path) and not btrfs.is_subvolume(path):
        raise BackupError(f"{path} exists but is not a btrfs subvolume; move it away first")
    token = secrets.token_hex(4)
    temp = f"{RESTORE_PREFIX}{token}-{volume}"[: btrfs.NAME_MAX]
    made = btrfs.create_subvolume(root, temp)
    try:
        spawner_homes._limit(root, made, quota)
        try:
            extract(archive_path, made)
        except OSError as e:
            if e.errno == 122:  # EDQUOT
                raise BackupError(
                    f"the archive holds more than the home's limit ({quota} bytes): restore it "
                    "with a larger CLASSHUB_HOME_QUOTA (make restore-home QUOTA=5G)"
                ) from None
            raise
        old = None
        if os.path.lexists(path):
            old = f"{REPLACED_PREFIX}{token}-{volume}"[: btrfs.NAME_MAX]
            os.rename(path, os.path.join(root, old))
        try:
            os.rename(made, path)
        except OSError:
            if old:
                os.rename(os.path.join(root, old), path)
            raise
    except BaseException:
        spawner_homes._discard(root, temp)
        raise
    if old:
        spawner_homes._delete(root, old)
    return path
