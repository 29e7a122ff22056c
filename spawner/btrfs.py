"""The few btrfs ioctls that student home quotas need, straight from Python.

No ``btrfs`` binary is needed where the hub runs (its image stays as it is): subvolumes,
qgroups and their limits are ioctls on a file descriptor, as ``btrfs-progs`` does them.
The packing of each argument struct is a pure function and unit-tested; the calls need a
btrfs filesystem (and ``CAP_SYS_ADMIN`` for everything about qgroups).

Layouts and numbers are those of ``include/uapi/linux/btrfs.h`` and
``btrfs_tree.h`` (little-endian, x86-64 and every other Linux that runs Docker).
"""

from __future__ import annotations

import errno
import fcntl
import os
import struct
from dataclasses import dataclass

_TYPE = 0x94  # BTRFS_IOCTL_MAGIC
#: struct btrfs_ioctl_vol_args: __s64 fd; char name[BTRFS_PATH_NAME_MAX + 1]
_VOL_ARGS = struct.Struct("=q4088s")
#: struct btrfs_ioctl_vol_args_v2: __s64 fd; __u64 transid, flags; __u64 unused[4] (the
#: union with size and qgroup_inherit); char name[BTRFS_SUBVOL_NAME_MAX + 1] (4040)
_VOL_ARGS_V2 = struct.Struct("=qQQ32x4040s")
#: struct btrfs_ioctl_ino_lookup_args: __u64 treeid, objectid; char name[4080]
_INO_LOOKUP_ARGS = struct.Struct("=QQ4080s")
#: struct btrfs_ioctl_quota_ctl_args: __u64 cmd, status
_QUOTA_CTL_ARGS = struct.Struct("=QQ")
#: struct btrfs_ioctl_qgroup_assign_args: __u64 assign, src, dst
_QGROUP_ASSIGN_ARGS = struct.Struct("=QQQ")
#: struct btrfs_ioctl_qgroup_create_args: __u64 create, qgroupid
_QGROUP_CREATE_ARGS = struct.Struct("=QQ")
#: struct btrfs_ioctl_qgroup_limit_args: __u64 qgroupid; struct btrfs_qgroup_limit (5 x u64)
_QGROUP_LIMIT_ARGS = struct.Struct("=QQQQQQ")
#: struct btrfs_ioctl_search_key (104 bytes), followed by the result buffer (4096 in all)
_SEARCH_KEY = struct.Struct("=QQQQQQQIIII32x")
_SEARCH_HEADER = struct.Struct("=QQQII")  # transid, objectid, offset, type, len
_SEARCH_ARGS_SIZE = 4096
#: struct btrfs_qgroup_info_item and btrfs_qgroup_limit_item: 5 x __le64 each
_QGROUP_ITEM = struct.Struct("<QQQQQ")


def _ioc(direction: int, nr: int, size: int) -> int:
    return (direction << 30) | (size << 16) | (_TYPE << 8) | nr


_W, _R, _RW = 1, 2, 3
IOC_SUBVOL_CREATE = _ioc(_W, 14, _VOL_ARGS.size)
IOC_SNAP_DESTROY = _ioc(_W, 15, _VOL_ARGS.size)
IOC_TREE_SEARCH = _ioc(_RW, 17, _SEARCH_ARGS_SIZE)
IOC_SNAP_CREATE_V2 = _ioc(_W, 23, _VOL_ARGS_V2.size)
IOC_INO_LOOKUP = _ioc(_RW, 18, _INO_LOOKUP_ARGS.size)
IOC_QUOTA_CTL = _ioc(_RW, 40, _QUOTA_CTL_ARGS.size)
IOC_QGROUP_ASSIGN = _ioc(_W, 41, _QGROUP_ASSIGN_ARGS.size)
IOC_QGROUP_CREATE = _ioc(_W, 42, _QGROUP_CREATE_ARGS.size)
IOC_QGROUP_LIMIT = _ioc(_R, 43, _QGROUP_LIMIT_ARGS.size)  # _IOR in the header, though it writes
IOC_SYNC = _ioc(0, 8, 0)

SUBVOL_RDONLY = 1 << 1
QUOTA_ENABLE, QUOTA_DISABLE, QUOTA_ENABLE_SIMPLE = 1, 2, 4
QGROUP_LIMIT_MAX_RFER = 1 << 0
QUOTA_TREE_OBJECTID = 8
QGROUP_INFO_KEY, QGROUP_LIMIT_KEY = 242, 244
FIRST_FREE_OBJECTID = 256  # the root directory of every subvolume has this inode number
UNLIMITED = 2**64 - 1
NAME_MAX = 255


class BtrfsError(OSError):
    """A btrfs call failed; ``str()`` says which and why in words an admin can act on."""


def qgroupid(level: int, subvolume_id: int) -> int:
    """The qgroup id ``<level>/<id>`` as the kernel stores it."""
    if not 0 <= level < 1 << 16 or not 0 <= subvolume_id < 1 << 48:
        raise ValueError(f"no qgroup {level}/{subvolume_id}")
    return (level << 48) | subvolume_id


def qgroup_text(qgroup: int) -> str:
    return f"{qgroup >> 48}/{qgroup & ((1 << 48) - 1)}"


def vol_args(name: str, fd: int = 0) -> bytearray:
    """``btrfs_ioctl_vol_args`` for a subvolume called ``name`` (one path component)."""
    raw = os.fsencode(name)
    if not raw or b"/" in raw or raw in (b".", b"..") or b"\0" in raw or len(raw) > NAME_MAX:
        raise ValueError(f"{name!r} is not a valid subvolume name")
    return bytearray(_VOL_ARGS.pack(fd, raw))


def snapshot_args(source_fd: int, name: str, *, readonly: bool = True) -> bytearray:
    """``btrfs_ioctl_vol_args_v2`` for a snapshot of the subvolume open as ``source_fd``
    called ``name`` (one path component), read-only unless ``readonly`` is False."""
    raw = os.fsencode(name)
    if not raw or b"/" in raw or raw in (b".", b"..") or b"\0" in raw or len(raw) > NAME_MAX:
        raise ValueError(f"{name!r} is not a valid subvolume name")
    flags = SUBVOL_RDONLY if readonly else 0
    return bytearray(_VOL_ARGS_V2.pack(source_fd, 0, flags, raw))


def qgroup_limit_args(qgroup: int, max_referenced: int | None) -> bytearray:
    """``btrfs_ioctl_qgroup_limit_args`` limiting the referenced bytes (None: no limit)."""
    value = UNLIMITED if max_referenced is None else int(max_referenced)
    if not 0 < value <= UNLIMITED:
        raise ValueError(f"a qgroup limit must be positive, got {max_referenced!r}")
    return bytearray(_QGROUP_LIMIT_ARGS.pack(qgroup, QGROUP_LIMIT_MAX_RFER, value, 0, 0, 0))


def search_args(tree: int, objectid: int, item_type: int, offset: int) -> bytearray:
    """``btrfs_ioctl_search_args`` for the one item with exactly this key."""
    key = _SEARCH_KEY.pack(
        tree, objectid, objectid, offset, offset, 0, UNLIMITED, item_type, item_type, 1, 0
    )
    return bytearray(key + bytes(_SEARCH_ARGS_SIZE - len(key)))


def search_result(buf: bytes, item_type: int, offset: int) -> bytes | None:
    """The data of the item a :func:`search_args` search found, or None."""
    found = struct.unpack_from("=I", buf, 64)[0]  # nr_items, after 7 u64 and 2 u32
    if not found:
        return None
    _, _, got_offset, got_type, length = _SEARCH_HEADER.unpack_from(buf, _SEARCH_KEY.size)
    if got_type != item_type or got_offset != offset:
        return None
    start = _SEARCH_KEY.size + _SEARCH_HEADER.size
    return bytes(buf[start : start + length])


@dataclass(frozen=True)
class QgroupUsage:
    """What a qgroup holds (bytes referenced) and may hold (None: no limit)."""

    referenced: int
    exclusive: int
    max_referenced: int | None


def parse_qgroup(info: bytes | None, limit: bytes | None) -> QgroupUsage | None:
    """Usage from the qgroup's info and limit items (None when the qgroup does not exist)."""
    if info is None:
        return None
    _, referenced, _, exclusive, _ = _QGROUP_ITEM.unpack_from(info)
    maximum = None
    if limit is not None:
        flags, max_rfer, _, _, _ = _QGROUP_ITEM.unpack_from(limit)
        if flags & QGROUP_LIMIT_MAX_RFER and max_rfer != UNLIMITED:
            maximum = max_rfer
    return QgroupUsage(referenced, exclusive, maximum)


# ----- calls (blocking; run them in a thread pool)


_HINTS = {
    errno.ENOTTY: "not a btrfs filesystem (is the homes filesystem mounted?)",
    errno.EOPNOTSUPP: "not a btrfs filesystem (is the homes filesystem mounted?)",
    errno.EPERM: "not permitted: this needs root with CAP_SYS_ADMIN",
    errno.ENOTCONN: "quotas are not enabled on this filesystem (classhub-homes mount does it)",
    errno.EDQUOT: "over its quota",
}


def _fail(what: str, path: str, e: OSError) -> BtrfsError:
    hint = _HINTS.get(e.errno, e.strerror or str(e))
    err = BtrfsError(e.errno, f"{what} {path}: {hint}")
    err.filename = path
    return err


def _ioctl(path: str, request: int, buf: bytearray | int, what: str) -> bytearray | int:
    try:
        fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    except OSError as e:
        raise _fail(what, path, e) from e
    try:
        fcntl.ioctl(fd, request, buf)
        return buf
    except OSError as e:
        raise _fail(what, path, e) from e
    finally:
        os.close(fd)


def is_subvolume(path: str) -> bool:
    """Whether ``path`` is the top directory of a btrfs subvolume (not a plain folder)."""
    try:
        st = os.lstat(path)
    except FileNotFoundError:
        return False
    return os.path.isdir(path) and st.st_ino == FIRST_FREE_OBJECTID


def subvolume_id(path: str) -> int:
    """The id of the subvolume holding the directory ``path``."""
    buf = bytearray(_INO_LOOKUP_ARGS.pack(0, FIRST_FREE_OBJECTID, b""))
    _ioctl(path, IOC_INO_LOOKUP, buf, "cannot read the subvolume id of")
    return struct.unpack_from("=Q", buf)[0]


def create_subvolume(parent: str, name: str) -> str:
    """Create the empty subvolume ``parent/name``; returns its path."""
    _ioctl(parent, IOC_SUBVOL_CREATE, vol_args(name), "cannot create a subvolume in")
    return os.path.join(parent, name)


def snapshot(source: str, parent: str, name: str, *, readonly: bool = True) -> str:
    """Snapshot the subvolume ``source`` as ``parent/name`` (read-only by default: a
    frozen, consistent copy of it at this instant, sharing its data); returns its path."""
    try:
        fd = os.open(source, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    except OSError as e:
        raise _fail("cannot open the subvolume", source, e) from e
    try:
        _ioctl(
            parent,
            IOC_SNAP_CREATE_V2,
            snapshot_args(fd, name, readonly=readonly),
            f"cannot snapshot {source} into",
        )
    finally:
        os.close(fd)
    return os.path.join(parent, name)


def delete_subvolume(parent: str, name: str) -> None:
    """Delete the subvolume ``parent/name`` with everything in it."""
    _ioctl(parent, IOC_SNAP_DESTROY, vol_args(name), f"cannot delete the subvolume {name!r} in")


def enable_quota(path: str, *, simple: bool) -> None:
    """Turn on quota accounting of the filesystem at ``path`` (simple quotas: Linux 6.7+)."""
    cmd = QUOTA_ENABLE_SIMPLE if simple else QUOTA_ENABLE
    what = "cannot enable simple quotas on" if simple else "cannot enable quotas on"
    _ioctl(path, IOC_QUOTA_CTL, bytearray(_QUOTA_CTL_ARGS.pack(cmd, 0)), what)


def create_qgroup(path: str, qgroup: int) -> bool:
    """Create qgroup ``qgroup`` on the filesystem at ``path``; False if it existed."""
    buf = bytearray(_QGROUP_CREATE_ARGS.pack(1, qgroup))
    try:
        _ioctl(path, IOC_QGROUP_CREATE, buf, f"cannot create qgroup {qgroup_text(qgroup)} on")
    except BtrfsError as e:
        if e.errno == errno.EEXIST:
            return False
        raise
    return True


def remove_qgroup(path: str, qgroup: int) -> None:
    buf = bytearray(_QGROUP_CREATE_ARGS.pack(0, qgroup))
    try:
        _ioctl(path, IOC_QGROUP_CREATE, buf, f"cannot remove qgroup {qgroup_text(qgroup)} on")
    except BtrfsError as e:
        if e.errno != errno.ENOENT:
            raise


def assign_qgroup(path: str, child: int, parent: int, *, member: bool = True) -> bool:
    """Make ``child`` a member of ``parent`` (``member=False``: no longer one); False if
    it already was (was not)."""
    buf = bytearray(_QGROUP_ASSIGN_ARGS.pack(int(member), child, parent))
    what = f"cannot change whether qgroup {qgroup_text(child)} is in {qgroup_text(parent)} on"
    try:
        _ioctl(path, IOC_QGROUP_ASSIGN, buf, what)
    except BtrfsError as e:
        if e.errno in (errno.EEXIST, errno.ENOENT):
            return False
        raise
    return True


def limit_qgroup(path: str, qgroup: int, max_referenced: int | None) -> None:
    """Limit the bytes ``qgroup`` may reference (None: no limit)."""
    what = f"cannot set the limit of qgroup {qgroup_text(qgroup)} on"
    _ioctl(path, IOC_QGROUP_LIMIT, qgroup_limit_args(qgroup, max_referenced), what)


def _search(path: str, item_type: int, offset: int) -> bytes | None:
    buf = search_args(QUOTA_TREE_OBJECTID, 0, item_type, offset)
    _ioctl(path, IOC_TREE_SEARCH, buf, "cannot read the quota tree of")
    return search_result(buf, item_type, offset)


def qgroup_usage(path: str, qgroup: int) -> QgroupUsage | None:
    """What ``qgroup`` (on the filesystem at ``path``) holds and may hold, or None.

    The numbers are those of the last transaction commit (btrfs commits every 30 s, and
    on :func:`sync`)."""
    return parse_qgroup(
        _search(path, QGROUP_INFO_KEY, qgroup), _search(path, QGROUP_LIMIT_KEY, qgroup)
    )


def sync(path: str) -> None:
    """Commit the filesystem's current transaction (quota numbers become current)."""
    _ioctl(path, IOC_SYNC, 0, "cannot sync")


QGROUP_STATUS_KEY = 240
QGROUP_STATUS_FLAG_SIMPLE_MODE = 1 << 3
IOC_RESIZE = _ioc(_W, 3, _VOL_ARGS.size)


def quota_mode(path: str) -> str | None:
    """``"simple"``, ``"full"`` or None (quotas off) for the filesystem at ``path``."""
    buf = search_args(QUOTA_TREE_OBJECTID, 0, QGROUP_STATUS_KEY, 0)
    try:
        _ioctl(path, IOC_TREE_SEARCH, buf, "cannot read the quota status of")
    except BtrfsError as e:
        if e.errno == errno.ENOENT:  # no quota tree: quotas were never turned on
            return None
        raise
    item = search_result(buf, QGROUP_STATUS_KEY, 0)
    if item is None:
        return None
    flags = struct.unpack_from("<Q", item, 16)[0]  # version, generation, flags
    return "simple" if flags & QGROUP_STATUS_FLAG_SIMPLE_MODE else "full"


def resize_max(path: str) -> None:
    """Grow the filesystem at ``path`` to the whole of its (grown) device."""
    buf = bytearray(_VOL_ARGS.pack(0, b"max"))
    _ioctl(path, IOC_RESIZE, buf, "cannot grow the filesystem at")
