"""AWS Signature Version 4 query signing (presigned URLs) with signed headers.

The ``minio`` SDK presigns with the ``host`` header only, so a presigned PUT would accept a
body of any size and any ``Content-Type``. Signing ``content-length`` and ``content-type``
too makes the store itself refuse a body of another size or type: the size the files service
checked against the quota is the size that can land. Pure functions, no I/O; the algorithm is
AWS's "Authenticating Requests: Using Query Parameters (AWS Signature Version 4)".
"""

from __future__ import annotations

import datetime
import hashlib
import hmac
from urllib.parse import quote

ALGORITHM = "AWS4-HMAC-SHA256"
UNSIGNED_PAYLOAD = "UNSIGNED-PAYLOAD"


def _uri_encode(value: str, *, keep_slash: bool = False) -> str:
    # RFC 3986 unreserved characters stay (and "/" in a path); everything else is %XX
    return quote(value, safe="-_.~/" if keep_slash else "-_.~")


def _hmac(key: bytes, text: str) -> bytes:
    return hmac.new(key, text.encode(), hashlib.sha256).digest()


def signing_key(secret_key: str, day: str, region: str, service: str = "s3") -> bytes:
    k = _hmac(("AWS4" + secret_key).encode(), day)
    k = _hmac(k, region)
    k = _hmac(k, service)
    return _hmac(k, "aws4_request")


def presign(
    *,
    method: str,
    scheme: str,
    host: str,
    path: str,
    access_key: str,
    secret_key: str,
    region: str,
    expires: int,
    now: datetime.datetime,
    headers: dict[str, str] | None = None,
    query: dict[str, str] | None = None,
) -> str:
    """A presigned URL for ``method`` on ``path`` (``/<bucket>/<key>``, not yet encoded) at
    ``host`` (with its port, as the client will send it), valid ``expires`` seconds from
    ``now`` (aware). ``headers`` (name → exact value) are signed: the request must carry each
    with exactly that value. ``host`` is always signed."""
    if now.tzinfo is None:
        raise ValueError("now must be timezone-aware")
    if not 1 <= expires <= 7 * 24 * 3600:
        raise ValueError("a presigned URL lives from 1 s to 7 days")
    now = now.astimezone(datetime.UTC)
    amz_date = now.strftime("%Y%m%dT%H%M%SZ")
    day = now.strftime("%Y%m%d")
    scope = f"{day}/{region}/s3/aws4_request"
    signed = {"host": host}
    for name, value in (headers or {}).items():
        signed[name.lower()] = " ".join(str(value).split())
    names = sorted(signed)
    params = {
        **(query or {}),
        "X-Amz-Algorithm": ALGORITHM,
        "X-Amz-Credential": f"{access_key}/{scope}",
        "X-Amz-Date": amz_date,
        "X-Amz-Expires": str(expires),
        "X-Amz-SignedHeaders": ";".join(names),
    }
    canonical_query = "&".join(
        f"{_uri_encode(k)}={_uri_encode(v)}" for k, v in sorted(params.items())
    )
    canonical_path = _uri_encode(path, keep_slash=True)
    canonical_headers = "".join(f"{n}:{signed[n]}\n" for n in names)
    canonical_request = "\n".join(
        [
            method,
            canonical_path,
            canonical_query,
            canonical_headers,
            ";".join(names),
            UNSIGNED_PAYLOAD,
        ]
    )
    string_to_sign = "\n".join(
        [ALGORITHM, amz_date, scope, hashlib.sha256(canonical_request.encode()).hexdigest()]
    )
    signature = hmac.new(
        signing_key(secret_key, day, region), string_to_sign.encode(), hashlib.sha256
    ).hexdigest()
    return f"{scheme}://{host}{canonical_path}?{canonical_query}&X-Amz-Signature={signature}"
