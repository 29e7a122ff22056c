"""``classhub-backup``: the command line (``make backup``, ``make restore``,
``make restore-home`` run it through ``scripts/backup.sh``).

    classhub-backup backup [--only postgres,mongo,s3,homes]
    classhub-backup list
    classhub-backup verify [BACKUP]
    classhub-backup restore BACKUP [--only ...] [--no-verify]
    classhub-backup restore-home BACKUP --user NAME [--server NAME]

``BACKUP`` is a backup's name in ``CLASSHUB_BACKUP_DIR`` (``20261206T020000Z``, a unique
prefix of one, or ``latest``) or its path. Settings come from ``CLASSHUB_*`` variables
(:mod:`backup.settings`). Exit status: 0 done, 1 refused or failed (the message says
why), 2 done with problems (a home that could not be archived, a restore whose checksums
differ).
"""

from __future__ import annotations

import argparse
import logging
import os
import sys

from traitlets import TraitError

from . import manifest, remote, run
from .manifest import BackupError
from .settings import BackupSettings

log = logging.getLogger("classhub.backup")


class _Scrub(logging.Filter):
    """Replace the stores' passwords and keys in any message by ``***`` (defence in
    depth: no message of ours holds one)."""

    def __init__(self, secrets: list[str]):
        super().__init__()
        self.secrets = [s for s in secrets if s and len(s) >= 4]

    def filter(self, record: logging.LogRecord) -> bool:
        if self.secrets:
            text = record.getMessage()
            for s in self.secrets:
                text = text.replace(s, "***")
            record.msg, record.args = text, None
        return True


def _secrets(settings: BackupSettings) -> list[str]:
    from urllib.parse import unquote, urlsplit

    found = [
        settings.s3_access_key,
        settings.s3_secret_key,
        settings.hub_token,
        settings.remote_access_key,
        settings.remote_secret_key,
    ]
    for url in (settings.pg_url, settings.mongo_url):
        if url:
            parts = urlsplit(url.replace("+psycopg", ""))
            if parts.password:
                found += [parts.password, unquote(parts.password)]
    return found


def _parts(text: str) -> list[str]:
    chosen = [p.strip() for p in text.split(",") if p.strip()] if text else list(manifest.PARTS)
    unknown = sorted(set(chosen) - set(manifest.PARTS))
    if unknown:
        raise BackupError(
            f"unknown part(s) {', '.join(unknown)}; choose from {', '.join(manifest.PARTS)}"
        )
    return chosen


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="classhub-backup", description=__doc__.split("\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("backup", help="back up the deployment into CLASSHUB_BACKUP_DIR")
    p.add_argument("--only", default="", help="e.g. postgres,homes (default: everything)")
    p.add_argument(
        "--include",
        action="append",
        default=[],
        metavar="NAME=PATH",
        help="a file or folder kept in the backup's config/ (repeatable)",
    )
    sub.add_parser("list", help="the backups, oldest first")
    p = sub.add_parser("verify", help="check a backup's files against its manifest")
    p.add_argument("backup", nargs="?", default="latest")
    p = sub.add_parser("restore", help="restore a whole backup (the stack's hub stopped)")
    p.add_argument("backup")
    p.add_argument("--only", default="")
    p.add_argument("--no-verify", action="store_true", help="skip the comparison afterwards")
    p = sub.add_parser("restore-home", help="restore one student's home")
    p.add_argument("backup")
    p.add_argument("--user", required=True)
    p.add_argument("--server", default="", help="a class server's name (default: none)")
    args = parser.parse_args(argv)

    logging.basicConfig(
        level=logging.INFO, format="[backup %(asctime)s] %(message)s", datefmt="%H:%M:%S"
    )
    try:
        settings = BackupSettings()
        settings.backup_dir  # noqa: B018 - read every setting now: a bad one fails here
        settings.home_quota  # noqa: B018
        settings.hub_url  # noqa: B018
        settings.remote  # noqa: B018
    except TraitError as e:
        log.error("%s", e)
        return 1
    for handler in logging.getLogger().handlers:
        handler.addFilter(_Scrub(_secrets(settings)))
    if os.geteuid() != 0:
        log.error("classhub-backup must run as root (it reads every home and the stores)")
        return 1
    try:
        return _run(args, settings)
    except BackupError as e:
        log.error("%s", e)
        return 1
    except _store_errors() as e:
        # a store that is down or refuses: say which and why (no traceback for an admin)
        log.error("%s failed: %s: %s", args.command, type(e).__name__, e)
        return 1


def _store_errors() -> tuple[type[BaseException], ...]:
    import subprocess

    import docker.errors
    import psycopg
    import urllib3
    from minio.error import MinioException
    from pymongo.errors import PyMongoError

    return (
        OSError,
        subprocess.TimeoutExpired,
        psycopg.Error,
        PyMongoError,
        MinioException,
        urllib3.exceptions.HTTPError,
        docker.errors.DockerException,
    )


def _run(args, settings: BackupSettings) -> int:
    if args.command == "backup":
        include = []
        for item in args.include:
            name, sep, path = item.partition("=")
            if not sep:
                raise BackupError(f"--include wants NAME=PATH, got {item!r}")
            include.append((name, path))
        path, m = run.backup(settings, _parts(args.only), include)
        sys.stdout.write(path + "\n")
        status = 2 if any("NOT backed up" in w for w in m.warnings) else 0
        bucket = remote.Remote.from_settings(settings)
        if bucket is not None:
            try:
                copied = remote.push(bucket, path, settings.keep, settings.timeout)
            except (BackupError, *_store_errors()) as e:
                log.error("the backup is made, but NOT copied to s3://%s: %s", bucket.bucket, e)
                return 2
            log.info("copied %d files of %s to s3://%s", copied, m.name, bucket.bucket)
        return status
    if args.command == "list":
        bucket = remote.Remote.from_settings(settings)
        there = set(remote.names(bucket, settings.timeout)) if bucket else set()
        if not os.path.isdir(settings.backup_dir) and not there:
            raise BackupError(f"there are no backups in {settings.backup_dir}")
        names = (
            sorted(os.listdir(settings.backup_dir)) if os.path.isdir(settings.backup_dir) else []
        )
        where = f"\talso in s3://{bucket.bucket}" if bucket else ""
        for name in manifest.complete_backups(names):
            m = manifest.read(os.path.join(settings.backup_dir, name))
            size = sum(f["size"] for f in m.files.values())
            sys.stdout.write(
                f"{name}\t{size / (1 << 20):.1f} MiB\t{len(m.homes())} homes"
                f"\t{len(m.warnings)} warnings{where if name in there else ''}\n"
            )
        for name in sorted(there - set(names)):
            sys.stdout.write(f"{name}\tonly in s3://{bucket.bucket}\n")
        for name in names:
            if name.endswith(manifest.PARTIAL):
                sys.stdout.write(f"{name}\tunfinished\n")
        return 0
    if args.command == "verify":
        directory = run.locate(settings, args.backup)
        m = manifest.read(directory)
        problems = run.verify_files(directory, m)
        for p in problems:
            log.error("%s", p)
        if not problems:
            log.info("%s: %d files, every checksum matches", directory, len(m.files))
        return 2 if problems else 0
    if args.command == "restore":
        directory = run.locate(settings, args.backup)
        result = run.restore(settings, directory, _parts(args.only), verify=not args.no_verify)
        for p in result.problems:
            log.error("after the restore: %s", p)
        if not args.no_verify and not result.problems:
            log.info(
                "restored %s; every table, collection, bucket and home matches the backup",
                directory,
            )
        return 2 if result.problems else 0
    if args.command == "restore-home":
        directory = run.locate(settings, args.backup)
        done = run.restore_one_home(settings, directory, args.user, args.server)
        if "generation" in done:  # a Swarm's: the next start restores that copy
            log.info(
                "restored the home %s of %s from %s in %.1f s as its saved copy %s (checksum "
                "matches); the server's next start restores it",
                done["volume"],
                args.user,
                os.path.basename(directory),
                done["seconds"],
                done["generation"],
            )
            return 0
        log.info(
            "restored the home %s of %s from %s in %.1f s (%d entries, checksums match)",
            done["volume"],
            args.user,
            os.path.basename(directory),
            done["seconds"],
            done["fingerprint"]["count"],
        )
        return 0
    raise AssertionError(args.command)


if __name__ == "__main__":
    sys.exit(main())
