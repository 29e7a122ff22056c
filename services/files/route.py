"""Traefik's route from the browser to the S3 store, for presigned URLs only.

Presigned URLs point at ``<public address>/<bucket>/...``: Traefik sends those paths to
the store unchanged (SigV4 signs the path and the host, so nothing may be rewritten).
The route admits only what a presigned URL does:

- ``GET``/``HEAD`` of ``/<bucket>/<key>`` carrying ``X-Amz-Signature`` in the query (a
  download link); unsigned requests, listings and every other method never reach the store;
- ``POST /<bucket>`` (a browser upload with a signed policy in its form).

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


def route_config(*, bucket: str, s3_url: str, entrypoint: str, prefix: str = "classhub") -> dict:
    """The dynamic configuration (pure; see the module's docstring)."""
    name = f"{prefix}-files-s3"
    base = f"/{bucket}"
    download = (
        f"PathPrefix(`{base}/`) && (Method(`GET`) || Method(`HEAD`)) "
        "&& QueryRegexp(`X-Amz-Signature`, `^[0-9a-f]{64}$`)"
    )
    upload = f"Path(`{base}`) && Method(`POST`)"
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
                        "customResponseHeaders": {
                            "Content-Security-Policy": "sandbox; default-src 'none'",
                            "X-Content-Type-Options": "nosniff",
                            "Referrer-Policy": "no-referrer",
                            "Cache-Control": "private, no-store",
                        }
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
