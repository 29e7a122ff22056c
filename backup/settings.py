"""The settings of ``classhub-backup`` (``BackupSettings``), from ``CLASSHUB_*`` variables.

``scripts/backup.sh`` (``make backup``, ``make restore``, ``make restore-home``) sets the
stores' addresses and administrator credentials from ``.run/classhub.env``; the
credentials only ever travel in the environment of this process and of ``pg_dump``,
``pg_restore`` and ``psql``, never on a command line or in a log.
"""

from __future__ import annotations

import os

from traitlets import Float, Int, TraitError, Unicode, validate
from traitlets.config import Configurable

from common.hubenv import CONTAINER_PREFIX, HOME_QUOTA, HOMES_DIR, absolute_dir
from common.settings import EnvSetting, EnvTable, number
from spawner import homes as spawner_homes


def _non_negative(raw: str) -> int:
    value = int(raw)
    if value < 0:
        raise ValueError("negative")
    return value


BACKUP_TABLE = EnvTable(
    (
        EnvSetting("backup_dir", "CLASSHUB_BACKUP_DIR", "/var/backups/classhub"),
        EnvSetting("keep", "CLASSHUB_BACKUP_KEEP", 7, _non_negative, "a number, 0 or more"),
        EnvSetting("timeout", "CLASSHUB_BACKUP_TIMEOUT", 3600.0, number, "seconds"),
        CONTAINER_PREFIX.of("deployment"),
        HOMES_DIR.of("homes_root"),
        HOME_QUOTA.of("home_quota"),
        EnvSetting("pg_url", "CLASSHUB_BACKUP_PG_URL", "", sensitive=True),
        EnvSetting("mongo_url", "CLASSHUB_BACKUP_MONGO_URL", "", sensitive=True),
        EnvSetting(
            "s3_endpoint", "CLASSHUB_BACKUP_S3_ENDPOINT", "", also=("CLASSHUB_S3_ENDPOINT",)
        ),
        EnvSetting("s3_access_key", "CLASSHUB_BACKUP_S3_ACCESS_KEY", "", sensitive=True),
        EnvSetting("s3_secret_key", "CLASSHUB_BACKUP_S3_SECRET_KEY", "", sensitive=True),
        EnvSetting("remote", "CLASSHUB_BACKUP_REMOTE", ""),
        EnvSetting("remote_endpoint", "CLASSHUB_BACKUP_REMOTE_ENDPOINT", ""),
        EnvSetting("remote_access_key", "CLASSHUB_BACKUP_REMOTE_ACCESS_KEY", "", sensitive=True),
        EnvSetting("remote_secret_key", "CLASSHUB_BACKUP_REMOTE_SECRET_KEY", "", sensitive=True),
        EnvSetting("hub_url", "CLASSHUB_BACKUP_HUB_URL", ""),
        EnvSetting("hub_token", "CLASSHUB_BACKUP_API_TOKEN", "", sensitive=True),
        EnvSetting(
            "homes_bucket",
            "CLASSHUB_BACKUP_HOMES_BUCKET",
            "classhub-files",
            also=("CLASSHUB_S3_BUCKET",),
        ),
    )
)


@BACKUP_TABLE.install
class BackupSettings(Configurable):
    """What ``classhub-backup`` backs up, from where, and where to."""

    backup_dir = Unicode(
        config=True,
        help="""The folder that holds the backups, one sub-folder per backup named by the
        UTC time it started (``20261206T020000Z``). Made with mode 0700: a backup holds
        every student's work and the deployment's data, so only root reads it. Put it on
        another disk than the stack's, and copy it off the machine (rsync, an S3 bucket).

        Example: ``c.BackupSettings.backup_dir = "/srv/backups/classhub"``
        """,
    )

    @validate("backup_dir")
    def _check_backup_dir(self, proposal):
        if not os.path.isabs(proposal.value):
            raise TraitError(
                f"BackupSettings.backup_dir={proposal.value!r} must be an absolute path, "
                "e.g. /var/backups/classhub"
            )
        return proposal.value

    keep = Int(
        config=True,
        help="""How many complete backups ``make backup`` keeps: after a backup that
        finished, the oldest beyond this number are deleted (0: keep all). A backup that
        did not finish (``.partial``) is never counted nor deleted: look at it, then
        remove it. With a nightly backup, 7 keeps a week.

        Example: ``c.BackupSettings.keep = 14``
        """,
    )

    timeout = Float(
        config=True,
        help="""The longest one step of a backup or restore may take, in seconds: one
        ``pg_dump``, one database's restore, one read of an S3 object or a MongoDB query.
        Raise it for a very large database.

        Example: ``c.BackupSettings.timeout = 7200``
        """,
    )

    deployment = Unicode(
        config=True,
        help="""The deployment's prefix (``CLASSHUB_CONTAINER_PREFIX``): home volumes are
        ``<prefix>-home-...``. A backup records it, so a home restores into a deployment
        with another prefix under that deployment's name.

        Example: ``c.BackupSettings.deployment = "classhub"``
        """,
    )

    homes_root = Unicode(
        config=True,
        help="""Where the btrfs filesystem of student homes is mounted
        (``CLASSHUB_HOMES_DIR``, the spawner's ``homes_root``). Every home subvolume there
        is backed up through a read-only snapshot. Empty: no homes are backed up (homes
        without a size limit, plain Docker volumes, are not supported).

        Example: ``c.BackupSettings.homes_root = "/var/lib/classhub/homes"``
        """,
    )

    @validate("homes_root")
    def _check_homes_root(self, proposal):
        if not proposal.value:
            return proposal.value
        try:
            return absolute_dir(proposal.value)
        except ValueError:
            raise TraitError(
                f"BackupSettings.homes_root={proposal.value!r} must be an absolute path, "
                "e.g. '/var/lib/classhub/homes' (or empty: no homes are backed up)"
            ) from None

    home_quota = Unicode(
        config=True,
        help="""The size limit of a home that a restore makes (one that does not exist in
        the deployment); a home that exists keeps its own limit. The spawner's
        ``home_quota``, from the same ``CLASSHUB_HOME_QUOTA`` (at least 1M).

        Example: ``c.BackupSettings.home_quota = "2G"``
        """,
    )

    @validate("home_quota")
    def _check_home_quota(self, proposal):
        try:
            spawner_homes.parse_size(proposal.value)
        except ValueError as e:
            raise TraitError(f"BackupSettings.home_quota: {e}") from None
        return proposal.value

    pg_url = Unicode(
        config=True,
        help="""PostgreSQL as its superuser, ``postgresql://USER:PASSWORD@HOST:PORT/DB``:
        every database but ``postgres`` and the templates is dumped. ``make backup`` sets
        it from ``.run/classhub.env`` (``classhub`` and ``POSTGRES_PASSWORD``). Empty:
        PostgreSQL is left out.

        Example: ``c.BackupSettings.pg_url = "postgresql://classhub:...@127.0.0.1:15432/jupyterhub"``
        """,
    )

    mongo_url = Unicode(
        config=True,
        help="""MongoDB as its root user, ``mongodb://root:PASSWORD@HOST:PORT/?authSource=admin``:
        every database but ``admin``, ``local`` and ``config`` is dumped. ``make backup``
        sets it from ``.run/classhub.env``. Empty: MongoDB is left out.

        Example: ``c.BackupSettings.mongo_url = "mongodb://root:...@127.0.0.1:17017/?authSource=admin"``
        """,
    )

    s3_endpoint = Unicode(
        config=True,
        help="""The S3 store (``http://HOST:PORT``); every bucket is backed up with the
        administrator keys below. Empty: the S3 store is left out.

        Example: ``c.BackupSettings.s3_endpoint = "http://127.0.0.1:18333"``
        """,
    )

    s3_access_key = Unicode(
        config=True,
        help="""The S3 store's administrator access key (``S3_ADMIN_ACCESS_KEY``), which
        may read and write every bucket.

        Example: ``c.BackupSettings.s3_access_key = "..."``
        """,
    )

    s3_secret_key = Unicode(
        config=True,
        help="""The S3 store's administrator secret key (``S3_ADMIN_SECRET_KEY``).

        Example: ``c.BackupSettings.s3_secret_key = "..."``
        """,
    )

    hub_url = Unicode(
        config=True,
        help="""On a Swarm: the hub's API as the backup reaches it (``http://HOST:PORT/hub/api``).
        Set, the homes are backed up through the hub and the S3 store (backup/swarm.py): the
        hub first saves every home whose newest files are on a worker into the store, and
        a home's restore asks the hub to make the archive its newest copy.
        ``scripts/swarm/backup.sh`` sets it (the hub's address on the stack's core
        network). Empty: the homes are on this machine's homes filesystem
        (``homes_root``).

        Example: ``c.BackupSettings.hub_url = "http://hub-api:8081/hub/api"``
        """,
    )

    @validate("hub_url")
    def _check_hub_url(self, proposal):
        value = proposal.value
        if value and not value.startswith(("http://", "https://")):
            raise TraitError(
                f"BackupSettings.hub_url={value!r} must be http(s)://HOST:PORT/hub/api, "
                "e.g. http://hub-api:8081/hub/api"
            )
        return value

    hub_token = Unicode(
        config=True,
        help="""On a Swarm: the API token of the hub's ``classhub-backup`` service
        (``CLASSHUB_BACKUP_API_TOKEN``, which scripts/swarm/deploy.sh writes into
        ``.run/classhub.env`` and gives the hub); it may only save homes into the store
        and restore one.

        Example: ``c.BackupSettings.hub_token = open("/run/secrets/backup-token").read()``
        """,
    )

    homes_bucket = Unicode(
        config=True,
        help="""On a Swarm: the bucket of the saved homes (the spawner's
        ``homes_s3_bucket``; deploy/swarm/stack.yml keeps them in the files' bucket,
        ``CLASSHUB_S3_BUCKET``, which is the default here too).

        Example: ``c.BackupSettings.homes_bucket = "classhub-files"``
        """,
    )

    remote = Unicode(
        config=True,
        help="""A bucket that keeps every backup as well, ``s3://BUCKET/FOLDER``: after a
        backup is complete on this machine it is copied there (the manifest last), the
        bucket keeps as many as ``keep``, ``list`` shows its backups, and a restore of a
        backup that is not on this machine fetches it first (every checksum checked). Use a
        store other than the stack's own: a backup inside the store it backs up does not
        survive that store. Empty: backups stay in ``backup_dir`` only.

        Example: ``c.BackupSettings.remote = "s3://department-backups/classhub"``
        """,
    )

    @validate("remote")
    def _check_remote(self, proposal):
        value = proposal.value
        if value and (not value.startswith("s3://") or len(value) <= len("s3://")):
            raise TraitError(
                f"BackupSettings.remote={value!r} must look like s3://bucket/folder (or be empty)"
            )
        return value

    remote_endpoint = Unicode(
        config=True,
        help="""The store of ``remote`` (``http(s)://HOST:PORT``; any S3 store: AWS,
        MinIO, SeaweedFS).

        Example: ``c.BackupSettings.remote_endpoint = "https://s3.eu-west-1.amazonaws.com"``
        """,
    )

    remote_access_key = Unicode(
        config=True,
        help="""An access key of that store allowed to read, write, list and delete in the
        bucket (and to make it, if it is missing). Never logged.

        Example: ``c.BackupSettings.remote_access_key = "..."``
        """,
    )

    remote_secret_key = Unicode(
        config=True,
        help="""The secret key that goes with ``remote_access_key``. Never logged.

        Example: ``c.BackupSettings.remote_secret_key = open("/root/.backup-key").read().strip()``
        """,
    )
