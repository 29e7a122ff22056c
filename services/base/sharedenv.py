"""The ``CLASSHUB_*`` variables that more than one service reads, declared once.

The files and grades services share the S3 store, its links and the delivery round; the
classes and files services share MongoDB. Each variable is declared here, with its
default, how it is read and what a good value is; a service's table (its
``settings.py``) takes one over for its trait with :meth:`EnvSetting.of`, so the
services cannot drift apart. A variable that the hub's components read too is in
``common/hubenv.py`` instead.
"""

from __future__ import annotations

from traitlets import TraitError

from common.settings import EnvSetting, named, number

SECONDS = "a number of seconds"

#: the longest link lifetime and store timeout (a week)
WEEK = 7 * 86400

#: paths of the hub that a bucket name (the first segment of a presigned URL) must not take
RESERVED_BUCKETS = frozenset({"hub", "user", "users", "services", "api"})


def s3_endpoint(raw: str) -> str:
    """``http(s)://host:port`` without a trailing ``/``; ``ValueError`` otherwise."""
    if not raw.startswith(("http://", "https://")):
        raise ValueError("not http:// or https://")
    return raw.rstrip("/")


def s3_bucket(raw: str) -> str:
    """A bucket name that is also a safe first path segment of a presigned URL."""
    ok = 3 <= len(raw) <= 63 and all(c.islower() or c.isdigit() or c == "-" for c in raw)
    if not ok or raw in RESERVED_BUCKETS or raw.startswith("-") or raw.endswith("-"):
        raise ValueError("not a bucket name classhub can use")
    return raw


def week_seconds(raw: str | float) -> float:
    """Seconds, more than 0 and at most a week."""
    value = float(raw)
    if not 0 < value <= WEEK:
        raise ValueError("not between 0 and 7 days")
    return value


def positive_seconds(raw: str | float) -> float:
    """Seconds, more than 0."""
    value = float(raw)
    if not value > 0:
        raise ValueError("not positive")
    return value


def mongo_url(raw: str) -> str:
    """A ``mongodb://`` or ``mongodb+srv://`` URL."""
    if not raw.startswith(("mongodb://", "mongodb+srv://")):
        raise ValueError("not a mongodb:// URL")
    return raw


BUCKET_RULE = (
    "3-63 lowercase letters, digits and dashes, and not a path the hub uses "
    "(hub, user, users, services, api)"
)

#: the S3 store (SeaweedFS): the files service's objects, the grades service's snapshots
S3_ENDPOINT = EnvSetting(
    "",
    "CLASSHUB_S3_ENDPOINT",
    "http://127.0.0.1:8333",
    s3_endpoint,
    "http(s)://host:port, such as http://127.0.0.1:18333",
)
#: the one bucket both services use (each in its own areas)
S3_BUCKET = EnvSetting("", "CLASSHUB_S3_BUCKET", "classhub-files", s3_bucket, BUCKET_RULE)
#: the service's own S3 identity: the hub passes each service its own keys under these names
#: (services/base/hubconfig.py ``service_s3_keys``)
S3_ACCESS_KEY = EnvSetting("", "CLASSHUB_S3_ACCESS_KEY", "", sensitive=True)
S3_SECRET_KEY = EnvSetting("", "CLASSHUB_S3_SECRET_KEY", "", sensitive=True)

#: how long a presigned download link stays valid
DOWNLOAD_EXPIRY = EnvSetting(
    "",
    "CLASSHUB_FILES_DOWNLOAD_EXPIRY",
    60.0,
    week_seconds,
    "a number of seconds, more than 0 and at most 7 days (604800)",
)
#: seconds between two rounds that deliver into homes that appeared or were stopped
SYNC_INTERVAL = EnvSetting("", "CLASSHUB_FILES_SYNC_INTERVAL", 5.0, number, SECONDS)

#: MongoDB: the classes service's database, where the files service records its pushes.
#: The hub passes each service its own URL (CLASSHUB_CLASSES_MONGO_URL,
#: CLASSHUB_FILES_MONGO_URL) under this name. It may hold a password: never repeated
MONGO_URL = EnvSetting(
    "",
    "CLASSHUB_MONGO_URL",
    "mongodb://127.0.0.1:27017/classhub",
    mongo_url,
    "a mongodb:// or mongodb+srv:// URL, such as mongodb://127.0.0.1:17017/classhub",
    sensitive=True,
)
#: seconds a MongoDB call may take before the service answers 503
MONGO_TIMEOUT = EnvSetting(
    "", "CLASSHUB_MONGO_TIMEOUT", 3.0, positive_seconds, "a positive number of seconds"
)


def _checked(parse, obj, proposal, expect: str):
    """``parse(proposal.value)``, its ValueError as the trait's error ``<setting> <expect>``
    (``expect`` repeats the value only where it cannot be a secret)."""
    try:
        return parse(proposal.value)
    except ValueError:
        raise TraitError(f"{named(obj, proposal)} {expect}") from None


def checked_s3_endpoint(obj, proposal) -> str:
    """A ``@validate("s3_endpoint")`` body: the same rule as :data:`S3_ENDPOINT`."""
    expect = f"must be http(s)://host:port, got {proposal.value[:60]!r}"
    return _checked(s3_endpoint, obj, proposal, expect)


def checked_s3_bucket(obj, proposal) -> str:
    """A ``@validate("s3_bucket")`` body: the same rule as :data:`S3_BUCKET`."""
    return _checked(s3_bucket, obj, proposal, f"{proposal.value!r} must be {BUCKET_RULE}")


def checked_week_seconds(obj, proposal) -> float:
    """A ``@validate`` body for seconds of at most a week (a link's lifetime, a timeout)."""
    return _checked(week_seconds, obj, proposal, "must be between 0 and 7 days in seconds")


def checked_mongo_url(obj, proposal) -> str:
    """A ``@validate("mongo_url")`` body: the same rule as :data:`MONGO_URL` (and the URL
    is never repeated: it may hold a password)."""
    expect = "must start with mongodb:// or mongodb+srv://, e.g. mongodb://127.0.0.1:17017/classhub"
    return _checked(mongo_url, obj, proposal, expect)
