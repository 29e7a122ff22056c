"""Student homes with a kernel-enforced size: one btrfs subvolume per home volume.

All homes live on one btrfs filesystem (a loop-mounted image made by
``classhub-homes mount``, i.e. ``make up``), never on the disk of the data stores. Each
home volume ``<prefix>-home-<user>[-<server>]-<hash>`` is the subvolume
``<root>/<volume name>``, and the Docker volume of that name is a bind of it (local
driver, ``type=none,o=bind``), so everything that mounts a home by its volume name keeps
working.

The size limit sits on a level-1 qgroup of its own, ``1/<subvolume id>``, that the
home's subvolume belongs to. With simple quotas (Linux 6.7+, what ``classhub-homes
mount`` turns on when it can), a subvolume or snapshot a student makes inside their home
joins that qgroup by itself, so it counts against the same limit; a limit on the home's
own ``0/<id>`` qgroup would not cover it.

Pure helpers first (names, Docker volume options, what an existing volume is); the
blocking functions below them run in the spawner's Docker thread pool.
"""

from __future__ import annotations

import errno
import os
import secrets
from dataclasses import dataclass

from common.hubenv import home_size

from . import btrfs

HOME_UID, HOME_GID = 1000, 100
#: a home being made, before it gets its final name (never mounted by anybody)
NEW_PREFIX = ".new-"

BIND, PLAIN, OTHER = "bind", "plain", "other"


class HomeError(Exception):
    """A home could not be made or read; the message says what an admin can do."""


def subvolume_path(root: str, volume: str) -> str:
    """Where the home volume ``volume`` lives on the homes filesystem."""
    if not volume or "/" in volume or volume.startswith(".") or len(volume) > btrfs.NAME_MAX:
        raise ValueError(f"{volume!r} is not a home volume name")
    return os.path.join(root, volume)


def volume_options(path: str) -> dict[str, str]:
    """``driver_opts`` of a local Docker volume that binds ``path``."""
    return {"type": "none", "o": "bind", "device": path}


def volume_kind(info: dict, path: str) -> str:
    """What an existing Docker volume is: ``bind`` (of the subvolume ``path``), ``plain``
    (a local volume with its data in Docker's own directory: made before homes had a
    size), or ``other`` (another driver or another bind: left alone)."""
    options = info.get("Options") or {}
    if info.get("Driver", "local") != "local":
        return OTHER
    if not options:
        return PLAIN
    if options.get("o") == "bind" and options.get("device") == path:
        return BIND
    return OTHER


#: bytes of a home's size limit (``"2G"``); at least 1M. One rule for the spawner, the
#: backup tool and ``CLASSHUB_HOME_QUOTA`` (common/hubenv.py)
parse_size = home_size


@dataclass(frozen=True)
class HomeUsage:
    """A home's bytes in use and its limit (``quota`` None: unlimited)."""

    used: int | None
    quota: int | None

    def as_json(self) -> dict:
        return {"used": self.used, "quota": self.quota, "limited": self.quota is not None}


# ----- blocking: run these in a thread pool


def home_qgroup(path: str) -> int:
    """The level-1 qgroup that carries the limit of the home subvolume ``path``."""
    return btrfs.qgroupid(1, btrfs.subvolume_id(path))


def _limit(root: str, path: str, quota: int) -> None:
    subvolume = btrfs.subvolume_id(path)
    group = btrfs.qgroupid(1, subvolume)
    btrfs.create_qgroup(root, group)
    btrfs.assign_qgroup(root, btrfs.qgroupid(0, subvolume), group)
    btrfs.limit_qgroup(root, group, quota)


def ensure_home(root: str, volume: str, quota: int) -> tuple[str, bool]:
    """Make sure the home subvolume of ``volume`` exists with ``quota`` bytes as its
    limit; ``(path, created)``. An existing home keeps its files and gets the limit
    (again: a changed quota applies at the next start).

    A new home is made under a temporary name, limited and handed to uid 1000 first,
    and renamed last: a home folder never exists without its limit."""
    path = subvolume_path(root, volume)
    if os.path.lexists(path):
        if not btrfs.is_subvolume(path):
            raise HomeError(
                f"{path} exists but is not a btrfs subvolume; move it away (it is not a "
                "home classhub made) and start the server again."
            )
        _limit(root, path, quota)
        return path, False
    temp = f"{NEW_PREFIX}{volume}-{secrets.token_hex(4)}"[: btrfs.NAME_MAX]
    made = btrfs.create_subvolume(root, temp)
    try:
        _limit(root, made, quota)
        os.chown(made, HOME_UID, HOME_GID)
        os.chmod(made, 0o755)  # noqa: S103 - the home's own top folder, as Docker makes it
        try:
            os.rename(made, path)
        except OSError as e:
            if e.errno not in (errno.EEXIST, errno.ENOTEMPTY):
                raise
            # made meanwhile by another start of the same home: keep that one
            _discard(root, temp)
            return path, False
    except BaseException:
        _discard(root, temp)
        raise
    return path, True


def _delete(root: str, name: str) -> bool:
    """Delete the subvolume ``root/name`` and its level-1 qgroup; False if there was none.
    (The subvolume's own qgroup stays, marked stale, as ``btrfs subvolume delete``
    leaves it.)"""
    path = os.path.join(root, name)
    if not btrfs.is_subvolume(path):
        return False
    subvolume = btrfs.subvolume_id(path)
    group = btrfs.qgroupid(1, subvolume)
    btrfs.delete_subvolume(root, name)
    try:
        btrfs.assign_qgroup(root, btrfs.qgroupid(0, subvolume), group, member=False)
        btrfs.remove_qgroup(root, group)
    except btrfs.BtrfsError:
        pass  # an empty qgroup left behind limits nothing
    return True


def _discard(root: str, name: str) -> None:
    try:
        _delete(root, name)
    except OSError:
        pass  # best effort: an empty subvolume under a hidden name harms nobody


def remove_home(root: str, volume: str) -> bool:
    """Delete a home subvolume with everything in it (a home that was just made for a
    start that failed). False if there was none."""
    return _delete(root, subvolume_path(root, volume).rsplit("/", 1)[-1])


def home_usage(root: str, volume: str) -> HomeUsage | None:
    """The bytes the home uses and its limit (numbers of the last btrfs commit, at most
    ~30 s old); None when the home has no subvolume."""
    path = subvolume_path(root, volume)
    if not btrfs.is_subvolume(path):
        return None
    usage = btrfs.qgroup_usage(root, home_qgroup(path))
    if usage is None:  # never limited (made by hand): what its own qgroup says
        usage = btrfs.qgroup_usage(root, btrfs.qgroupid(0, btrfs.subvolume_id(path)))
    if usage is None:
        return HomeUsage(None, None)
    return HomeUsage(usage.referenced, usage.max_referenced)
