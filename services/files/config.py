"""The hub-side configuration of the files service (a pure function, no I/O).

``services/config.py`` calls :func:`files_service_config` and appends the two results to
``c.JupyterHub.services`` and ``c.JupyterHub.load_roles``.
"""

from __future__ import annotations

import sys
from collections.abc import Mapping

from common import scopes
from services.base.hubconfig import service_s3_keys

from .settings import TABLE

SERVICE_NAME = "files"
ROLE_NAME = "classhub-files-service"

#: the hub API scopes of the service's own token: the least that its work needs. The
#: service never calls a student's server: pushes and releases are written into students'
#: homes by helper containers (services/base/homes.py), whether the server runs or not.
SCOPES = [
    # GET /groups/class-<code> and /groups/teachers-<code>: who are a class's students and
    # teachers (the classes service keeps both groups in step). Reading only.
    "read:groups",
    # On a Swarm only (hub/homes_api.py): which homes exist and on which node one is (a
    # stopped home is first brought from the store onto a node), so its helper services
    # run there. No file of a home, no server start or stop. Defined by
    # hub.config.configure_homes.
    scopes.HOMES,
]
# Not granted, on purpose: access:servers, list:users, read:servers, start/stop of
# servers, admin:groups, admin:users, tokens.

#: what the hub computes for the service itself instead of passing its own value
HUB_COMPUTED = (
    "CLASSHUB_MONGO_URL",
    "CLASSHUB_S3_ACCESS_KEY",
    "CLASSHUB_S3_SECRET_KEY",
    "CLASSHUB_SERVICE_COOKIE_SECRET",
    # hub.config.configure_web passes the services the hub runs
    "CLASSHUB_SERVICES",
)

#: settings passed from the hub's environment to the service: its settings table
PASSED_ENV = tuple(v for v in TABLE.passed_variables if v not in HUB_COMPUTED)


def files_service_config(
    *, port: int, host: str = "127.0.0.1", mongo_url: str, env: Mapping[str, str]
) -> tuple[dict, dict]:
    """``(service, role)``: the managed files service at ``/services/files/`` on
    ``host``:``port``, and its role. Everyone also needs
    ``access:services!service=files`` (in classhub's ``user`` role)."""
    if isinstance(port, bool) or not isinstance(port, int) or not 0 < port < 65536:
        raise ValueError(f"The files service port must be 1-65535, got {port!r}")
    access_key, secret_key = service_s3_keys(env, SERVICE_NAME)
    environment = TABLE.passed(env, leave_out=HUB_COMPUTED)
    environment.update(
        CLASSHUB_MONGO_URL=mongo_url,
        CLASSHUB_S3_ACCESS_KEY=access_key,
        CLASSHUB_S3_SECRET_KEY=secret_key,
    )
    if env.get("CLASSHUB_FILES_COOKIE_SECRET"):
        environment["CLASSHUB_SERVICE_COOKIE_SECRET"] = env["CLASSHUB_FILES_COOKIE_SECRET"]
    service = {
        "name": SERVICE_NAME,
        "url": f"http://{host}:{port}",
        "command": [sys.executable, "-m", "services.files"],
        "environment": environment,
        "oauth_no_confirm": True,
        "display": True,
        "info": {"description": "Files: your files and your classes' material"},
    }
    role = {
        "name": ROLE_NAME,
        "description": (
            "The files service: class membership (pushes go into students' homes through "
            "helper containers, not the hub)"
        ),
        "scopes": list(SCOPES),
        "services": [SERVICE_NAME],
    }
    return service, role
