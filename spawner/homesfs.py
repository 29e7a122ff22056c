"""``classhub-homes``: the btrfs filesystem that holds every student home, on the host.

Student homes must not share a filesystem with PostgreSQL, MongoDB, Redis and the S3
store (a full home must never stop them), and each needs a size limit the kernel
enforces. This kernel has no ext4/XFS project quotas, but btrfs qgroups work, so the homes
live on one btrfs filesystem in an image file, loop-mounted at a fixed path:

``classhub-homes mount --image IMG --size SIZE --dir DIR``
    Make the image (``--size``: a size such as ``200G``, or ``auto``: half the free space
    where the image lives), allocated in full up front so the homes can never take
    more of the host's disk than that; ``mkfs.btrfs`` it; mount it at ``DIR``; turn on
    quotas (simple quotas where the kernel has them, Linux 6.7+: then subvolumes a
    student makes inside their home count against their limit too). Idempotent: an
    existing image is mounted (after a reboot) and grown to a larger ``--size``.
``classhub-homes unmount --dir DIR [--image IMG]``
    Unmount it and free its loop device.
``classhub-homes migrate --dir DIR --prefix classhub --quota 2G``
    Move plain home volumes (made before homes had a size) into subvolumes: the data is
    copied, checked, and only then is the old volume replaced by a bind of the
    subvolume under the same name. Volumes that a container uses are left for a later
    run (``make up`` runs this every time).
``classhub-homes usage --dir DIR``
    Every home with its use and limit.

``scripts/up.sh`` runs ``mount`` and ``migrate``; the test harness uses the same
functions on a small image in its own work directory.
"""

from __future__ import annotations

import argparse
import errno
import os
import shutil
import stat
import subprocess
import sys
from dataclasses import dataclass

from common.units import size_text
from spawner import btrfs, homes

GiB = 1 << 30
MIN_SIZE = 256 << 20
LABEL = "classhub-homes"


class HomesFsError(Exception):
    """Something an admin must fix; the message says what."""


def _run(*args: str, timeout: float = 120) -> str:
    try:
        done = subprocess.run(args, capture_output=True, text=True, timeout=timeout, check=False)
    except FileNotFoundError:
        raise HomesFsError(
            f"{args[0]} is not installed: install btrfs-progs (scripts/bootstrap.sh does)"
        ) from None
    if done.returncode != 0:
        raise HomesFsError(f"{' '.join(args)} failed: {(done.stderr or done.stdout).strip()}")
    return done.stdout


def auto_size(free_bytes: int) -> int:
    """Half the free space, in whole GiB, at least 1 GiB."""
    return max(GiB, (free_bytes // 2) // GiB * GiB)


def parse_fs_size(value: str, free_bytes: int) -> int:
    if value.strip().lower() == "auto":
        return auto_size(free_bytes)
    size = homes.parse_size(value)
    if size < MIN_SIZE:
        raise HomesFsError(f"CLASSHUB_HOMES_SIZE={value} is too small; give at least 256M")
    return size


def mounted_at(directory: str, mountinfo: str) -> tuple[str, str] | None:
    """``(filesystem type, source)`` of the mount at ``directory`` in a
    ``/proc/self/mountinfo`` text, or None (the last mount there wins)."""
    found = None
    for line in mountinfo.splitlines():
        left, _, right = line.partition(" - ")
        fields, rest = left.split(), right.split()
        if len(fields) >= 5 and len(rest) >= 2:
            point = fields[4].encode().decode("unicode_escape")
            if point == directory:
                found = (rest[0], rest[1])
    return found


def _mountinfo() -> str:
    with open("/proc/self/mountinfo", encoding="utf-8") as f:
        return f.read()


def loop_devices(image: str) -> list[str]:
    """The loop devices that have ``image`` as their backing file."""
    image = os.path.realpath(image)
    found = []
    for name in sorted(os.listdir("/sys/block")) if os.path.isdir("/sys/block") else []:
        backing = f"/sys/block/{name}/loop/backing_file"
        try:
            with open(backing, encoding="utf-8") as f:
                path = f.read().strip()
        except OSError:
            continue
        if path.removesuffix(" (deleted)") == image:
            found.append(f"/dev/{name}")
    return found


@dataclass(frozen=True)
class Mounted:
    directory: str
    image: str
    device: str
    created: bool
    grown: bool
    quota_mode: str


def mount(image: str, directory: str, size: str = "auto", *, preallocate: bool = True) -> Mounted:
    """Make (if missing), mount (if not mounted) and prepare the homes filesystem."""
    image, directory = os.path.abspath(image), os.path.abspath(directory)
    os.makedirs(directory, mode=0o700, exist_ok=True)
    os.makedirs(os.path.dirname(image), mode=0o700, exist_ok=True)
    created = grown = False
    if not os.path.exists(image):
        want = parse_fs_size(size, shutil.disk_usage(os.path.dirname(image)).free)
        _make_image(image, want, preallocate=preallocate)
        created = True
    current = mounted_at(directory, _mountinfo())
    if current is not None and current[0] != "btrfs":
        raise HomesFsError(
            f"{directory} is a {current[0]} mount, not the btrfs filesystem of student homes; "
            "unmount it or choose another CLASSHUB_HOMES_DIR"
        )
    if current is None:
        if os.listdir(directory):
            raise HomesFsError(
                f"{directory} is not empty and nothing is mounted there; homes must not be "
                "written on the host's disk. Move its contents away and run this again."
            )
        device = _attach(image)
        try:
            _run("mount", "-t", "btrfs", "-o", "noatime", device, directory)
        except HomesFsError:
            _run("losetup", "-d", device)
            raise
    devices = loop_devices(image)
    if not devices:
        raise HomesFsError(f"{directory} is mounted, but not from {image}")
    if not created and size.strip().lower() != "auto":
        grown = _grow(image, devices[0], directory, parse_fs_size(size, 0), preallocate)
    mode = _enable_quota(directory)
    # only root (the hub, Docker) goes in: a host account with uid 1000 must not read homes
    os.chmod(directory, 0o700)
    return Mounted(directory, image, devices[0], created, grown, mode)


def _make_image(image: str, size: int, *, preallocate: bool) -> None:
    temp = image + ".new"
    with open(temp, "wb") as f:
        if preallocate:
            try:
                os.posix_fallocate(f.fileno(), 0, size)
            except OSError as e:
                os.unlink(temp)
                raise HomesFsError(
                    f"cannot allocate {size_text(size)} for {image}: {e.strerror}; "
                    "set CLASSHUB_HOMES_SIZE smaller"
                ) from None
        else:
            f.truncate(size)
    os.chmod(temp, 0o600)
    _run("mkfs.btrfs", "-q", "-f", "-L", LABEL, temp)
    os.rename(temp, image)


def _attach(image: str) -> str:
    for device in loop_devices(image):  # left attached by an earlier run
        return device
    return _run("losetup", "--find", "--show", image).strip()


def _grow(image: str, device: str, directory: str, size: int, preallocate: bool) -> bool:
    have = os.path.getsize(image)
    if size <= have:
        return False
    with open(image, "r+b") as f:
        if preallocate:
            os.posix_fallocate(f.fileno(), 0, size)
        else:
            f.truncate(size)
    _run("losetup", "--set-capacity", device)
    btrfs.resize_max(directory)
    return True


def _enable_quota(directory: str) -> str:
    mode = btrfs.quota_mode(directory)
    if mode is not None:
        return mode
    try:
        btrfs.enable_quota(directory, simple=True)
        return "simple"
    except btrfs.BtrfsError as e:
        if e.errno not in (errno.EINVAL, errno.EOPNOTSUPP, errno.ENOTTY):
            raise
    btrfs.enable_quota(directory, simple=False)
    return "full"


def unmount(directory: str, image: str | None = None) -> None:
    """Unmount the homes filesystem and free its loop device (lazily if still busy)."""
    directory = os.path.abspath(directory)
    current = mounted_at(directory, _mountinfo())
    if current is not None:
        done = subprocess.run(["umount", directory], capture_output=True, timeout=60, check=False)
        if done.returncode != 0:
            subprocess.run(
                ["umount", "-l", directory], capture_output=True, timeout=60, check=False
            )
        devices = [current[1]] if current[1].startswith("/dev/loop") else []
    else:
        devices = []
    if image:
        devices += loop_devices(image)
    for device in dict.fromkeys(devices):
        subprocess.run(["losetup", "-d", device], capture_output=True, timeout=60, check=False)


# ----- migration of plain volumes


@dataclass(frozen=True)
class Migration:
    volume: str
    status: str  # "moved", "in use", "failed"
    message: str = ""


def tree_summary(root: str) -> dict[str, tuple[str, int]]:
    """Every entry below ``root`` with its kind and size (links are not followed)."""
    summary: dict[str, tuple[str, int]] = {}
    for folder, dirs, files in os.walk(root):
        for name in dirs + files:
            path = os.path.join(folder, name)
            mode = os.lstat(path).st_mode
            if stat.S_ISREG(mode):
                summary[os.path.relpath(path, root)] = ("file", os.lstat(path).st_size)
            else:
                kind = "dir" if stat.S_ISDIR(mode) else "link" if stat.S_ISLNK(mode) else "other"
                summary[os.path.relpath(path, root)] = (kind, 0)
    return summary


def plain_home_volumes(client, prefix: str) -> list[dict]:
    """This deployment's home volumes that are plain local volumes (no size limit)."""
    found = []
    for volume in client.volumes.list():
        info = volume.attrs
        name = info.get("Name", "")
        if not name.startswith(f"{prefix}-home-"):
            continue
        if homes.volume_kind(info, "") == homes.PLAIN:
            found.append(info)
    return sorted(found, key=lambda v: v["Name"])


def migrate_volume(client, info: dict, root: str, quota: int, prefix: str) -> Migration:
    """Move one plain home volume into a subvolume with its limit (see module doc)."""
    name = info["Name"]
    if client.containers.list(all=True, filters={"volume": name}):
        return Migration(name, "in use", "a container uses it; it moves at a later run")
    source = info.get("Mountpoint") or ""
    target = homes.subvolume_path(root, name)
    if os.path.lexists(target):
        return Migration(
            name,
            "failed",
            f"{target} exists already; compare it with the volume and remove one of them",
        )
    temp = f".migrate-{name}"[: btrfs.NAME_MAX]
    if btrfs.is_subvolume(os.path.join(root, temp)):  # an earlier run stopped half-way
        homes._delete(root, temp)
    made = btrfs.create_subvolume(root, temp)
    try:
        if os.path.isdir(source):
            _run("cp", "-a", "--reflink=never", source + "/.", made + "/", timeout=24 * 3600)
            if tree_summary(source) != tree_summary(made):
                raise HomesFsError("the copy differs from the volume")
            st = os.stat(source)
            os.chown(made, st.st_uid, st.st_gid)
            os.chmod(made, st.st_mode & 0o7777)
        else:
            os.chown(made, homes.HOME_UID, homes.HOME_GID)
        subvolume = btrfs.subvolume_id(made)
        group = btrfs.qgroupid(1, subvolume)
        btrfs.create_qgroup(root, group)
        btrfs.assign_qgroup(root, btrfs.qgroupid(0, subvolume), group)
        btrfs.limit_qgroup(root, group, quota)
        os.rename(made, target)
    except (OSError, HomesFsError) as e:
        homes._delete(root, temp)
        return Migration(name, "failed", str(e))
    # the point of no return: the data is safe in the subvolume (the spawner binds an
    # existing subvolume again by itself if the next step fails)
    client.api.remove_volume(name)
    client.api.create_volume(
        name=name,
        driver="local",
        driver_opts=homes.volume_options(target),
        labels={"classhub.deployment": prefix, "classhub.home": "btrfs"},
    )
    return Migration(name, "moved")


def migrate(root: str, prefix: str, quota: int, client=None) -> list[Migration]:
    import docker

    if btrfs.quota_mode(root) is None:
        raise HomesFsError(f"{root} is not the homes filesystem (run classhub-homes mount first)")
    own = client is None
    client = client or docker.from_env(timeout=120)
    try:
        return [
            migrate_volume(client, info, root, quota, prefix)
            for info in plain_home_volumes(client, prefix)
        ]
    finally:
        if own:
            client.close()


# ----- command line


def _print(text: str) -> None:
    sys.stdout.write(text + "\n")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="classhub-homes", description=__doc__.split("\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("mount", help="make and mount the homes filesystem")
    p.add_argument(
        "--image", required=True, help="the image file, e.g. /var/lib/classhub/homes.img"
    )
    p.add_argument("--dir", required=True, help="where to mount it, e.g. /var/lib/classhub/homes")
    p.add_argument("--size", default="auto", help="e.g. 200G, or auto (half the free space)")
    p = sub.add_parser("unmount", help="unmount it and free its loop device")
    p.add_argument("--dir", required=True)
    p.add_argument("--image")
    p = sub.add_parser("migrate", help="move plain home volumes into subvolumes with a limit")
    p.add_argument("--dir", required=True)
    p.add_argument("--prefix", default="classhub")
    p.add_argument("--quota", default="2G")
    p = sub.add_parser("usage", help="every home with its use and limit")
    p.add_argument("--dir", required=True)
    args = parser.parse_args(argv)
    try:
        if args.command == "mount":
            m = mount(args.image, args.dir, args.size)
            what = "made and mounted" if m.created else "mounted"
            size = size_text(os.path.getsize(m.image))
            _print(
                f"homes filesystem {what} at {m.directory} "
                f"({size}, {m.device}, quotas {m.quota_mode})"
            )
            if m.grown:
                _print(f"grown to {size}")
            if m.quota_mode != "simple":
                _print(
                    "WARNING: this kernel has no btrfs simple quotas (Linux 6.7+): a subvolume a "
                    "student makes inside their home does not count against their limit"
                )
        elif args.command == "unmount":
            unmount(args.dir, args.image)
        elif args.command == "migrate":
            quota = homes.parse_size(args.quota)
            for m in migrate(os.path.abspath(args.dir), args.prefix, quota):
                _print(f"{m.volume}: {m.status}{': ' + m.message if m.message else ''}")
        elif args.command == "usage":
            root = os.path.abspath(args.dir)
            for name in sorted(os.listdir(root)):
                if name.startswith("."):
                    continue
                usage = homes.home_usage(root, name)
                if usage is None:
                    continue
                used = "?" if usage.used is None else size_text(usage.used)
                limit = "no limit" if usage.quota is None else size_text(usage.quota)
                _print(f"{name}\t{used}\t{limit}")
    except (HomesFsError, OSError, ValueError) as e:
        sys.stderr.write(f"classhub-homes {args.command}: {e}\n")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
