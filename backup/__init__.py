"""``classhub-backup``: back up and restore a whole classhub deployment.

PostgreSQL (``pg_dump`` in one exported snapshot), MongoDB (every application database,
in ``mongodump``'s layout), the S3 store (every bucket and object) and every student home
(a read-only btrfs snapshot, then a tar archive), into one directory with a manifest of
checksums; restored into a fresh stack, or one student's home at a time. See
docs/admin-guide.md, "Backups and restores".

This package sits on top of the layers (it reads the stores' identities from
``hub.stores`` and the homes from ``spawner``); nothing imports it.
"""
