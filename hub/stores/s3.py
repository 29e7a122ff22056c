"""An S3 identity per service, limited to its own key prefixes (SeaweedFS ``-s3.config``).

SeaweedFS grants an identity actions (``Read``, ``Write``, ``List``, ``Tagging``,
``Admin``); ``Action:bucket/prefix*`` limits one to the keys that start with ``prefix`` in
``bucket`` (for a listing, the ``prefix`` of the request). ``Admin`` alone creates and
deletes buckets. The identities:

- ``admin``: ``Admin``, ``Read``, ``Write``, ``List``, ``Tagging`` (everything); used only
  by ``classhub-stores s3-bucket``, which creates the bucket.
- ``files``: ``Read``, ``Write``, ``List`` on ``users/``, ``classes/``, ``staging/``,
  ``pushes/`` and ``helpers/files/``; the files service.
- ``grades``: ``Read``, ``Write``, ``List`` on ``submissions/`` and ``helpers/grades/``; the
  grades service. (``helpers/<service>/``: the jobs of its helper services on a Swarm,
  services/base/swarmhomes.py.)
- ``classes`` (a Swarm stack only, when its keys are set): ``Read``, ``Write``, ``List``
  on ``helpers/classes/``; the classes service, whose look into a student's home runs as
  a helper service on the node that holds it there.
- ``homes`` (a Swarm stack only, when its keys are set): ``Read``, ``Write``, ``List`` on
  ``homes/``; the hub's ``SwarmClassroomSpawner``, which carries students' homes between
  nodes (spawner/homesync.py).

A service's identity reads, writes, lists and deletes under its prefixes (deleting is
``Write``), server-side copies within them, and signs presigned URLs for them; anything
else, another service's keys, the bucket itself (``HEAD``, create, delete, policy) and the
IAM API included, answers 403. The grades service reads a release's starting files
through the files service's API, not from the store.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass

from common.s3 import make_bucket

#: key prefixes of each service (see services/base/names.py, services/files/push.py,
#: services/files/handlers.py and services/grades/store.py)
FILES_PREFIXES = ("users/", "classes/", "staging/", "pushes/", "helpers/files/")
GRADES_PREFIXES = ("submissions/", "helpers/grades/")
SERVICE_ACTIONS = ("Read", "Write", "List")
ADMIN_ACTIONS = ("Admin", "Read", "Write", "List", "Tagging")
DEFAULT_BUCKET = "classhub-files"


@dataclass(frozen=True)
class Keys:
    access_key: str
    secret_key: str

    def __post_init__(self):
        if not self.access_key or not self.secret_key:
            raise ValueError("an S3 identity needs an access key and a secret key")


@dataclass(frozen=True)
class ServiceIdentity:
    service: str
    prefixes: tuple[str, ...]
    access_env: str  # the hub's environment: where scripts/up.sh keeps the keys
    secret_env: str


FILES = ServiceIdentity(
    "files", FILES_PREFIXES, "CLASSHUB_S3_FILES_ACCESS_KEY", "CLASSHUB_S3_FILES_SECRET_KEY"
)
GRADES = ServiceIdentity(
    "grades", GRADES_PREFIXES, "CLASSHUB_S3_GRADES_ACCESS_KEY", "CLASSHUB_S3_GRADES_SECRET_KEY"
)
SERVICES = (FILES, GRADES)
#: the classes service's jobs for its helper services on a Swarm (services/base/swarmhomes.py);
#: on one machine it needs no store
CLASSES = ServiceIdentity(
    "classes",
    ("helpers/classes/",),
    "CLASSHUB_S3_CLASSES_ACCESS_KEY",
    "CLASSHUB_S3_CLASSES_SECRET_KEY",
)
#: the saved homes of a Swarm stack (spawner/homesync.py); its keys are the spawner's own
#: settings, so the hub's environment keeps them
HOMES = ServiceIdentity(
    "homes", ("homes/",), "CLASSHUB_SWARM_HOMES_S3_ACCESS_KEY", "CLASSHUB_SWARM_HOMES_S3_SECRET_KEY"
)
ADMIN_ACCESS_ENV, ADMIN_SECRET_ENV = "S3_ADMIN_ACCESS_KEY", "S3_ADMIN_SECRET_KEY"


def scoped_actions(bucket: str, prefixes: Iterable[str]) -> list[str]:
    """``Read:bucket/prefix*`` and friends for each prefix."""
    out = []
    for prefix in prefixes:
        if not prefix.endswith("/") or prefix.startswith("/") or "*" in prefix:
            raise ValueError(f"a key prefix is a folder like 'users/', got {prefix!r}")
        out += [f"{action}:{bucket}/{prefix}*" for action in SERVICE_ACTIONS]
    return out


def identities(
    bucket: str,
    *,
    admin: Keys,
    files: Keys,
    grades: Keys,
    homes: Keys | None = None,
    classes: Keys | None = None,
) -> dict:
    """SeaweedFS's ``-s3.config`` document (``homes`` and ``classes``: a Swarm stack's
    saved homes and the classes service's helper jobs)."""
    if not bucket or "/" in bucket or "*" in bucket:
        raise ValueError(f"not a bucket name: {bucket!r}")
    keys = {"files": files, "grades": grades}
    services = list(SERVICES)
    if homes is not None:
        keys["homes"] = homes
        services.append(HOMES)
    if classes is not None:
        keys["classes"] = classes
        services.append(CLASSES)
    access = [admin.access_key, *(k.access_key for k in keys.values())]
    if len(set(access)) != len(access):
        raise ValueError("each S3 identity needs an access key of its own")

    def entry(name: str, k: Keys, actions: list[str]) -> dict:
        return {
            "name": name,
            "credentials": [{"accessKey": k.access_key, "secretKey": k.secret_key}],
            "actions": actions,
        }

    return {
        "identities": [
            entry("admin", admin, list(ADMIN_ACTIONS)),
            *(
                entry(s.service, keys[s.service], scoped_actions(bucket, s.prefixes))
                for s in services
            ),
        ]
    }


def identities_json(
    bucket: str,
    *,
    admin: Keys,
    files: Keys,
    grades: Keys,
    homes: Keys | None = None,
    classes: Keys | None = None,
) -> str:
    doc = identities(bucket, admin=admin, files=files, grades=grades, homes=homes, classes=classes)
    return json.dumps(doc, indent=2) + "\n"


def ensure_bucket(endpoint: str, admin: Keys, bucket: str, *, timeout: float = 10.0) -> bool:
    """Create ``bucket`` with the admin identity unless it exists; True when created."""
    import urllib3
    from minio import Minio

    scheme, _, host = endpoint.partition("://")
    if scheme not in ("http", "https") or not host:
        raise ValueError(f"the S3 endpoint must be http(s)://host:port, got {endpoint!r}")
    http = urllib3.PoolManager(
        timeout=urllib3.Timeout(connect=min(3.0, timeout), read=timeout),
        retries=urllib3.Retry(total=2, backoff_factor=0.5, status_forcelist=(500, 502, 503, 504)),
    )
    client = Minio(
        host.rstrip("/"),
        access_key=admin.access_key,
        secret_key=admin.secret_key,
        secure=scheme == "https",
        region="us-east-1",
        http_client=http,
    )
    try:
        if client.bucket_exists(bucket):
            return False
        return make_bucket(client, bucket)
    finally:
        http.clear()
