"""What every user of the S3 store in classhub shares (the ``minio`` SDK, imported when
called)."""

from __future__ import annotations

#: what S3 answers to a bucket made meanwhile by another part of this deployment
BUCKET_MADE = frozenset({"BucketAlreadyOwnedByYou", "BucketAlreadyExists"})


def make_bucket(client, bucket: str) -> bool:
    """Make ``bucket`` with the minio ``client``: True when this call made it, False when
    another part of the deployment made it meanwhile (several homes saved at once, two
    services starting); either way the bucket is there. Other errors are raised."""
    from minio.error import S3Error

    try:
        client.make_bucket(bucket)
    except S3Error as e:
        if e.code in BUCKET_MADE:
            return False
        raise
    return True
