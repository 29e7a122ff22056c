"""Backup benchmark for student homes: how long the snapshot + archive of one home takes,
and how long restoring it takes (what ``make restore-home`` spends), for homes of a few
sizes.

A btrfs filesystem of its own (an image file in a temporary folder, loop-mounted, quotas on,
as ``classhub-homes mount`` makes it); each home a subvolume with its limit made as the
spawner makes it, filled with a student-like mix: many small files (notebooks, scripts)
and a few large ones (data sets), random bytes (they do not compress). Timed: the backup of
the home (read-only snapshot, fingerprint, tar.gz, snapshot deleted) and its restore into
the home (new subvolume with the limit, unpack, swap, old one deleted, fingerprint
checked), each ``--rounds`` times.

Usage: .venv/bin/python bench/backup_bench.py [--sizes 10,200,1000] [--rounds 3]
Prints a Markdown table (paste it into docs/performance.md with the date).
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time

from backup import homes as backup_homes
from spawner import homes, homesfs


def fill(path: str, megabytes: int) -> int:
    """Fill a home: 70 % in 1 MiB..16 MiB files, 30 % in 4 KiB..64 KiB files. Entries made."""
    made = 0
    big = int(megabytes * 0.7) << 20
    small = int(megabytes * 0.3) << 20
    os.makedirs(os.path.join(path, "data"), exist_ok=True)
    i = 0
    while big > 0:
        size = min(big, (1 + i % 16) << 20)
        with open(os.path.join(path, "data", f"set{i}.bin"), "wb") as f:
            f.write(os.urandom(size))
        big -= size
        i += 1
        made += 1
    i = 0
    while small > 0:
        folder = os.path.join(path, "work", f"week{i // 50}")
        os.makedirs(folder, exist_ok=True)
        size = min(small, 4096 * (1 + i % 16))
        with open(os.path.join(folder, f"nb{i}.ipynb"), "wb") as f:
            f.write(os.urandom(size))
        small -= size
        i += 1
        made += 1
    for folder, dirs, files in os.walk(path):
        for name in dirs + files:
            os.lchown(os.path.join(folder, name), homes.HOME_UID, homes.HOME_GID)
    return made


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="10,200,1000", help="home sizes in MB")
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    sizes = [int(s) for s in args.sizes.split(",")]
    work = tempfile.mkdtemp(prefix="classhub-backup-bench-")
    root, image = os.path.join(work, "homes"), os.path.join(work, "homes.img")
    total = sum(sizes) * 3 + 1024
    homesfs.mount(image, root, f"{total}M", preallocate=False)
    rows = []
    try:
        for mb in sizes:
            volume = f"bench-home-student{mb}-0123456789ab"
            path, _ = homes.ensure_home(root, volume, (mb * 2 + 64) << 20)
            entries = fill(path, mb)
            archive = os.path.join(work, f"{volume}.tar.gz")
            backups, restores = [], []
            for _ in range(args.rounds):
                if os.path.exists(archive):
                    os.unlink(archive)
                t0 = time.monotonic()
                done = backup_homes.backup_home(root, volume, archive)
                backups.append(time.monotonic() - t0)
                t0 = time.monotonic()
                restored = backup_homes.restore_home(root, volume, archive, (mb * 2 + 64) << 20)
                fingerprint = backup_homes.tree_fingerprint(restored)
                restores.append(time.monotonic() - t0)
                assert fingerprint == done.fingerprint, "the restored home differs"
            rows.append(
                (
                    mb,
                    entries,
                    os.path.getsize(archive) >> 20,
                    statistics.median(backups),
                    max(backups),
                    statistics.median(restores),
                    max(restores),
                )
            )
    finally:
        homesfs.unmount(root, image)
        os.unlink(image)
    print(f"\nhomes backup and restore, {args.rounds} rounds each (seconds)\n")
    print(
        "| home | entries | archive | backup median | backup max | restore median | restore max |"
    )
    print("|---|---|---|---|---|---|---|")
    for mb, entries, size, bmed, bmax, rmed, rmax in rows:
        times = " | ".join(f"{t:.1f}" for t in (bmed, bmax, rmed, rmax))
        print(f"| {mb} MB | {entries} | {size} MiB | {times} |")


if __name__ == "__main__":
    main()
