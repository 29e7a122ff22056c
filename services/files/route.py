"""Traefik's route from the browser to the S3 store, for presigned URLs only.

Presigned URLs point at ``<public address>/<bucket>/...``: Traefik sends those paths to
the store unchanged (SigV4 signs the path and the host, so nothing may be rewritten).
The route admits only what a presigned URL does:

- ``GET``/``HEAD`` of ``/<bucket>/<key>`` carrying ``X-Amz-Signature`` in the query (a
  download link), and ``PUT`` of ``/<bucket>/<key>`` carrying one (an upload, whose
  exact size and type are signed); unsigned requests, listings, the bucket itself and every
  other method never reach the store;
- headers that would turn an upload into something else (a server-side copy of another
  object, tags, ACLs) are removed on the way in; the store would refuse them anyway, as
  they are not signed, but the proxy does not rely on it.

Every answer gets ``Content-Security-Policy: sandbox`` and ``nosniff``: a file a student
uploads is served from the hub's own address, and must never run as a page there.

The files service writes this file into Traefik's dynamic configuration directory at
start-up (:func:`write_route`), so the route exists exactly when the service does.
"""

from __future__ import annotations

import os
import tempfile

import yaml

FILE_NAME = "classhub-files-s3.yml"

#: request headers that change what an S3 PUT does; never passed to the store
STRIPPED_REQUEST_HEADERS = (
    "X-Amz-Copy-Source",
    "X-Amz-Copy-Source-Range",
    "X-Amz-Metadata-Directive",
    "X-Amz-Tagging",
    "X-Amz-Tagging-Directive",
    "X-Amz-Acl",
    "X-Amz-Grant-Full-Control",
    "X-Amz-Grant-Read",
    "X-Amz-Grant-Read-Acp",
    "X-Amz-Grant-Write-Acp",
    "X-Amz-Website-Redirect-Location",
    "X-Amz-Object-Lock-Mode",
    "X-Amz-Object-Lock-Retain-Until-Date",
    "X-Amz-Object-Lock-Legal-Hold",
)


def route_config(*, bucket: str, s3_url: str, entrypoint: str, prefix: str = "classhub") -> dict:
    """The dynamic configuration (pure; see the module's docstring)."""
    name = f"{prefix}-files-s3"
    base = f"/{bucket}"
    signed = "QueryRegexp(`X-Amz-Signature`, `^[0-9a-f]{64}$`)"
    download = f"PathPrefix(`{base}/`) && (Method(`GET`) || Method(`HEAD`)) && {signed}"
    upload = f"PathPrefix(`{base}/`) && Method(`PUT`) && {signed}"
    headers = f"{name}-headers"
    router = {"service": name, "entryPoints": [entrypoint], "middlewares": [headers]}
    return {
        "http": {
            "routers": {
                f"{name}-download": {**router, "rule": download, "priority": 1000},
                f"{name}-upload": {**router, "rule": upload, "priority": 1000},
            },
            "middlewares": {
                headers: {
                    "headers": {
                        # an empty value removes the header from the request
                        "customRequestHeaders": {h: "" for h in STRIPPED_REQUEST_HEADERS},
                        "customResponseHeaders": {
                            "Content-Security-Policy": "sandbox; default-src 'none'",
                            "X-Content-Type-Options": "nosniff",
                            "Referrer-Policy": "no-referrer",
                            "Cache-Control": "private, no-store",
                        },
                    }
                }
            },
            "services": {
                name: {"loadBalancer": {"servers": [{"url": s3_url}], "passHostHeader": True}}
            },
        }
    }


def write_route(directory: str, config: dict) -> str:
    """Write ``config`` atomically as ``<directory>/classhub-files-s3.yml``."""
    os.makedirs(directory, exist_ok=True)
    path = os.path.join(directory, FILE_NAME)
    fd, tmp = tempfile.mkstemp(dir=directory, prefix=".classhub-files-", suffix=".tmp")
    try:
        with os.fdopen(fd, "w") as f:
            yaml.safe_dump(config, f, sort_keys=True)
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise
    return path
